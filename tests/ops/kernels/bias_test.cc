// Bias kernels: the CPU fast path against the reference (plain, packed under row and channel-set
// patterns, strided views, sizes across the OpenMP threshold), finite-difference gradients, the
// closed-form kept index, and the errors a caller can cause.
#include "ops/kernels/bias.h"
#include "tests/testing/random_tensors.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <vector>

namespace sieve::ops {
namespace {

using testing::RandomTensor;
using testing::RandomValues;
using testing::CheckClose;

struct PatternCase {
  const char* name;
  std::optional<IndexPattern> pattern;
};

// Row patterns of several shapes, and a channel set of scattered indices below `extent`.
std::vector<PatternCase> Patterns(int64_t extent) {
  ChannelSet scattered;
  for (int64_t i : {0, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233})
    if (i < extent) scattered.kept.push_back(i);
  return {{"none", std::nullopt},
          {"strided dp=2 o=1", RowPattern::Strided(2, 1)},
          {"k=3 T=5 o=4 (wraps)", RowPattern{3, 5, 4}},
          {"k=2 T=7 o=0", RowPattern{2, 7, 0}},
          {"k=4 T=4 o=3 (keeps all)", RowPattern{4, 4, 3}},
          {"channel set", scattered}};
}

int64_t Kept(const std::optional<IndexPattern>& p, int64_t extent) { return p ? KeptCount(*p, extent) : extent; }

TEST_CASE("KeptIndexOfRow matches KeptIndices for every small row pattern", "[ops][kernels][bias]") {
  for (int64_t period = 1; period <= 9; ++period)
    for (int64_t keep = 1; keep <= period; ++keep)
      for (int64_t offset = 0; offset < period; ++offset) {
        const RowPattern p{keep, period, offset};
        const std::vector<int64_t> want = KeptIndices(p, 50);
        const auto kept = internal::KeptIndexOfRow::From(p);
        for (size_t j = 0; j < want.size(); ++j) {
          INFO(p.ToString() << " j=" << j);
          REQUIRE(kept(static_cast<int64_t>(j)) == want[j]);
        }
      }
}

TEST_CASE("AddBias and BiasBackward on the CPU match the reference", "[ops][kernels][bias]") {
  std::mt19937 rng(7);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1}, {3, 7}, {17, 33}, {130, 300}, {257, 400}};
  for (const auto& [rows, extent] : shapes)
    for (const PatternCase& pc : Patterns(extent)) {
      const int64_t cols = Kept(pc.pattern, extent);
      for (int64_t pad : {0, 5}) {
        INFO(rows << " x " << extent << ", pattern " << pc.name << ", pad " << pad);
        const Tensor bias = RandomTensor({extent}, rng);
        const Tensor base = RandomTensor({rows, cols + pad}, rng);
        const Tensor want = base.Clone(), got = base.Clone();
        ref::AddBias(want.Slice(1, 0, cols), bias, pc.pattern);
        REQUIRE(AddBias(got.Slice(1, 0, cols), bias, pc.pattern).ok());
        CheckClose(got.ToVector(), want.ToVector(), 1e-6, 0.0);  // padding columns compared too

        for (float beta : {0.0f, 1.0f, 0.5f}) {
          INFO("beta " << beta);
          std::vector<float> init = RandomValues(extent, rng);
          if (beta == 0.0f && cols > 0) {  // garbage in a kept entry must not propagate
            const int64_t first_kept = pc.pattern ? KeptIndices(*pc.pattern, extent).front() : 0;
            init[static_cast<size_t>(first_kept)] = std::numeric_limits<float>::quiet_NaN();
          }
          const Tensor db_want = Tensor::FromVector({extent}, init), db_got = Tensor::FromVector({extent}, init);
          ref::BiasBackward(base.Slice(1, 0, cols), db_want, beta, pc.pattern);
          REQUIRE(BiasBackward(base.Slice(1, 0, cols), db_got, beta, pc.pattern).ok());
          const std::vector<float> g = db_got.ToVector(), w = db_want.ToVector();
          for (int64_t j = 0; j < extent; ++j) {
            const bool kept = !pc.pattern || IsKept(*pc.pattern, j);
            if (!kept) {  // dropped entries keep their old value, bit for bit (even NaN)
              CHECK((std::isnan(g[j]) ? std::isnan(init[j]) : g[j] == init[j]));
            } else {
              CHECK(std::isfinite(g[j]));
            }
          }
          CheckClose(g, w, 1e-6, 1e-7 * static_cast<double>(rows));
        }
      }
    }
}

TEST_CASE("Channel bias on the CPU matches the reference", "[ops][kernels][bias]") {
  std::mt19937 rng(11);
  // [C, S] views with and without padding, [N, C, S], [N, C, H, W] across the OpenMP threshold.
  struct Case {
    Shape shape;
    int64_t pad;
  };
  const std::vector<Case> cases = {{{1, 1}, 0},       {{5, 9}, 3},          {{1, 1, 1}, 0}, {{3, 4, 7}, 0},
                                   {{2, 3, 5, 5}, 0}, {{8, 16, 20, 20}, 0}, {{64, 300}, 17}};
  for (const Case& c : cases) {
    INFO("shape " << ShapeToString(c.shape) << " pad " << c.pad);
    Shape base_shape = c.shape;
    base_shape.back() += c.pad;
    const int64_t channels = c.shape.size() == 2 ? c.shape[0] : c.shape[1];
    const Tensor bias = RandomTensor({channels}, rng);
    const Tensor base = RandomTensor(base_shape, rng);
    auto view = [&](const Tensor& t) { return c.pad == 0 ? t : t.Slice(1, 0, c.shape[1]); };
    const Tensor want = base.Clone(), got = base.Clone();
    ref::AddChannelBias(view(want), bias);
    REQUIRE(AddChannelBias(view(got), bias).ok());
    CheckClose(got.ToVector(), want.ToVector(), 1e-6, 0.0);

    const int64_t reduced = base.numel() / channels;
    for (float beta : {0.0f, 1.0f}) {
      const std::vector<float> init = RandomValues(channels, rng);
      const Tensor db_want = Tensor::FromVector({channels}, init), db_got = Tensor::FromVector({channels}, init);
      ref::ChannelBiasBackward(view(base), db_want, beta);
      REQUIRE(ChannelBiasBackward(view(base), db_got, beta).ok());
      CheckClose(db_got.ToVector(), db_want.ToVector(), 1e-6, 1e-7 * static_cast<double>(reduced));
    }
  }
}

// L(bias) = sum r * (y0 + bias[col]) in double; its gradient must be BiasBackward(r).
TEST_CASE("Bias gradients match central finite differences", "[ops][kernels][bias]") {
  std::mt19937 rng(3);
  const int64_t rows = 5, extent = 9;
  const float h = 1e-2f;
  for (const PatternCase& pc : Patterns(extent)) {
    INFO("pattern " << pc.name);
    const int64_t cols = Kept(pc.pattern, extent);
    const Tensor y0 = RandomTensor({rows, cols}, rng), r = RandomTensor({rows, cols}, rng);
    const std::vector<float> bias0 = RandomValues(extent, rng);
    const std::vector<float> rv = r.ToVector();
    auto loss = [&](const std::vector<float>& b) {
      Tensor y = y0.Clone();
      REQUIRE(AddBias(y, Tensor::FromVector({extent}, b), pc.pattern).ok());
      const std::vector<float> yv = y.ToVector();
      double l = 0.0;
      for (size_t i = 0; i < yv.size(); ++i) l += static_cast<double>(rv[i]) * yv[i];
      return l;
    };
    Tensor db = Tensor::Zeros({extent});
    REQUIRE(BiasBackward(r, db, 0.0f, pc.pattern).ok());
    const std::vector<float> analytic = db.ToVector();
    for (int64_t k = 0; k < extent; ++k) {
      std::vector<float> plus = bias0, minus = bias0;
      plus[k] += h;
      minus[k] -= h;
      const double numeric = (loss(plus) - loss(minus)) / (static_cast<double>(plus[k]) - minus[k]);
      INFO("bias[" << k << "]");
      CHECK(analytic[k] == Approx(numeric).margin(1e-4).epsilon(1e-3));
    }
  }
}

TEST_CASE("Channel bias gradient matches central finite differences", "[ops][kernels][bias]") {
  std::mt19937 rng(5);
  const Shape shape = {2, 3, 2, 3};
  const int64_t channels = 3;
  const Tensor y0 = RandomTensor(shape, rng), r = RandomTensor(shape, rng);
  const std::vector<float> rv = r.ToVector(), bias0 = RandomValues(channels, rng);
  auto loss = [&](const std::vector<float>& b) {
    Tensor y = y0.Clone();
    REQUIRE(AddChannelBias(y, Tensor::FromVector({channels}, b)).ok());
    const std::vector<float> yv = y.ToVector();
    double l = 0.0;
    for (size_t i = 0; i < yv.size(); ++i) l += static_cast<double>(rv[i]) * yv[i];
    return l;
  };
  Tensor db = Tensor::Zeros({channels});
  REQUIRE(ChannelBiasBackward(r, db, 0.0f).ok());
  for (int64_t c = 0; c < channels; ++c) {
    std::vector<float> plus = bias0, minus = bias0;
    plus[c] += 1e-2f;
    minus[c] -= 1e-2f;
    const double numeric = (loss(plus) - loss(minus)) / (static_cast<double>(plus[c]) - minus[c]);
    CHECK(db.ToVector()[c] == Approx(numeric).margin(1e-4).epsilon(1e-3));
  }
}

TEST_CASE("Bias kernels reject bad shapes, patterns and layouts, naming them", "[ops][kernels][bias]") {
  const Tensor y = Tensor::Zeros({4, 6}), bias = Tensor::Zeros({5});
  Status s = AddBias(y, bias);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[4, 6]") && Catch::Contains("[5]"));

  // A strided pattern over 10 entries keeps 5, not 6.
  s = AddBias(y, Tensor::Zeros({10}), RowPattern::Strided(2, 0));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(),
             Catch::Contains("[4, 6]") && Catch::Contains("keeps 5") && Catch::Contains("row(k=1,T=2,o=0)"));

  s = BiasBackward(y, Tensor::Zeros({6}), 0.0f, RowPattern{3, 2, 0});
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("k <= T"));

  s = AddBias(Tensor::Zeros({4, 12}).Slice(1, 0, 12, 2), Tensor::Zeros({6}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("unit column stride"));

  s = AddBias(Tensor::Zeros({2, 3, 4}), Tensor::Zeros({4}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("2-D"));

  const Tensor storage = Tensor::Zeros({4, 6});
  s = AddBias(storage, storage.MatrixView(6, 1, 6, 6).Reshape({6}).value());
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("overlaps"));

  s = AddChannelBias(Tensor::Zeros({2, 3, 4, 4}), Tensor::Zeros({4}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[2, 3, 4, 4]") && Catch::Contains("3 channels") && Catch::Contains("[4]"));

  s = ChannelBiasBackward(Tensor::Zeros({1, 2, 3, 4, 5}), Tensor::Zeros({2}), 0.0f);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[1, 2, 3, 4, 5]"));

  s = AddChannelBias(Tensor::Zeros({2, 3, 8}).Slice(2, 0, 4), Tensor::Zeros({3}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("contiguous"));

  s = AddBias(Tensor::Zeros({4, 6}, DType::kInt32), Tensor::Zeros({6}));
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace sieve::ops
