// CUDA activations against the CPU ones: every function, contiguous and strided, in place.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "ops/kernels/activation.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::RandomTensor;
using testing::CheckClose;

// Both sides are a few ulps from the exact value.
constexpr double kRtol = 2e-6;
constexpr double kAtol = 1e-30;

TEST_CASE("CUDA activations match the CPU", "[cuda][ops][kernels][activation]") {
  std::mt19937 rng(61);
  struct Case {
    int64_t rows, cols, pad;
  };
  const std::vector<Case> cases = {{1, 1, 0}, {5, 3, 0}, {33, 17, 4}, {300, 301, 0}, {1, 70000, 0}, {70, 1, 2}};
  const Device gpu = Device::CUDA();
  for (Activation kind : {Activation::kReLU, Activation::kTanh, Activation::kSigmoid})
    for (const Case& c : cases) {
      INFO(ActivationName(kind) << " " << c.rows << " x " << c.cols << " pad " << c.pad);
      auto view = [&](const Tensor& t) { return c.pad == 0 ? t : t.Slice(1, 0, c.cols); };
      const Tensor x = RandomTensor({c.rows, c.cols + c.pad}, rng, -25.0f, 25.0f);
      const Tensor y_cpu = RandomTensor({c.rows, c.cols + c.pad}, rng, -1.0f, 1.0f);
      const Tensor y_gpu = y_cpu.Clone(gpu);
      REQUIRE(ActivationForward(kind, view(x), view(y_cpu)).ok());
      REQUIRE(ActivationForward(kind, view(x.Clone(gpu)), view(y_gpu)).ok());
      CheckClose(y_gpu.ToVector(), y_cpu.ToVector(), kRtol, kAtol);

      const Tensor dy = RandomTensor({c.rows, c.cols + c.pad}, rng, -1.0f, 1.0f);
      const Tensor dx_cpu = RandomTensor({c.rows, c.cols + c.pad}, rng, -1.0f, 1.0f);
      const Tensor dx_gpu = dx_cpu.Clone(gpu);
      REQUIRE(ActivationBackward(kind, view(y_cpu), view(dy), view(dx_cpu)).ok());
      REQUIRE(ActivationBackward(kind, view(y_cpu.Clone(gpu)), view(dy.Clone(gpu)), view(dx_gpu)).ok());
      CheckClose(dx_gpu.ToVector(), dx_cpu.ToVector(), kRtol, kAtol);

      // In place on the device: y over x, then dx over dy.
      const Tensor x_gpu = x.Clone(gpu);
      REQUIRE(ActivationForward(kind, view(x_gpu), view(x_gpu)).ok());
      CheckClose(view(x_gpu).ToVector(), view(y_cpu).ToVector(), kRtol, kAtol);
      const Tensor dy_gpu = dy.Clone(gpu);
      REQUIRE(ActivationBackward(kind, view(x_gpu), view(dy_gpu), view(dy_gpu)).ok());
      CheckClose(view(dy_gpu).ToVector(), view(dx_cpu).ToVector(), kRtol, 1e-6);
    }
}

}  // namespace
}  // namespace sieve::ops
