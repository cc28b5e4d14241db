// The multi-threaded CPU pooling. Planes (image, channel) are independent, so OpenMP splits them.
// Inside a plane, max pooling visits each window cell once per output row as one loop over the
// output columns whose range excludes the padding (ranges are tabled once per call, so the hot
// loops hold no divisions and no bounds checks), written as selects so it vectorises; average
// pooling is separable and sums rows before columns. Strides 1 and 2 are compiled as constants so
// the strided loads vectorise. Backward passes own whole dx planes per thread, so overlapping
// windows accumulate without races.
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/kernels/pooling.h"

namespace sieve::ops::cpu {

namespace {

// Below this many window-cell visits one thread does the whole call.
constexpr int64_t kParallelWork = int64_t{1} << 15;

bool Parallel(int64_t planes, const ConvGeometry& g) {
  return planes * g.out_plane() * g.kernel_area() >= kParallelWork;
}

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

// The window rows [h0, h1) of output row oh inside the image, and its extent clipped to the padded
// input (Caffe's divisor factor).
struct RowWindow {
  int64_t h0, h1, padded;
};

RowWindow RowWindowAt(const ConvGeometry& g, int64_t oh) {
  const int64_t hs = oh * g.stride_h - g.pad_h;
  const int64_t he = std::min(hs + g.kernel_h, g.height + g.pad_h);
  return {std::max<int64_t>(hs, 0), std::min(he, g.height), he - hs};
}

// For every kernel column kj that reaches the image: the output columns whose cell kj lies inside
// the image, and the input column of the first of them.
struct ColumnSpan {
  int64_t begin, count, first_input;
};

std::vector<ColumnSpan> ColumnSpans(const ConvGeometry& g) {
  std::vector<ColumnSpan> spans;
  for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
    const OutputRange r = InsideOutputs(g.out_w(), g.width, g.stride_w, kj - g.pad_w);
    if (r.end > r.begin) spans.push_back({r.begin, r.end - r.begin, r.begin * g.stride_w + kj - g.pad_w});
  }
  return spans;
}

// Caffe's divisor factor along the width for every output column.
std::vector<float> WidthDivisors(const ConvGeometry& g) {
  std::vector<float> out(static_cast<size_t>(g.out_w()));
  for (int64_t ow = 0; ow < g.out_w(); ++ow) {
    const int64_t ws = ow * g.stride_w - g.pad_w;
    out[static_cast<size_t>(ow)] = static_cast<float>(std::min(ws + g.kernel_w, g.width + g.pad_w) - ws);
  }
  return out;
}

// dx = beta * dx over one plane, where beta == 0 overwrites (so NaN garbage does not propagate).
void ScalePlane(float* plane, int64_t n, float beta) {
  if (beta == 0.0f) {
    std::fill(plane, plane + n, 0.0f);
  } else if (beta != 1.0f) {
    for (int64_t i = 0; i < n; ++i) plane[i] *= beta;
  }
}

// One window cell for n consecutive outputs whose cells lie `stride` apart in `row` and have plane
// indices first_index + i*stride. Bitwise | and & keep the loop branch-free, so it vectorises into
// compares and selects.
template <int64_t S>
void MaxStep(const float* __restrict__ row, int64_t stride, int32_t first_index, int64_t n, float* __restrict__ best,
             int32_t* __restrict__ best_index) {
  const int32_t step = static_cast<int32_t>(S != 0 ? S : stride);
  for (int32_t i = 0; i < static_cast<int32_t>(n); ++i) {
    const float v = row[i * step], b = best[i];
    // Strictly greater keeps the first maximum; the first NaN wins and then stays.
    const bool take = (v > b) | ((v != v) & (b == b));
    best[i] = take ? v : b;
    best_index[i] = take ? first_index + i * step : best_index[i];
  }
}

template <int64_t S>
void SumStep(const float* __restrict__ row, int64_t stride, int64_t n, float* __restrict__ sum) {
  const int64_t step = S != 0 ? S : stride;
  for (int64_t i = 0; i < n; ++i) sum[i] += row[i * step];
}

void AddRow(const float* __restrict__ src, int64_t n, float* __restrict__ dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

template <int64_t S>
void SpreadStep(const float* __restrict__ grad, int64_t stride, int64_t n, float* __restrict__ row) {
  const int64_t step = S != 0 ? S : stride;
  for (int64_t i = 0; i < n; ++i) row[i * step] += grad[i];
}

template <int64_t S>
void MaxPoolPlanes(const float* x, int64_t planes, const ConvGeometry& g, float* y, int32_t* argmax) {
  const int64_t out_h = g.out_h(), out_w = g.out_w(), width = g.width;
  const std::vector<ColumnSpan> spans = ColumnSpans(g);
  std::vector<int32_t> first_column(static_cast<size_t>(out_w));  // of each window inside the image
  for (int64_t ow = 0; ow < out_w; ++ow)
    first_column[static_cast<size_t>(ow)] = static_cast<int32_t>(std::max<int64_t>(ow * g.stride_w - g.pad_w, 0));
#pragma omp parallel for schedule(static) if (Parallel(planes, g))
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = x + p * g.in_plane();
    for (int64_t oh = 0; oh < out_h; ++oh) {
      float* best = y + (p * out_h + oh) * out_w;
      int32_t* best_index = argmax + (p * out_h + oh) * out_w;
      const RowWindow rows = RowWindowAt(g, oh);
      // Start below every value, pointing at the window's first cell: an all -inf window then
      // reports that cell, as the first-maximum rule says.
      const int32_t first_row = static_cast<int32_t>(rows.h0 * width);
      std::fill(best, best + out_w, -std::numeric_limits<float>::infinity());
      for (int64_t ow = 0; ow < out_w; ++ow) best_index[ow] = first_row + first_column[static_cast<size_t>(ow)];
      for (int64_t ih = rows.h0; ih < rows.h1; ++ih) {
        for (const ColumnSpan& s : spans) {
          MaxStep<S>(in + ih * width + s.first_input, g.stride_w, static_cast<int32_t>(ih * width + s.first_input),
                     s.count, best + s.begin, best_index + s.begin);
        }
      }
    }
  }
}

// Average pooling is separable: each output row first sums its window rows into one row of column
// sums (contiguous adds), then slides the kernel columns over that row, so the strided work is
// kernel_w per output instead of kernel_h * kernel_w. The backward pass mirrors it.
template <int64_t S>
void AvgPoolPlanes(const float* x, int64_t planes, const ConvGeometry& g, float* y) {
  const int64_t out_h = g.out_h(), out_w = g.out_w(), width = g.width;
  const std::vector<ColumnSpan> spans = ColumnSpans(g);
  const std::vector<float> width_divisor = WidthDivisors(g);
#pragma omp parallel if (Parallel(planes, g))
  {
    std::vector<float> column_sum(static_cast<size_t>(width));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* in = x + p * g.in_plane();
      for (int64_t oh = 0; oh < out_h; ++oh) {
        const RowWindow rows = RowWindowAt(g, oh);
        std::fill(column_sum.begin(), column_sum.end(), 0.0f);
        for (int64_t ih = rows.h0; ih < rows.h1; ++ih) AddRow(in + ih * width, width, column_sum.data());
        float* sum = y + (p * out_h + oh) * out_w;
        std::fill(sum, sum + out_w, 0.0f);
        for (const ColumnSpan& s : spans)
          SumStep<S>(column_sum.data() + s.first_input, g.stride_w, s.count, sum + s.begin);
        const float row_divisor = static_cast<float>(rows.padded);
        for (int64_t ow = 0; ow < out_w; ++ow) sum[ow] /= row_divisor * width_divisor[static_cast<size_t>(ow)];
      }
    }
  }
}

template <int64_t S>
void AvgPoolBackwardPlanes(const float* dy, int64_t planes, const ConvGeometry& g, float* dx, float beta) {
  const int64_t out_h = g.out_h(), out_w = g.out_w(), width = g.width, in_plane = g.in_plane();
  const std::vector<ColumnSpan> spans = ColumnSpans(g);
  const std::vector<float> width_divisor = WidthDivisors(g);
#pragma omp parallel if (Parallel(planes, g))
  {
    std::vector<float> grad(static_cast<size_t>(out_w));    // dy / divisor of one output row
    std::vector<float> spread(static_cast<size_t>(width));  // that row spread over its window columns
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      float* plane = dx + p * in_plane;
      ScalePlane(plane, in_plane, beta);
      for (int64_t oh = 0; oh < out_h; ++oh) {
        const float* dy_row = dy + (p * out_h + oh) * out_w;
        const RowWindow rows = RowWindowAt(g, oh);
        const float row_divisor = static_cast<float>(rows.padded);
        for (int64_t ow = 0; ow < out_w; ++ow)
          grad[static_cast<size_t>(ow)] = dy_row[ow] / (row_divisor * width_divisor[static_cast<size_t>(ow)]);
        std::fill(spread.begin(), spread.end(), 0.0f);
        for (const ColumnSpan& s : spans)
          SpreadStep<S>(grad.data() + s.begin, g.stride_w, s.count, spread.data() + s.first_input);
        for (int64_t ih = rows.h0; ih < rows.h1; ++ih) AddRow(spread.data(), width, plane + ih * width);
      }
    }
  }
}

}  // namespace

void MaxPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y, int32_t* argmax) {
  WithStride(g.stride_w, [&](auto s) { MaxPoolPlanes<decltype(s)::value>(x, planes, g, y, argmax); });
}

void MaxPoolBackward(const float* dy, const int32_t* argmax, int64_t planes, const ConvGeometry& g, float* dx,
                     float beta) {
  const int64_t out_plane = g.out_plane(), in_plane = g.in_plane();
#pragma omp parallel for schedule(static) if (planes * (out_plane + in_plane) >= kParallelWork)
  for (int64_t p = 0; p < planes; ++p) {
    float* plane = dx + p * in_plane;
    ScalePlane(plane, in_plane, beta);
    const float* grad = dy + p * out_plane;
    const int32_t* index = argmax + p * out_plane;
    for (int64_t o = 0; o < out_plane; ++o) plane[index[o]] += grad[o];
  }
}

void AvgPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y) {
  WithStride(g.stride_w, [&](auto s) { AvgPoolPlanes<decltype(s)::value>(x, planes, g, y); });
}

void AvgPoolBackward(const float* dy, int64_t planes, const ConvGeometry& g, float* dx, float beta) {
  WithStride(g.stride_w, [&](auto s) { AvgPoolBackwardPlanes<decltype(s)::value>(dy, planes, g, dx, beta); });
}

}  // namespace sieve::ops::cpu
