// CUDA SwapLeadingAxes against the CPU (bitwise: both copy), short and long rows.
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "ops/kernels/swap_axes.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::BitwiseEqual;
using testing::RandomTensor;

TEST_CASE("CUDA SwapLeadingAxes matches the CPU", "[cuda][ops][kernels][swap_axes]") {
  std::mt19937 rng(103);
  const std::vector<Shape> shapes = {{1, 1, 1}, {2, 3, 4}, {33, 65, 1}, {64, 16, 49}, {5, 70, 300}, {300, 300, 1}};
  const Device gpu = Device::CUDA();
  for (const Shape& s : shapes) {
    INFO(ShapeToString(s));
    const Tensor x = RandomTensor(s, rng);
    const Tensor y_cpu = Tensor::Zeros({s[1], s[0], s[2]}),
                 y_gpu = Tensor::Zeros({s[1], s[0], s[2]}, DType::kFloat32, gpu);
    REQUIRE(SwapLeadingAxes(x, y_cpu).ok());
    REQUIRE(SwapLeadingAxes(x.Clone(gpu), y_gpu).ok());
    CHECK(BitwiseEqual(y_gpu.ToVector(), y_cpu.ToVector()));
  }
}

}  // namespace
}  // namespace sieve::ops
