// SwapLeadingAxes: the CPU path against the reference on shapes across the block size and the
// OpenMP threshold (R = 1 is a plain transpose), swapping back, and the errors.
#include "ops/kernels/swap_axes.h"

#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::BitwiseEqual;
using testing::RandomTensor;

TEST_CASE("SwapLeadingAxes on the CPU matches the reference", "[ops][kernels][swap_axes]") {
  std::mt19937 rng(59);
  const std::vector<Shape> shapes = {{1, 1, 1},  {2, 3, 4},     {33, 65, 1}, {64, 16, 49},
                                     {5, 70, 3}, {300, 300, 1}, {3, 2, 0}};
  for (const Shape& s : shapes) {
    INFO(ShapeToString(s));
    const Tensor x = RandomTensor(s, rng);
    const Tensor want = Tensor::Zeros({s[1], s[0], s[2]}), got = Tensor::Zeros({s[1], s[0], s[2]});
    ref::SwapLeadingAxes(x, want);
    REQUIRE(SwapLeadingAxes(x, got).ok());
    CHECK(BitwiseEqual(got.ToVector(), want.ToVector()));
    const Tensor back = Tensor::Zeros(s);
    REQUIRE(SwapLeadingAxes(got, back).ok());
    CHECK(BitwiseEqual(back.ToVector(), x.ToVector()));
  }
}

TEST_CASE("SwapLeadingAxes puts each row where the definition says", "[ops][kernels][swap_axes]") {
  // x[a, b, r] = 100 a + 10 b + r.
  std::vector<float> values;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int r = 0; r < 2; ++r) values.push_back(static_cast<float>(100 * a + 10 * b + r));
  const Tensor y = Tensor::Zeros({3, 2, 2});
  REQUIRE(SwapLeadingAxes(Tensor::FromVector({2, 3, 2}, values), y).ok());
  CHECK(y.ToVector() == std::vector<float>{0, 1, 100, 101, 10, 11, 110, 111, 20, 21, 120, 121});
}

TEST_CASE("SwapLeadingAxes rejects wrong shapes, layouts and overlap", "[ops][kernels][swap_axes]") {
  Status s = SwapLeadingAxes(Tensor::Zeros({2, 3, 4}), Tensor::Zeros({2, 3, 4}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[2, 3, 4]") && Catch::Contains("[3, 2, 4]"));

  s = SwapLeadingAxes(Tensor::Zeros({2, 3}), Tensor::Zeros({3, 2}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("3-D"));

  s = SwapLeadingAxes(Tensor::Zeros({2, 3, 8}).Slice(2, 0, 4), Tensor::Zeros({3, 2, 4}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("contiguous"));

  const Tensor buffer = Tensor::Zeros({2, 2, 4});
  s = SwapLeadingAxes(buffer, buffer);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("in place"));
}

}  // namespace
}  // namespace sieve::ops
