// The caching CUDA allocator: freed blocks are kept per device in a size-ordered pool and
// handed out again, so a training loop with a fixed memory plan stops calling cudaMalloc
// after its first iteration. Copies and fills between host and device live here too.
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "framework/cuda_check.h"
#include "framework/memory.h"

namespace sieve {

namespace {

constexpr size_t kCudaRounding = 512;  // cudaMalloc's own granularity is coarser; this keeps bins few

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int index) : index_(index) {}
  ~CudaCachingAllocator() override = default;  // blocks are reclaimed by the driver at exit

  void* Allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t rounded = (bytes + kCudaRounding - 1) / kCudaRounding * kCudaRounding;
    std::lock_guard<std::mutex> lock(mu_);
    // Best fit among cached blocks, but never waste more than half a block.
    auto it = free_.lower_bound(rounded);
    if (it != free_.end() && it->first <= 2 * rounded) {
      void* p = it->second;
      live_[p] = it->first;
      free_.erase(it);
      in_use_ += bytes;
      return p;
    }
    SIEVE_CUDA_CHECK(cudaSetDevice(index_));
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, rounded);
    if (err == cudaErrorMemoryAllocation) {  // release the cache and try once more
      cudaGetLastError();
      ReleaseCachedLocked();
      err = cudaMalloc(&p, rounded);
    }
    SIEVE_CHECK(err == cudaSuccess, "cudaMalloc of " << bytes << " bytes on cuda:" << index_ << ": "
                                                     << cudaGetErrorString(err));
    live_[p] = rounded;
    in_use_ += bytes;
    return p;
  }

  void Deallocate(void* ptr, size_t bytes) override {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    SIEVE_CHECK(it != live_.end(), "freeing a pointer this allocator did not hand out");
    free_.emplace(it->second, ptr);
    live_.erase(it);
    in_use_ -= bytes;
  }

  Device device() const override { return Device::CUDA(index_); }
  size_t bytes_in_use() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return in_use_;
  }

 private:
  void ReleaseCachedLocked() {
    for (auto& [size, p] : free_) SIEVE_CUDA_CHECK(cudaFree(p));
    free_.clear();
  }

  const int index_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;         // rounded size -> cached block
  std::unordered_map<void*, size_t> live_;    // handed-out block -> rounded size
  size_t in_use_ = 0;
};

cudaMemcpyKind KindOf(Device dst, Device src) {
  if (src.is_cpu()) return dst.is_cpu() ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice;
  return dst.is_cpu() ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
}

}  // namespace

Allocator* GetCudaAllocator(int device_index) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<CudaCachingAllocator>> allocators;
  std::lock_guard<std::mutex> lock(mu);
  SIEVE_CHECK(device_index >= 0 && device_index < 64, "bad CUDA device index " << device_index);
  if (allocators.size() <= static_cast<size_t>(device_index)) allocators.resize(device_index + 1);
  if (!allocators[device_index]) allocators[device_index] = std::make_unique<CudaCachingAllocator>(device_index);
  return allocators[device_index].get();
}

void CudaCopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  SIEVE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, KindOf(dst_device, src_device)));
}

void CudaZeroBytes(void* dst, Device device, size_t bytes) {
  SIEVE_CHECK(device.is_cuda(), "CudaZeroBytes on " << device.ToString());
  SIEVE_CUDA_CHECK(cudaMemset(dst, 0, bytes));
}

void CudaSynchronize(Device device) {
  SIEVE_CUDA_CHECK(cudaSetDevice(device.index));
  SIEVE_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace sieve
