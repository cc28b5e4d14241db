// The multi-threaded CPU per-channel statistics: OpenMP over the kept channels, each summing its
// planes (or its weight column block) in double in a fixed order, so results do not depend on the
// thread count.
#include <cmath>

#include "ops/kernels/channel_stats.h"

namespace sieve::ops::cpu {

namespace {
int64_t Kept(const ChannelSet* channels, int64_t all) {
  return channels != nullptr ? static_cast<int64_t>(channels->kept.size()) : all;
}
int64_t At(const ChannelSet* channels, int64_t rank) {
  return channels != nullptr ? channels->kept[static_cast<size_t>(rank)] : rank;
}
// Below this many elements read one thread does the whole call.
constexpr int64_t kParallelElements = int64_t{1} << 15;
}  // namespace

void ChannelMeanAbs(const float* x, int64_t batch, int64_t num_channels, int64_t plane, const ChannelSet* channels,
                    float* out) {
  const int64_t kept = Kept(channels, num_channels);
#pragma omp parallel for schedule(static) if (kept * batch * plane >= kParallelElements)
  for (int64_t r = 0; r < kept; ++r) {
    const int64_t c = At(channels, r);
    double sum = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const float* p = x + (n * num_channels + c) * plane;
      float partial = 0.0f;  // one plane in float (vectorised), planes summed in double
#pragma omp simd reduction(+ : partial)
      for (int64_t i = 0; i < plane; ++i) partial += std::fabs(p[i]);
      sum += static_cast<double>(partial);
    }
    out[r] = static_cast<float>(sum / static_cast<double>(batch * plane));
  }
}

void ChannelBlockDot(const float* w, const float* dw, int64_t rows, int64_t num_channels, int64_t group,
                     const ChannelSet* channels, float* out) {
  const int64_t kept = Kept(channels, num_channels);
  const int64_t ld = num_channels * group;
#pragma omp parallel for schedule(static) if (kept * rows * group >= kParallelElements)
  for (int64_t r = 0; r < kept; ++r) {
    const int64_t first = At(channels, r) * group;
    double sum = 0.0;
    for (int64_t i = 0; i < rows; ++i) {
      const float* a = w + i * ld + first;
      const float* b = dw + i * ld + first;
      for (int64_t j = 0; j < group; ++j) sum += static_cast<double>(a[j]) * static_cast<double>(b[j]);
    }
    out[r] = static_cast<float>(sum);
  }
}

}  // namespace sieve::ops::cpu
