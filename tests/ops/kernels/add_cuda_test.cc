// CUDA Add against the CPU (bitwise: both round the float sum once), contiguous, strided, in place.
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "ops/kernels/add.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::BitwiseEqual;
using testing::RandomTensor;

TEST_CASE("CUDA Add matches the CPU", "[cuda][ops][kernels][add]") {
  std::mt19937 rng(101);
  struct Case {
    int64_t rows, cols, pad;
  };
  const std::vector<Case> cases = {{1, 1, 0}, {5, 3, 0}, {33, 17, 4}, {300, 301, 0}, {1, 70000, 0}, {70, 1, 2}};
  const Device gpu = Device::CUDA();
  for (const Case& c : cases) {
    INFO(c.rows << " x " << c.cols << " pad " << c.pad);
    auto view = [&](const Tensor& t) { return c.pad == 0 ? t : t.Slice(1, 0, c.cols); };
    const Tensor a = RandomTensor({c.rows, c.cols + c.pad}, rng), b = RandomTensor({c.rows, c.cols + c.pad}, rng);
    const Tensor y_cpu = RandomTensor({c.rows, c.cols + c.pad}, rng), y_gpu = y_cpu.Clone(gpu);
    REQUIRE(Add(view(a), view(b), view(y_cpu)).ok());
    const Tensor a_gpu = a.Clone(gpu), b_gpu = b.Clone(gpu);
    REQUIRE(Add(view(a_gpu), view(b_gpu), view(y_gpu)).ok());
    CHECK(BitwiseEqual(y_gpu.ToVector(), y_cpu.ToVector()));
    REQUIRE(Add(view(a_gpu), view(b_gpu), view(a_gpu)).ok());  // in place
    CHECK(BitwiseEqual(view(a_gpu).ToVector(), view(y_cpu).ToVector()));
  }
}

}  // namespace
}  // namespace sieve::ops
