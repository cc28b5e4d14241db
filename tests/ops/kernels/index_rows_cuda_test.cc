// CUDA index rows against the CPU, bit for bit: gathers, and scatter-adds with heavy duplicates
// (the sorted, atomic-free path), strided views, and out-of-range indices on the device.
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "ops/kernels/index_rows.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::RandomTensor;

Tensor Indices(int64_t n, int64_t distinct, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(distinct - 1));
  Tensor t = Tensor::Empty({n}, DType::kInt32);
  for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = dist(rng);
  return t;
}

TEST_CASE("CUDA GatherRows and ScatterAddRows match the CPU bit for bit", "[cuda][ops][kernels][index_rows]") {
  std::mt19937 rng(91);
  const Device gpu = Device::CUDA();
  struct Case {
    int64_t table_rows, cols, n, distinct, pad;
  };
  const std::vector<Case> cases = {{1, 1, 1, 1, 0},        {1, 7, 50, 1, 2},      {7, 3, 10, 7, 0},
                                   {80, 512, 2240, 80, 0}, {300, 33, 4000, 3, 5}, {100000, 64, 1000, 100000, 0},
                                   {129, 1000, 64, 129, 1}};
  for (const Case& c : cases) {
    INFO(c.n << " indices into " << c.table_rows << " x " << c.cols << " pad " << c.pad);
    auto view = [&](const Tensor& t) { return t.Slice(1, 0, c.cols); };
    const Tensor indices = Indices(c.n, c.distinct, rng), indices_gpu = indices.Clone(gpu);
    const Tensor table = RandomTensor({c.table_rows, c.cols + c.pad}, rng), table_gpu = table.Clone(gpu);
    const Tensor out = RandomTensor({c.n, c.cols + c.pad}, rng), out_gpu = out.Clone(gpu);
    REQUIRE(GatherRows(view(table), indices, view(out)).ok());
    REQUIRE(GatherRows(view(table_gpu), indices_gpu, view(out_gpu)).ok());
    CHECK(out_gpu.ToVector() == out.ToVector());

    REQUIRE(ScatterAddRows(view(out), indices, view(table)).ok());
    REQUIRE(ScatterAddRows(view(out_gpu), indices_gpu, view(table_gpu)).ok());
    CHECK(table_gpu.ToVector() == table.ToVector());
  }
}

TEST_CASE("CUDA index rows report out-of-range indices", "[cuda][ops][kernels][index_rows]") {
  const Device gpu = Device::CUDA();
  Tensor indices = Tensor::Empty({3}, DType::kInt32);
  indices.data<int32_t>()[0] = 1;
  indices.data<int32_t>()[1] = 5;
  indices.data<int32_t>()[2] = 0;
  const Tensor table = Tensor::Zeros({5, 4}, DType::kFloat32, gpu);
  Status s = GatherRows(table, indices.Clone(gpu), Tensor::Zeros({3, 4}, DType::kFloat32, gpu));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("indices[1] = 5") && Catch::Contains("[0, 5)"));
  s = ScatterAddRows(Tensor::Zeros({3, 4}, DType::kFloat32, gpu), indices.Clone(gpu), table);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("indices[1] = 5"));
}

}  // namespace
}  // namespace sieve::ops
