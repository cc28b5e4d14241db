// The operations of Sieve's MatMul IR: one enum value per kernel the executor runs, and a table
// that says, per kind, its name, its arity, which attribute it carries, which of its operands are
// int32 and which dropout-site targets it accepts (ggml's op table, STYLE.md 3). The verifier
// checks every node against this table.
//
// This is the post-lowering IR. Layers (FC, LSTM, conv) are not ops: they lower to MatMul nodes
// plus the helper kernels of ops/kernels/ listed here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "framework/status.h"

namespace sieve::graph {

/// Operands per kind, in order (the optional base input, see BaseInput, always comes last):
///   MatMul               (A, B) -> C                           ops::MatMul (2-D; an implicit convolution,
///                                                              MatMulAttr::conv, has NCHW operands)
///   Gather               (src) -> dst (packed)                 ops::GatherSubmatrix
///   Scatter              (src (packed)) -> dst                 ops::ScatterSubmatrix
///   BiasAdd              (x, bias) -> y                        ops::AddBias
///   BiasBackward         (dy) -> dbias                         ops::BiasBackward
///   ChannelBiasAdd       (x, bias) -> y                        ops::AddChannelBias
///   ChannelBiasBackward  (dy) -> dbias                         ops::ChannelBiasBackward
///   Activation           (x) -> y                              ops::ActivationForward
///   ActivationBackward   (y, dy) -> dx                         ops::ActivationBackward
///   SoftmaxXent          (logits, labels) -> prob              ops::SoftmaxXentForward
///   SoftmaxXentBackward  (prob, labels) -> dlogits             ops::SoftmaxXentBackward
///   MaxPool              (x) -> (y, argmax)                    ops::MaxPoolForward
///   MaxPoolBackward      (dy, argmax) -> dx                    ops::MaxPoolBackward
///   AvgPool              (x) -> y                              ops::AvgPoolForward
///   AvgPoolBackward      (dy) -> dx                            ops::AvgPoolBackward
///   Dropout              (x) -> y                              ops::DropoutForward (Bernoulli)
///   DropoutBackward      (dy) -> dx                            ops::DropoutBackward
///   IndexRows            (table, indices) -> out               ops::GatherRows
///   ScatterAddRows       (src, indices) -> dst                 ops::ScatterAddRows
///   LstmGates            (preact [B,4H], c_prev) -> (h, c, gates [B,4H])   ops::LstmGatesForward
///   LstmGatesBackward    (gates, c_prev, c, dh, dc) -> (dpreact, dc_prev)  ops::LstmGatesBackward
///   Fill                 () -> y                               constant fill
///   Copy                 (x) -> y                              element copy
///   Add                  (a, b) -> y                           ops::Add
/// SoftmaxXent's loss statistics (ops::SoftmaxXentStats) are a side result the executor reads
/// from the kernel; they are not a tensor of the graph.
///
/// LstmGatesBackward always takes its five inputs: dh is the gradient of h_t and dc the gradient of
/// c_t that the next step passes back (its dc_prev). Where none reaches the kernel (dc at the last
/// step, dh of an output nothing differentiates) the lowering passes a zero value, the output of a
/// Fill node, so the arity stays fixed; the kernel's own nullable arguments are for direct callers.
/// LSTM operands are [B, H] or [B, 4H] (the gate blocks i, f, g, o); the verifier checks that they
/// agree on B and H.
enum class OpKind : uint8_t {
  kMatMul,
  kGather,
  kScatter,
  kBiasAdd,
  kBiasBackward,
  kChannelBiasAdd,
  kChannelBiasBackward,
  kActivation,
  kActivationBackward,
  kSoftmaxXent,
  kSoftmaxXentBackward,
  kMaxPool,
  kMaxPoolBackward,
  kAvgPool,
  kAvgPoolBackward,
  kDropout,
  kDropoutBackward,
  kIndexRows,
  kScatterAddRows,
  kLstmGates,
  kLstmGatesBackward,
  kFill,
  kCopy,
  kAdd,
  kCount,
};

/// Whether a kind reads the prior contents of its (single) output. The IR is in SSA form: every
/// value is produced once, so a node that accumulates into a buffer (beta != 0), or writes only
/// the kept part of it, names the prior value as an extra last input, the "base". The base has
/// the output's dtype and shape; the memory planner gives both one buffer.
enum class BaseInput : uint8_t {
  kNone,      ///< writes its outputs whole; the attribute's beta (if any) must be 0
  kOptional,  ///< takes a base when its attribute's beta != 0 (required then) or when the entries
              ///< a sparse write leaves untouched must be defined (e.g. zero-filled)
  kRequired,  ///< always adds into the base (ScatterAddRows)
};

/// One row of the op table.
struct OpInfo {
  OpKind kind;             ///< the row's own kind (the table is checked to be in enum order)
  const char* name;        ///< "MatMul"
  int inputs;              ///< inputs, not counting the base
  int outputs;             ///< outputs
  size_t attr;             ///< index of the NodeAttr alternative the kind carries (kAttrIndex)
  BaseInput base;          ///< whether it takes a base input
  uint32_t int32_inputs;   ///< bit i: input i is int32 (labels, indices, argmax); others float32
  uint32_t int32_outputs;  ///< bit i: output i is int32
  uint32_t like_output;    ///< bit i: input i has the dtype, planned shape and packing of output 0
  uint32_t site_targets;   ///< bit t: a SiteUse with target SiteTarget(t) is allowed
};

/// The table row of `kind` (kind < kCount).
const OpInfo& GetOpInfo(OpKind kind);
/// "MatMul", "BiasAdd", ...
const char* OpKindName(OpKind kind);
/// The kind called `name`; the error names the nearest kind name.
StatusOr<OpKind> OpKindFromName(std::string_view name);

}  // namespace sieve::graph
