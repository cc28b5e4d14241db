// [cuda] tests for Bernoulli dropout: the CUDA kernel draws the reference's mask and values bit
// for bit (unaligned stream offsets, in place, forward and backward through the Tensor API).
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <vector>

#include "ops/kernels/dropout.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::BitwiseEqual;
using testing::SymmetricValues;

Tensor OnDevice(const std::vector<float>& v) {
  return Tensor::FromVector({static_cast<int64_t>(v.size())}, v).Clone(Device::CUDA());
}

TEST_CASE("CUDA dropout equals the reference bit for bit", "[cuda][ops][kernels][dropout]") {
  const RandomStream stream{4321, MakeStreamId(StreamKind::kDropout, 3, 11)};
  for (const float p : {0.0f, 0.3f, 0.7f}) {
    for (const int64_t n : {int64_t{1}, int64_t{3}, int64_t{64}, int64_t{1001}, int64_t{1} << 20}) {
      for (const uint64_t first : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{130}}) {
        INFO("p " << p << ", n " << n << ", first " << first);
        const std::vector<float> x = SymmetricValues(n, static_cast<uint32_t>(n), 2.0f);
        std::vector<float> expected(x.size());
        ref::DropoutForward(x.data(), expected.data(), n, p, stream, first);
        Tensor in = OnDevice(x);
        Tensor out = Tensor::Empty({n}, DType::kFloat32, Device::CUDA());
        cuda::ApplyDropout(in.data<float>(), out.data<float>(), n, p, stream, first);
        CHECK(BitwiseEqual(out.ToVector(), expected));
        cuda::ApplyDropout(in.data<float>(), in.data<float>(), n, p, stream, first);  // in place
        CHECK(BitwiseEqual(in.ToVector(), expected));
      }
    }
  }
}

TEST_CASE("CUDA dropout Tensor API: forward and backward share the CPU's mask", "[cuda][ops][kernels][dropout]") {
  const DropoutAttr attr{0.5f, {17, MakeStreamId(StreamKind::kDropout, 1, 2)}};
  const int64_t rows = 128, cols = 1000;
  const std::vector<float> x = SymmetricValues(rows * cols, 5, 2.0f), dy = SymmetricValues(rows * cols, 6, 2.0f);
  Tensor y_cpu = Tensor::Zeros({rows, cols}), dx_cpu = Tensor::Zeros({rows, cols});
  REQUIRE(DropoutForward(Tensor::FromVector({rows, cols}, x), y_cpu, attr).ok());
  REQUIRE(DropoutBackward(Tensor::FromVector({rows, cols}, dy), dx_cpu, attr).ok());
  Tensor y = Tensor::Empty({rows, cols}, DType::kFloat32, Device::CUDA());
  Tensor dx = Tensor::Empty({rows, cols}, DType::kFloat32, Device::CUDA());
  REQUIRE(DropoutForward(Tensor::FromVector({rows, cols}, x).Clone(Device::CUDA()), y, attr).ok());
  REQUIRE(DropoutBackward(Tensor::FromVector({rows, cols}, dy).Clone(Device::CUDA()), dx, attr).ok());
  CHECK(BitwiseEqual(y.ToVector(), y_cpu.ToVector()));
  CHECK(BitwiseEqual(dx.ToVector(), dx_cpu.ToVector()));
  const Status devices = DropoutForward(Tensor::Zeros({rows, cols}), y, attr);
  CHECK(devices.code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sieve::ops
