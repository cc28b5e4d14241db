// CUDA SwapLeadingAxes: a grid-stride kernel with one thread per element of y, in y's order, so
// writes coalesce and reads coalesce along each R-float row.
#include <algorithm>
#include <cstdint>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/swap_axes.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

__global__ void SwapLeadingAxesKernel(const float* __restrict__ x, float* __restrict__ y, int64_t a, int64_t b,
                                      int64_t r) {
  const int64_t n = a * b * r;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t col = k % r, row = k / r;  // row = j * a + i of y
    const int64_t i = row % a, j = row / a;
    y[k] = x[(i * b + j) * r + col];
  }
}

}  // namespace

void SwapLeadingAxes(const float* x, float* y, int64_t a, int64_t b, int64_t r) {
  const int64_t n = a * b * r;
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks);
  SwapLeadingAxesKernel<<<static_cast<unsigned>(blocks), kThreads, 0, CudaStream()>>>(x, y, a, b, r);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
