// Add: the CPU path against the reference (bitwise: a float sum is exactly rounded either way),
// contiguous N-D and strided 2-D, across the OpenMP threshold, in place, and the errors.
#include "ops/kernels/add.h"

#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::BitwiseEqual;
using testing::RandomTensor;

// A [rows, cols] view: contiguous when pad is 0, else inside rows of cols + pad.
Tensor View(const Tensor& base, int64_t cols, int64_t pad) { return pad == 0 ? base : base.Slice(1, 0, cols); }

TEST_CASE("Add on the CPU matches the reference", "[ops][kernels][add]") {
  std::mt19937 rng(41);
  struct Case {
    int64_t rows, cols, pad_a, pad_b, pad_y;
  };
  // 400 x 400 crosses the OpenMP threshold; 1 x 40000 is split into chunks.
  const std::vector<Case> cases = {{1, 1, 0, 0, 0},     {5, 3, 0, 0, 0},     {33, 17, 4, 0, 1}, {400, 400, 0, 0, 0},
                                   {260, 260, 3, 5, 0}, {1, 40000, 0, 0, 0}, {7, 1, 2, 2, 2}};
  for (const Case& c : cases) {
    INFO(c.rows << " x " << c.cols << " pads " << c.pad_a << " " << c.pad_b << " " << c.pad_y);
    const Tensor a = View(RandomTensor({c.rows, c.cols + c.pad_a}, rng), c.cols, c.pad_a);
    const Tensor b = View(RandomTensor({c.rows, c.cols + c.pad_b}, rng), c.cols, c.pad_b);
    const Tensor want = RandomTensor({c.rows, c.cols + c.pad_y}, rng), got = want.Clone();
    ref::Add(a, b, View(want, c.cols, c.pad_y));
    REQUIRE(Add(a, b, View(got, c.cols, c.pad_y)).ok());
    CHECK(BitwiseEqual(got.ToVector(), want.ToVector()));  // padding untouched too
  }
}

TEST_CASE("Add takes contiguous tensors of any rank", "[ops][kernels][add]") {
  std::mt19937 rng(43);
  const Tensor a = RandomTensor({3, 4, 5}, rng), b = RandomTensor({3, 4, 5}, rng);
  const Tensor y = Tensor::Zeros({3, 4, 5});
  REQUIRE(Add(a, b, y).ok());
  const std::vector<float> av = a.ToVector(), bv = b.ToVector(), yv = y.ToVector();
  for (size_t k = 0; k < yv.size(); ++k) CHECK(yv[k] == av[k] + bv[k]);
}

TEST_CASE("Add runs in place on either operand", "[ops][kernels][add]") {
  std::mt19937 rng(47);
  const Tensor a = RandomTensor({20, 30}, rng).Slice(1, 0, 25), b = RandomTensor({20, 25}, rng);
  const Tensor want = Tensor::Zeros({20, 25});
  REQUIRE(Add(a, b, want).ok());
  const Tensor a2 = a.Clone(), b2 = b.Clone();
  REQUIRE(Add(a, b, a).ok());
  CHECK(BitwiseEqual(a.ToVector(), want.ToVector()));
  REQUIRE(Add(a2, b2, b2).ok());
  CHECK(BitwiseEqual(b2.ToVector(), want.ToVector()));
}

TEST_CASE("Add accepts interleaved views of one buffer", "[ops][kernels][add]") {
  // Three time steps of a [B, T, X] sequence: step views share a byte range but no element.
  std::mt19937 rng(53);
  const int64_t batch = 4, steps = 3, features = 5;
  const Tensor seq = RandomTensor({batch, steps * features}, rng);
  auto step = [&](int64_t t) { return seq.MatrixView(t * features, batch, features, steps * features); };
  const Tensor want = Tensor::Zeros({batch, features});
  ref::Add(step(0), step(1), want);
  REQUIRE(Add(step(0), step(1), step(2)).ok());
  CHECK(BitwiseEqual(step(2).ToVector(), want.ToVector()));
}

TEST_CASE("Add rejects mismatched shapes, shared elements and bad layouts", "[ops][kernels][add]") {
  Status s = Add(Tensor::Zeros({3, 4}), Tensor::Zeros({4, 3}), Tensor::Zeros({3, 4}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[3, 4]") && Catch::Contains("[4, 3]"));

  const Tensor storage = Tensor::Zeros({4, 8});
  s = Add(storage.Slice(1, 0, 6), Tensor::Zeros({4, 6}), storage.Slice(1, 1, 7));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("share elements"));

  s = Add(Tensor::Zeros({4, 8}).Slice(1, 0, 8, 2), Tensor::Zeros({4, 4}), Tensor::Zeros({4, 4}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("unit column stride"));

  s = Add(Tensor::Zeros({2, 3}, DType::kInt32), Tensor::Zeros({2, 3}, DType::kInt32),
          Tensor::Zeros({2, 3}, DType::kInt32));
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace sieve::ops
