// The naive reference pooling: Caffe's pooling loops, one window at a time, sums in double.
// Slow on purpose; it is the oracle the fast paths are tested against, never called by the library.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/kernels/pooling.h"

namespace sieve::ops::ref {

namespace {

// One window: the image cells [h0, h1) x [w0, w1) and Caffe's average-pooling divisor, the
// window's area clipped to the padded input.
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};

Window WindowAt(const ConvGeometry& g, int64_t oh, int64_t ow) {
  const int64_t hs = oh * g.stride_h - g.pad_h, ws = ow * g.stride_w - g.pad_w;
  const int64_t he = std::min(hs + g.kernel_h, g.height + g.pad_h);
  const int64_t we = std::min(ws + g.kernel_w, g.width + g.pad_w);
  return {std::max<int64_t>(hs, 0), std::min(he, g.height), std::max<int64_t>(ws, 0), std::min(we, g.width),
          (he - hs) * (we - ws)};
}

// Writes dx = acc + beta * dx over one plane (beta == 0 overwrites).
void Store(const std::vector<double>& acc, float beta, float* dx) {
  for (size_t i = 0; i < acc.size(); ++i) {
    const double old = beta == 0.0f ? 0.0 : static_cast<double>(beta) * dx[i];
    dx[i] = static_cast<float>(acc[i] + old);
  }
}

}  // namespace

void MaxPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y, int32_t* argmax) {
  const int64_t out_h = g.out_h(), out_w = g.out_w();
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = x + p * g.in_plane();
    for (int64_t oh = 0; oh < out_h; ++oh) {
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Window w = WindowAt(g, oh, ow);
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = w.h0 * g.width + w.w0;
        for (int64_t ih = w.h0; ih < w.h1; ++ih) {
          for (int64_t iw = w.w0; iw < w.w1; ++iw) {
            const float v = in[ih * g.width + iw];
            if (v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              best_index = ih * g.width + iw;
            }
          }
        }
        const int64_t o = (p * out_h + oh) * out_w + ow;
        y[o] = best;
        argmax[o] = static_cast<int32_t>(best_index);
      }
    }
  }
}

void MaxPoolBackward(const float* dy, const int32_t* argmax, int64_t planes, const ConvGeometry& g, float* dx,
                     float beta) {
  const int64_t out_plane = g.out_plane();
  std::vector<double> acc(static_cast<size_t>(g.in_plane()));
  for (int64_t p = 0; p < planes; ++p) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t o = p * out_plane; o < (p + 1) * out_plane; ++o) acc[static_cast<size_t>(argmax[o])] += dy[o];
    Store(acc, beta, dx + p * g.in_plane());
  }
}

void AvgPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y) {
  const int64_t out_h = g.out_h(), out_w = g.out_w();
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = x + p * g.in_plane();
    for (int64_t oh = 0; oh < out_h; ++oh) {
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Window w = WindowAt(g, oh, ow);
        double sum = 0.0;
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) sum += in[ih * g.width + iw];
        y[(p * out_h + oh) * out_w + ow] = static_cast<float>(sum / static_cast<double>(w.divisor));
      }
    }
  }
}

void AvgPoolBackward(const float* dy, int64_t planes, const ConvGeometry& g, float* dx, float beta) {
  const int64_t out_h = g.out_h(), out_w = g.out_w();
  std::vector<double> acc(static_cast<size_t>(g.in_plane()));
  for (int64_t p = 0; p < planes; ++p) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t oh = 0; oh < out_h; ++oh) {
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Window w = WindowAt(g, oh, ow);
        const double grad = dy[(p * out_h + oh) * out_w + ow] / static_cast<double>(w.divisor);
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) acc[static_cast<size_t>(ih * g.width + iw)] += grad;
      }
    }
    Store(acc, beta, dx + p * g.in_plane());
  }
}

}  // namespace sieve::ops::ref
