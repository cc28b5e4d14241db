// Device memory: an allocator per device. The CPU allocator returns 64-byte aligned blocks
// (one cache line, one AVX-512 vector); the CUDA allocator caches freed blocks by size so that
// steady-state training performs no cudaMalloc/cudaFree.
#pragma once

#include <cstddef>
#include <memory>

#include "framework/device.h"

namespace sieve {

inline constexpr size_t kCpuAlignment = 64;

class Allocator {
 public:
  virtual ~Allocator() = default;
  /// Returns a block of at least `bytes` bytes; aborts with a clear message when out of memory.
  virtual void* Allocate(size_t bytes) = 0;
  virtual void Deallocate(void* ptr, size_t bytes) = 0;
  virtual Device device() const = 0;
  /// Bytes currently handed out to callers (for tests and memory reports).
  virtual size_t bytes_in_use() const = 0;
};

/// The process-wide allocator of a device. CUDA devices abort if this build has no CUDA.
Allocator* GetAllocator(Device device);

/// Copies `bytes` between any two devices (host<->host, host<->device, device<->device).
void CopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
/// Sets `bytes` bytes at `dst` to zero.
void ZeroBytes(void* dst, Device device, size_t bytes);
/// Waits until all work queued on `device` has finished (a no-op on the CPU); benchmarks time with it.
void Synchronize(Device device);

/// A reference-counted block of device memory, the backing of one or more tensors.
class Storage {
 public:
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Device device_;
  size_t nbytes_;
  void* data_;
};

#ifdef SIEVE_WITH_CUDA
Allocator* GetCudaAllocator(int device_index);  // defined in memory_cuda.cc
void CudaCopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void CudaZeroBytes(void* dst, Device device, size_t bytes);
void CudaSynchronize(Device device);
#endif

}  // namespace sieve
