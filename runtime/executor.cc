// The executor (executor.h): placement of values in the arena and bound buffers, and the node loop.
#include "runtime/executor.h"

#include <chrono>
#include <sstream>
#include <utility>

#include "graph/verify.h"
#include "ops/matmul/matmul.h"

namespace sieve::runtime {

using graph::Graph;
using graph::ValueId;

StatusOr<std::unique_ptr<Executor>> Executor::Create(const Graph& graph, Device device,
                                                     graph::MemoryPlanOptions plan_options) {
  SIEVE_RETURN_IF_ERROR(graph::Verify(graph));
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, MakeBackend(device));
  std::ostringstream unsupported;
  int refused = 0;
  for (const graph::Node& node : graph.nodes()) {
    if (Status st = backend->Supports(graph, node); !st.ok()) {
      unsupported << "\n  " << graph::DescribeNode(node) << ": " << st.message();
      ++refused;
    }
  }
  SIEVE_ENSURE(refused == 0, StatusCode::kUnimplemented,
               "the " << backend->name() << " backend cannot run " << refused << " node(s) of the graph:"
                      << unsupported.str());
  SIEVE_ASSIGN_OR_RETURN(graph::MemoryPlan plan, graph::PlanMemory(graph, plan_options));
  return std::unique_ptr<Executor>(new Executor(graph, device, std::move(plan), std::move(backend)));
}

Executor::Executor(const Graph& graph, Device device, graph::MemoryPlan plan, std::unique_ptr<Backend> backend)
    : graph_(graph),
      device_(device),
      plan_(std::move(plan)),
      backend_(std::move(backend)),
      bound_(plan_.buffers.size()),
      placed_(graph.values().size()),
      stats_(graph.nodes().size()) {
  const int64_t floats = (plan_.arena_bytes + static_cast<int64_t>(sizeof(float)) - 1) /
                         static_cast<int64_t>(sizeof(float));
  arena_ = Tensor::Empty({floats}, DType::kFloat32, device_);
  for (const graph::Value& v : graph_.values())
    if (!plan_.buffers[plan_.values[graph::Index(v.id)].buffer].external) placed_[graph::Index(v.id)] = Place(v.id);
}

Status Executor::Bind(ValueId value, const Tensor& tensor) {
  SIEVE_ENSURE(graph_.has_value(value), StatusCode::kInvalidArgument,
               "binding %" << graph::Index(value) << ", which is not a value of the graph");
  const graph::Value& v = graph_.value(value);
  const graph::PlannedBuffer& buffer = plan_.buffers[plan_.values[graph::Index(value)].buffer];
  SIEVE_ENSURE(buffer.external, StatusCode::kInvalidArgument,
               "cannot bind " << graph::DescribeValue(v) << ": it lives in the executor's arena (buffer '"
                              << buffer.name << "')");
  SIEVE_ENSURE(tensor.defined() && tensor.is_contiguous(), StatusCode::kInvalidArgument,
               "binding " << graph::DescribeValue(v) << " to " << (tensor.defined() ? tensor.ToString() : "nothing")
                          << ": the tensor must be defined and contiguous");
  SIEVE_ENSURE(tensor.dtype() == buffer.dtype && tensor.device() == device_, StatusCode::kInvalidArgument,
               "binding " << graph::DescribeValue(v) << " to " << tensor.ToString() << ": needs "
                          << DTypeName(buffer.dtype) << " on " << device_.ToString());
  SIEVE_ENSURE(tensor.numel() >= buffer.elements, StatusCode::kInvalidArgument,
               "binding " << graph::DescribeValue(v) << " to " << tensor.ToString() << ": its buffer '" << buffer.name
                          << "' needs " << buffer.elements << " elements (planned shape "
                          << ShapeToString(graph_.value(buffer.root).planned) << ")");
  const int32_t index = plan_.values[graph::Index(value)].buffer;
  bound_[index] = tensor;
  for (ValueId member : buffer.members) placed_[graph::Index(member)] = Place(member);
  return Status::Ok();
}

Tensor Executor::Place(ValueId value) const {
  const graph::Value& v = graph_.value(value);
  const graph::ValueStorage& storage = plan_.values[graph::Index(value)];
  const graph::PlannedBuffer& buffer = plan_.buffers[storage.buffer];
  const Tensor& base = buffer.external ? bound_[storage.buffer] : arena_;
  if (!base.defined()) return Tensor();
  const int64_t element = static_cast<int64_t>(DTypeSize(v.dtype));
  const int64_t byte_offset = (buffer.external ? 0 : buffer.offset_bytes) + storage.offset * element;
  Shape strides = storage.strides.empty() ? ContiguousStrides(v.live) : storage.strides;
  return base.View(byte_offset, v.dtype, v.live, std::move(strides));
}

Status Executor::Run(const RunOptions& options) { return RunNodes(options, nullptr); }

Status Executor::RunPhase(graph::Phase phase, const RunOptions& options) { return RunNodes(options, &phase); }

Status Executor::RunNodes(const RunOptions& options, const graph::Phase* only) {
  SIEVE_ENSURE(graph_.attrs_current() && graph_.shapes_current(), StatusCode::kFailedPrecondition,
               "the graph's dropout patterns changed since its attributes and live shapes were resolved; run the "
               "iteration pipeline (ResolveSites, ReplanShapes) before the executor");
  for (size_t b = 0; b < plan_.buffers.size(); ++b) {
    const graph::PlannedBuffer& buffer = plan_.buffers[b];
    SIEVE_ENSURE(!buffer.external || bound_[b].defined() || buffer.last_node < buffer.first_node,
                 StatusCode::kFailedPrecondition,
                 "external buffer '" << buffer.name << "' (" << graph::DescribeValue(graph_.value(buffer.root))
                                     << ") is not bound; Bind it before running");
  }
  // Live shapes may have changed since the last run: place every value again (no allocation).
  for (const graph::Value& v : graph_.values()) placed_[graph::Index(v.id)] = Place(v.id);

  flops_ = {};
  if (options.profile) {
    options.profile->ms.assign(graph_.nodes().size(), 0.0);
    options.profile->flops.assign(graph_.nodes().size(), FlopCount{});
  }
  std::vector<Tensor> inputs, outputs;
  for (const graph::Node& node : graph_.nodes()) {
    if (only && node.phase != *only) continue;
    const auto start = std::chrono::steady_clock::now();
    inputs.clear();
    outputs.clear();
    for (ValueId id : node.inputs) inputs.push_back(placed_[graph::Index(id)]);
    for (ValueId id : node.outputs) outputs.push_back(placed_[graph::Index(id)]);
    NodeCall call{node, inputs, outputs, options.seed, options.iteration,
                  node.kind == graph::OpKind::kSoftmaxXent ? &stats_[graph::Index(node.id)] : nullptr};
    SIEVE_RETURN_IF_ERROR(backend_->Run(call));
    if (node.kind == graph::OpKind::kMatMul) {
      // The kernel accepted these operands, so they validate again; the count is over the live shapes.
      SIEVE_ASSIGN_OR_RETURN(const ops::MatMulArgs args, ops::MakeMatMulArgs(inputs[0], inputs[1], outputs[0],
                                                                             std::get<ops::MatMulAttr>(node.attr)));
      flops_.executed += ops::ExecutedFlops(args);
      flops_.dense += ops::DenseFlops(args);
      if (options.profile)
        options.profile->flops[graph::Index(node.id)] = {ops::ExecutedFlops(args), ops::DenseFlops(args)};
    }
    if (options.profile) {
      backend_->Synchronize();
      options.profile->ms[graph::Index(node.id)] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    }
  }
  backend_->Synchronize();
  return Status::Ok();
}

StatusOr<Tensor> Executor::Get(ValueId value) const {
  SIEVE_ENSURE(graph_.has_value(value), StatusCode::kInvalidArgument,
               "%" << graph::Index(value) << " is not a value of the graph");
  const Tensor& t = placed_[graph::Index(value)];
  SIEVE_ENSURE(t.defined(), StatusCode::kFailedPrecondition,
               graph::DescribeValue(graph_.value(value)) << " lives in an external buffer that is not bound");
  return t;
}

const ops::SoftmaxXentStats& Executor::Stats(graph::NodeId node) const {
  SIEVE_CHECK(graph_.has_node(node), "node #" << graph::Index(node) << " out of range");
  return stats_[graph::Index(node)];
}

}  // namespace sieve::runtime
