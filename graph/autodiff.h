// Reverse-mode differentiation of a lowered forward graph: AppendBackward appends, to the same
// Graph, the backward nodes (phase kBackward) that compute the gradient of the losses with respect
// to every parameter.
//
// How it works: the forward nodes are walked in reverse. A loss node (a SoftmaxXent with a loss
// weight) is a root: its rule emits SoftmaxXentBackward. Any other node is differentiated when one
// of its outputs has a gradient and one of its inputs NeedsGrad; a per-kind gradient rule
// (graph/grad/*.cc) emits its backward nodes through a GradContext. Regions whose backward a
// lowering writes itself (the LSTM's) are CustomGradients: their `emit` is called once instead of
// the rules of their nodes.
//
// Gradient accumulation: a forward value may receive several contributions (it feeds several
// consumers). They are summed as they arrive: a freshly emitted node that can accumulate (a MatMul,
// BiasBackward, pooling backward or Scatter, i.e. a kind with an optional base and a beta)
// is rewritten to beta = 1 with the previous partial sum as its base, when that partial belongs to
// this value alone and nothing reads it later; otherwise an Add node sums the two. GradOf returns
// the complete sum.
//
// Names and roles: the gradient of value "v" is "v.grad" (later contributions "v.grad.2", ...,
// sums "v.grad.sum"), kActivationGrad. A parameter's final gradient is the kParamGrad value
// "<param>.grad": the node computing its only contribution writes it directly; a parameter read by
// several nodes (predicted before the walk) has its contributions summed in kActivationGrad
// partials and one Copy into "<param>.grad" at the end. A CustomGradient may instead hand AddGrad
// a kParamGrad value "<param>.grad" it made itself, as the parameter's one contribution.
//
// Views: the gradient of a view is a contribution to its base's gradient. Supported:
//   - reading views that reshape their whole base (offset 0, contiguous, same element count and
//     the same packing sites: Flatten, Reshape, chains of them); the contribution is a view of the
//     view's gradient with the base's shape;
//   - writing views of an assembled value (a concatenation): the gradient of each writing view is
//     the same view (offset, strides) of the assembled value's gradient, which must be dense and
//     unpacked.
// Other reading views (strided or partial, e.g. LSTM time steps) must be covered by a
// CustomGradient; a gradient reaching one is an UNIMPLEMENTED error naming it.
//
// This file is not a gradient rule (graph/grad/), not the optimizer (runtime/solver/), and not the
// memory planner: it only appends nodes and values.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/status.h"
#include "graph/ir.h"

namespace sieve::graph {

class AutodiffState;

/// What a gradient rule (graph/grad/*.cc) or a CustomGradient sees: the graph being extended, the
/// gradients so far, and the helpers that append backward nodes and values.
class GradContext {
 public:
  /// The graph backward nodes are appended to.
  Graph& graph();
  /// The forward node being differentiated. Rules only: a CustomGradient covers several nodes, so
  /// calling this from its `emit` is a programming error (it aborts). The reference points into the
  /// graph's node table, which Emit (and AccumulationBase) may grow: read what you need first.
  const Node& forward() const;

  /// The COMPLETE gradient of `forward_value` (all contributions summed, those through views
  /// included), or nullopt when no gradient flows back to it. Call it only once every reader of the
  /// value has been differentiated (a later AddGrad to it is an error). A view the gradient cannot
  /// pass through makes AppendBackward fail after the current rule (GradOf itself returns nullopt).
  std::optional<ValueId> GradOf(ValueId forward_value);
  /// True when `forward_value` leads back to a parameter: it is a float32 kParam, is produced by a
  /// node with an input that NeedsGrad, or is a view of such a value (or an assembled value that
  /// such a view writes into).
  bool NeedsGrad(ValueId forward_value) const;

  /// A fresh value shaped like `forward_value` (planned and live shape, dtype, packed axes) to hold
  /// one contribution to its gradient, named and typed as described at the top of this file.
  ValueId NewGrad(ValueId forward_value);
  /// Adds `contribution` (shaped like `forward_value`) to the gradient of `forward_value`. The first
  /// contribution becomes the gradient; later ones are summed (beta/base rewrite of the node that
  /// produced the contribution when it can accumulate, otherwise an Add node). The error names the
  /// value and both shapes when they differ.
  Status AddGrad(ValueId forward_value, ValueId contribution);
  /// For a node that must add into, or write only part of, a gradient (ScatterAddRows, a GEMM whose
  /// output is Full along a selected dimension, e.g. a convolution's over kept channels): the base to give it.
  /// It is the partial gradient of `forward_value` when the node may take it over (give the node
  /// beta = 1 and pass its output to AddGrad, which then knows it holds the sum), otherwise a new
  /// zero-filled value (a Fill node) shaped like `forward_value`.
  ValueId AccumulationBase(ValueId forward_value);

  /// Appends a kBackward node; `name` gets a suffix ".2", ".3", ... if a node already has it.
  NodeId Emit(OpKind kind, std::string name, std::vector<ValueId> inputs, std::vector<ValueId> outputs,
              NodeAttr attr = {}, std::vector<SiteUse> sites = {});

 private:
  friend class AutodiffState;
  GradContext(AutodiffState& state, NodeId forward) : state_(state), forward_(forward) {}

  AutodiffState& state_;
  NodeId forward_;  // kNoNode for a CustomGradient
};

/// A region of forward nodes whose backward the lowering writes itself (an LSTM layer over its
/// time steps). AppendBackward skips the rules of `nodes` and calls `emit` once, when the reverse
/// walk has passed all of them (at the region's first node in execution order), if a gradient
/// reaches a value they produce and one of their inputs NeedsGrad; at that point the gradients of
/// every value the region produces and other nodes read are complete. `emit` reads them with
/// GradOf and contributes to the region's inputs with AddGrad, at most once per read of an input by
/// the region's nodes (a parameter read by T step GEMMs may get T contributions or one). A node
/// outside the region that lies between its first and last node must not produce a value the
/// region reads (its gradient would not be complete yet); AppendBackward reports that.
struct CustomGradient {
  std::string name;
  std::vector<NodeId> nodes;
  std::function<Status(GradContext&)> emit;
};

/// The result of AppendBackward.
struct Gradients {
  /// Every kParam value of the graph, in value order, with its final gradient: a kParamGrad value
  /// "<param>.grad" shaped like it. A parameter the losses do not depend on gets a zero-filled one.
  std::vector<std::pair<ValueId, ValueId>> params;
};

/// Appends the backward of `loss_nodes` (kSoftmaxXent nodes with a non-zero loss weight) to
/// `graph`. Fails, naming the node or value, when a loss node is not one, a CustomGradient names a
/// node that is not a forward node or lies in two regions, a gradient reaches a node kind without a
/// rule or an unsupported view, or a rule's own checks fail. On failure the graph may hold some of
/// the backward nodes appended before the error.
StatusOr<Gradients> AppendBackward(Graph& graph, const std::vector<NodeId>& loss_nodes,
                                   const std::vector<CustomGradient>& custom = {});

}  // namespace sieve::graph
