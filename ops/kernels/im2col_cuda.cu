// CUDA im2col/col2im over the kept input channels. im2col runs one thread per (image, kept
// channel, output pixel) writing its kh*kw column-matrix rows; neighbouring threads take
// neighbouring output pixels, so the writes coalesce. col2im runs one thread per (image, kept
// channel, input cell) gathering the column entries that read that cell: no atomics, and the
// result does not depend on scheduling. The kept channel indices travel in the kernel's parameter
// block, up to kChannelsPerLaunch per launch, so a call needs neither a device buffer nor a
// host-device copy.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "framework/cuda_check.h"
#include "ops/kernels/im2col.h"

namespace sieve::ops::cuda {

namespace {

// 512 int32 indices keep the parameter block (about 2.2 KB) under the classic 4 KB limit.
constexpr int kChannelsPerLaunch = 512;
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;  // grid-stride loops cover the rest

// A run of consecutive kept ranks [first_rank, first_rank + count) and their channel indices.
struct ChannelChunk {
  int32_t count;
  int32_t first_rank;
  int32_t channel[kChannelsPerLaunch];
};

// The geometry as plain integers for the device.
struct Geometry {
  int64_t channels, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  int64_t out_h, out_w;
};

Geometry ToDevice(const ConvGeometry& g) {
  return {g.channels, g.height, g.width,      g.kernel_h,   g.kernel_w, g.stride_h, g.stride_w,
          g.pad_h,    g.pad_w,  g.dilation_h, g.dilation_w, g.out_h(),  g.out_w()};
}

// Index is the type the flat thread index is decomposed in: 32-bit divisions are several times
// cheaper on the GPU, so it is int32_t whenever the work fits. Addresses are always 64-bit.
template <typename Index>
__global__ void Im2ColKernel(const float* __restrict__ x, int64_t total, Geometry g, ChannelChunk chunk,
                             float* __restrict__ col, int64_t ld_col, int64_t col_offset) {
  const int64_t out_plane = g.out_h * g.out_w;
  const int64_t kernel_area = g.kernel_h * g.kernel_w;
  for (int64_t flat = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Index i = static_cast<Index>(flat);
    const Index ow = i % static_cast<Index>(g.out_w);
    i /= static_cast<Index>(g.out_w);
    const Index oh = i % static_cast<Index>(g.out_h);
    i /= static_cast<Index>(g.out_h);
    const Index local = i % static_cast<Index>(chunk.count);
    const int64_t b = i / static_cast<Index>(chunk.count);
    const int64_t rank = chunk.first_rank + static_cast<int64_t>(local);
    const float* plane = x + (b * g.channels + chunk.channel[local]) * g.height * g.width;
    float* dst = col + rank * kernel_area * ld_col + col_offset + b * out_plane + oh * g.out_w + ow;
    const int64_t ih0 = oh * g.stride_h - g.pad_h, iw0 = ow * g.stride_w - g.pad_w;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const int64_t ih = ih0 + ki * g.dilation_h;
      const bool row_inside = ih >= 0 && ih < g.height;
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t iw = iw0 + kj * g.dilation_w;
        *dst = row_inside && iw >= 0 && iw < g.width ? plane[ih * g.width + iw] : 0.0f;
        dst += ld_col;
      }
    }
  }
}

template <typename Index>
__global__ void Col2ImKernel(const float* __restrict__ col, int64_t ld_col, int64_t col_offset, int64_t total,
                             Geometry g, ChannelChunk chunk, float* __restrict__ dx, float beta) {
  const int64_t out_plane = g.out_h * g.out_w;
  for (int64_t flat = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Index i = static_cast<Index>(flat);
    const Index iw = i % static_cast<Index>(g.width);
    i /= static_cast<Index>(g.width);
    const Index ih = i % static_cast<Index>(g.height);
    i /= static_cast<Index>(g.height);
    const Index local = i % static_cast<Index>(chunk.count);
    const int64_t b = i / static_cast<Index>(chunk.count);
    const int64_t rank = chunk.first_rank + static_cast<int64_t>(local);
    const float* src = col + rank * g.kernel_h * g.kernel_w * ld_col + col_offset + b * out_plane;
    float sum = 0.0f;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      // Output row oh read this cell through kernel row ki iff oh*stride_h = ih + pad_h - ki*dilation_h.
      const int64_t h = ih + g.pad_h - ki * g.dilation_h;
      if (h < 0) break;  // h only falls as ki grows
      if (h % g.stride_h != 0 || h / g.stride_h >= g.out_h) continue;
      const int64_t oh = h / g.stride_h;
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t w = iw + g.pad_w - kj * g.dilation_w;
        if (w < 0) break;
        if (w % g.stride_w != 0 || w / g.stride_w >= g.out_w) continue;
        sum += src[(ki * g.kernel_w + kj) * ld_col + oh * g.out_w + w / g.stride_w];
      }
    }
    float& out = dx[(b * g.channels + chunk.channel[local]) * g.height * g.width + ih * g.width + iw];
    // beta == 0 overwrites, so NaN garbage in dx does not propagate.
    out = beta == 0.0f ? sum : sum + beta * out;
  }
}

int Blocks(int64_t total) { return static_cast<int>(std::min((total + kThreads - 1) / kThreads, kMaxBlocks)); }

// Calls launch(chunk) for consecutive runs of at most kChannelsPerLaunch kept channels.
template <typename Launch>
void ForEachChunk(const ChannelSet* channels, int64_t all, Launch launch) {
  const int64_t kept = channels != nullptr ? static_cast<int64_t>(channels->kept.size()) : all;
  for (int64_t first = 0; first < kept; first += kChannelsPerLaunch) {
    ChannelChunk chunk{};
    chunk.count = static_cast<int32_t>(std::min<int64_t>(kChannelsPerLaunch, kept - first));
    chunk.first_rank = static_cast<int32_t>(first);
    for (int32_t j = 0; j < chunk.count; ++j)
      chunk.channel[j] = static_cast<int32_t>(channels != nullptr ? channels->kept[first + j] : first + j);
    launch(chunk);
  }
}

bool FitsInt32(int64_t total) { return total <= std::numeric_limits<int32_t>::max(); }

}  // namespace

void Im2Col(const float* x, int64_t batch, const ConvGeometry& g, const ChannelSet* channels, float* col,
            int64_t ld_col, int64_t col_offset) {
  const Geometry dg = ToDevice(g);
  ForEachChunk(channels, g.channels, [&](const ChannelChunk& chunk) {
    const int64_t total = batch * chunk.count * dg.out_h * dg.out_w;
    if (total == 0) return;
    if (FitsInt32(total)) {
      Im2ColKernel<int32_t><<<Blocks(total), kThreads>>>(x, total, dg, chunk, col, ld_col, col_offset);
    } else {
      Im2ColKernel<int64_t><<<Blocks(total), kThreads>>>(x, total, dg, chunk, col, ld_col, col_offset);
    }
    SIEVE_CUDA_CHECK_LAUNCH();
  });
}

void Col2Im(const float* col, int64_t ld_col, int64_t col_offset, int64_t batch, const ConvGeometry& g,
            const ChannelSet* channels, float* dx, float beta) {
  const Geometry dg = ToDevice(g);
  ForEachChunk(channels, g.channels, [&](const ChannelChunk& chunk) {
    const int64_t total = batch * chunk.count * dg.height * dg.width;
    if (total == 0) return;
    if (FitsInt32(total)) {
      Col2ImKernel<int32_t><<<Blocks(total), kThreads>>>(col, ld_col, col_offset, total, dg, chunk, dx, beta);
    } else {
      Col2ImKernel<int64_t><<<Blocks(total), kThreads>>>(col, ld_col, col_offset, total, dg, chunk, dx, beta);
    }
    SIEVE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace sieve::ops::cuda
