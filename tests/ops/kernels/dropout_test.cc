// Tests for Bernoulli dropout (ops/kernels/dropout.h): the CPU kernel against the reference on
// awkward sizes and stream offsets, the Tensor API and its errors, the statistics SPEC 2.6 asks
// for, the backward's regenerated mask, reproducibility, and a finite-difference gradient check.
#include "ops/kernels/dropout.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::BitwiseEqual;
using testing::SymmetricValues;

// |observed - expected| within `sigmas` standard deviations.
void CheckWithinSigmas(double observed, double expected, double sigma, double sigmas, const char* what) {
  INFO(what << ": observed " << observed << ", expected " << expected << " +- " << sigmas << " x " << sigma);
  CHECK(std::fabs(observed - expected) <= sigmas * sigma);
}

// Sizes around the 4-element Philox block, the 64-element chunk and the parallel threshold.
const int64_t kSizes[] = {1, 2, 3, 4, 5, 63, 64, 65, 129, 1000, 16383, 16384 + 67, 100003};
const uint64_t kFirsts[] = {0, 1, 2, 3, 6, 130};

TEST_CASE("CPU dropout equals the reference bit for bit", "[ops][kernels][dropout]") {
  const RandomStream stream{1234, MakeStreamId(StreamKind::kDropout, 2, 9)};
  for (const float p : {0.0f, 0.1f, 0.5f, 0.9f}) {
    for (const int64_t n : kSizes) {
      for (const uint64_t first : kFirsts) {
        if (n > 1000 && first != 0 && first != 3) continue;  // large sizes: one aligned, one unaligned start
        INFO("p " << p << ", n " << n << ", first " << first);
        const std::vector<float> x = SymmetricValues(n, static_cast<uint32_t>(n), 2.0f);
        std::vector<float> expected(x.size()), got(x.size(), NAN);
        ref::DropoutForward(x.data(), expected.data(), n, p, stream, first);
        cpu::ApplyDropout(x.data(), got.data(), n, p, stream, first);
        CHECK(BitwiseEqual(got, expected));
        std::vector<float> in_place = x;
        cpu::ApplyDropout(in_place.data(), in_place.data(), n, p, stream, first);
        CHECK(BitwiseEqual(in_place, expected));
      }
    }
  }
}

TEST_CASE("The keep rule is u >= p, also exactly at the boundary", "[ops][kernels][dropout]") {
  const RandomStream stream{31, 4};
  const int64_t n = 200;
  const std::vector<float> x(static_cast<size_t>(n), 1.0f);
  for (const int64_t k : {int64_t{0}, int64_t{5}, int64_t{66}, int64_t{199}}) {
    // p equal to element k's uniform keeps element k and drops every element with a smaller one.
    const float p = stream.Uniform(static_cast<uint64_t>(k));
    REQUIRE(p < 1.0f);
    const uint32_t threshold = DropoutKeepThreshold(p);
    CHECK(UniformFromBits(threshold << 8) >= p);
    if (threshold > 0) CHECK(UniformFromBits((threshold - 1) << 8) < p);
    std::vector<float> y(static_cast<size_t>(n));
    cpu::ApplyDropout(x.data(), y.data(), n, p, stream, 0);
    CHECK(y[k] == DropoutScale(p));
    for (int64_t i = 0; i < n; ++i) CHECK((y[i] != 0.0f) == (stream.Uniform(static_cast<uint64_t>(i)) >= p));
  }
  CHECK(DropoutKeepThreshold(0.0f) == 0u);
  CHECK(DropoutKeepThreshold(0.5f) == 1u << 23);
}

TEST_CASE("Dropped elements are +0 even where the input is NaN or infinite", "[ops][kernels][dropout]") {
  const RandomStream stream{8, 1};
  const int64_t n = 256;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = i % 3 == 0 ? NAN : (i % 3 == 1 ? -INFINITY : -1.0f);
  std::vector<float> y(x.size()), expected(x.size());
  cpu::ApplyDropout(x.data(), y.data(), n, 0.5f, stream, 0);
  ref::DropoutForward(x.data(), expected.data(), n, 0.5f, stream, 0);
  CHECK(BitwiseEqual(y, expected));
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (stream.Uniform(static_cast<uint64_t>(i)) >= 0.5f) continue;
    ++dropped;
    CHECK(std::signbit(y[i]) == false);
    CHECK(y[i] == 0.0f);
  }
  CHECK(dropped > 0);
}

TEST_CASE("Dropout of a slice of the stream is the slice of the dropout", "[ops][kernels][dropout]") {
  const RandomStream stream{77, 5};
  const int64_t n = 1000;
  const std::vector<float> x = SymmetricValues(n, 3, 2.0f);
  std::vector<float> whole(x.size());
  cpu::ApplyDropout(x.data(), whole.data(), n, 0.4f, stream, 0);
  for (const int64_t begin : {int64_t{1}, int64_t{7}, int64_t{64}, int64_t{333}}) {
    std::vector<float> part(static_cast<size_t>(n - begin));
    cpu::ApplyDropout(x.data() + begin, part.data(), n - begin, 0.4f, stream, static_cast<uint64_t>(begin));
    CHECK(BitwiseEqual(part, std::vector<float>(whole.begin() + begin, whole.end())));
  }
}

TEST_CASE("Dropout with p = 0 is the identity", "[ops][kernels][dropout]") {
  const std::vector<float> x = SymmetricValues(777, 1, 2.0f);
  Tensor in = Tensor::FromVector({777}, x), out = Tensor::Zeros({777});
  REQUIRE(DropoutForward(in, out, {0.0f, {1, 2}}).ok());
  CHECK(BitwiseEqual(out.ToVector(), x));
}

TEST_CASE("The Tensor API follows the row-major element index and checks its arguments", "[ops][kernels][dropout]") {
  const DropoutAttr attr{0.3f, {5, MakeStreamId(StreamKind::kDropout, 0, 1)}};
  const std::vector<float> x = SymmetricValues(6 * 7, 11, 2.0f);
  Tensor in = Tensor::FromVector({6, 7}, x);
  Tensor out = Tensor::Zeros({6, 7});
  REQUIRE(DropoutForward(in, out, attr).ok());
  std::vector<float> expected(x.size());
  ref::DropoutForward(x.data(), expected.data(), 42, attr.p, attr.stream, 0);
  CHECK(BitwiseEqual(out.ToVector(), expected));

  REQUIRE(DropoutForward(in, in, attr).ok());  // in place
  CHECK(BitwiseEqual(in.ToVector(), expected));

  for (const float bad_p : {-0.1f, 1.0f, 1.5f, NAN}) {
    const Status s = DropoutForward(out, out, {bad_p, attr.stream});
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("[0, 1)"));
  }
  const Status shape = DropoutForward(Tensor::Zeros({6, 7}), Tensor::Zeros({7, 6}), attr);
  CHECK(shape.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(shape.message(), Catch::Contains("[6, 7]") && Catch::Contains("[7, 6]"));
  const Status backward_shape = DropoutBackward(Tensor::Zeros({3}), Tensor::Zeros({4}), attr);
  CHECK_THAT(backward_shape.message(), Catch::Contains("dy [3]") && Catch::Contains("dx [4]"));
  Tensor wide = Tensor::Zeros({6, 14});
  const Status strided = DropoutForward(wide.Slice(1, 0, 14, 2), out, attr);
  CHECK(strided.code() == StatusCode::kFailedPrecondition);
  Tensor buffer = Tensor::Zeros({10});
  const Status overlap = DropoutForward(buffer.Slice(0, 0, 8), buffer.Slice(0, 2, 10), attr);
  CHECK(overlap.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(overlap.message(), Catch::Contains("overlaps"));
  CHECK(DropoutForward(Tensor::Zeros({0, 3}), Tensor::Zeros({0, 3}), attr).ok());
}

TEST_CASE("Drop frequency, count and scaled mean match p (SPEC 2.6)", "[ops][kernels][dropout][statistics]") {
  const int64_t units = 1024, iterations = 512;
  const std::vector<float> x = SymmetricValues(units, 21, 2.0f);
  for (const float p : {0.1f, 0.3f, 0.5f, 0.7f}) {
    INFO("p " << p);
    std::vector<int64_t> drops(static_cast<size_t>(units), 0);
    std::vector<double> mean_y(static_cast<size_t>(units), 0.0);
    int64_t total = 0, adjacent_both = 0;
    std::vector<float> y(static_cast<size_t>(units));
    for (int64_t it = 0; it < iterations; ++it) {
      const RandomStream stream{2718, MakeStreamId(StreamKind::kDropout, 1, static_cast<uint64_t>(it))};
      cpu::ApplyDropout(x.data(), y.data(), units, p, stream, 0);
      for (int64_t i = 0; i < units; ++i) {
        const bool dropped = y[i] == 0.0f;
        drops[i] += dropped;
        total += dropped;
        mean_y[i] += y[i];
        if (i > 0) adjacent_both += dropped && y[i - 1] == 0.0f;
      }
    }
    const double n = static_cast<double>(units * iterations);
    CheckWithinSigmas(static_cast<double>(total), p * n, std::sqrt(n * p * (1 - p)), 4, "dropped elements");
    // Every unit separately (1024 checks at once: 5 sigma).
    const double per_unit_sigma = std::sqrt(iterations * p * (1 - p));
    for (int64_t i = 0; i < units; ++i) {
      CheckWithinSigmas(static_cast<double>(drops[i]), p * iterations, per_unit_sigma, 5, "drops of one unit");
    }
    // Neighbours are dropped independently: P(both) = p^2.
    const double pairs = static_cast<double>((units - 1) * iterations);
    CheckWithinSigmas(static_cast<double>(adjacent_both), p * p * pairs, std::sqrt(pairs * p * p * (1 - p * p)), 4,
                      "adjacent pairs both dropped");
    // E[y] = x: the mean over iterations of y_i / x_i is 1 with variance p / (1 - p) / iterations,
    // and the average over units of those means has that variance over `units`.
    double ratio = 0.0;
    for (int64_t i = 0; i < units; ++i) ratio += mean_y[i] / iterations / x[i];
    CheckWithinSigmas(ratio / units, 1.0, std::sqrt(p / (1 - p) / n), 4, "mean of y / x");
  }
}

TEST_CASE("Backward regenerates exactly the forward mask", "[ops][kernels][dropout]") {
  const DropoutAttr attr{0.45f, {99, MakeStreamId(StreamKind::kDropout, 7, 3)}};
  const int64_t n = 5003;
  const std::vector<float> x = SymmetricValues(n, 8, 2.0f), dy = SymmetricValues(n, 9, 2.0f);
  Tensor y = Tensor::Zeros({n}), dx = Tensor::Zeros({n});
  REQUIRE(DropoutForward(Tensor::FromVector({n}, x), y, attr).ok());
  REQUIRE(DropoutBackward(Tensor::FromVector({n}, dy), dx, attr).ok());
  const std::vector<float> yv = y.ToVector(), dxv = dx.ToVector();
  const float scale = DropoutScale(attr.p);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool kept_forward = yv[i] != 0.0f;
    kept += kept_forward;
    CHECK(kept_forward == (dxv[i] != 0.0f));
    CHECK(dxv[i] == (kept_forward ? dy[i] * scale : 0.0f));
    if (kept_forward) CHECK(yv[i] == x[i] * scale);
  }
  CHECK(kept > 0);
  CHECK(kept < n);
  std::vector<float> expected(static_cast<size_t>(n));
  ref::DropoutBackward(dy.data(), expected.data(), n, attr.p, attr.stream, 0);
  CHECK(BitwiseEqual(dxv, expected));
}

TEST_CASE("Masks are reproducible from the seed and differ between streams", "[ops][kernels][dropout]") {
  const int64_t n = 1 << 16;
  const float p = 0.5f;
  const std::vector<float> x(static_cast<size_t>(n), 1.0f);
  auto mask = [&](uint64_t seed, uint64_t site, uint64_t iteration) {
    std::vector<float> y(static_cast<size_t>(n));
    cpu::ApplyDropout(x.data(), y.data(), n, p, {seed, MakeStreamId(StreamKind::kDropout, site, iteration)}, 0);
    return y;
  };
  const std::vector<float> base = mask(1, 0, 0);
  CHECK(BitwiseEqual(base, mask(1, 0, 0)));
  for (const std::vector<float>& other : {mask(1, 0, 1), mask(1, 1, 0), mask(2, 0, 0)}) {
    int64_t agree = 0;
    for (int64_t i = 0; i < n; ++i) agree += (base[i] == 0.0f) == (other[i] == 0.0f);
    // Independent masks agree with probability p^2 + (1 - p)^2 = 1/2 per element.
    CheckWithinSigmas(static_cast<double>(agree), n / 2.0, std::sqrt(n / 4.0), 4, "mask agreement");
  }
}

TEST_CASE("Dropout gradient matches central finite differences", "[ops][kernels][dropout][gradient]") {
  // L(x) = sum_i c_i y_i(x); dL/dx = DropoutBackward(c) under the same mask.
  const DropoutAttr attr{0.3f, {4, MakeStreamId(StreamKind::kDropout, 0, 0)}};
  const int64_t n = 37;
  std::vector<float> x = SymmetricValues(n, 13, 2.0f);
  const std::vector<float> c = SymmetricValues(n, 14, 2.0f);
  auto loss = [&](const std::vector<float>& in) {
    std::vector<float> y(static_cast<size_t>(n));
    cpu::ApplyDropout(in.data(), y.data(), n, attr.p, attr.stream, 0);
    double l = 0.0;
    for (int64_t i = 0; i < n; ++i) l += static_cast<double>(c[i]) * y[i];
    return l;
  };
  Tensor grad = Tensor::Zeros({n});
  REQUIRE(DropoutBackward(Tensor::FromVector({n}, c), grad, attr).ok());
  const std::vector<float> analytic = grad.ToVector();
  const float h = 1.0f / 64;  // a power of two, so x +- h is exact for |x| < 2
  for (int64_t i = 0; i < n; ++i) {
    std::vector<float> plus = x, minus = x;
    plus[i] += h;
    minus[i] -= h;
    const double numeric = (loss(plus) - loss(minus)) / (2.0 * h);
    INFO("element " << i);
    CHECK(analytic[i] == Approx(numeric).epsilon(1e-4).margin(1e-5));
  }
}

}  // namespace
}  // namespace sieve::ops
