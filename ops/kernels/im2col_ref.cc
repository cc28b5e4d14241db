// The naive reference im2col/col2im: the formula of im2col.h evaluated one element at a time, with
// col2im accumulating in double. Slow on purpose; it is the oracle the fast paths are tested
// against, never called by the library.
#include <algorithm>
#include <numeric>
#include <vector>

#include "ops/kernels/im2col.h"

namespace sieve::ops::ref {

namespace {
std::vector<int64_t> KeptList(const ChannelSet* channels, int64_t all) {
  if (channels != nullptr) return channels->kept;
  std::vector<int64_t> every(static_cast<size_t>(all));
  std::iota(every.begin(), every.end(), int64_t{0});
  return every;
}
}  // namespace

void Im2Col(const float* x, int64_t batch, const ConvGeometry& g, const ChannelSet* channels, float* col,
            int64_t ld_col, int64_t col_offset) {
  const std::vector<int64_t> kept = KeptList(channels, g.channels);
  const int64_t out_h = g.out_h(), out_w = g.out_w();
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t r = 0; r < kept.size(); ++r) {
      const int64_t c = kept[r];
      for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
        for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
          const int64_t row = (static_cast<int64_t>(r) * g.kernel_h + ki) * g.kernel_w + kj;
          for (int64_t oh = 0; oh < out_h; ++oh) {
            for (int64_t ow = 0; ow < out_w; ++ow) {
              const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
              const int64_t iw = ow * g.stride_w - g.pad_w + kj * g.dilation_w;
              const bool inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
              const int64_t column = col_offset + (b * out_h + oh) * out_w + ow;
              col[row * ld_col + column] = inside ? x[((b * g.channels + c) * g.height + ih) * g.width + iw] : 0.0f;
            }
          }
        }
      }
    }
  }
}

void Col2Im(const float* col, int64_t ld_col, int64_t col_offset, int64_t batch, const ConvGeometry& g,
            const ChannelSet* channels, float* dx, float beta) {
  const std::vector<int64_t> kept = KeptList(channels, g.channels);
  const int64_t out_h = g.out_h(), out_w = g.out_w();
  std::vector<double> plane(static_cast<size_t>(g.in_plane()));
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t r = 0; r < kept.size(); ++r) {
      const int64_t c = kept[r];
      std::fill(plane.begin(), plane.end(), 0.0);
      for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
        for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
          const int64_t row = (static_cast<int64_t>(r) * g.kernel_h + ki) * g.kernel_w + kj;
          for (int64_t oh = 0; oh < out_h; ++oh) {
            for (int64_t ow = 0; ow < out_w; ++ow) {
              const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
              const int64_t iw = ow * g.stride_w - g.pad_w + kj * g.dilation_w;
              if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
              const int64_t column = col_offset + (b * out_h + oh) * out_w + ow;
              plane[static_cast<size_t>(ih * g.width + iw)] += col[row * ld_col + column];
            }
          }
        }
      }
      float* out = dx + (b * g.channels + c) * g.in_plane();
      for (int64_t i = 0; i < g.in_plane(); ++i) {
        // beta == 0 overwrites, so NaN garbage in dx does not propagate.
        const double old = beta == 0.0f ? 0.0 : static_cast<double>(beta) * out[i];
        out[i] = static_cast<float>(plane[static_cast<size_t>(i)] + old);
      }
    }
  }
}

}  // namespace sieve::ops::ref
