// CUDA optimizer updates (grid-stride element-wise kernels, one pass per step) and a sum of
// squares that reduces in a fixed order: per-block partial sums in double, then one block adds the
// partials, so the norm of ClipGradients is the same on every run. nvcc contracts multiply-adds
// into FMAs, so updates agree with the CPU kernels to a few ulps rather than bit for bit.
#include <algorithm>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "framework/memory.h"
#include "ops/kernels/optimizer.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = 4096;
constexpr int kReduceBlocks = 512;  // partial sums per SumOfSquares; fixed so the order is too

unsigned GridFor(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxGrid));
}

__device__ int64_t FirstIndex() { return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; }
__device__ int64_t GridStride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

__global__ void SgdKernel(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const float h_new = momentum * h[i] + lr * (g[i] + weight_decay * w[i]);
    h[i] = h_new;
    w[i] = w[i] - h_new;
  }
}

__global__ void NesterovKernel(float* w, const float* g, float* h, int64_t n, float lr, float momentum,
                               float weight_decay) {
  const float one_plus_momentum = 1.0f + momentum;
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const float h_old = h[i];
    const float h_new = momentum * h_old + lr * (g[i] + weight_decay * w[i]);
    h[i] = h_new;
    w[i] = w[i] - (one_plus_momentum * h_new - momentum * h_old);
  }
}

__global__ void AdamKernel(float* w, const float* g, float* m, float* v, int64_t n, float step, float beta1,
                           float beta2, float delta, float weight_decay) {
  const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const float gi = g[i] + weight_decay * w[i];
    const float m_new = beta1 * m[i] + one_minus_beta1 * gi;
    const float v_new = beta2 * v[i] + one_minus_beta2 * (gi * gi);
    m[i] = m_new;
    v[i] = v_new;
    w[i] = w[i] - step * (m_new / (sqrtf(v_new) + delta));
  }
}

__global__ void ScaleKernel(float* x, int64_t n, float factor) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) x[i] = factor * x[i];
}

// Tree-sums the kThreads values of `shared` into shared[0]; all threads of the block take part.
__device__ void BlockSum(double* shared) {
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    __syncthreads();
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
  }
  __syncthreads();
}

__global__ void SumOfSquaresPartialKernel(const float* x, int64_t n, double* partial) {
  __shared__ double shared[kThreads];
  double sum = 0.0;
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const double xi = x[i];
    sum += xi * xi;
  }
  shared[threadIdx.x] = sum;
  BlockSum(shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = shared[0];
}

__global__ void SumPartialsKernel(const double* partial, int count, double* out) {
  __shared__ double shared[kThreads];
  double sum = 0.0;
  for (int i = threadIdx.x; i < count; i += kThreads) sum += partial[i];
  shared[threadIdx.x] = sum;
  BlockSum(shared);
  if (threadIdx.x == 0) *out = shared[0];
}

}  // namespace

void SgdUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay) {
  if (n <= 0) return;
  SgdKernel<<<GridFor(n), kThreads, 0, CudaStream()>>>(w, g, h, n, lr, momentum, weight_decay);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void NesterovUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay) {
  if (n <= 0) return;
  NesterovKernel<<<GridFor(n), kThreads, 0, CudaStream()>>>(w, g, h, n, lr, momentum, weight_decay);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void AdamUpdate(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float delta, float weight_decay, int64_t t) {
  if (n <= 0) return;
  AdamKernel<<<GridFor(n), kThreads, 0, CudaStream()>>>(w, g, m, v, n, AdamStepSize(lr, beta1, beta2, t), beta1, beta2,
                                                        delta, weight_decay);
  SIEVE_CUDA_CHECK_LAUNCH();
}

double SumOfSquares(const float* x, int64_t n) {
  if (n <= 0) return 0.0;
  Allocator* allocator = GetAllocator(Device::CUDA(CurrentCudaDevice()));
  const int blocks = static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, kReduceBlocks));
  const size_t bytes = static_cast<size_t>(blocks + 1) * sizeof(double);
  auto* scratch = static_cast<double*>(allocator->Allocate(bytes));
  SumOfSquaresPartialKernel<<<blocks, kThreads, 0, CudaStream()>>>(x, n, scratch);
  SIEVE_CUDA_CHECK_LAUNCH();
  SumPartialsKernel<<<1, kThreads, 0, CudaStream()>>>(scratch, blocks, scratch + blocks);
  SIEVE_CUDA_CHECK_LAUNCH();
  double sum = 0.0;
  SIEVE_CUDA_CHECK(cudaMemcpyAsync(&sum, scratch + blocks, sizeof(double), cudaMemcpyDeviceToHost, CudaStream()));
  SIEVE_CUDA_CHECK(cudaStreamSynchronize(CudaStream()));
  allocator->Deallocate(scratch, bytes);
  return sum;
}

void Scale(float* x, int64_t n, float factor) {
  if (n <= 0) return;
  ScaleKernel<<<GridFor(n), kThreads, 0, CudaStream()>>>(x, n, factor);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
