// CUDA Bernoulli dropout: one thread per Philox block (four consecutive elements from one
// counter evaluation), grid-stride over the blocks the elements touch. Bit-identical to the CPU
// kernels: the bits are the same integers and the only float operation is one IEEE multiply.
#include <algorithm>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/dropout.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr uint64_t kMaxGrid = 4096;  // grid-stride beyond this; ample to fill any current GPU

__global__ void ApplyDropoutKernel(const float* in, float* out, int64_t n, uint32_t threshold, float scale,
                                   RandomStream stream, uint64_t first, uint64_t num_blocks) {
  const uint64_t first_block = first >> 2;
  for (uint64_t b = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; b < num_blocks;
       b += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const PhiloxBlock bits = stream.Block(first_block + b);
    // Array index of lane 0 of this block; negative only for the first block of an unaligned start.
    const int64_t k0 = static_cast<int64_t>((first_block + b) * 4 - first);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t k = k0 + lane;
      if (k >= 0 && k < n) out[k] = (bits.x[lane] >> 8) >= threshold ? in[k] * scale : 0.0f;
    }
  }
}

}  // namespace

void ApplyDropout(const float* in, float* out, int64_t n, float p, const RandomStream& stream, uint64_t first) {
  if (n <= 0) return;
  const uint64_t num_blocks = ((first + static_cast<uint64_t>(n) - 1) >> 2) - (first >> 2) + 1;
  const auto grid = static_cast<unsigned>(std::min<uint64_t>((num_blocks + kThreads - 1) / kThreads, kMaxGrid));
  ApplyDropoutKernel<<<grid, kThreads, 0, CudaStream()>>>(in, out, n, DropoutKeepThreshold(p), DropoutScale(p), stream,
                                                          first, num_blocks);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
