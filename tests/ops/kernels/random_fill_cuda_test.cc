// [cuda] tests for the random fills: CUDA uniform fills and bits equal the CPU's bit for bit;
// Gaussian fills equal them up to rare one-ulp differences of the double math libraries.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/kernels/random_fill.h"

namespace sieve::ops {
namespace {

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST_CASE("CUDA uniform fill and bits are bit-identical to the CPU", "[cuda][ops][kernels][random_fill]") {
  const RandomStream stream{77, MakeStreamId(StreamKind::kInit, 5, 0)};
  for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{784 * 2048}}) {
    INFO("n " << n);
    Tensor cpu_t = Tensor::Empty({n});
    Tensor gpu_t = Tensor::Empty({n}, DType::kFloat32, Device::CUDA());
    REQUIRE(FillUniform(cpu_t, -0.05f, 0.05f, stream).ok());
    REQUIRE(FillUniform(gpu_t, -0.05f, 0.05f, stream).ok());
    CHECK(BitwiseEqual(gpu_t.ToVector(), cpu_t.ToVector()));

    Tensor cpu_bits = Tensor::Empty({n}, DType::kInt32);
    Tensor gpu_bits = Tensor::Empty({n}, DType::kInt32, Device::CUDA());
    REQUIRE(FillRandomBits(cpu_bits, stream).ok());
    REQUIRE(FillRandomBits(gpu_bits, stream).ok());
    const Tensor back = gpu_bits.Clone(Device::CPU());
    CHECK(std::memcmp(back.raw_data(), cpu_bits.raw_data(), cpu_bits.nbytes()) == 0);
  }
}

TEST_CASE("CUDA normal fill equals the CPU up to rare one-ulp differences", "[cuda][ops][kernels][random_fill]") {
  // Float-rounded double results differ only where CPU libm and CUDA's double log/sin/cos straddle
  // a float rounding boundary; mean + stddev * z is then evaluated identically on both.
  const RandomStream stream{78, MakeStreamId(StreamKind::kInit, 6, 0)};
  const int64_t n = 2048 * 2048;
  Tensor cpu_t = Tensor::Empty({n});
  Tensor gpu_t = Tensor::Empty({n}, DType::kFloat32, Device::CUDA());
  REQUIRE(FillNormal(cpu_t, 0.1f, 0.02f, stream).ok());
  REQUIRE(FillNormal(gpu_t, 0.1f, 0.02f, stream).ok());
  const std::vector<float> host = cpu_t.ToVector(), device = gpu_t.ToVector();
  int64_t differ = 0;
  double max_diff = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (host[i] == device[i]) continue;
    ++differ;
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(host[i]) - device[i]) / std::fabs(host[i]));
  }
  INFO(differ << " of " << n << " values differ, by at most " << max_diff << " relative");
  CHECK(differ <= n / 10000);
  CHECK(max_diff <= 2.5e-7);  // one ulp of a value times stddev, seen through mean + stddev * z
}

}  // namespace
}  // namespace sieve::ops
