// Lowering: turns a Network (layers.h) into the forward MatMul IR (ir.h) for one batch size,
// plus what the rest of the pipeline needs to train it: the parameter declarations, the input
// and label leaves, the loss and metric heads, the regions whose backward the lowering writes
// itself (LSTM) and the recurrent state a trainer may carry between batches.
//
// Every layer kind has its own file in graph/lower/ that emits its nodes; names follow
// "<layer>.<step>" for nodes ("fc1.matmul", "fc1.bias") and "<layer>.<what>" for values
// ("fc1.w", "fc1.out"). Shapes are inferred layer by layer; an error names the layer, its kind
// and both shapes involved.
//
// This file does not emit the backward (autodiff.h), plan memory (memory_plan.h) or run anything
// (runtime/executor.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/autodiff.h"
#include "graph/ir.h"
#include "graph/layers.h"
#include "runtime/params/param_arena.h"

namespace sieve::graph {

/// How to lower: the batch size every value is planned for, and whether the graph trains
/// (training = false builds the evaluation graph: dropout passes its input through; losses are
/// still computed, for reporting).
struct LowerOptions {
  int64_t batch = 0;
  bool training = true;
};

/// One parameter to register (ParamArena::Register(name, shape, spec)) and bind to `value`, the
/// kParam leaf of the same name and shape.
struct ParamDecl {
  std::string name;  ///< "fc1.w", "fc1.b"
  Shape shape;
  runtime::ParamSpec spec;
  ValueId value{};
};

/// A loss: a SoftmaxXent node with a loss weight; AppendBackward starts from it.
struct LossHead {
  std::string layer;
  NodeId node{};
};

/// A metric: a SoftmaxXent node whose statistics give the accuracy; never differentiated. It may
/// be a loss node itself when the same logits and labels feed a loss layer earlier in the network
/// (the statistics are the same).
struct MetricHead {
  std::string layer;
  NodeId node{};
};

/// A row dropout site whose units are permuted every `every_epochs` epochs (SPEC 2.5 beyond;
/// DropoutSpec::shuffle_every_epochs, runtime/unit_shuffle.h).
struct UnitShuffleSchedule {
  SiteId site{};
  int64_t every_epochs = 0;
};

/// A lowered network: its forward graph and everything needed to train and evaluate it.
struct LoweredNet {
  Graph graph;
  std::vector<ParamDecl> params;         ///< registration order = layer order
  std::map<std::string, ValueId> blobs;  ///< every layer output blob -> its forward value (the last writer's)
  std::vector<ValueId> inputs;           ///< the kInput leaves, in layer order (LSTM initial states included)
  std::vector<ValueId> labels;           ///< the kLabel leaves, in layer order
  std::vector<LossHead> losses;
  std::vector<MetricHead> metrics;
  std::vector<CustomGradient> custom_gradients;  ///< regions whose backward the lowering writes (LSTM)
  /// (final state output, initial state input) pairs, e.g. LSTM h/c, for stateful language models.
  std::vector<std::pair<ValueId, ValueId>> state_carry;
  /// Row sites with unit shuffling, in site order (training graphs only).
  std::vector<UnitShuffleSchedule> unit_shuffles;
};

/// Lowers `net` for `options.batch` samples. Errors (each naming the layer and its kind): batch
/// < 1, an empty or duplicate layer name, a wrong number of input or output blobs, an input blob
/// that no earlier layer produces (with the nearest existing blob name), a blob produced twice
/// other than in place, a shape or dtype the layer cannot take (naming both shapes), a bad
/// convolution or pooling geometry, a bad layer setting (units < 1, rate outside [0, 1), ...), or a
/// layer other than FullyConnected (or Lstm, for row dropout) reading the output of a row or tile
/// Dropout layer (graph/lower/dropout.cc says what those lower to).
/// The result passes Verify (verify.h).
StatusOr<LoweredNet> Lower(const Network& net, const LowerOptions& options);

}  // namespace sieve::graph
