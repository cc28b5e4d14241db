// CUDA LSTM gates: one thread per (row, unit) over a 2-D grid (blockIdx.y walks rows), each thread
// reading all of its element's operands before writing its outputs, so the in-place pairs of
// lstm_gates.h are safe. No __restrict__, for the same reason.
#include <algorithm>
#include <cstdint>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/lstm_gates.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
constexpr int64_t kMaxGridY = 65535;

__device__ float Sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void ForwardKernel(LstmIn preact, LstmIn c_prev, LstmOut h, LstmOut c, LstmOut gates, int64_t batch,
                              int64_t hidden) {
  for (int64_t b = blockIdx.y; b < batch; b += gridDim.y)
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < hidden;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const float* pre = preact.data + b * preact.ld + j;
      const float i = Sigmoid(pre[0]), f = Sigmoid(pre[hidden]), g = tanhf(pre[2 * hidden]),
                  o = Sigmoid(pre[3 * hidden]);
      const float cell = f * c_prev.data[b * c_prev.ld + j] + i * g;
      float* gr = gates.data + b * gates.ld + j;
      gr[0] = i;
      gr[hidden] = f;
      gr[2 * hidden] = g;
      gr[3 * hidden] = o;
      c.data[b * c.ld + j] = cell;
      h.data[b * h.ld + j] = o * tanhf(cell);
    }
}

__global__ void BackwardKernel(LstmIn gates, LstmIn c_prev, LstmIn c, LstmIn dh, LstmIn dc_next, LstmOut dpreact,
                               LstmOut dc_prev, int64_t batch, int64_t hidden) {
  for (int64_t b = blockIdx.y; b < batch; b += gridDim.y)
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < hidden;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const float* gr = gates.data + b * gates.ld + j;
      const float i = gr[0], f = gr[hidden], g = gr[2 * hidden], o = gr[3 * hidden];
      const float tc = tanhf(c.data[b * c.ld + j]);
      const float dhj = dh.data ? dh.data[b * dh.ld + j] : 0.0f;
      const float dcn = dc_next.data ? dc_next.data[b * dc_next.ld + j] : 0.0f;
      const float dc = dcn + dhj * o * ((1.0f - tc) * (1.0f + tc));  // not 1 - tc^2, which cancels near |tc| = 1
      const float cp = c_prev.data[b * c_prev.ld + j];
      float* dpr = dpreact.data + b * dpreact.ld + j;
      dpr[0] = dc * g * (i * (1.0f - i));
      dpr[hidden] = dc * cp * (f * (1.0f - f));
      dpr[2 * hidden] = dc * i * ((1.0f - g) * (1.0f + g));
      dpr[3 * hidden] = dhj * tc * (o * (1.0f - o));
      dc_prev.data[b * dc_prev.ld + j] = dc * f;
    }
}

dim3 Grid(int64_t batch, int64_t hidden) {
  const int64_t x = std::min<int64_t>((hidden + kThreads - 1) / kThreads, kMaxBlocks);
  const int64_t y = std::min<int64_t>({batch, kMaxGridY, std::max<int64_t>(1, kMaxBlocks / x)});
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
}

}  // namespace

void LstmGatesForward(LstmIn preact, LstmIn c_prev, LstmOut h, LstmOut c, LstmOut gates, int64_t batch,
                      int64_t hidden) {
  if (batch == 0 || hidden == 0) return;
  ForwardKernel<<<Grid(batch, hidden), kThreads, 0, CudaStream()>>>(preact, c_prev, h, c, gates, batch, hidden);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void LstmGatesBackward(LstmIn gates, LstmIn c_prev, LstmIn c, LstmIn dh, LstmIn dc_next, LstmOut dpreact,
                       LstmOut dc_prev, int64_t batch, int64_t hidden) {
  if (batch == 0 || hidden == 0) return;
  BackwardKernel<<<Grid(batch, hidden), kThreads, 0, CudaStream()>>>(gates, c_prev, c, dh, dc_next, dpreact, dc_prev,
                                                                     batch, hidden);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
