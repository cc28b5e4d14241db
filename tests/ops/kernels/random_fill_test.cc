// Tests for the random fills (ops/kernels/random_fill.h): CPU kernels against the references on
// awkward sizes and stream offsets, the Tensor API and its errors, moments of the filled values,
// and reproducibility from the seed.
#include "ops/kernels/random_fill.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

namespace sieve::ops {
namespace {

template <typename T>
bool BitwiseEqual(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

void CheckWithinSigmas(double observed, double expected, double sigma, double sigmas, const char* what) {
  INFO(what << ": observed " << observed << ", expected " << expected << " +- " << sigmas << " x " << sigma);
  CHECK(std::fabs(observed - expected) <= sigmas * sigma);
}

const int64_t kSizes[] = {1, 2, 3, 5, 63, 64, 65, 127, 1000, 16384 + 3, 70001};
const uint64_t kFirsts[] = {0, 1, 3, 62, 64, 129};

TEST_CASE("CPU fills equal the references bit for bit", "[ops][kernels][random_fill]") {
  const RandomStream stream{555, MakeStreamId(StreamKind::kInit, 4, 0)};
  for (const int64_t n : kSizes) {
    for (const uint64_t first : kFirsts) {
      if (n > 1000 && first != 0 && first != 3) continue;  // large sizes: one aligned, one unaligned start
      INFO("n " << n << ", first " << first);
      std::vector<float> expected(static_cast<size_t>(n)), got(static_cast<size_t>(n), NAN);
      ref::FillUniform(expected.data(), n, -0.25f, 0.75f, stream, first);
      cpu::FillUniform(got.data(), n, -0.25f, 0.75f, stream, first);
      CHECK(BitwiseEqual(got, expected));
      ref::FillNormal(expected.data(), n, 0.5f, 0.01f, stream, first);
      cpu::FillNormal(got.data(), n, 0.5f, 0.01f, stream, first);
      CHECK(BitwiseEqual(got, expected));
      std::vector<uint32_t> bits_expected(static_cast<size_t>(n)), bits_got(static_cast<size_t>(n), 0);
      ref::FillBits(bits_expected.data(), n, stream, first);
      cpu::FillBits(bits_got.data(), n, stream, first);
      CHECK(BitwiseEqual(bits_got, bits_expected));
    }
  }
}

TEST_CASE("Uniform fill from 0 to 1 is the stream's uniform floats", "[ops][kernels][random_fill]") {
  const RandomStream stream{8, 9};
  Tensor t = Tensor::Empty({5, 11});
  REQUIRE(FillUniform(t, 0.0f, 1.0f, stream).ok());
  const std::vector<float> v = t.ToVector();
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == stream.Uniform(i));
}

TEST_CASE("Fill Tensor API writes the row-major stream and checks its arguments", "[ops][kernels][random_fill]") {
  const RandomStream stream{3, MakeStreamId(StreamKind::kInit, 0, 0)};
  Tensor t = Tensor::Empty({13, 7});
  REQUIRE(FillNormal(t, 0.0f, 2.0f, stream).ok());
  std::vector<float> expected(13 * 7);
  ref::FillNormal(expected.data(), 13 * 7, 0.0f, 2.0f, stream, 0);
  CHECK(BitwiseEqual(t.ToVector(), expected));

  Tensor bits = Tensor::Empty({9}, DType::kInt32);
  REQUIRE(FillRandomBits(bits, stream).ok());
  for (int i = 0; i < 9; ++i) CHECK(static_cast<uint32_t*>(bits.raw_data())[i] == stream.Bits(i));

  const Status reversed = FillUniform(t, 1.0f, -1.0f, stream);
  CHECK(reversed.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(reversed.message(), Catch::Contains("low <= high") && Catch::Contains("[13, 7]"));
  CHECK_FALSE(FillUniform(t, -INFINITY, 0.0f, stream).ok());
  CHECK_FALSE(FillUniform(t, -3e38f, 3e38f, stream).ok());  // the range overflows
  CHECK_FALSE(FillNormal(t, 0.0f, -1.0f, stream).ok());
  CHECK_FALSE(FillNormal(t, NAN, 1.0f, stream).ok());
  CHECK(FillUniform(bits, 0.0f, 1.0f, stream).code() == StatusCode::kInvalidArgument);
  CHECK(FillRandomBits(t, stream).code() == StatusCode::kInvalidArgument);
  const Status strided = FillUniform(t.Slice(1, 0, 7, 2), 0.0f, 1.0f, stream);
  CHECK(strided.code() == StatusCode::kFailedPrecondition);
  CHECK(FillNormal(Tensor::Empty({0}), 0.0f, 1.0f, stream).ok());
  CHECK(FillUniform(t, 2.0f, 2.0f, stream).ok());  // a degenerate range is a constant fill
  for (float x : t.ToVector()) CHECK(x == 2.0f);
}

TEST_CASE("Uniform fill has the moments and range of its interval", "[ops][kernels][random_fill][statistics]") {
  const int64_t n = int64_t{1} << 18;
  const float low = -3.0f, high = 5.0f;
  std::vector<float> v(static_cast<size_t>(n));
  cpu::FillUniform(v.data(), n, low, high, {2, MakeStreamId(StreamKind::kInit, 2, 0)}, 0);
  double sum = 0.0, sumsq = 0.0;
  for (float x : v) {
    sum += x;
    sumsq += static_cast<double>(x) * x;
  }
  const double width = high - low, mean = sum / n, var = sumsq / n - mean * mean;
  CheckWithinSigmas(mean, (low + high) / 2.0, width / std::sqrt(12.0 * n), 4, "mean");
  CheckWithinSigmas(var, width * width / 12.0, width * width / std::sqrt(180.0 * n), 4, "variance");
  CHECK(*std::min_element(v.begin(), v.end()) >= low);
  CHECK(*std::max_element(v.begin(), v.end()) <= high);
  CHECK(*std::min_element(v.begin(), v.end()) < low + 0.001f);
  CHECK(*std::max_element(v.begin(), v.end()) > high - 0.001f);
}

TEST_CASE("Normal fill has the moments of its mean and stddev", "[ops][kernels][random_fill][statistics]") {
  const int64_t n = int64_t{1} << 18;
  const double mu = 2.0, sd = 0.5;
  std::vector<float> v(static_cast<size_t>(n));
  cpu::FillNormal(v.data(), n, static_cast<float>(mu), static_cast<float>(sd),
                  {2, MakeStreamId(StreamKind::kInit, 3, 0)}, 0);
  double sum = 0.0, sumsq = 0.0;
  int64_t within_one_sd = 0;
  for (float x : v) {
    sum += x;
    sumsq += (x - mu) * (x - mu);
    within_one_sd += std::fabs(x - mu) < sd;
  }
  CheckWithinSigmas(sum / n, mu, sd / std::sqrt(static_cast<double>(n)), 4, "mean");
  CheckWithinSigmas(sumsq / n, sd * sd, sd * sd * std::sqrt(2.0 / n), 4, "variance");
  const double p1 = std::erf(1.0 / std::sqrt(2.0));
  CheckWithinSigmas(static_cast<double>(within_one_sd), n * p1, std::sqrt(n * p1 * (1 - p1)), 4, "within 1 sd");
}

TEST_CASE("Fills are reproducible from the seed and differ between streams", "[ops][kernels][random_fill]") {
  auto fill = [](uint64_t seed, uint64_t site) {
    Tensor t = Tensor::Empty({300});
    SIEVE_CHECK_OK(FillNormal(t, 0.0f, 1.0f, {seed, MakeStreamId(StreamKind::kInit, site, 0)}));
    return t.ToVector();
  };
  CHECK(BitwiseEqual(fill(10, 1), fill(10, 1)));
  for (const std::vector<float>& other : {fill(10, 2), fill(11, 1)}) {
    const std::vector<float> base = fill(10, 1);
    int64_t equal = 0;
    for (size_t i = 0; i < base.size(); ++i) equal += base[i] == other[i];
    CHECK(equal == 0);
  }
}

}  // namespace
}  // namespace sieve::ops
