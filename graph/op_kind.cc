// The op table: one row per OpKind, in enum order (checked at compile time).
#include "graph/op_kind.h"

#include <iterator>
#include <string>
#include <vector>

#include "framework/suggest.h"
#include "graph/attrs.h"

namespace sieve::graph {

namespace {

constexpr uint32_t Bit(int i) { return uint32_t{1} << i; }
constexpr uint32_t kMatMulTargets = TargetBit(SiteTarget::kMatMulM) | TargetBit(SiteTarget::kMatMulN) |
                                    TargetBit(SiteTarget::kMatMulK) | TargetBit(SiteTarget::kMatMulTile);
constexpr uint32_t kSubmatrixTargets = TargetBit(SiteTarget::kRows) | TargetBit(SiteTarget::kCols);
constexpr uint32_t kBiasTargets = TargetBit(SiteTarget::kBiasCols);

constexpr size_t kNone = kAttrIndex<std::monostate>;
constexpr size_t kMatMul = kAttrIndex<ops::MatMulAttr>;
constexpr size_t kGather = kAttrIndex<GatherAttr>;
constexpr size_t kScatter = kAttrIndex<ScatterAttr>;
constexpr size_t kBias = kAttrIndex<BiasAttr>;
constexpr size_t kAct = kAttrIndex<ActivationAttr>;
constexpr size_t kXent = kAttrIndex<SoftmaxXentAttr>;
constexpr size_t kPool = kAttrIndex<PoolAttr>;
constexpr size_t kDrop = kAttrIndex<DropoutAttr>;
constexpr size_t kFill = kAttrIndex<FillAttr>;

using B = BaseInput;

// kind, name, inputs, outputs, attr, base, int32 inputs, int32 outputs, like-output inputs, site targets
constexpr OpInfo kOps[] = {
    {OpKind::kMatMul, "MatMul", 2, 1, kMatMul, B::kOptional, 0, 0, 0, kMatMulTargets},
    {OpKind::kGather, "Gather", 1, 1, kGather, B::kNone, 0, 0, 0, kSubmatrixTargets},
    {OpKind::kScatter, "Scatter", 1, 1, kScatter, B::kOptional, 0, 0, 0, kSubmatrixTargets},
    {OpKind::kBiasAdd, "BiasAdd", 2, 1, kBias, B::kNone, 0, 0, Bit(0), kBiasTargets},
    {OpKind::kBiasBackward, "BiasBackward", 1, 1, kBias, B::kOptional, 0, 0, 0, kBiasTargets},
    {OpKind::kChannelBiasAdd, "ChannelBiasAdd", 2, 1, kBias, B::kNone, 0, 0, Bit(0), 0},
    {OpKind::kChannelBiasBackward, "ChannelBiasBackward", 1, 1, kBias, B::kOptional, 0, 0, 0, 0},
    {OpKind::kActivation, "Activation", 1, 1, kAct, B::kNone, 0, 0, Bit(0), 0},
    {OpKind::kActivationBackward, "ActivationBackward", 2, 1, kAct, B::kNone, 0, 0, Bit(0) | Bit(1), 0},
    {OpKind::kSoftmaxXent, "SoftmaxXent", 2, 1, kXent, B::kNone, Bit(1), 0, Bit(0), 0},
    {OpKind::kSoftmaxXentBackward, "SoftmaxXentBackward", 2, 1, kXent, B::kNone, Bit(1), 0, Bit(0), 0},
    {OpKind::kMaxPool, "MaxPool", 1, 2, kPool, B::kNone, 0, Bit(1), 0, 0},
    {OpKind::kMaxPoolBackward, "MaxPoolBackward", 2, 1, kPool, B::kOptional, Bit(1), 0, 0, 0},
    {OpKind::kAvgPool, "AvgPool", 1, 1, kPool, B::kNone, 0, 0, 0, 0},
    {OpKind::kAvgPoolBackward, "AvgPoolBackward", 1, 1, kPool, B::kOptional, 0, 0, 0, 0},
    {OpKind::kDropout, "Dropout", 1, 1, kDrop, B::kNone, 0, 0, Bit(0), 0},
    {OpKind::kDropoutBackward, "DropoutBackward", 1, 1, kDrop, B::kNone, 0, 0, Bit(0), 0},
    {OpKind::kIndexRows, "IndexRows", 2, 1, kNone, B::kNone, Bit(1), 0, 0, 0},
    {OpKind::kScatterAddRows, "ScatterAddRows", 2, 1, kNone, B::kRequired, Bit(1), 0, 0, 0},
    {OpKind::kLstmGates, "LstmGates", 2, 3, kNone, B::kNone, 0, 0, Bit(1), 0},
    {OpKind::kLstmGatesBackward, "LstmGatesBackward", 5, 2, kNone, B::kNone, 0, 0, Bit(0), 0},
    {OpKind::kFill, "Fill", 0, 1, kFill, B::kNone, 0, 0, 0, 0},
    {OpKind::kCopy, "Copy", 1, 1, kNone, B::kNone, 0, 0, Bit(0), 0},
    {OpKind::kAdd, "Add", 2, 1, kNone, B::kNone, 0, 0, Bit(0) | Bit(1), 0},
};
static_assert(std::size(kOps) == static_cast<size_t>(OpKind::kCount), "one op table row per OpKind");

constexpr bool InEnumOrder() {
  for (size_t i = 0; i < std::size(kOps); ++i)
    if (static_cast<size_t>(kOps[i].kind) != i) return false;
  return true;
}
static_assert(InEnumOrder(), "op table rows must follow the OpKind order");

}  // namespace

const OpInfo& GetOpInfo(OpKind kind) {
  SIEVE_CHECK(kind < OpKind::kCount, "op kind " << static_cast<int>(kind) << " out of range");
  return kOps[static_cast<int>(kind)];
}

const char* OpKindName(OpKind kind) { return kind < OpKind::kCount ? kOps[static_cast<int>(kind)].name : "?"; }

StatusOr<OpKind> OpKindFromName(std::string_view name) {
  std::vector<std::string> names;
  for (int i = 0; i < static_cast<int>(OpKind::kCount); ++i) {
    if (kOps[i].name == name) return static_cast<OpKind>(i);
    names.emplace_back(kOps[i].name);
  }
  return SIEVE_ERROR(StatusCode::kNotFound, "no op kind named '" << name << "'" << NearestSuffix(name, names));
}

}  // namespace sieve::graph
