// Index rows (embeddings): gather and scatter-add on the CPU against the reference, bit for bit
// (strided views, heavy duplicates, widths around the column-slab size, sizes across the OpenMP
// threshold), the finite-difference gradient of the gather w.r.t. the table, and the errors.
#include "ops/kernels/index_rows.h"
#include "tests/testing/random_tensors.h"

#include <catch2/catch.hpp>
#include <random>
#include <vector>

namespace sieve::ops {
namespace {

using testing::RandomTensor;

Tensor Indices(const std::vector<int32_t>& v) {
  Tensor t = Tensor::Empty({static_cast<int64_t>(v.size())}, DType::kInt32);
  for (size_t i = 0; i < v.size(); ++i) t.data<int32_t>()[i] = v[i];
  return t;
}

// n indices into [0, distinct), so small `distinct` means many repeats.
std::vector<int32_t> RandomIndices(int64_t n, int64_t distinct, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(distinct - 1));
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t& i : v) i = dist(rng);
  return v;
}

struct Case {
  int64_t table_rows, cols, n, distinct, pad;
};

// Widths below, at and around the 16-column slab; 2000 x 64 and 400 x 100 cross the threshold.
const std::vector<Case> kCases = {{1, 1, 1, 1, 0},         {7, 3, 10, 7, 2},         {5, 16, 40, 3, 0},
                                  {9, 17, 33, 2, 5},       {50, 100, 400, 50, 0},    {30, 64, 2000, 4, 3},
                                  {100, 300, 200, 100, 1}, {1000, 33, 1500, 1000, 0}};

TEST_CASE("GatherRows on the CPU matches the reference exactly", "[ops][kernels][index_rows]") {
  std::mt19937 rng(51);
  for (const Case& c : kCases) {
    INFO(c.n << " indices into " << c.table_rows << " x " << c.cols << ", pad " << c.pad);
    const Tensor table = RandomTensor({c.table_rows, c.cols + c.pad}, rng).Slice(1, 0, c.cols);
    const Tensor indices = Indices(RandomIndices(c.n, c.distinct, rng));
    const Tensor want = RandomTensor({c.n, c.cols + c.pad}, rng), got = want.Clone();
    ref::GatherRows(table, indices, want.Slice(1, 0, c.cols));
    REQUIRE(GatherRows(table, indices, got.Slice(1, 0, c.cols)).ok());
    CHECK(got.ToVector() == want.ToVector());
  }
}

TEST_CASE("ScatterAddRows on the CPU matches the reference exactly, duplicates included",
          "[ops][kernels][index_rows]") {
  std::mt19937 rng(53);
  for (const Case& c : kCases) {
    INFO(c.n << " indices into " << c.table_rows << " x " << c.cols << ", pad " << c.pad);
    const Tensor src = RandomTensor({c.n, c.cols + c.pad}, rng).Slice(1, 0, c.cols);
    const Tensor indices = Indices(RandomIndices(c.n, c.distinct, rng));
    const Tensor want = RandomTensor({c.table_rows, c.cols + c.pad}, rng), got = want.Clone();
    ref::ScatterAddRows(src, indices, want.Slice(1, 0, c.cols));
    REQUIRE(ScatterAddRows(src, indices, got.Slice(1, 0, c.cols)).ok());
    // Same additions in the same order: equal bit for bit, rows never named untouched.
    CHECK(got.ToVector() == want.ToVector());
  }
}

TEST_CASE("ScatterAddRows accumulates every repeat of an index", "[ops][kernels][index_rows]") {
  const Tensor src = Tensor::FromVector({4, 2}, {1, 2, 10, 20, 100, 200, 1000, 2000});
  const Tensor dst = Tensor::FromVector({3, 2}, {0.5f, 0.5f, 7, 7, 0, 0});
  REQUIRE(ScatterAddRows(src, Indices({2, 0, 2, 2}), dst).ok());
  CHECK(dst.ToVector() == std::vector<float>{10.5f, 20.5f, 7, 7, 1101, 2202});
}

// L(table) = sum r * GatherRows(table) in double; ScatterAddRows(r) into zeros must be dL/dtable.
TEST_CASE("Index-rows gradient matches central finite differences", "[ops][kernels][index_rows]") {
  std::mt19937 rng(57);
  const int64_t table_rows = 4, cols = 3;
  const Tensor indices = Indices({1, 3, 1, 0, 1});  // row 2 unused, row 1 three times
  const Tensor r = RandomTensor({5, cols}, rng);
  const std::vector<float> rv = r.ToVector(), t0 = RandomTensor({table_rows, cols}, rng).ToVector();
  auto loss = [&](const std::vector<float>& t) {
    const Tensor out = Tensor::Zeros({5, cols});
    REQUIRE(GatherRows(Tensor::FromVector({table_rows, cols}, t), indices, out).ok());
    const std::vector<float> ov = out.ToVector();
    double l = 0.0;
    for (size_t i = 0; i < ov.size(); ++i) l += static_cast<double>(rv[i]) * ov[i];
    return l;
  };
  const Tensor dtable = Tensor::Zeros({table_rows, cols});
  REQUIRE(ScatterAddRows(r, indices, dtable).ok());
  const std::vector<float> analytic = dtable.ToVector();
  for (size_t k = 0; k < t0.size(); ++k) {
    std::vector<float> plus = t0, minus = t0;
    plus[k] += 1e-2f;
    minus[k] -= 1e-2f;
    const double numeric = (loss(plus) - loss(minus)) / (static_cast<double>(plus[k]) - minus[k]);
    INFO("table element " << k);
    CHECK(analytic[k] == Approx(numeric).margin(1e-6).epsilon(1e-5));
  }
}

TEST_CASE("Index rows reject out-of-range indices and bad shapes, naming them", "[ops][kernels][index_rows]") {
  const Tensor table = Tensor::Zeros({5, 3});
  Status s = GatherRows(table, Indices({0, 4, 1, 9}), Tensor::Zeros({4, 3}));
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kOutOfRange);
  CHECK_THAT(s.message(), Catch::Contains("indices[3] = 9") && Catch::Contains("[0, 5)"));

  s = ScatterAddRows(Tensor::Zeros({2, 3}), Indices({-2, 0}), table);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("indices[0] = -2"));

  s = GatherRows(table, Indices({0, 1}), Tensor::Zeros({3, 3}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[2, 3]") && Catch::Contains("[3, 3]") && Catch::Contains("[5, 3]"));

  s = ScatterAddRows(Tensor::Zeros({2, 4}), Indices({0, 1}), table);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[2, 4]"));

  s = GatherRows(table, Tensor::Zeros({2}), Tensor::Zeros({2, 3}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("int32"));

  const Tensor storage = Tensor::Zeros({6, 3});
  s = GatherRows(storage.Slice(0, 0, 4), Indices({0, 1, 2}), storage.Slice(0, 3, 6));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("overlap"));
}

TEST_CASE("GatherRows reads indices of any rank in flat order", "[ops][kernels][index_rows]") {
  const Tensor table = Tensor::FromVector({3, 2}, {0, 1, 10, 11, 20, 21});
  const Tensor indices = Indices({2, 0, 1, 2}).Reshape({2, 2}).value();
  const Tensor out = Tensor::Zeros({4, 2});
  REQUIRE(GatherRows(table, indices, out).ok());
  CHECK(out.ToVector() == std::vector<float>{20, 21, 0, 1, 10, 11, 20, 21});
}

}  // namespace
}  // namespace sieve::ops
