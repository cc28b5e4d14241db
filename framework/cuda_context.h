// The per-device CUDA state Sieve's own kernels and the cuBLAS MatMul share: one cuBLAS handle per
// device (created on first use, destroyed at exit) and grow-only scratch buffers carved from the
// caching allocator, so steady-state training performs no cudaMalloc. Include only from CUDA builds.
//
// All of Sieve's device work runs on the default stream, in issue order. That is what lets the
// caching allocator hand a freed block out again at once, lets a scratch buffer be reused by the
// next call, and keeps the synchronous copies of framework/memory_cuda.cc ordered with kernels.
// One host thread drives a device at a time: the scratch buffers are not shared between threads.
#pragma once

#ifndef SIEVE_WITH_CUDA
#error "framework/cuda_context.h is only for CUDA builds"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace sieve {

/// The stream all Sieve device work is issued on (the default stream; see the file comment).
inline cudaStream_t CudaStream() { return nullptr; }

/// Makes `device_index` the calling thread's current device.
void SetCudaDevice(int device_index);
/// The calling thread's current device.
int CurrentCudaDevice();

/// The cuBLAS handle of a device: FP32 math (no TF32), bound to CudaStream(). Created on first use
/// and destroyed at process exit, before the CUDA runtime shuts down.
cublasHandle_t CublasHandle(int device_index);

/// Independent scratch buffers of a device. Work that runs while another buffer is in use takes a
/// different slot: the MatMul packs its operands into kMatMulA/B/C while the gather/scatter kernels
/// it calls stage their index lists in kIndices.
enum class CudaScratch : uint8_t { kMatMulA, kMatMulB, kMatMulC, kIndices, kCount };

/// At least `bytes` bytes of the device's scratch buffer `slot`, 256-byte aligned, contents
/// unspecified. The buffer only grows (to a power of two), so the same shapes every iteration
/// allocate nothing after the first; a pointer stays valid until the next call for the same slot.
void* CudaScratchBuffer(int device_index, CudaScratch slot, size_t bytes);

}  // namespace sieve
