// CUDA Add: one grid-stride kernel over a rows x cols matrix (blockIdx.y walks rows, so no
// per-element division); contiguous operands arrive as one long row.
#include <algorithm>
#include <cstdint>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/add.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
constexpr int64_t kMaxGridY = 65535;

// y may be a or b (in place), so no __restrict__ here.
__global__ void AddKernel(const float* a, int64_t ld_a, const float* b, int64_t ld_b, float* y, int64_t ld_y,
                          int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x)
      y[r * ld_y + c] = a[r * ld_a + c] + b[r * ld_b + c];
}

}  // namespace

void Add(const float* a, int64_t ld_a, const float* b, int64_t ld_b, float* y, int64_t ld_y, int64_t rows,
         int64_t cols) {
  if (rows == 0 || cols == 0) return;
  if (ld_a == cols && ld_b == cols && ld_y == cols) {
    cols *= rows;
    rows = 1;
  }
  const int64_t gx = std::min<int64_t>((cols + kThreads - 1) / kThreads, kMaxBlocks);
  const int64_t gy = std::min<int64_t>({rows, kMaxGridY, std::max<int64_t>(1, kMaxBlocks / gx)});
  AddKernel<<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), kThreads, 0, CudaStream()>>>(
      a, ld_a, b, ld_b, y, ld_y, rows, cols);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
