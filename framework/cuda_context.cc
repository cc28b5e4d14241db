// Per-device cuBLAS handles and scratch buffers (framework/cuda_context.h).
#include "framework/cuda_context.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "framework/cuda_check.h"
#include "framework/memory.h"

namespace sieve {

namespace {

constexpr int kMaxDevices = 64;
constexpr size_t kMinScratchBytes = 4096;

struct ScratchBlock {
  void* ptr = nullptr;
  size_t bytes = 0;
};

struct DeviceContext {
  std::mutex mu;
  cublasHandle_t cublas = nullptr;
  ScratchBlock scratch[static_cast<size_t>(CudaScratch::kCount)];
};

// Never destroyed: a tensor freed by some other static destructor at exit may still reach its
// device's state, and the scratch blocks are reclaimed with the CUDA context anyway.
struct Registry {
  std::mutex mu;
  std::vector<DeviceContext*> devices;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

DeviceContext& ContextOf(int device_index) {
  SIEVE_CHECK(device_index >= 0 && device_index < kMaxDevices, "bad CUDA device index " << device_index);
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mu);
  const auto index = static_cast<size_t>(device_index);
  if (registry.devices.size() <= index) registry.devices.resize(index + 1, nullptr);
  if (registry.devices[index] == nullptr) registry.devices[index] = new DeviceContext;
  return *registry.devices[index];
}

// Runs from std::atexit, registered after the CUDA runtime initialised, so it runs before the
// runtime's own teardown and the handles are destroyed while the contexts still exist.
void DestroyCublasHandles() {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mu);
  for (size_t i = 0; i < registry.devices.size(); ++i) {
    DeviceContext* context = registry.devices[i];
    if (context == nullptr) continue;
    std::lock_guard<std::mutex> device_lock(context->mu);
    if (context->cublas == nullptr) continue;
    SIEVE_CUDA_CHECK(cudaSetDevice(static_cast<int>(i)));
    SIEVE_CUBLAS_CHECK(cublasDestroy(context->cublas));
    context->cublas = nullptr;
  }
}

}  // namespace

void SetCudaDevice(int device_index) { SIEVE_CUDA_CHECK(cudaSetDevice(device_index)); }

int CurrentCudaDevice() {
  int device_index = 0;
  SIEVE_CUDA_CHECK(cudaGetDevice(&device_index));
  return device_index;
}

cublasHandle_t CublasHandle(int device_index) {
  DeviceContext& context = ContextOf(device_index);
  std::lock_guard<std::mutex> lock(context.mu);
  if (context.cublas == nullptr) {
    SetCudaDevice(device_index);
    cublasHandle_t handle = nullptr;
    SIEVE_CUBLAS_CHECK(cublasCreate(&handle));
    SIEVE_CUBLAS_CHECK(cublasSetStream(handle, CudaStream()));
    // Results must match the CPU backend within FP32 tolerances, so no TF32 tensor-core math.
    SIEVE_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    context.cublas = handle;
    static const bool registered = [] {
      SIEVE_CHECK(std::atexit(DestroyCublasHandles) == 0, "cannot register the cuBLAS handle cleanup");
      return true;
    }();
    (void)registered;
  }
  return context.cublas;
}

void* CudaScratchBuffer(int device_index, CudaScratch slot, size_t bytes) {
  SIEVE_CHECK(bytes > 0, "empty scratch request on cuda:" << device_index);
  DeviceContext& context = ContextOf(device_index);
  std::lock_guard<std::mutex> lock(context.mu);
  ScratchBlock& block = context.scratch[static_cast<size_t>(slot)];
  if (block.bytes < bytes) {
    Allocator* allocator = GetAllocator(Device::CUDA(device_index));
    // The old block goes back to the cache at once: whoever gets it next issues work on the same
    // stream, behind the work already queued on it.
    allocator->Deallocate(block.ptr, block.bytes);
    block.bytes = std::bit_ceil(std::max(bytes, kMinScratchBytes));
    block.ptr = allocator->Allocate(block.bytes);
  }
  return block.ptr;
}

}  // namespace sieve
