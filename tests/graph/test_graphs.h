// Small hand-built graphs the graph tests share: what a lowering would emit for one FC layer and
// for a two-layer MLP with a row dropout site between the layers, plus lookups that fail the test
// when a name is missing.
#pragma once

#include <cstdint>
#include <string_view>

#include "graph/ir.h"

namespace sieve::graph::testing {

/// One FC layer Y = X W^T + b (X [batch, in], W [out, in]) with a row site "fc.drop" on its
/// output, forward and backward: 3 MatMuls and the bias pair.
///   fc.fwd        fc.mm = X W^T             N selected, C packed
///   fc.bias       fc.out = fc.mm + b        bias columns selected
///   fc.dgrad      x.grad = dY W             K (= out) selected, A packed
///   fc.wgrad      fc.w.grad = dY^T X        M (= out) selected, A packed
///   fc.bias.grad  fc.b.grad = sum_b dY      bias columns selected
/// The upstream gradient fc.out.grad is an input of the graph, packed like fc.out.
Graph MakeFcLayer(int64_t batch = 4, int64_t in = 6, int64_t out = 8);

/// A two-layer MLP x [batch, in] -> fc1 -> ReLU -> (row site "h1.drop") -> fc2 -> softmax
/// cross-entropy with int32 labels, forward and backward. The site is annotated on both sides:
/// fc1's GEMMs select N (the producer: fc1.fwd, fc1.wgrad as M), fc2's select K (the consumer:
/// fc2.fwd, and N of fc2.wgrad and fc2.dgrad), and the consumer side scales by the site. fc2's
/// weight gradient starts from a zero fill (its base), so the dropped columns read zero.
///
/// Nodes, in order: fc1.fwd fc1.bias fc1.relu fc2.fwd fc2.bias loss | loss.grad fc2.bias.grad
/// fc2.w.grad.zero fc2.wgrad fc2.dgrad fc1.relu.grad fc1.bias.grad fc1.wgrad.
Graph MakeMlp(int64_t batch = 4, int64_t in = 6, int64_t hidden = 8, int64_t out = 3);

/// The id of a value / node / site by name; fails the current test if there is none.
ValueId Val(const Graph& graph, std::string_view name);
NodeId NodeNamed(const Graph& graph, std::string_view name);
SiteId SiteNamed(const Graph& graph, std::string_view name);

}  // namespace sieve::graph::testing
