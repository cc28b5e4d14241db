// Tests for the parameter initialisers (runtime/params/initializer.h): Caffe's fan arithmetic,
// sample moments of every filler against its formula, equality with the underlying random fill,
// reproducibility from the stream, names and errors.
#include "runtime/params/initializer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/kernels/random_fill.h"

namespace sieve::runtime {
namespace {

struct Moments {
  double mean = 0.0;
  double variance = 0.0;
  double max_abs = 0.0;
  double min = 0.0;
  double max = 0.0;
};

Moments SampleMoments(const std::vector<float>& x) {
  Moments m;
  m.min = m.max = x.front();
  for (float v : x) {
    m.mean += v;
    m.max_abs = std::max(m.max_abs, std::fabs(static_cast<double>(v)));
    m.min = std::min(m.min, static_cast<double>(v));
    m.max = std::max(m.max, static_cast<double>(v));
  }
  m.mean /= static_cast<double>(x.size());
  for (float v : x) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= static_cast<double>(x.size());
  return m;
}

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

RandomStream Stream(uint64_t seed, uint64_t site) {
  return RandomStream{seed, MakeStreamId(StreamKind::kInit, site, 0)};
}

// An FC weight [out, in] = [256, 512]: fan_in 512, fan_out 256, average 384, so a filler that picks
// the wrong fan misses its variance by a third or more, far outside the tolerances below.
const Shape kWeightShape = {256, 512};
const double kCount = 256.0 * 512.0;

// Sampling tolerances: 6 standard errors of the sample mean and of the sample variance (whose
// variance is (kurtosis - 1) sigma^4 / n: kurtosis 1.8 for a uniform, 3 for a Gaussian).
double MeanTolerance(double variance) { return 6.0 * std::sqrt(variance / kCount); }
double VarianceTolerance(double variance, double kurtosis) {
  return 6.0 * variance * std::sqrt((kurtosis - 1.0) / kCount);
}

TEST_CASE("Fans follow Caffe's blob arithmetic", "[runtime][params][init]") {
  const Fans fc = ComputeFans({2048, 784});
  CHECK(fc.fan_in == 784);
  CHECK(fc.fan_out == 2048);
  const Fans conv = ComputeFans({8, 3, 5, 5});
  CHECK(conv.fan_in == 75);
  CHECK(conv.fan_out == 200);
  const Fans bias = ComputeFans({10});
  CHECK(bias.fan_in == 1);
  CHECK(bias.fan_out == 10);
  const Fans scalar = ComputeFans({});
  CHECK(scalar.fan_in == 1);
  CHECK(scalar.fan_out == 1);
  CHECK(VarianceNormFan({6, 3}, VarianceNorm::kFanIn) == 6.0);
  CHECK(VarianceNormFan({6, 3}, VarianceNorm::kFanOut) == 3.0);
  CHECK(VarianceNormFan({6, 3}, VarianceNorm::kAverage) == 4.5);  // not rounded to an integer
}

TEST_CASE("Constant filler writes the value and draws nothing", "[runtime][params][init]") {
  Tensor t = Tensor::Empty({3, 5});
  REQUIRE(Initialize(t, InitSpec::Constant(0.25f), Stream(1, 0)).ok());
  for (float v : t.ToVector()) CHECK(v == 0.25f);
  REQUIRE(Initialize(t, InitSpec(), Stream(1, 0)).ok());  // Caffe's default filler: constant 0
  for (float v : t.ToVector()) CHECK(v == 0.0f);
}

TEST_CASE("Uniform and gaussian fillers have the requested moments", "[runtime][params][init]") {
  Tensor t = Tensor::Empty(kWeightShape);
  SECTION("uniform") {
    REQUIRE(Initialize(t, InitSpec::Uniform(-0.5f, 1.5f), Stream(3, 0)).ok());
    const Moments m = SampleMoments(t.ToVector());
    const double variance = 4.0 / 12.0;
    CHECK(m.min >= -0.5);
    CHECK(m.max <= 1.5);
    CHECK(std::fabs(m.mean - 0.5) < MeanTolerance(variance));
    CHECK(std::fabs(m.variance - variance) < VarianceTolerance(variance, 1.8));
  }
  SECTION("gaussian") {
    REQUIRE(Initialize(t, InitSpec::Gaussian(0.2f, 0.05f), Stream(4, 0)).ok());
    const Moments m = SampleMoments(t.ToVector());
    const double variance = 0.05 * 0.05;
    CHECK(std::fabs(m.mean - 0.2) < MeanTolerance(variance));
    CHECK(std::fabs(m.variance - variance) < VarianceTolerance(variance, 3.0));
  }
}

TEST_CASE("Xavier is uniform with variance 1 / n for each variance_norm", "[runtime][params][init]") {
  const std::pair<VarianceNorm, double> cases[] = {
      {VarianceNorm::kFanIn, 512.0}, {VarianceNorm::kFanOut, 256.0}, {VarianceNorm::kAverage, 384.0}};
  for (const auto& [norm, n] : cases) {
    INFO("variance_norm " << VarianceNormName(norm));
    Tensor t = Tensor::Empty(kWeightShape);
    REQUIRE(Initialize(t, InitSpec::Xavier(norm), Stream(5, 1)).ok());
    const std::vector<float> x = t.ToVector();
    const Moments m = SampleMoments(x);
    const double scale = std::sqrt(3.0 / n);
    CHECK(m.max_abs <= scale * (1.0 + 1e-6));
    CHECK(m.max_abs >= scale * 0.999);  // the samples reach out to the bound
    CHECK(std::fabs(m.mean) < MeanTolerance(1.0 / n));
    CHECK(std::fabs(m.variance - 1.0 / n) < VarianceTolerance(1.0 / n, 1.8));

    // Exactly the uniform fill of [-sqrt(3 / n), sqrt(3 / n)] from the same stream.
    Tensor want = Tensor::Empty(kWeightShape);
    const float s = static_cast<float>(scale);
    REQUIRE(ops::FillUniform(want, -s, s, Stream(5, 1)).ok());
    CHECK(BitwiseEqual(x, want.ToVector()));
  }
}

TEST_CASE("MSRA is a zero-mean gaussian with std sqrt(2 / n)", "[runtime][params][init]") {
  const std::pair<VarianceNorm, double> cases[] = {
      {VarianceNorm::kFanIn, 512.0}, {VarianceNorm::kFanOut, 256.0}, {VarianceNorm::kAverage, 384.0}};
  for (const auto& [norm, n] : cases) {
    INFO("variance_norm " << VarianceNormName(norm));
    Tensor t = Tensor::Empty(kWeightShape);
    REQUIRE(Initialize(t, InitSpec::Msra(norm), Stream(6, 2)).ok());
    const std::vector<float> x = t.ToVector();
    const Moments m = SampleMoments(x);
    const double variance = 2.0 / n;
    CHECK(std::fabs(m.mean) < MeanTolerance(variance));
    CHECK(std::fabs(m.variance - variance) < VarianceTolerance(variance, 3.0));

    Tensor want = Tensor::Empty(kWeightShape);
    REQUIRE(ops::FillNormal(want, 0.0f, static_cast<float>(std::sqrt(variance)), Stream(6, 2)).ok());
    CHECK(BitwiseEqual(x, want.ToVector()));
  }
}

TEST_CASE("A conv weight takes its fans from all trailing axes", "[runtime][params][init]") {
  // [Cout, Cin, k, k] = [32, 16, 3, 3]: fan_in = 144, so xavier's bound is sqrt(3 / 144) = 0.144.
  Tensor t = Tensor::Empty({32, 16, 3, 3});
  REQUIRE(Initialize(t, InitSpec::Xavier(), Stream(7, 0)).ok());
  const Moments m = SampleMoments(t.ToVector());
  CHECK(m.max_abs <= std::sqrt(3.0 / 144.0) * (1.0 + 1e-6));
  CHECK(m.max_abs >= std::sqrt(3.0 / 144.0) * 0.99);
}

TEST_CASE("Fills are reproducible from the stream and differ across streams", "[runtime][params][init]") {
  for (const InitSpec& spec :
       {InitSpec::Uniform(-1.0f, 1.0f), InitSpec::Gaussian(0.0f, 1.0f), InitSpec::Xavier(), InitSpec::Msra()}) {
    INFO(InitSpecToString(spec));
    Tensor a = Tensor::Empty({17, 9}), b = Tensor::Empty({17, 9}), c = Tensor::Empty({17, 9}),
           d = Tensor::Empty({17, 9});
    REQUIRE(Initialize(a, spec, Stream(11, 3)).ok());
    REQUIRE(Initialize(b, spec, Stream(11, 3)).ok());
    REQUIRE(Initialize(c, spec, Stream(12, 3)).ok());  // another seed
    REQUIRE(Initialize(d, spec, Stream(11, 4)).ok());  // another parameter
    CHECK(BitwiseEqual(a.ToVector(), b.ToVector()));
    CHECK_FALSE(BitwiseEqual(a.ToVector(), c.ToVector()));
    CHECK_FALSE(BitwiseEqual(a.ToVector(), d.ToVector()));
  }
}

TEST_CASE("Initializer names parse and print", "[runtime][params][init]") {
  for (int i = 0; i < static_cast<int>(InitType::kCount); ++i) {
    const auto type = static_cast<InitType>(i);
    const StatusOr<InitType> parsed = ParseInitType(InitTypeName(type));
    REQUIRE(parsed.ok());
    CHECK(*parsed == type);
  }
  const StatusOr<InitType> kaiming = ParseInitType("kaiming");
  REQUIRE(kaiming.ok());
  CHECK(*kaiming == InitType::kMsra);
  const StatusOr<InitType> bad = ParseInitType("glorot");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.status().message(), Catch::Contains("'glorot'") && Catch::Contains("constant, uniform, gaussian, "
                                                                                    "xavier, msra"));

  const StatusOr<VarianceNorm> avg = ParseVarianceNorm("AVERAGE");
  REQUIRE(avg.ok());
  CHECK(*avg == VarianceNorm::kAverage);
  const StatusOr<VarianceNorm> bad_norm = ParseVarianceNorm("fan_in");
  REQUIRE_FALSE(bad_norm.ok());
  CHECK_THAT(bad_norm.status().message(), Catch::Contains("FAN_IN, FAN_OUT, AVERAGE"));

  CHECK(InitSpecToString(InitSpec::Uniform(-1.0f, 2.0f)) == "uniform(-1, 2)");
  CHECK(InitSpecToString(InitSpec::Msra(VarianceNorm::kFanOut)) == "msra(FAN_OUT)");
}

TEST_CASE("Invalid specs and targets are refused with a Status", "[runtime][params][init]") {
  Tensor t = Tensor::Empty({4, 6});
  const Status reversed = Initialize(t, InitSpec::Uniform(1.0f, -1.0f), Stream(1, 0));
  CHECK(reversed.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(reversed.message(), Catch::Contains("uniform(1, -1)"));
  const Status negative_std = Initialize(t, InitSpec::Gaussian(0.0f, -0.1f), Stream(1, 0));
  CHECK(negative_std.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(negative_std.message(), Catch::Contains("std >= 0"));
  CHECK_FALSE(Initialize(t, InitSpec::Constant(NAN), Stream(1, 0)).ok());

  const Status strided = Initialize(t.Slice(1, 0, 6, 2), InitSpec::Xavier(), Stream(1, 0));
  CHECK(strided.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(strided.message(), Catch::Contains("xavier(FAN_IN)") && Catch::Contains("contiguous"));
  const Status ints = Initialize(Tensor::Empty({4}, DType::kInt32), InitSpec::Constant(1.0f), Stream(1, 0));
  CHECK(ints.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(ints.message(), Catch::Contains("int32[4]"));
}

}  // namespace
}  // namespace sieve::runtime
