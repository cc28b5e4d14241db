// Private to autodiff (graph/autodiff.cc and graph/grad/*.cc): the gradient rules, one function
// per forward op kind, grouped in files by family, and the lookup AppendBackward dispatches with.
//
// A rule is called for a forward node (GradContext::forward()) that has a gradient on one of its
// outputs and an input that NeedsGrad. It reads output gradients with GradOf, emits backward nodes
// with Emit, and hands each input's contribution to AddGrad, only for inputs that NeedsGrad. It is
// not a public header: users call AppendBackward (graph/autodiff.h).
#pragma once

#include <string>

#include "framework/status.h"
#include "graph/autodiff.h"
#include "graph/ir.h"

namespace sieve::graph::grad {

/// A gradient rule (see above).
using Rule = Status (*)(GradContext& ctx);

/// The rule of a forward op kind, or nullptr for kinds without one: backward kinds, Fill, Gather,
/// Scatter, LstmGates (an LSTM is covered by its CustomGradient) and SoftmaxXent (a loss node is
/// a root, SoftmaxXentGrad; the probabilities of a metric are never differentiated).
Rule RuleFor(OpKind kind);

// graph/grad/loss.cc
/// The root rule of a loss node: SoftmaxXentBackward(prob, labels) -> dlogits with the node's
/// attribute (loss weight, ignored label).
Status SoftmaxXentGrad(GradContext& ctx);

// graph/grad/matmul.cc
/// C = alpha op(A) op(B) (+ beta base): one GEMM for dA and one for dB, with the forward's site
/// uses and selections mapped onto them; the base gets dC when beta = 1. An implicit convolution's
/// forward gets its kGradWeight and kGradInput GEMMs; those two roles have no rule (an error).
Status MatMulGrad(GradContext& ctx);

// graph/grad/elementwise.cc
/// BiasAdd: BiasBackward for the bias (column uses copied), dY passes through to X.
Status BiasAddGrad(GradContext& ctx);
/// ChannelBiasAdd: ChannelBiasBackward for the bias, dY passes through to X.
Status ChannelBiasAddGrad(GradContext& ctx);
/// Activation: ActivationBackward(y, dy).
Status ActivationGrad(GradContext& ctx);
/// Bernoulli Dropout: DropoutBackward with the forward's attribute (the same random stream).
Status DropoutGrad(GradContext& ctx);
/// Copy: dY passes through.
Status CopyGrad(GradContext& ctx);
/// Add: dY passes through to both inputs.
Status AddOpGrad(GradContext& ctx);

// graph/grad/conv.cc
/// MaxPool: MaxPoolBackward(dy, argmax).
Status MaxPoolGrad(GradContext& ctx);
/// AvgPool: AvgPoolBackward(dy).
Status AvgPoolGrad(GradContext& ctx);

// graph/grad/embedding.cc
/// IndexRows: ScatterAddRows(dout, indices) into the table's gradient, from zero (or from the
/// partial sum of the table's gradient).
Status IndexRowsGrad(GradContext& ctx);

/// The name of a backward node of the forward node being differentiated: "<forward>.<suffix>".
std::string BackwardName(const GradContext& ctx, const std::string& suffix);

}  // namespace sieve::graph::grad
