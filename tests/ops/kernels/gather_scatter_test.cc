// Gather/scatter of sub-matrices: the CPU fast path and the Tensor-level API against the naive
// reference for every pattern kind (none, strided rows (dp, o), generalised (k, T, o) with
// wrap-around offsets, channel sets that are ranges, progressions or arbitrary), on rows and
// columns, with beta 0 (over NaN), 1 and other values, into and out of strided views, from tiny to
// sizes that take the multi-threaded path. Also: gather and scatter are adjoint, and the
// validation messages name the shapes.
#include "ops/kernels/gather_scatter.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>

namespace sieve::ops {
namespace {

using Rng = std::mt19937;

int64_t Uniform(Rng& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

std::optional<IndexPattern> RandomPattern(Rng& rng, int64_t extent) {
  switch (Uniform(rng, 0, 6)) {
    case 0:
      return std::nullopt;
    case 1: {
      const int64_t dp = Uniform(rng, 1, 6);
      return RowPattern::Strided(dp, Uniform(rng, 0, dp - 1));
    }
    case 2: {
      const int64_t period = Uniform(rng, 2, 9);
      return RowPattern{Uniform(rng, 1, period), period, Uniform(rng, 0, period - 1)};
    }
    case 3: {  // 32-wide runs, as a tile class selects them
      const int64_t dp = Uniform(rng, 2, 3);
      return RowPattern{32, 32 * dp, 32 * Uniform(rng, 0, dp - 1)};
    }
    case 4: {  // a range
      ChannelSet set;
      if (extent > 0) {
        const int64_t lo = Uniform(rng, 0, extent - 1), hi = Uniform(rng, lo, extent - 1);
        for (int64_t i = lo; i <= hi; ++i) set.kept.push_back(i);
      }
      return set;
    }
    case 5: {  // a progression
      ChannelSet set;
      const int64_t step = Uniform(rng, 2, 5);
      for (int64_t i = Uniform(rng, 0, 3); i < extent; i += step) set.kept.push_back(i);
      return set;
    }
    default: {
      ChannelSet set;
      std::bernoulli_distribution keep(0.4);
      for (int64_t i = 0; i < extent; ++i)
        if (keep(rng)) set.kept.push_back(i);
      return set;
    }
  }
}

int64_t Kept(const std::optional<IndexPattern>& p, int64_t extent) { return p ? KeptCount(*p, extent) : extent; }

// A rows x cols view with ld > cols inside a storage with a slack row on each side when padded.
struct Matrix {
  Tensor storage;
  Tensor view;
};

Matrix RandomMatrix(Rng& rng, int64_t rows, int64_t cols, bool padded, bool nan = false) {
  const int64_t ld = padded ? cols + Uniform(rng, 1, 4) : cols;
  Matrix m;
  m.storage = Tensor::Empty({rows + (padded ? 2 : 0), ld});
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  float* p = m.storage.data<float>();
  for (int64_t i = 0; i < m.storage.numel(); ++i) p[i] = value(rng);
  m.view = m.storage.MatrixView(padded ? ld : 0, rows, cols, ld);
  if (nan) m.view.Fill(std::nanf(""));
  return m;
}

Tensor ViewOf(const Tensor& storage, const Matrix& like) {
  const int64_t offset = static_cast<const float*>(like.view.raw_data()) - like.storage.data<float>();
  return storage.MatrixView(offset, like.view.dim(0), like.view.dim(1), like.view.stride(0));
}

// Copies and beta 0 / 1 are bit-for-bit; other betas may differ by one rounding (fused multiply-add).
void CheckSameStorage(const Tensor& got, const Tensor& want, bool exact = true) {
  REQUIRE(got.numel() == want.numel());
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  int64_t bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const bool same = std::memcmp(&g[i], &w[i], sizeof(float)) == 0 ||
                      (!exact && std::fabs(g[i] - w[i]) <= 2.5e-7f * (1.0f + std::fabs(w[i])));
    if (!same && bad++ < 5) FAIL_CHECK("element " << i << ": got " << g[i] << ", reference " << w[i]);
  }
  CHECK(bad == 0);
}

void CheckGather(Rng& rng, int64_t rows, int64_t cols) {
  const auto rp = RandomPattern(rng, rows), cp = RandomPattern(rng, cols);
  INFO("src [" << rows << ", " << cols << "] rows " << (rp ? PatternToString(*rp) : "all") << " cols "
               << (cp ? PatternToString(*cp) : "all"));
  const Matrix src = RandomMatrix(rng, rows, cols, Uniform(rng, 0, 1) == 1);
  const Matrix dst = RandomMatrix(rng, Kept(rp, rows), Kept(cp, cols), Uniform(rng, 0, 1) == 1, true);
  Tensor want_storage = dst.storage.Clone();
  ref::GatherSubmatrix(src.view, rp, cp, ViewOf(want_storage, dst));

  Tensor raw_storage = dst.storage.Clone();
  const Tensor raw = ViewOf(raw_storage, dst);
  cpu::GatherSubmatrix(src.view.data<float>(), src.view.stride(0), rows, cols, rp ? &*rp : nullptr, cp ? &*cp : nullptr,
                       raw.data<float>(), raw.stride(0));
  CheckSameStorage(raw_storage, want_storage);

  REQUIRE(GatherSubmatrix(src.view, rp, cp, dst.view).ok());
  CheckSameStorage(dst.storage, want_storage);
}

void CheckScatter(Rng& rng, int64_t rows, int64_t cols, float beta) {
  const auto rp = RandomPattern(rng, rows), cp = RandomPattern(rng, cols);
  INFO("dst [" << rows << ", " << cols << "] rows " << (rp ? PatternToString(*rp) : "all") << " cols "
               << (cp ? PatternToString(*cp) : "all") << " beta " << beta);
  const Matrix src = RandomMatrix(rng, Kept(rp, rows), Kept(cp, cols), Uniform(rng, 0, 1) == 1);
  // With beta = 0 the destination is NaN garbage that must be overwritten (and stay NaN elsewhere).
  const Matrix dst = RandomMatrix(rng, rows, cols, Uniform(rng, 0, 1) == 1, beta == 0.0f);
  Tensor want_storage = dst.storage.Clone();
  ref::ScatterSubmatrix(src.view, rp, cp, ViewOf(want_storage, dst), beta);

  Tensor raw_storage = dst.storage.Clone();
  const Tensor raw = ViewOf(raw_storage, dst);
  cpu::ScatterSubmatrix(src.view.data<float>(), src.view.stride(0), rows, cols, rp ? &*rp : nullptr,
                        cp ? &*cp : nullptr, raw.data<float>(), raw.stride(0), beta);
  const bool exact = beta == 0.0f || beta == 1.0f;
  CheckSameStorage(raw_storage, want_storage, exact);

  REQUIRE(ScatterSubmatrix(src.view, rp, cp, dst.view, beta).ok());
  CheckSameStorage(dst.storage, want_storage, exact);
}

TEST_CASE("CPU gather matches the reference for every pattern kind", "[ops][kernels]") {
  Rng rng(21);
  for (int i = 0; i < 400; ++i) CheckGather(rng, Uniform(rng, 0, 70), Uniform(rng, 0, 70));
  for (int i = 0; i < 12; ++i) CheckGather(rng, Uniform(rng, 150, 400), Uniform(rng, 150, 400));
  CheckGather(rng, 1, 1);
}

TEST_CASE("CPU scatter matches the reference for beta 0, 1 and others", "[ops][kernels]") {
  Rng rng(22);
  for (float beta : {0.0f, 1.0f, -0.5f}) {
    for (int i = 0; i < 150; ++i) CheckScatter(rng, Uniform(rng, 0, 70), Uniform(rng, 0, 70), beta);
    for (int i = 0; i < 4; ++i) CheckScatter(rng, Uniform(rng, 150, 400), Uniform(rng, 150, 400), beta);
  }
}

TEST_CASE("Gather and scatter are adjoint", "[ops][kernels]") {
  // <Gather(X), Y> = <X, Scatter(Y) into zeros>, for any patterns.
  Rng rng(23);
  for (int i = 0; i < 50; ++i) {
    const int64_t rows = Uniform(rng, 1, 40), cols = Uniform(rng, 1, 40);
    const auto rp = RandomPattern(rng, rows), cp = RandomPattern(rng, cols);
    const Matrix x = RandomMatrix(rng, rows, cols, false);
    const Matrix y = RandomMatrix(rng, Kept(rp, rows), Kept(cp, cols), false);
    Tensor gx = Tensor::Empty(y.view.shape());
    Tensor sy = Tensor::Zeros(x.view.shape());
    REQUIRE(GatherSubmatrix(x.view, rp, cp, gx).ok());
    REQUIRE(ScatterSubmatrix(y.view, rp, cp, sy, 1.0f).ok());
    double lhs = 0.0, rhs = 0.0;
    const std::vector<float> gxv = gx.ToVector(), yv = y.view.ToVector(), xv = x.view.ToVector(), syv = sy.ToVector();
    for (size_t j = 0; j < gxv.size(); ++j) lhs += static_cast<double>(gxv[j]) * yv[j];
    for (size_t j = 0; j < xv.size(); ++j) rhs += static_cast<double>(xv[j]) * syv[j];
    CHECK(lhs == Approx(rhs).margin(1e-9));
  }
}

TEST_CASE("Gather and scatter reject bad arguments naming the shapes", "[ops][kernels]") {
  Tensor src = Tensor::Zeros({6, 8});
  SECTION("destination shape that is not kept x kept") {
    Tensor dst = Tensor::Zeros({3, 8});
    Status s = GatherSubmatrix(src, RowPattern::Strided(3, 0), std::nullopt, dst);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("[6, 8]") && Catch::Contains("[3, 8]") && Catch::Contains("[2, 8]") &&
                                Catch::Contains("row(k=1,T=3,o=0)"));
  }
  SECTION("malformed pattern") {
    Tensor dst = Tensor::Zeros({6, 8});
    Status s = ScatterSubmatrix(dst, std::nullopt, RowPattern{1, 2, 5}, src, 0.0f);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("column pattern") && Catch::Contains("[6, 8]"));
    Status c = GatherSubmatrix(src, ChannelSet{{0, 9}}, std::nullopt, Tensor::Zeros({2, 8}));
    REQUIRE_FALSE(c.ok());
    CHECK_THAT(c.message(), Catch::Contains("row pattern") && Catch::Contains("inside [0, 6)"));
  }
  SECTION("not a matrix") {
    Status s = GatherSubmatrix(Tensor::Zeros({6, 8, 1}), std::nullopt, std::nullopt, src);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("2-D") && Catch::Contains("[6, 8, 1]"));
  }
  SECTION("non-unit column stride") {
    Status s = GatherSubmatrix(src.Slice(1, 0, 8, 2), std::nullopt, std::nullopt, Tensor::Zeros({6, 4}));
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("unit column stride") && Catch::Contains("[6, 4]"));
  }
  SECTION("overlapping source and destination") {
    Tensor storage = Tensor::Zeros({6, 12});
    Tensor full = storage.MatrixView(0, 6, 8, 12), packed = storage.MatrixView(4, 3, 8, 12);
    Status s = GatherSubmatrix(full, RowPattern::Strided(2, 1), std::nullopt, packed);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("overlap") && Catch::Contains("[3, 8]"));
  }
}

}  // namespace
}  // namespace sieve::ops
