// The naive reference of Bernoulli dropout: a direct transcription of the definition in
// dropout.h, one element and one Philox evaluation at a time. Slow on purpose; it is the oracle the
// CPU and CUDA kernels are tested against.
#include "ops/kernels/dropout.h"

namespace sieve::ops::ref {

void DropoutForward(const float* x, float* y, int64_t n, float p, const RandomStream& stream, uint64_t first) {
  for (int64_t k = 0; k < n; ++k) {
    const bool keep = stream.Uniform(first + static_cast<uint64_t>(k)) >= p;
    y[k] = keep ? x[k] * DropoutScale(p) : 0.0f;
  }
}

void DropoutBackward(const float* dy, float* dx, int64_t n, float p, const RandomStream& stream, uint64_t first) {
  for (int64_t k = 0; k < n; ++k) {
    const bool keep = stream.Uniform(first + static_cast<uint64_t>(k)) >= p;
    dx[k] = keep ? dy[k] * DropoutScale(p) : 0.0f;
  }
}

}  // namespace sieve::ops::ref
