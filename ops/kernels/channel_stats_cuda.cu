// CUDA per-channel statistics: one thread block per kept channel, each thread summing a strided
// share of the channel's elements in double, then a fixed-shape shared-memory tree, so the result
// is deterministic. The kept channel indices travel in the kernel's parameter block, up to
// kChannelsPerLaunch per launch, as in im2col_cuda.cu.
#include <algorithm>
#include <cstdint>

#include "framework/cuda_check.h"
#include "ops/kernels/channel_stats.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kChannelsPerLaunch = 512;
constexpr int kThreads = 256;

struct ChannelChunk {
  int32_t count;
  int32_t first_rank;
  int32_t channel[kChannelsPerLaunch];
};

// Sums `partial` over the block into thread 0's return value.
__device__ double BlockSum(double partial) {
  __shared__ double shared[kThreads];
  shared[threadIdx.x] = partial;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  return shared[0];
}

__global__ void MeanAbsKernel(const float* __restrict__ x, int64_t batch, int64_t num_channels, int64_t plane,
                              ChannelChunk chunk, float* __restrict__ out) {
  const int64_t c = chunk.channel[blockIdx.x];
  const int64_t total = batch * plane;
  double partial = 0.0;
  for (int64_t i = threadIdx.x; i < total; i += kThreads) {
    const int64_t n = i / plane, p = i % plane;
    partial += fabs(static_cast<double>(x[(n * num_channels + c) * plane + p]));
  }
  const double sum = BlockSum(partial);
  if (threadIdx.x == 0) out[chunk.first_rank + blockIdx.x] = static_cast<float>(sum / static_cast<double>(total));
}

__global__ void BlockDotKernel(const float* __restrict__ w, const float* __restrict__ dw, int64_t rows,
                               int64_t num_channels, int64_t group, ChannelChunk chunk, float* __restrict__ out) {
  const int64_t first = chunk.channel[blockIdx.x] * group;
  const int64_t ld = num_channels * group;
  const int64_t total = rows * group;
  double partial = 0.0;
  for (int64_t i = threadIdx.x; i < total; i += kThreads) {
    const int64_t at = (i / group) * ld + first + i % group;
    partial += static_cast<double>(w[at]) * static_cast<double>(dw[at]);
  }
  const double sum = BlockSum(partial);
  if (threadIdx.x == 0) out[chunk.first_rank + blockIdx.x] = static_cast<float>(sum);
}

// Calls launch(chunk) for runs of at most kChannelsPerLaunch kept channels.
template <typename Launch>
void ForEachChunk(int64_t num_channels, const ChannelSet* channels, Launch&& launch) {
  const int64_t kept = channels != nullptr ? static_cast<int64_t>(channels->kept.size()) : num_channels;
  for (int64_t first = 0; first < kept; first += kChannelsPerLaunch) {
    ChannelChunk chunk{};
    chunk.count = static_cast<int32_t>(std::min<int64_t>(kChannelsPerLaunch, kept - first));
    chunk.first_rank = static_cast<int32_t>(first);
    for (int32_t i = 0; i < chunk.count; ++i)
      chunk.channel[i] = static_cast<int32_t>(channels != nullptr ? channels->kept[static_cast<size_t>(first + i)]
                                                                  : first + i);
    launch(chunk);
  }
}

}  // namespace

void ChannelMeanAbs(const float* x, int64_t batch, int64_t num_channels, int64_t plane, const ChannelSet* channels,
                    float* out) {
  ForEachChunk(num_channels, channels, [&](const ChannelChunk& chunk) {
    MeanAbsKernel<<<chunk.count, kThreads>>>(x, batch, num_channels, plane, chunk, out);
    SIEVE_CUDA_CHECK_LAUNCH();
  });
}

void ChannelBlockDot(const float* w, const float* dw, int64_t rows, int64_t num_channels, int64_t group,
                     const ChannelSet* channels, float* out) {
  ForEachChunk(num_channels, channels, [&](const ChannelChunk& chunk) {
    BlockDotKernel<<<chunk.count, kThreads>>>(w, dw, rows, num_channels, group, chunk, out);
    SIEVE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace sieve::ops::cuda
