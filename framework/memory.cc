// The aligned CPU allocator, device-dispatching copies, and Storage.
#include "framework/memory.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "framework/status.h"

namespace sieve {

namespace {

class CpuAllocator final : public Allocator {
 public:
  void* Allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    SIEVE_CHECK(p != nullptr, "out of host memory allocating " << bytes << " bytes");
    in_use_.fetch_add(bytes, std::memory_order_relaxed);
    return p;
  }
  void Deallocate(void* ptr, size_t bytes) override {
    if (ptr == nullptr) return;
    std::free(ptr);
    in_use_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  Device device() const override { return Device::CPU(); }
  size_t bytes_in_use() const override { return in_use_.load(std::memory_order_relaxed); }

 private:
  std::atomic<size_t> in_use_{0};
};

}  // namespace

Allocator* GetAllocator(Device device) {
  if (device.is_cpu()) {
    static CpuAllocator cpu;
    return &cpu;
  }
#ifdef SIEVE_WITH_CUDA
  return GetCudaAllocator(device.index);
#else
  SIEVE_CHECK(false, "device " << device.ToString() << " requested but this build has no CUDA backend");
#endif
}

void CopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef SIEVE_WITH_CUDA
  CudaCopyBytes(dst, dst_device, src, src_device, bytes);
#else
  SIEVE_CHECK(false, "copy involving " << dst_device.ToString() << " / " << src_device.ToString()
                                       << " but this build has no CUDA backend");
#endif
}

void ZeroBytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    std::memset(dst, 0, bytes);
    return;
  }
#ifdef SIEVE_WITH_CUDA
  CudaZeroBytes(dst, device, bytes);
#else
  SIEVE_CHECK(false, "no CUDA backend in this build");
#endif
}

void Synchronize(Device device) {
  if (device.is_cpu()) return;
#ifdef SIEVE_WITH_CUDA
  CudaSynchronize(device);
#else
  SIEVE_CHECK(false, "no CUDA backend in this build");
#endif
}

Storage::Storage(Device device, size_t bytes)
    : device_(device), nbytes_(bytes), data_(GetAllocator(device)->Allocate(bytes)) {}

Storage::~Storage() { GetAllocator(device_)->Deallocate(data_, nbytes_); }

}  // namespace sieve
