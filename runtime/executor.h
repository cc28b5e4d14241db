// The executor: runs a MatMul IR graph on one device, node by node in order, through a backend.
//
// Create() verifies the graph, asks the backend whether it supports every node (refusing the
// graph with the list of unsupported nodes and the reasons: no silent fallback), plans memory
// once (graph/memory_plan.h) and allocates ONE arena for every intermediate value, sized for the
// planned (dense maximum) shapes. External buffers (inputs, labels, parameters, optimizer state,
// parameter gradients) are bound by the caller to its own tensors (a batch, ParamArena views).
//
// Each Run places every value in its buffer at its LIVE shape, which the per-iteration passes
// may have shrunk along packed axes; nothing is allocated after Create. The graph is held by
// reference: it must outlive the executor, and passes may change its patterns and live shapes
// between runs, never its values or nodes. Each run counts the FLOPs of its MatMuls, executed
// under the patterns and dense, so the shrink the patterns buy is visible (flops()).
//
// This file is not the trainer (which owns the parameters, the solver and the loop) and does not
// run passes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/device.h"
#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/ir.h"
#include "graph/memory_plan.h"
#include "ops/kernels/softmax_xent.h"
#include "runtime/backend.h"

namespace sieve::runtime {

/// The floating-point operations of the MatMuls of one run, 2 per multiply-add (ops::ExecutedFlops
/// and ops::DenseFlops summed over every MatMul node that ran).
struct FlopCount {
  int64_t executed = 0;  ///< what the MatMuls computed under the run's dropout patterns
  int64_t dense = 0;     ///< what the same MatMuls cost without any selection
};

/// Per-node measurements of one run, indexed by node index (`sieve time`); nodes that did not run
/// keep zeros.
struct NodeProfile {
  std::vector<double> ms;        ///< host wall time of each node, the device synchronised after it
  std::vector<FlopCount> flops;  ///< each MatMul node's FLOPs (zero for other kinds)
};

/// What a run needs besides the graph.
struct RunOptions {
  int64_t iteration = 0;  ///< the training iteration (Bernoulli dropout draws its mask from it)
  uint64_t seed = 0;      ///< the run's seed
  /// When set, filled with each node's time and FLOPs; the device is synchronised after every node,
  /// so a profiled run is slower than a plain one.
  NodeProfile* profile = nullptr;
};

class Executor {
 public:
  /// Verifies `graph`, checks backend support for every node, plans and allocates memory on
  /// `device`. `plan_options.keep_alive` lists values the caller reads after a run.
  static StatusOr<std::unique_ptr<Executor>> Create(const graph::Graph& graph, Device device,
                                                    graph::MemoryPlanOptions plan_options = {});

  /// Binds the external buffer that `value` belongs to to `tensor` (contiguous, same dtype and
  /// device, at least as many elements as the buffer's plan). Errors name the value and both
  /// shapes; binding an arena value is an error.
  Status Bind(graph::ValueId value, const Tensor& tensor);

  /// Runs every node in order, then waits for the device. Fails, naming the node, when a kernel
  /// fails, and before running anything when an external buffer is unbound or the graph's
  /// attributes or live shapes are stale (the iteration pipeline has not run since patterns
  /// changed).
  Status Run(const RunOptions& options);
  /// Runs the nodes of one phase only (forward for inference and evaluation).
  Status RunPhase(graph::Phase phase, const RunOptions& options);

  /// The live view of `value` in its buffer. Valid after Create for arena and bound values; its
  /// contents are those of the last run.
  StatusOr<Tensor> Get(graph::ValueId value) const;
  /// The loss statistics a SoftmaxXent node measured in the last run that ran it.
  const ops::SoftmaxXentStats& Stats(graph::NodeId node) const;
  /// The MatMul FLOPs of the last Run or RunPhase (zero before the first).
  const FlopCount& flops() const { return flops_; }

  const graph::Graph& graph() const { return graph_; }
  const graph::MemoryPlan& plan() const { return plan_; }
  Device device() const { return device_; }
  const Backend& backend() const { return *backend_; }

 private:
  Executor(const graph::Graph& graph, Device device, graph::MemoryPlan plan, std::unique_ptr<Backend> backend);
  Status RunNodes(const RunOptions& options, const graph::Phase* only);
  Tensor Place(graph::ValueId value) const;

  const graph::Graph& graph_;
  Device device_;
  graph::MemoryPlan plan_;
  std::unique_ptr<Backend> backend_;
  Tensor arena_;                         // every arena buffer, as float32 elements
  std::vector<Tensor> bound_;            // per buffer: the bound tensor of an external buffer
  std::vector<Tensor> placed_;           // per value: its live view, refreshed at each run
  std::vector<ops::SoftmaxXentStats> stats_;  // per node
  FlopCount flops_;                           // of the last run
};

}  // namespace sieve::runtime
