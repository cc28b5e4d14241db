// The multi-threaded CPU im2col/col2im. im2col parallelises over the rows of the column matrix
// (one (image, kept channel, kernel cell) each) so even a 1-channel first layer spreads over the
// cores; col2im parallelises over (image, kept channel) planes, because the kernel cells of one
// plane accumulate into the same cells. Each output row is split once into left padding, interior
// and right padding (ranges tabled per call, so the hot loops hold no divisions or bounds checks);
// unit-stride interior spans are single memcpy calls, and strides 1 and 2 are compiled as
// constants so the strided loops vectorise. Called from inside a parallel region (the implicit-GEMM
// convolution's per-image team, ops/matmul/matmul_cpu_conv.cc) they run on the calling thread.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/kernels/im2col.h"

namespace sieve::ops::cpu {

namespace {

// Below this many column-matrix elements one thread does the whole call: forking the team would
// cost about as much as the copy.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// Runs body(std::integral_constant<int64_t, S>{}) with S = stride when it is 1 or 2, else S = 0,
// meaning "read the stride at run time".
template <typename Body>
void WithStride(int64_t stride, Body&& body) {
  if (stride == 1) {
    body(std::integral_constant<int64_t, 1>{});
  } else if (stride == 2) {
    body(std::integral_constant<int64_t, 2>{});
  } else {
    body(std::integral_constant<int64_t, 0>{});
  }
}

int64_t ChannelAt(const ChannelSet* channels, int64_t rank) {
  return channels != nullptr ? channels->kept[static_cast<size_t>(rank)] : rank;
}

int64_t KeptCount(const ChannelSet* channels, const ConvGeometry& g) {
  return channels != nullptr ? static_cast<int64_t>(channels->kept.size()) : g.channels;
}

// For each kernel row (or column) k: the output rows (columns) that read inside the image through
// it, and the input coordinate read by output 0, k*dilation - pad.
struct AxisSpan {
  OutputRange inside;
  int64_t shift;
};

std::vector<AxisSpan> AxisSpans(int64_t kernel, int64_t dilation, int64_t pad, int64_t stride, int64_t in,
                                int64_t out) {
  std::vector<AxisSpan> spans(static_cast<size_t>(kernel));
  for (int64_t k = 0; k < kernel; ++k) {
    const int64_t shift = k * dilation - pad;
    spans[static_cast<size_t>(k)] = {InsideOutputs(out, in, stride, shift), shift};
  }
  return spans;
}

template <int64_t S>
void CopyStrided(const float* __restrict__ src, int64_t stride, int64_t n, float* __restrict__ dst) {
  if constexpr (S == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else {
    const int64_t step = S != 0 ? S : stride;
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i * step];
  }
}

template <int64_t S>
void AddStrided(const float* __restrict__ src, int64_t stride, int64_t n, float* __restrict__ dst) {
  const int64_t step = S != 0 ? S : stride;
  for (int64_t i = 0; i < n; ++i) dst[i * step] += src[i];
}

template <int64_t S>
void Im2ColRows(const float* x, int64_t batch, const ConvGeometry& g, const ChannelSet* channels, float* col,
                int64_t ld_col, int64_t col_offset) {
  const int64_t out_h = g.out_h(), out_w = g.out_w(), out_plane = out_h * out_w;
  const int64_t kernel_area = g.kernel_area(), rows = KeptCount(channels, g) * kernel_area, tasks = batch * rows;
  const std::vector<AxisSpan> row_spans = AxisSpans(g.kernel_h, g.dilation_h, g.pad_h, g.stride_h, g.height, out_h);
  const std::vector<AxisSpan> col_spans = AxisSpans(g.kernel_w, g.dilation_w, g.pad_w, g.stride_w, g.width, out_w);
#pragma omp parallel for schedule(static) if (tasks * out_plane >= kParallelElements && !omp_in_parallel())
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / rows, row = t % rows;
    const int64_t rank = row / kernel_area, ki = (row % kernel_area) / g.kernel_w, kj = row % g.kernel_w;
    const float* plane = x + (b * g.channels + ChannelAt(channels, rank)) * g.in_plane();
    float* dst = col + row * ld_col + col_offset + b * out_plane;
    const AxisSpan& hs = row_spans[static_cast<size_t>(ki)];
    const AxisSpan& ws = col_spans[static_cast<size_t>(kj)];
    const int64_t span = ws.inside.end - ws.inside.begin;
    std::fill(dst, dst + hs.inside.begin * out_w, 0.0f);
    for (int64_t oh = hs.inside.begin; oh < hs.inside.end; ++oh) {
      float* d = dst + oh * out_w;
      std::fill(d, d + ws.inside.begin, 0.0f);
      if (span > 0) {
        const float* s = plane + (oh * g.stride_h + hs.shift) * g.width + ws.inside.begin * g.stride_w + ws.shift;
        CopyStrided<S>(s, g.stride_w, span, d + ws.inside.begin);
      }
      std::fill(d + ws.inside.end, d + out_w, 0.0f);
    }
    std::fill(dst + hs.inside.end * out_w, dst + out_plane, 0.0f);
  }
}

template <int64_t S>
void Col2ImPlanes(const float* col, int64_t ld_col, int64_t col_offset, int64_t batch, const ConvGeometry& g,
                  const ChannelSet* channels, float* dx, float beta) {
  const int64_t kept = KeptCount(channels, g), out_h = g.out_h(), out_w = g.out_w(), out_plane = out_h * out_w;
  const int64_t kernel_area = g.kernel_area(), in_plane = g.in_plane(), tasks = batch * kept;
  const std::vector<AxisSpan> row_spans = AxisSpans(g.kernel_h, g.dilation_h, g.pad_h, g.stride_h, g.height, out_h);
  const std::vector<AxisSpan> col_spans = AxisSpans(g.kernel_w, g.dilation_w, g.pad_w, g.stride_w, g.width, out_w);
#pragma omp parallel for schedule(static) if (tasks * kernel_area * out_plane >= kParallelElements && \
                                              !omp_in_parallel())
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / kept, rank = t % kept;
    float* plane = dx + (b * g.channels + ChannelAt(channels, rank)) * in_plane;
    // beta == 0 overwrites, so NaN garbage in dx does not propagate.
    if (beta == 0.0f) {
      std::fill(plane, plane + in_plane, 0.0f);
    } else if (beta != 1.0f) {
      for (int64_t i = 0; i < in_plane; ++i) plane[i] *= beta;
    }
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const AxisSpan& hs = row_spans[static_cast<size_t>(ki)];
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const AxisSpan& ws = col_spans[static_cast<size_t>(kj)];
        const int64_t span = ws.inside.end - ws.inside.begin;
        if (span <= 0) continue;
        const float* src = col + ((rank * g.kernel_h + ki) * g.kernel_w + kj) * ld_col + col_offset + b * out_plane;
        for (int64_t oh = hs.inside.begin; oh < hs.inside.end; ++oh) {
          AddStrided<S>(src + oh * out_w + ws.inside.begin, g.stride_w, span,
                        plane + (oh * g.stride_h + hs.shift) * g.width + ws.inside.begin * g.stride_w + ws.shift);
        }
      }
    }
  }
}

}  // namespace

void Im2Col(const float* x, int64_t batch, const ConvGeometry& g, const ChannelSet* channels, float* col,
            int64_t ld_col, int64_t col_offset) {
  WithStride(g.stride_w,
             [&](auto s) { Im2ColRows<decltype(s)::value>(x, batch, g, channels, col, ld_col, col_offset); });
}

void Col2Im(const float* col, int64_t ld_col, int64_t col_offset, int64_t batch, const ConvGeometry& g,
            const ChannelSet* channels, float* dx, float beta) {
  WithStride(g.stride_w,
             [&](auto s) { Col2ImPlanes<decltype(s)::value>(col, ld_col, col_offset, batch, g, channels, dx, beta); });
}

}  // namespace sieve::ops::cpu
