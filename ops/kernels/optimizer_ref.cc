// The naive references of the optimizer updates: Caffe's CPU code path (SGDSolver::Regularize and
// the solvers' ComputeUpdateValue, then Net::Update) transcribed one BLAS-like pass at a time over
// temporaries, in float. The one departure is Adam's step size lr * correction, which is
// AdamStepSize (double, rounded once) as optimizer.h documents: Caffe's float 1 - beta2^t cancels
// catastrophically (relative errors ~1e-5 for beta2 = 0.999). The oracle of the fused kernels.
#include <cmath>
#include <vector>

#include "ops/kernels/optimizer.h"

namespace sieve::ops::ref {

namespace {

// Caffe's Regularize with L2: diff = local_decay * w + diff (caffe_axpy), skipped when the decay is 0.
std::vector<float> RegularizedGradient(const float* w, const float* g, int64_t n, float weight_decay) {
  std::vector<float> diff(g, g + n);
  if (weight_decay != 0.0f) {
    for (int64_t i = 0; i < n; ++i) diff[i] = weight_decay * w[i] + diff[i];
  }
  return diff;
}

// caffe_cpu_axpby(n, a, x, b, y): y = b * y, then y = a * x + y.
void Axpby(int64_t n, float a, const float* x, float b, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = b * y[i];
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + y[i];
}

// Net::Update: data = data - diff.
void NetUpdate(float* w, const float* update, int64_t n) {
  for (int64_t i = 0; i < n; ++i) w[i] = w[i] - update[i];
}

}  // namespace

void SgdUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay) {
  const std::vector<float> diff = RegularizedGradient(w, g, n, weight_decay);
  Axpby(n, lr, diff.data(), momentum, h);
  NetUpdate(w, h, n);
}

void NesterovUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay) {
  const std::vector<float> diff = RegularizedGradient(w, g, n, weight_decay);
  std::vector<float> update(h, h + n);  // the previous history
  Axpby(n, lr, diff.data(), momentum, h);
  Axpby(n, 1.0f + momentum, h, -momentum, update.data());
  NetUpdate(w, update.data(), n);
}

void AdamUpdate(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float delta, float weight_decay, int64_t t) {
  const std::vector<float> diff = RegularizedGradient(w, g, n, weight_decay);
  const float step = AdamStepSize(lr, beta1, beta2, t);  // Caffe: local_rate * correction
  Axpby(n, 1.0f - beta1, diff.data(), beta1, m);
  std::vector<float> tmp(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tmp[i] = diff[i] * diff[i];
  Axpby(n, 1.0f - beta2, tmp.data(), beta2, v);
  for (int64_t i = 0; i < n; ++i) tmp[i] = std::sqrt(v[i]);
  for (int64_t i = 0; i < n; ++i) tmp[i] = tmp[i] + delta;
  for (int64_t i = 0; i < n; ++i) tmp[i] = m[i] / tmp[i];
  for (int64_t i = 0; i < n; ++i) tmp[i] = step * tmp[i];
  NetUpdate(w, tmp.data(), n);
}

double SumOfSquares(const float* x, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return sum;
}

void Scale(float* x, int64_t n, float factor) {
  for (int64_t i = 0; i < n; ++i) x[i] = factor * x[i];
}

}  // namespace sieve::ops::ref
