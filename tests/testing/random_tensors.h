// Test helpers shared by the op tests: seeded random tensors and an element-wise closeness check
// that reports the first offending element.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "framework/tensor.h"

namespace sieve::testing {

/// n floats uniform in [lo, hi) from `rng`.
inline std::vector<float> RandomValues(int64_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

/// A contiguous CPU float32 tensor of `shape` with values uniform in [lo, hi).
inline Tensor RandomTensor(Shape shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  const int64_t n = ShapeNumel(shape);
  return Tensor::FromVector(std::move(shape), RandomValues(n, rng, lo, hi));
}

/// |got - want| <= atol + rtol |want| everywhere; fails with the first element that is not.
inline void CheckClose(const std::vector<float>& got, const std::vector<float>& want, double rtol, double atol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = atol + rtol * std::abs(static_cast<double>(want[i]));
    if (!(std::abs(static_cast<double>(got[i]) - want[i]) <= tol)) {
      FAIL_CHECK("element " << i << " of " << got.size() << ": got " << got[i] << ", want " << want[i] << " (tol "
                            << tol << ")");
      return;
    }
  }
}

}  // namespace sieve::testing
