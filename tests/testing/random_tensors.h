// Test helpers shared by the op tests: seeded random values and tensors, and element-wise
// comparisons (relative tolerance, ulps, bitwise) that report the first offending element.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cfloat>
#include <cmath>
#include <cstring>
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

/// n floats uniform in [-scale, scale) from a fresh generator seeded with `seed`.
inline std::vector<float> SymmetricValues(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  return RandomValues(n, rng, -scale, scale);
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

/// got == want to within `ulps` units in the last place of max(|got|, |want|, floor). The floor is
/// the magnitude below which rounding of a larger intermediate (e.g. an update that nearly cancels
/// the weight) is what is left.
inline void CheckUlps(const std::vector<float>& got, const std::vector<float>& want, double ulps, double floor,
                      const char* what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double magnitude =
        std::max({std::fabs(static_cast<double>(got[i])), std::fabs(static_cast<double>(want[i])), floor});
    if (std::fabs(static_cast<double>(got[i]) - want[i]) > ulps * FLT_EPSILON * magnitude) {
      FAIL_CHECK(what << "[" << i << "]: " << got[i] << " vs " << want[i]);
      return;
    }
  }
}

/// Same length and the same bits.
inline bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace sieve::testing
