// [cuda] tests for framework/rng.h: CUDA kernels draw exactly the host's bits and uniform floats
// for the same seed, stream and counter, and the host's Box-Muller normals up to rare one-ulp
// differences of the double-precision math libraries.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "framework/rng.h"
#include "framework/tensor.h"
#include "ops/kernels/random_fill.h"

namespace sieve {
namespace {

// The host copy of a device tensor's 32-bit words.
std::vector<uint32_t> HostWords(const Tensor& t) {
  const Tensor host = t.Clone(Device::CPU());
  std::vector<uint32_t> words(static_cast<size_t>(t.numel()));
  std::memcpy(words.data(), host.raw_data(), words.size() * sizeof(uint32_t));
  return words;
}

uint32_t FloatBits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

TEST_CASE("CUDA Philox bits and uniforms equal the host's bit for bit", "[cuda][framework][rng]") {
  const RandomStream streams[] = {
      {0, 0}, {0xfedcba9876543210ULL, MakeStreamId(StreamKind::kDropout, 12, 345)}, {~uint64_t{0}, ~uint64_t{0}}};
  // Unaligned starts, and a start just below the 2^32 carry of the block index.
  const uint64_t firsts[] = {0, 1, 3, 1000003, (uint64_t{1} << 34) - 37};
  for (const RandomStream& stream : streams) {
    for (const uint64_t first : firsts) {
      for (const int64_t n : {int64_t{1}, int64_t{5}, int64_t{4099}, int64_t{1} << 18}) {
        INFO("seed " << stream.seed << ", stream " << stream.id << ", first " << first << ", n " << n);
        Tensor bits = Tensor::Empty({n}, DType::kInt32, Device::CUDA());
        ops::cuda::FillBits(static_cast<uint32_t*>(bits.raw_data()), n, stream, first);
        Tensor uniform = Tensor::Empty({n}, DType::kFloat32, Device::CUDA());
        ops::cuda::FillUniform(uniform.data<float>(), n, 0.0f, 1.0f, stream, first);
        const std::vector<uint32_t> device_bits = HostWords(bits), device_uniform = HostWords(uniform);
        int64_t bit_mismatches = 0, uniform_mismatches = 0;
        for (int64_t k = 0; k < n; ++k) {
          const uint32_t host_bits = stream.Bits(first + static_cast<uint64_t>(k));
          bit_mismatches += device_bits[k] != host_bits;
          uniform_mismatches += device_uniform[k] != FloatBits(UniformFromBits(host_bits));
        }
        CHECK(bit_mismatches == 0);
        CHECK(uniform_mismatches == 0);
      }
    }
  }
}

TEST_CASE("CUDA Box-Muller normals equal the host's up to rare one-ulp differences", "[cuda][framework][rng]") {
  const RandomStream stream{20240601, MakeStreamId(StreamKind::kInit, 9, 0)};
  const int64_t n = int64_t{1} << 20;
  for (const uint64_t first : {uint64_t{0}, uint64_t{3}}) {
    Tensor normal = Tensor::Empty({n}, DType::kFloat32, Device::CUDA());
    ops::cuda::FillNormal(normal.data<float>(), n, 0.0f, 1.0f, stream, first);
    const std::vector<float> device = normal.ToVector();
    int64_t differ = 0;
    for (int64_t k = 0; k < n; ++k) {
      const float host = stream.Normal(first + static_cast<uint64_t>(k));
      if (device[k] == host) continue;
      ++differ;
      INFO("element " << k << ": device " << device[k] << ", host " << host);
      CHECK(std::fabs(device[k] - host) <= std::fabs(host) * 1.2e-7f);  // one ulp
    }
    // Double results straddle a float rounding boundary with probability ~2^-28 per value.
    CHECK(differ <= n / 10000);
  }
}

}  // namespace
}  // namespace sieve
