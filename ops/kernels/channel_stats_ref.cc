// The naive reference per-channel statistics: the formulas of channel_stats.h one element at a
// time, accumulated in double. The oracle the fast paths are tested against; never called by the
// library.
#include <cmath>

#include "ops/kernels/channel_stats.h"

namespace sieve::ops::ref {

namespace {
int64_t Kept(const ChannelSet* channels, int64_t all) {
  return channels != nullptr ? static_cast<int64_t>(channels->kept.size()) : all;
}
int64_t At(const ChannelSet* channels, int64_t rank) {
  return channels != nullptr ? channels->kept[static_cast<size_t>(rank)] : rank;
}
}  // namespace

void ChannelMeanAbs(const float* x, int64_t batch, int64_t num_channels, int64_t plane, const ChannelSet* channels,
                    float* out) {
  for (int64_t r = 0; r < Kept(channels, num_channels); ++r) {
    const int64_t c = At(channels, r);
    double sum = 0.0;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < plane; ++i) sum += std::fabs(static_cast<double>(x[(n * num_channels + c) * plane + i]));
    out[r] = static_cast<float>(sum / static_cast<double>(batch * plane));
  }
}

void ChannelBlockDot(const float* w, const float* dw, int64_t rows, int64_t num_channels, int64_t group,
                     const ChannelSet* channels, float* out) {
  const int64_t ld = num_channels * group;
  for (int64_t r = 0; r < Kept(channels, num_channels); ++r) {
    const int64_t c = At(channels, r);
    double sum = 0.0;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < group; ++j) {
        const int64_t at = i * ld + c * group + j;
        sum += static_cast<double>(w[at]) * static_cast<double>(dw[at]);
      }
    out[r] = static_cast<float>(sum);
  }
}

}  // namespace sieve::ops::ref
