// Backends: what runs the nodes of a MatMul IR graph on one device type.
//
// A backend answers, per node, whether it can run it (Supports), and runs it on tensors the
// executor has placed (Run). The executor asks Supports for every node before the first run and
// refuses a graph with any unsupported node, listing each with the backend's reason: there is no
// silent fallback to another device. The CPU backend runs every kind; the CUDA backend runs every
// kind that has a CUDA kernel, on CUDA tensors.
//
// Both backends call the same ops:: entry points (which dispatch on the tensors' device), so one
// kernel table serves both; a backend adds its device's checks and synchronisation.
//
// This file is not the executor (executor.h), which owns the buffers and the order of nodes.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "framework/device.h"
#include "framework/rng.h"
#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/ir.h"
#include "ops/kernels/softmax_xent.h"

namespace sieve::runtime {

/// The tensors of one node call, in the node's operand order (the base, if any, is the last
/// input and shares the output's storage), plus what a kernel may need besides its attribute.
struct NodeCall {
  const graph::Node& node;
  std::span<const Tensor> inputs;
  std::span<const Tensor> outputs;
  uint64_t seed = 0;       ///< the run's seed (Bernoulli dropout streams)
  int64_t iteration = 0;   ///< the training iteration (Bernoulli dropout streams)
  /// Where a SoftmaxXent node's loss statistics go; null for other kinds.
  ops::SoftmaxXentStats* stats = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual DeviceType device_type() const = 0;
  /// OK when this backend can run `node` of `graph`; otherwise why not.
  virtual Status Supports(const graph::Graph& graph, const graph::Node& node) const = 0;
  /// Runs one node. Errors come from the kernel's own checks and name the node.
  virtual Status Run(const NodeCall& call) const = 0;
  /// Waits for the device to finish the work queued so far.
  virtual void Synchronize() const = 0;
};

/// The backend of `device`'s type. Errors: a CUDA device in a build without CUDA or on a machine
/// without a usable GPU.
StatusOr<std::unique_ptr<Backend>> MakeBackend(Device device);

/// Runs `call` with the ops:: kernel of its node's kind; shared by both backends.
Status RunKernel(const NodeCall& call);

}  // namespace sieve::runtime
