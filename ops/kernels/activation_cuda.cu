// CUDA activations: one grid-stride kernel per direction, templated on the function, over a
// rows x cols matrix (blockIdx.y walks rows, so no per-element division); contiguous operand sets
// arrive as one long row.
#include <algorithm>
#include <cstdint>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/activation.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
constexpr int64_t kMaxGridY = 65535;

template <Activation kKind>
__device__ float Forward(float x) {
  if constexpr (kKind == Activation::kReLU) {
    return x < 0.0f ? 0.0f : x;  // NaN propagates, as in the reference
  } else if constexpr (kKind == Activation::kTanh) {
    return tanhf(x);
  } else {
    return 1.0f / (1.0f + expf(-x));
  }
}

template <Activation kKind>
__device__ float Backward(float y, float dy) {
  if constexpr (kKind == Activation::kReLU) {
    return y > 0.0f ? dy : 0.0f;
  } else if constexpr (kKind == Activation::kTanh) {
    return dy * ((1.0f - y) * (1.0f + y));  // not 1 - y*y, which cancels near |y| = 1
  } else {
    return dy * (y * (1.0f - y));
  }
}

// x and y may be the same pointer (in place), so no __restrict__ here.
template <Activation kKind>
__global__ void ForwardKernel(const float* x, int64_t ld_x, float* y, int64_t ld_y, int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x)
      y[r * ld_y + c] = Forward<kKind>(x[r * ld_x + c]);
}

template <Activation kKind>
__global__ void BackwardKernel(const float* y, int64_t ld_y, const float* dy, int64_t ld_dy, float* dx, int64_t ld_dx,
                               int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x)
      dx[r * ld_dx + c] = Backward<kKind>(y[r * ld_y + c], dy[r * ld_dy + c]);
}

dim3 Grid2D(int64_t rows, int64_t cols) {
  const int64_t x = std::min<int64_t>((cols + kThreads - 1) / kThreads, kMaxBlocks);
  const int64_t y = std::min<int64_t>({rows, kMaxGridY, std::max<int64_t>(1, kMaxBlocks / x)});
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
}

template <Activation kKind>
void LaunchForward(const float* x, int64_t ld_x, float* y, int64_t ld_y, int64_t rows, int64_t cols) {
  ForwardKernel<kKind><<<Grid2D(rows, cols), kThreads, 0, CudaStream()>>>(x, ld_x, y, ld_y, rows, cols);
  SIEVE_CUDA_CHECK_LAUNCH();
}

template <Activation kKind>
void LaunchBackward(const float* y, int64_t ld_y, const float* dy, int64_t ld_dy, float* dx, int64_t ld_dx,
                    int64_t rows, int64_t cols) {
  BackwardKernel<kKind><<<Grid2D(rows, cols), kThreads, 0, CudaStream()>>>(y, ld_y, dy, ld_dy, dx, ld_dx, rows, cols);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void ActivationForward(Activation kind, const float* x, int64_t ld_x, float* y, int64_t ld_y, int64_t rows,
                       int64_t cols) {
  if (rows == 0 || cols == 0) return;
  if (ld_x == cols && ld_y == cols) {
    cols *= rows;
    rows = 1;
  }
  switch (kind) {
    case Activation::kReLU:
      return LaunchForward<Activation::kReLU>(x, ld_x, y, ld_y, rows, cols);
    case Activation::kTanh:
      return LaunchForward<Activation::kTanh>(x, ld_x, y, ld_y, rows, cols);
    case Activation::kSigmoid:
      return LaunchForward<Activation::kSigmoid>(x, ld_x, y, ld_y, rows, cols);
    case Activation::kCount:
      break;
  }
  SIEVE_CHECK(false, "unknown activation " << static_cast<int>(kind));
}

void ActivationBackward(Activation kind, const float* y, int64_t ld_y, const float* dy, int64_t ld_dy, float* dx,
                        int64_t ld_dx, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  if (ld_y == cols && ld_dy == cols && ld_dx == cols) {
    cols *= rows;
    rows = 1;
  }
  switch (kind) {
    case Activation::kReLU:
      return LaunchBackward<Activation::kReLU>(y, ld_y, dy, ld_dy, dx, ld_dx, rows, cols);
    case Activation::kTanh:
      return LaunchBackward<Activation::kTanh>(y, ld_y, dy, ld_dy, dx, ld_dx, rows, cols);
    case Activation::kSigmoid:
      return LaunchBackward<Activation::kSigmoid>(y, ld_y, dy, ld_dy, dx, ld_dx, rows, cols);
    case Activation::kCount:
      break;
  }
  SIEVE_CHECK(false, "unknown activation " << static_cast<int>(kind));
}

}  // namespace sieve::ops::cuda
