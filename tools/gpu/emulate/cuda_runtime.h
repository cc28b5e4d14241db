// Host emulation of the part of the CUDA runtime that Sieve's MatMul backend uses, for
// tools/gpu/emulate.sh: "device" memory is host memory recorded in a table (so copies and cuBLAS
// calls can check which side a pointer is on), and a kernel launch runs every thread of every
// block one after another on the calling thread. That is faithful only for kernels without
// barriers, shared memory, atomics or warp intrinsics, such as the gather/scatter kernels.
// Not the real runtime: never on the include path of a real build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>

typedef int cudaError_t;
enum : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost,
  cudaMemcpyHostToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice,
};
typedef struct CUstream_st* cudaStream_t;

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
inline thread_local dim3 blockIdx, threadIdx, gridDim, blockDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

namespace emu {
inline std::mutex mu;
inline std::map<uintptr_t, size_t> blocks;  // device allocations: address -> bytes
inline cudaError_t last_error = cudaSuccess;
inline long launches = 0;

inline bool IsDevice(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = blocks.upper_bound(reinterpret_cast<uintptr_t>(p));
  if (it == blocks.begin()) return false;
  --it;
  return reinterpret_cast<uintptr_t>(p) + bytes <= it->first + it->second;
}

[[noreturn]] inline void Die(const char* what) {
  std::fprintf(stderr, "emulated CUDA: %s\n", what);
  std::abort();
}
}  // namespace emu

inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  std::memset(*p, 0xFF, bytes);  // NaN: a read of memory nobody wrote shows up in the results
  std::lock_guard<std::mutex> lock(emu::mu);
  emu::blocks[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}

inline cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(emu::mu);
  if (emu::blocks.erase(reinterpret_cast<uintptr_t>(p)) == 0)
    emu::Die("cudaFree of a pointer cudaMalloc did not return");
  std::free(p);
  return cudaSuccess;
}

inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_device != emu::IsDevice(dst, bytes)) emu::Die("cudaMemcpy: destination is not on the side its kind says");
  if (src_device != emu::IsDevice(src, bytes)) emu::Die("cudaMemcpy: source is not on the side its kind says");
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

inline cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (!emu::IsDevice(p, bytes)) emu::Die("cudaMemset outside device memory");
  std::memset(p, value, bytes);
  return cudaSuccess;
}

inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(p, value, bytes);
}

inline cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetLastError() {
  const cudaError_t error = emu::last_error;
  emu::last_error = cudaSuccess;
  return error;
}
inline const char* cudaGetErrorName(cudaError_t error) {
  return error == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated";
}
inline const char* cudaGetErrorString(cudaError_t error) {
  return error == cudaSuccess ? "no error" : "emulated error";
}

// What `kernel<<<grid, block, shared, stream>>>(args...)` becomes (tools/gpu/emulate.sh rewrites it).
template <typename... Params, typename... Args>
void EmulateLaunch(dim3 grid, dim3 block, void (*kernel)(Params...), Args&&... args) {
  ++emu::launches;
  const unsigned threads = block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || threads == 0 || threads > 1024) {
    std::fprintf(stderr, "emulated CUDA: bad launch, grid (%u, %u, %u), block (%u, %u, %u)\n", grid.x, grid.y, grid.z,
                 block.x, block.y, block.z);
    emu::last_error = cudaErrorInvalidConfiguration;
    return;
  }
  // A kernel can only dereference device memory: every pointer argument must point into it.
  auto check_pointer = [](const auto& arg) {
    if constexpr (std::is_pointer_v<std::decay_t<decltype(arg)>>) {
      if (arg != nullptr && !emu::IsDevice(arg, 1)) emu::Die("kernel launched with a host pointer");
    }
  };
  (check_pointer(args), ...);
  gridDim = grid;
  blockDim = block;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx)
        for (unsigned tz = 0; tz < block.z; ++tz)
          for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx) {
              blockIdx = dim3(bx, by, bz);
              threadIdx = dim3(tx, ty, tz);
              kernel(args...);
            }
}
