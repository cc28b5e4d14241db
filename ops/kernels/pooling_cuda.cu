// CUDA pooling. Forward passes run one thread per output cell over its window; backward passes
// run one thread per input cell gathering from the windows that contain it (Caffe's scheme), so
// overlapping windows need no atomics and the result does not depend on scheduling.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "framework/cuda_check.h"
#include "ops/kernels/pooling.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;  // grid-stride loops cover the rest

// The geometry as plain integers for the device.
struct Geometry {
  int64_t height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

Geometry ToDevice(const ConvGeometry& g) {
  return {g.height, g.width, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.out_h(), g.out_w()};
}

// Splits a flat index over planes of rows x cols into (plane, row, col). Index is int32_t when the
// work fits, since 32-bit division is several times cheaper on the GPU.
struct Cell {
  int64_t plane, row, col;
};

template <typename Index>
__device__ Cell Split(int64_t flat, int64_t rows, int64_t cols) {
  Index i = static_cast<Index>(flat);
  const Index col = i % static_cast<Index>(cols);
  i /= static_cast<Index>(cols);
  const Index row = i % static_cast<Index>(rows);
  return {static_cast<int64_t>(i / static_cast<Index>(rows)), static_cast<int64_t>(row), static_cast<int64_t>(col)};
}

template <typename Index>
__global__ void MaxPoolForwardKernel(const float* __restrict__ x, int64_t total, Geometry g, float* __restrict__ y,
                                     int32_t* __restrict__ argmax) {
  for (int64_t flat = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Cell o = Split<Index>(flat, g.out_h, g.out_w);
    const int64_t hs = o.row * g.stride_h - g.pad_h, ws = o.col * g.stride_w - g.pad_w;
    const int64_t h1 = min(hs + g.kernel_h, g.height), w1 = min(ws + g.kernel_w, g.width);
    const int64_t h0 = max(hs, int64_t{0}), w0 = max(ws, int64_t{0});
    const float* in = x + o.plane * g.height * g.width;
    float best = -INFINITY;
    int64_t best_index = h0 * g.width + w0;
    for (int64_t ih = h0; ih < h1; ++ih) {
      for (int64_t iw = w0; iw < w1; ++iw) {
        const float v = in[ih * g.width + iw];
        // Strictly greater keeps the first maximum; the first NaN wins and then stays.
        if (v > best || (isnan(v) && !isnan(best))) {
          best = v;
          best_index = ih * g.width + iw;
        }
      }
    }
    y[flat] = best;
    argmax[flat] = static_cast<int32_t>(best_index);
  }
}

template <typename Index>
__global__ void MaxPoolBackwardKernel(const float* __restrict__ dy, const int32_t* __restrict__ argmax, int64_t total,
                                      Geometry g, float* __restrict__ dx, float beta) {
  for (int64_t flat = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Cell c = Split<Index>(flat, g.height, g.width);
    // Output rows whose window [oh*stride - pad, oh*stride - pad + kernel) contains the cell.
    const int64_t oh0 = c.row + g.pad_h < g.kernel_h ? 0 : (c.row + g.pad_h - g.kernel_h) / g.stride_h + 1;
    const int64_t oh1 = min((c.row + g.pad_h) / g.stride_h + 1, g.out_h);
    const int64_t ow0 = c.col + g.pad_w < g.kernel_w ? 0 : (c.col + g.pad_w - g.kernel_w) / g.stride_w + 1;
    const int64_t ow1 = min((c.col + g.pad_w) / g.stride_w + 1, g.out_w);
    const int32_t self = static_cast<int32_t>(c.row * g.width + c.col);
    const int64_t base = c.plane * g.out_h * g.out_w;
    float sum = 0.0f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow)
        if (argmax[base + oh * g.out_w + ow] == self) sum += dy[base + oh * g.out_w + ow];
    // beta == 0 overwrites, so NaN garbage in dx does not propagate.
    dx[flat] = beta == 0.0f ? sum : sum + beta * dx[flat];
  }
}

template <typename Index>
__global__ void AvgPoolForwardKernel(const float* __restrict__ x, int64_t total, Geometry g, float* __restrict__ y) {
  for (int64_t flat = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Cell o = Split<Index>(flat, g.out_h, g.out_w);
    const int64_t hs = o.row * g.stride_h - g.pad_h, ws = o.col * g.stride_w - g.pad_w;
    // Caffe's divisor: the window clipped to the padded input.
    const int64_t he = min(hs + g.kernel_h, g.height + g.pad_h), we = min(ws + g.kernel_w, g.width + g.pad_w);
    const float divisor = static_cast<float>((he - hs) * (we - ws));
    const int64_t h0 = max(hs, int64_t{0}), w0 = max(ws, int64_t{0});
    const int64_t h1 = min(he, g.height), w1 = min(we, g.width);
    const float* in = x + o.plane * g.height * g.width;
    float sum = 0.0f;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) sum += in[ih * g.width + iw];
    y[flat] = sum / divisor;
  }
}

template <typename Index>
__global__ void AvgPoolBackwardKernel(const float* __restrict__ dy, int64_t total, Geometry g, float* __restrict__ dx,
                                      float beta) {
  for (int64_t flat = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Cell c = Split<Index>(flat, g.height, g.width);
    const int64_t oh0 = c.row + g.pad_h < g.kernel_h ? 0 : (c.row + g.pad_h - g.kernel_h) / g.stride_h + 1;
    const int64_t oh1 = min((c.row + g.pad_h) / g.stride_h + 1, g.out_h);
    const int64_t ow0 = c.col + g.pad_w < g.kernel_w ? 0 : (c.col + g.pad_w - g.kernel_w) / g.stride_w + 1;
    const int64_t ow1 = min((c.col + g.pad_w) / g.stride_w + 1, g.out_w);
    const float* grad = dy + c.plane * g.out_h * g.out_w;
    float sum = 0.0f;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t hs = oh * g.stride_h - g.pad_h;
      const int64_t rows = min(hs + g.kernel_h, g.height + g.pad_h) - hs;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t ws = ow * g.stride_w - g.pad_w;
        const int64_t cols = min(ws + g.kernel_w, g.width + g.pad_w) - ws;
        sum += grad[oh * g.out_w + ow] / static_cast<float>(rows * cols);
      }
    }
    dx[flat] = beta == 0.0f ? sum : sum + beta * dx[flat];
  }
}

int Blocks(int64_t total) { return static_cast<int>(std::min((total + kThreads - 1) / kThreads, kMaxBlocks)); }
bool FitsInt32(int64_t total) { return total <= std::numeric_limits<int32_t>::max(); }

}  // namespace

void MaxPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y, int32_t* argmax) {
  const int64_t total = planes * g.out_plane();
  if (total == 0) return;
  if (FitsInt32(total)) {
    MaxPoolForwardKernel<int32_t><<<Blocks(total), kThreads>>>(x, total, ToDevice(g), y, argmax);
  } else {
    MaxPoolForwardKernel<int64_t><<<Blocks(total), kThreads>>>(x, total, ToDevice(g), y, argmax);
  }
  SIEVE_CUDA_CHECK_LAUNCH();
}

void MaxPoolBackward(const float* dy, const int32_t* argmax, int64_t planes, const ConvGeometry& g, float* dx,
                     float beta) {
  const int64_t total = planes * g.in_plane();
  if (total == 0) return;
  if (FitsInt32(total)) {
    MaxPoolBackwardKernel<int32_t><<<Blocks(total), kThreads>>>(dy, argmax, total, ToDevice(g), dx, beta);
  } else {
    MaxPoolBackwardKernel<int64_t><<<Blocks(total), kThreads>>>(dy, argmax, total, ToDevice(g), dx, beta);
  }
  SIEVE_CUDA_CHECK_LAUNCH();
}

void AvgPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y) {
  const int64_t total = planes * g.out_plane();
  if (total == 0) return;
  if (FitsInt32(total)) {
    AvgPoolForwardKernel<int32_t><<<Blocks(total), kThreads>>>(x, total, ToDevice(g), y);
  } else {
    AvgPoolForwardKernel<int64_t><<<Blocks(total), kThreads>>>(x, total, ToDevice(g), y);
  }
  SIEVE_CUDA_CHECK_LAUNCH();
}

void AvgPoolBackward(const float* dy, int64_t planes, const ConvGeometry& g, float* dx, float beta) {
  const int64_t total = planes * g.in_plane();
  if (total == 0) return;
  if (FitsInt32(total)) {
    AvgPoolBackwardKernel<int32_t><<<Blocks(total), kThreads>>>(dy, total, ToDevice(g), dx, beta);
  } else {
    AvgPoolBackwardKernel<int64_t><<<Blocks(total), kThreads>>>(dy, total, ToDevice(g), dx, beta);
  }
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
