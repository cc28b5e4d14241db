// CUDA random fills: one thread per Philox block (four consecutive elements), grid-stride over the
// blocks the output touches. Bits and uniform values are bit-identical to the CPU (integer Philox,
// an exact double product rounded once); Gaussian values use CUDA's double log/sin/cos (see rng.h).
#include <algorithm>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/random_fill.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr uint64_t kMaxGrid = 4096;

struct UniformOp {
  float low, range;
  __device__ void operator()(const PhiloxBlock& bits, float (&values)[4]) const {
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) values[lane] = UniformFillValue(low, range, bits.x[lane]);
  }
};

struct NormalOp {
  float mean, stddev;
  __device__ void operator()(const PhiloxBlock& bits, float (&values)[4]) const {
    float z[4];
    NormalPairFromBits(bits.x[0], bits.x[1], &z[0], &z[1]);
    NormalPairFromBits(bits.x[2], bits.x[3], &z[2], &z[3]);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) values[lane] = NormalFillValue(mean, stddev, z[lane]);
  }
};

struct BitsOp {
  __device__ void operator()(const PhiloxBlock& bits, uint32_t (&values)[4]) const {
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) values[lane] = bits.x[lane];
  }
};

template <typename T, typename Op>
__global__ void FillKernel(T* out, int64_t n, RandomStream stream, uint64_t first, uint64_t num_blocks, Op op) {
  const uint64_t first_block = first >> 2;
  for (uint64_t b = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; b < num_blocks;
       b += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    T values[4];
    op(stream.Block(first_block + b), values);
    // Array index of lane 0 of this block; negative only for the first block of an unaligned start.
    const int64_t k0 = static_cast<int64_t>((first_block + b) * 4 - first);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t k = k0 + lane;
      if (k >= 0 && k < n) out[k] = values[lane];
    }
  }
}

template <typename T, typename Op>
void LaunchFill(T* out, int64_t n, const RandomStream& stream, uint64_t first, Op op) {
  if (n <= 0) return;
  const uint64_t num_blocks = ((first + static_cast<uint64_t>(n) - 1) >> 2) - (first >> 2) + 1;
  const auto grid = static_cast<unsigned>(std::min<uint64_t>((num_blocks + kThreads - 1) / kThreads, kMaxGrid));
  FillKernel<<<grid, kThreads, 0, CudaStream()>>>(out, n, stream, first, num_blocks, op);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void FillUniform(float* out, int64_t n, float low, float high, const RandomStream& stream, uint64_t first) {
  LaunchFill(out, n, stream, first, UniformOp{low, high - low});
}

void FillNormal(float* out, int64_t n, float mean, float stddev, const RandomStream& stream, uint64_t first) {
  LaunchFill(out, n, stream, first, NormalOp{mean, stddev});
}

void FillBits(uint32_t* out, int64_t n, const RandomStream& stream, uint64_t first) {
  LaunchFill(out, n, stream, first, BitsOp{});
}

}  // namespace sieve::ops::cuda
