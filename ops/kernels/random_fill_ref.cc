// The naive reference of the random fills: each element drawn on its own through RandomStream,
// exactly as random_fill.h defines it. Slow on purpose; the oracle of the CPU and CUDA kernels.
#include "ops/kernels/random_fill.h"

namespace sieve::ops::ref {

void FillUniform(float* out, int64_t n, float low, float high, const RandomStream& stream, uint64_t first) {
  for (int64_t k = 0; k < n; ++k)
    out[k] = UniformFillValue(low, high - low, stream.Bits(first + static_cast<uint64_t>(k)));
}

void FillNormal(float* out, int64_t n, float mean, float stddev, const RandomStream& stream, uint64_t first) {
  for (int64_t k = 0; k < n; ++k)
    out[k] = NormalFillValue(mean, stddev, stream.Normal(first + static_cast<uint64_t>(k)));
}

void FillBits(uint32_t* out, int64_t n, const RandomStream& stream, uint64_t first) {
  for (int64_t k = 0; k < n; ++k) out[k] = stream.Bits(first + static_cast<uint64_t>(k));
}

}  // namespace sieve::ops::ref
