// The CPU and CUDA backends and MakeBackend. Both run the shared kernel table (RunKernel); they
// differ in the kinds they accept and in how they wait for the device.
#include "runtime/backend.h"

#include <variant>

#include "framework/memory.h"
#include "graph/attrs.h"

namespace sieve::runtime {

namespace {

using graph::OpKind;

// The shared kernel table runs every kind, on both devices.
bool HasKernel(OpKind kind) { return kind < OpKind::kCount; }

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  DeviceType device_type() const override { return DeviceType::kCPU; }
  Status Supports(const graph::Graph& /*graph*/, const graph::Node& node) const override {
    SIEVE_ENSURE(HasKernel(node.kind), StatusCode::kUnimplemented,
                 "the cpu backend has no kernel for " << graph::OpKindName(node.kind));
    return Status::Ok();
  }
  Status Run(const NodeCall& call) const override { return RunKernel(call); }
  void Synchronize() const override {}
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(Device device) : device_(device) {}
  std::string_view name() const override { return "cuda"; }
  DeviceType device_type() const override { return DeviceType::kCUDA; }
  Status Supports(const graph::Graph& /*graph*/, const graph::Node& node) const override {
    SIEVE_ENSURE(HasKernel(node.kind), StatusCode::kUnimplemented,
                 "the cuda backend has no kernel for " << graph::OpKindName(node.kind));
    if (node.kind == OpKind::kFill) {
      const float value = std::get<graph::FillAttr>(node.attr).value;
      SIEVE_ENSURE(value == 0.0f, StatusCode::kUnimplemented,
                   "the cuda backend fills with zero only, not " << value);
    }
    return Status::Ok();
  }
  Status Run(const NodeCall& call) const override { return RunKernel(call); }
  void Synchronize() const override { sieve::Synchronize(device_); }

 private:
  Device device_;
};

}  // namespace

StatusOr<std::unique_ptr<Backend>> MakeBackend(Device device) {
  if (device.is_cpu()) return std::unique_ptr<Backend>(std::make_unique<CpuBackend>());
  SIEVE_ENSURE(CudaCompiled(), StatusCode::kFailedPrecondition,
               "device " << device.ToString() << ": this build of Sieve has no CUDA (configure with -DSIEVE_CUDA=ON)");
  SIEVE_ENSURE(CudaAvailable(), StatusCode::kFailedPrecondition,
               "device " << device.ToString() << ": no usable CUDA GPU on this machine");
  return std::unique_ptr<Backend>(std::make_unique<CudaBackend>(device));
}

}  // namespace sieve::runtime
