// Fused CPU optimizer updates: one pass per step that reads w, g and the state once and writes w
// and the state once (the updates are memory-bound; Caffe's multi-pass form moves several times
// the bytes). Loops are branch-free and vectorised; the OpenMP team splits large arrays only.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/kernels/optimizer.h"

namespace sieve::ops::cpu {

namespace {

// Below this many elements the arrays fit in cache and a fork of the team costs more than it saves.
constexpr int64_t kParallelMinElements = int64_t{1} << 15;
// SumOfSquares adds fixed chunks in index order, so the result does not depend on the thread count.
constexpr int64_t kSumChunk = int64_t{1} << 14;

// Runs body(i) for i in [0, n), vectorised: split over the team for large arrays, and outside any
// OpenMP region for small ones, where entering a region (even one an `if` clause serialises) costs
// more than the loop; the deferred updates of runtime/solver call these once per weight row.
template <typename Body>
void ForEachElement(int64_t n, const Body& body) {
  if (n < kParallelMinElements) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel
  {
    // A copy per thread: read through the shared reference, the captured scalars would be reloaded
    // in every iteration.
    const Body local = body;
#pragma omp for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) local(i);
  }
}

}  // namespace

void SgdUpdate(float* __restrict w, const float* __restrict g, float* __restrict h, int64_t n, float lr, float momentum,
               float weight_decay) {
  ForEachElement(n, [=](int64_t i) {
    const float h_new = momentum * h[i] + lr * (g[i] + weight_decay * w[i]);
    h[i] = h_new;
    w[i] = w[i] - h_new;
  });
}

void NesterovUpdate(float* __restrict w, const float* __restrict g, float* __restrict h, int64_t n, float lr,
                    float momentum, float weight_decay) {
  const float one_plus_momentum = 1.0f + momentum;
  ForEachElement(n, [=](int64_t i) {
    const float h_old = h[i];
    const float h_new = momentum * h_old + lr * (g[i] + weight_decay * w[i]);
    h[i] = h_new;
    w[i] = w[i] - (one_plus_momentum * h_new - momentum * h_old);
  });
}

void AdamUpdate(float* __restrict w, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
                float lr, float beta1, float beta2, float delta, float weight_decay, int64_t t) {
  const float step = AdamStepSize(lr, beta1, beta2, t);
  const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;
  ForEachElement(n, [=](int64_t i) {
    const float gi = g[i] + weight_decay * w[i];
    const float m_new = beta1 * m[i] + one_minus_beta1 * gi;
    const float v_new = beta2 * v[i] + one_minus_beta2 * (gi * gi);
    m[i] = m_new;
    v[i] = v_new;
    w[i] = w[i] - step * (m_new / (std::sqrt(v_new) + delta));
  });
}

double SumOfSquares(const float* x, int64_t n) {
  if (n <= 0) return 0.0;
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * kSumChunk, hi = std::min(n, lo + kSumChunk);
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = lo; i < hi; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    partial[static_cast<size_t>(c)] = sum;
  }
  return std::accumulate(partial.begin(), partial.end(), 0.0);
}

void Scale(float* x, int64_t n, float factor) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) x[i] = factor * x[i];
}

}  // namespace sieve::ops::cpu
