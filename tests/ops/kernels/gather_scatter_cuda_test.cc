// [cuda] tests of the CUDA gather/scatter kernels against the CPU reference, through the Tensor API
// (which validates and dispatches to cuda::): every pattern kind on rows and columns, padded leading
// dimensions, sizes that leave partial blocks, and a size that needs the kernel's row loop. The
// copies are exact, so the whole destination store (padding included) must match bit for bit.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ops/kernels/gather_scatter.h"

namespace sieve::ops {
namespace {

using Rng = std::mt19937_64;

int64_t Uniform(Rng& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

// A rows x cols matrix inside a rows x ld store, with the same bits on the CPU and the GPU.
struct Matrix {
  int64_t rows = 0, cols = 0, ld = 0;
  Tensor cpu, gpu;  // the backing stores
  Tensor CpuView() const { return cpu.MatrixView(0, rows, cols, ld); }
  Tensor GpuView() const { return gpu.MatrixView(0, rows, cols, ld); }
};

Matrix MakeMatrix(int64_t rows, int64_t cols, int64_t pad, Rng& rng, bool fill_nan = false) {
  Matrix m{rows, cols, cols + pad, {}, {}};
  std::vector<float> values(static_cast<size_t>(rows * m.ld));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : values) v = fill_nan ? std::numeric_limits<float>::quiet_NaN() : dist(rng);
  m.cpu = Tensor::FromVector({rows, m.ld}, values);
  m.gpu = m.cpu.Clone(Device::CUDA(0));
  return m;
}

std::optional<IndexPattern> RandomPattern(int64_t extent, Rng& rng) {
  switch (Uniform(rng, 0, 4)) {
    case 0:
      return std::nullopt;
    case 1: {
      const int64_t dp = Uniform(rng, 1, 5);
      return RowPattern::Strided(dp, Uniform(rng, 0, dp - 1));
    }
    case 2: {
      const int64_t period = Uniform(rng, 2, 9);
      return RowPattern{Uniform(rng, 1, period), period, Uniform(rng, 0, period - 1)};
    }
    case 3: {
      ChannelSet set;
      for (int64_t i = 0; i < extent; ++i)
        if (Uniform(rng, 0, 2) != 0) set.kept.push_back(i);
      return set;
    }
    default:
      return ChannelSet{};
  }
}

int64_t Kept(const std::optional<IndexPattern>& p, int64_t extent) { return p ? KeptCount(*p, extent) : extent; }

std::string Describe(const Matrix& full, const std::optional<IndexPattern>& rows,
                     const std::optional<IndexPattern>& cols) {
  std::ostringstream os;
  os << "full " << full.rows << "x" << full.cols << " ld " << full.ld << ", rows "
     << (rows ? PatternToString(*rows) : "all") << ", cols " << (cols ? PatternToString(*cols) : "all");
  return os.str();
}

// Bit-for-bit equality of two stores, with the first differing element in the message.
void CheckSameBits(const Tensor& got, const Tensor& expected) {
  const std::vector<float> g = got.ToVector(), e = expected.ToVector();
  REQUIRE(g.size() == e.size());
  size_t first = g.size();
  for (size_t i = 0; i < g.size() && first == g.size(); ++i)
    if (std::bit_cast<uint32_t>(g[i]) != std::bit_cast<uint32_t>(e[i])) first = i;
  INFO("first difference at flat index " << first << " of " << g.size());
  CHECK(first == g.size());
}

void CheckGather(const Matrix& src, const std::optional<IndexPattern>& rows, const std::optional<IndexPattern>& cols,
                 Rng& rng) {
  INFO("gather: " << Describe(src, rows, cols));
  const Matrix dst = MakeMatrix(Kept(rows, src.rows), Kept(cols, src.cols), Uniform(rng, 0, 3), rng);
  ref::GatherSubmatrix(src.CpuView(), rows, cols, dst.CpuView());
  REQUIRE(GatherSubmatrix(src.GpuView(), rows, cols, dst.GpuView()).ok());
  CheckSameBits(dst.gpu, dst.cpu);
}

void CheckScatter(const Matrix& dst, const std::optional<IndexPattern>& rows, const std::optional<IndexPattern>& cols,
                  float beta, Rng& rng) {
  INFO("scatter with beta " << beta << ": " << Describe(dst, rows, cols));
  const Matrix src = MakeMatrix(Kept(rows, dst.rows), Kept(cols, dst.cols), Uniform(rng, 0, 3), rng);
  ref::ScatterSubmatrix(src.CpuView(), rows, cols, dst.CpuView(), beta);
  REQUIRE(ScatterSubmatrix(src.GpuView(), rows, cols, dst.GpuView(), beta).ok());
  CheckSameBits(dst.gpu, dst.cpu);
}

const std::vector<int64_t> kExtents = {1, 2, 3, 7, 31, 32, 33, 100, 129, 300};

TEST_CASE("CUDA GatherSubmatrix matches the reference", "[cuda][ops][kernels]") {
  Rng rng(11);
  for (int i = 0; i < 150; ++i) {
    const int64_t rows = kExtents[Uniform(rng, 0, kExtents.size() - 1)];
    const int64_t cols = kExtents[Uniform(rng, 0, kExtents.size() - 1)];
    const Matrix src = MakeMatrix(rows, cols, Uniform(rng, 0, 3), rng);
    CheckGather(src, RandomPattern(rows, rng), RandomPattern(cols, rng), rng);
  }
}

TEST_CASE("CUDA ScatterSubmatrix matches the reference for every beta", "[cuda][ops][kernels]") {
  Rng rng(12);
  // Powers of two keep beta * dst exact, so a fused multiply-add on the GPU rounds as the CPU does.
  const std::vector<float> betas = {0.0f, 1.0f, 0.5f, -2.0f};
  for (int i = 0; i < 150; ++i) {
    const int64_t rows = kExtents[Uniform(rng, 0, kExtents.size() - 1)];
    const int64_t cols = kExtents[Uniform(rng, 0, kExtents.size() - 1)];
    const Matrix dst = MakeMatrix(rows, cols, Uniform(rng, 0, 3), rng);
    CheckScatter(dst, RandomPattern(rows, rng), RandomPattern(cols, rng), betas[i % betas.size()], rng);
  }
}

TEST_CASE("CUDA scatter with beta 0 overwrites NaN and leaves dropped entries alone", "[cuda][ops][kernels]") {
  Rng rng(13);
  const Matrix dst = MakeMatrix(37, 41, 2, rng, /*fill_nan=*/true);
  CheckScatter(dst, RowPattern{2, 5, 4}, ChannelSet{{0, 3, 4, 40}}, 0.0f, rng);
  const std::vector<float> got = dst.gpu.ToVector();
  int64_t finite = 0;
  for (float v : got) finite += std::isnan(v) ? 0 : 1;
  CHECK(finite == RowPattern{2, 5, 4}.KeptCount(37) * 4);
}

TEST_CASE("CUDA gather/scatter cover rows beyond one grid", "[cuda][ops][kernels]") {
  Rng rng(14);
  // 1100 columns are 9 blocks wide, so the grid stops at 455 blocks (3640 rows) and each thread
  // loops over the remaining rows.
  const Matrix big = MakeMatrix(5000, 1100, 3, rng);
  CheckGather(big, RowPattern{7, 8, 3}, std::nullopt, rng);
  CheckGather(big, RowPattern::Strided(1, 0), RowPattern{3, 4, 2}, rng);
  CheckScatter(big, ChannelSet{{0, 1, 2, 4998, 4999}}, RowPattern::Strided(3, 2), 1.0f, rng);
  CheckScatter(big, RowPattern{9, 10, 0}, std::nullopt, 0.5f, rng);
}

}  // namespace
}  // namespace sieve::ops
