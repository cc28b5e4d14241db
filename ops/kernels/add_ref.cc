// The naive reference Add: element by element through each operand's own layout, summed in double.
#include "ops/kernels/add.h"

namespace sieve::ops::ref {

void Add(const Tensor& a, const Tensor& b, const Tensor& y) {
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = y.data<float>();
  if (a.is_contiguous() && b.is_contiguous() && y.is_contiguous()) {
    for (int64_t k = 0; k < a.numel(); ++k) py[k] = static_cast<float>(static_cast<double>(pa[k]) + pb[k]);
    return;
  }
  for (int64_t i = 0; i < a.dim(0); ++i)
    for (int64_t j = 0; j < a.dim(1); ++j)
      py[i * y.stride(0) + j] =
          static_cast<float>(static_cast<double>(pa[i * a.stride(0) + j]) + pb[i * b.stride(0) + j]);
}

}  // namespace sieve::ops::ref
