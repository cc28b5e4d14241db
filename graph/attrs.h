// What a node of the MatMul IR carries besides its operands: a typed attribute per kind family
// (STYLE.md 2; no untyped integer arrays), and SiteUses, which say how the dropout pattern a
// site draws each iteration reaches the attribute. Also the typed ids the graph hands out.
//
// Attributes are the concrete arguments of one kernel call: ops::MatMulAttr is the MatMul's own
// attribute, the others mirror the arguments of the helper kernels in ops/kernels/. Whatever a
// dropout pattern decides (MatMul selections and alpha, bias columns, gathered rows and columns)
// is written into them by ResolveSiteUses (ir.h) each iteration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <type_traits>
#include <variant>

#include "ops/kernels/activation.h"
#include "ops/kernels/im2col.h"
#include "ops/matmul/matmul.h"
#include "ops/matmul/pattern.h"

namespace sieve::graph {

/// Ids are indices into the Graph's tables. Each is its own type, so a value id cannot be passed
/// where a node id is expected; write ValueId{3} to make one and Index(id) to read it.
enum class ValueId : int32_t {};
enum class NodeId : int32_t {};
enum class SiteId : int32_t {};
inline constexpr NodeId kNoNode{-1};
inline constexpr int32_t Index(ValueId id) { return static_cast<int32_t>(id); }
inline constexpr int32_t Index(NodeId id) { return static_cast<int32_t>(id); }
inline constexpr int32_t Index(SiteId id) { return static_cast<int32_t>(id); }

/// Gather (ops::GatherSubmatrix): dst = src[rows, cols], kept indices packed in ascending order.
struct GatherAttr {
  std::optional<ops::IndexPattern> rows;  // absent: all rows
  std::optional<ops::IndexPattern> cols;  // absent: all columns
};

/// Scatter (ops::ScatterSubmatrix): dst[rows, cols] = src + beta * dst[rows, cols].
struct ScatterAttr {
  std::optional<ops::IndexPattern> rows;
  std::optional<ops::IndexPattern> cols;
  float beta = 0.0f;
};

/// BiasAdd and BiasBackward (ops::AddBias, ops::BiasBackward): `cols` selects the bias entries of
/// the packed columns. The channel kinds use it too, without `cols`. beta is the backward's.
struct BiasAttr {
  std::optional<ops::IndexPattern> cols;
  float beta = 0.0f;
};

/// Activation and ActivationBackward.
struct ActivationAttr {
  ops::Activation kind = ops::Activation::kReLU;
};

/// SoftmaxXent and SoftmaxXentBackward (ops::SoftmaxXentOptions and the backward's loss weight).
struct SoftmaxXentAttr {
  std::optional<int32_t> ignore_label;
  float loss_weight = 1.0f;
};

/// Max and average pooling; the kind says which. beta is the backward's.
struct PoolAttr {
  ops::ConvGeometry geometry;
  float beta = 0.0f;
};

/// Bernoulli dropout (ops::DropoutForward / DropoutBackward). The site names the random stream:
/// the executor draws from {seed, MakeStreamId(StreamKind::kDropout, site, iteration)}, so the
/// backward regenerates the forward's mask. `rate` must equal the site's.
struct DropoutAttr {
  float rate = 0.5f;
  SiteId site{};
};

/// Fill: every element of the output is `value`.
struct FillAttr {
  float value = 0.0f;
};

/// The attribute of a node; std::monostate for kinds without one (IndexRows, ScatterAddRows,
/// LstmGates, LstmGatesBackward, Copy, Add). Which alternative a kind carries is
/// in its OpInfo.
using NodeAttr = std::variant<std::monostate, ops::MatMulAttr, GatherAttr, ScatterAttr, BiasAttr, ActivationAttr,
                              SoftmaxXentAttr, PoolAttr, DropoutAttr, FillAttr>;

namespace internal {
template <typename T, typename Variant>
struct AlternativeIndex;
template <typename T, typename... Ts>
struct AlternativeIndex<T, std::variant<Ts...>> {
  static constexpr size_t value = [] {
    constexpr bool same[] = {std::is_same_v<T, Ts>...};
    for (size_t i = 0; i < sizeof...(Ts); ++i)
      if (same[i]) return i;
    return sizeof...(Ts);
  }();
  static_assert(value < sizeof...(Ts), "not a NodeAttr alternative");
};
}  // namespace internal

/// The NodeAttr index of alternative T: kAttrIndex<ops::MatMulAttr> == 1.
template <typename T>
inline constexpr size_t kAttrIndex = internal::AlternativeIndex<T, NodeAttr>::value;

/// "none", "MatMulAttr", "GatherAttr", ... by alternative index.
inline const char* AttrName(size_t index) {
  constexpr const char* kNames[] = {"none",           "MatMulAttr",      "GatherAttr", "ScatterAttr", "BiasAttr",
                                    "ActivationAttr", "SoftmaxXentAttr", "PoolAttr",   "DropoutAttr", "FillAttr"};
  static_assert(std::size(kNames) == std::variant_size_v<NodeAttr>, "one name per NodeAttr alternative");
  return index < std::size(kNames) ? kNames[index] : "?";
}
inline const char* AttrName(const NodeAttr& attr) { return AttrName(attr.index()); }

/// The attribute's beta (MatMul, Scatter, Bias, Pool attributes), or none.
inline std::optional<float> AttrBeta(const NodeAttr& attr) {
  return std::visit(
      [](const auto& a) -> std::optional<float> {
        if constexpr (requires { a.beta; }) {
          return a.beta;
        } else {
          return std::nullopt;
        }
      },
      attr);
}

/// "forward", "grad-weight", "grad-input" (as ops names them): the role of an implicit-GEMM
/// convolution MatMul.
inline const char* ConvRoleName(ops::ImplicitConv::Role role) {
  constexpr const char* kNames[] = {"forward", "grad-weight", "grad-input"};
  const auto i = static_cast<size_t>(role);
  return i < std::size(kNames) ? kNames[i] : "?";
}

/// Which part of a node's attribute a dropout site's pattern decides.
enum class SiteTarget : uint8_t {
  kMatMulM,     ///< MatMulAttr::m, a DimSelection
  kMatMulN,     ///< MatMulAttr::n
  kMatMulK,     ///< MatMulAttr::k
  kMatMulTile,  ///< MatMulAttr::tile, a TileSelection
  kBiasCols,    ///< BiasAttr::cols
  kRows,        ///< GatherAttr / ScatterAttr rows
  kCols,        ///< GatherAttr / ScatterAttr cols
  kCount,
};
/// "M", "N", "K", "tile", "bias_cols", "rows", "cols".
inline const char* SiteTargetName(SiteTarget target) {
  constexpr const char* kNames[] = {"M", "N", "K", "tile", "bias_cols", "rows", "cols"};
  static_assert(std::size(kNames) == static_cast<size_t>(SiteTarget::kCount), "one name per SiteTarget");
  return target < SiteTarget::kCount ? kNames[static_cast<int>(target)] : "?";
}
inline constexpr uint32_t TargetBit(SiteTarget target) { return uint32_t{1} << static_cast<int>(target); }

/// A node's use of a dropout site: the site's current pattern decides `target` of the node's
/// attribute. Nodes refer to sites instead of copying patterns, so one pass draws a site's
/// pattern and every GEMM of forward and backward that it shrinks follows.
struct SiteUse {
  SiteId site{};
  SiteTarget target = SiteTarget::kMatMulN;
  /// Index targets: one unit of the site spans `group` consecutive indices of the target (the
  /// kh*kw rows of one input channel in a convolution's GEMM); the selection's extent is
  /// site width * group.
  int64_t group = 1;
  /// kMatMulM/N/K: how operands A, B and C store the selected dimension (ops::DimSelection);
  /// an operand that does not span the dimension ignores its entry.
  ops::Layout a = ops::Layout::kFull;
  ops::Layout b = ops::Layout::kFull;
  ops::Layout c = ops::Layout::kFull;
  /// kMatMulTile: the GEMM dimensions along the tile grid's rows and columns.
  ops::Dim tile_rows = ops::Dim::kN;
  ops::Dim tile_cols = ops::Dim::kK;
  /// MatMul targets: this GEMM reads the dropped values (it consumes them, or differentiates
  /// through them), so the site's scale folds into its alpha (SPEC 2.4). A MatMul with a scaling
  /// use has its alpha owned by ResolveSiteUses: the product of its scaling sites' scales.
  bool scale = false;
};

}  // namespace sieve::graph
