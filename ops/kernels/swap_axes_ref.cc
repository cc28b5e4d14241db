// The naive reference SwapLeadingAxes: one element at a time, by the definition.
#include "ops/kernels/swap_axes.h"

namespace sieve::ops::ref {

void SwapLeadingAxes(const Tensor& x, const Tensor& y) {
  const int64_t a_extent = x.dim(0), b_extent = x.dim(1), r_extent = x.dim(2);
  const float* in = x.data<float>();
  float* out = y.data<float>();
  for (int64_t a = 0; a < a_extent; ++a)
    for (int64_t b = 0; b < b_extent; ++b)
      for (int64_t r = 0; r < r_extent; ++r)
        out[(b * a_extent + a) * r_extent + r] = in[(a * b_extent + b) * r_extent + r];
}

}  // namespace sieve::ops::ref
