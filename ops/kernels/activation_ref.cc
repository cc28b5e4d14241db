// The naive reference activations: each element through the formula in double, rounded once.
// Slow on purpose; the test oracle.
#include <cmath>

#include "ops/kernels/activation.h"

namespace sieve::ops::ref {

namespace {

double Forward(Activation kind, double x) {
  switch (kind) {
    case Activation::kReLU:
      return x < 0.0 ? 0.0 : x;  // NaN is not < 0, so it propagates
    case Activation::kTanh:
      return std::tanh(x);
    case Activation::kSigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case Activation::kCount:
      break;
  }
  SIEVE_CHECK(false, "unknown activation " << static_cast<int>(kind));
}

double Derivative(Activation kind, double y) {
  switch (kind) {
    case Activation::kReLU:
      return y > 0.0 ? 1.0 : 0.0;
    case Activation::kTanh:
      return 1.0 - y * y;
    case Activation::kSigmoid:
      return y * (1.0 - y);
    case Activation::kCount:
      break;
  }
  SIEVE_CHECK(false, "unknown activation " << static_cast<int>(kind));
}

// Calls f(element offset in a, in b, in c) for every element: flat when all three operands are
// contiguous, else row by row through each 2-D view's own row stride.
template <typename F>
void ForEach(const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  if (a.is_contiguous() && b.is_contiguous() && c.is_contiguous()) {
    for (int64_t k = 0; k < a.numel(); ++k) f(k, k, k);
    return;
  }
  for (int64_t i = 0; i < a.dim(0); ++i)
    for (int64_t j = 0; j < a.dim(1); ++j) f(i * a.stride(0) + j, i * b.stride(0) + j, i * c.stride(0) + j);
}

}  // namespace

void ActivationForward(Activation kind, const Tensor& x, const Tensor& y) {
  const float* in = x.data<float>();
  float* out = y.data<float>();
  ForEach(x, y, y, [&](int64_t xi, int64_t yi, int64_t) { out[yi] = static_cast<float>(Forward(kind, in[xi])); });
}

void ActivationBackward(Activation kind, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  const float* out = y.data<float>();
  const float* grad = dy.data<float>();
  float* result = dx.data<float>();
  ForEach(y, dy, dx, [&](int64_t yi, int64_t dyi, int64_t dxi) {
    result[dxi] = static_cast<float>(static_cast<double>(grad[dyi]) * Derivative(kind, out[yi]));
  });
}

}  // namespace sieve::ops::ref
