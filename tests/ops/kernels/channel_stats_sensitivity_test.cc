// The per-channel statistics of sensitivity-aware dropout (ops/kernels/channel_stats.h): the CPU
// path against the naive reference over kept-channel subsets (all, some, one) and odd shapes; the
// Tensor API's validation; and the identity the sensitivity estimate rests on: for a convolution
// Y = W im2col(A), sum over map c of A_c * dA_c (dA = col2im(W^T dY)) equals the weight block dot
// sum W_c * dW_c with dW = dY im2col(A)^T.
#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <vector>

#include "ops/kernels/channel_stats.h"
#include "ops/kernels/im2col.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

std::optional<ChannelSet> Subset(int64_t channels, int which, std::mt19937& rng) {
  if (which == 0) return std::nullopt;
  ChannelSet s;
  if (which == 1) {
    s.kept.push_back(channels - 1);
    return s;
  }
  for (int64_t c = 0; c < channels; ++c)
    if (rng() % 3 != 0) s.kept.push_back(c);
  if (s.kept.empty()) s.kept.push_back(0);
  return s;
}

const ChannelSet* Ptr(const std::optional<ChannelSet>& s) { return s ? &*s : nullptr; }

TEST_CASE("ChannelMeanAbs and ChannelBlockDot match the reference", "[sensitivity][ops][kernels]") {
  std::mt19937 rng(5);
  const struct {
    int64_t batch, channels, h, w, rows, group;
  } shapes[] = {{1, 1, 1, 1, 1, 1}, {3, 5, 7, 3, 4, 9}, {2, 33, 9, 11, 17, 25}, {64, 8, 14, 14, 64, 9}};
  for (const auto& s : shapes) {
    for (int which = 0; which < 3; ++which) {
      INFO("batch " << s.batch << " channels " << s.channels << " subset " << which);
      const std::optional<ChannelSet> set = Subset(s.channels, which, rng);
      const int64_t kept = set ? static_cast<int64_t>(set->kept.size()) : s.channels;
      const Tensor x = testing::RandomTensor({s.batch, s.channels, s.h, s.w}, rng);
      Tensor out = Tensor::Zeros({kept});
      REQUIRE(ChannelMeanAbs(x, Ptr(set), out).ok());
      std::vector<float> want(static_cast<size_t>(kept));
      ref::ChannelMeanAbs(x.data<float>(), s.batch, s.channels, s.h * s.w, Ptr(set), want.data());
      testing::CheckClose(out.ToVector(), want, 1e-5, 1e-7);

      const Tensor w = testing::RandomTensor({s.rows, s.channels * s.group}, rng);
      const Tensor dw = testing::RandomTensor({s.rows, s.channels * s.group}, rng);
      REQUIRE(ChannelBlockDot(w, dw, s.group, Ptr(set), out).ok());
      ref::ChannelBlockDot(w.data<float>(), dw.data<float>(), s.rows, s.channels, s.group, Ptr(set), want.data());
      testing::CheckClose(out.ToVector(), want, 1e-5, 1e-6);
    }
  }
}

TEST_CASE("Channel statistics reject bad operands with both shapes", "[sensitivity][ops][kernels]") {
  const Tensor x = Tensor::Zeros({2, 3, 4, 4});
  Tensor out = Tensor::Zeros({2});
  Status st = ChannelMeanAbs(x, nullptr, out);
  CHECK(st.message().find("out must be [3]") != std::string::npos);
  const ChannelSet bad{{0, 3}};
  st = ChannelMeanAbs(x, &bad, out);
  CHECK_FALSE(st.ok());
  const Tensor w = Tensor::Zeros({4, 10});
  st = ChannelBlockDot(w, w, 3, nullptr, out);
  CHECK(st.message().find("group 3") != std::string::npos);
  st = ChannelBlockDot(w, Tensor::Zeros({4, 12}), 2, nullptr, Tensor::Zeros({5}));
  CHECK(st.message().find("dw must have w's shape") != std::string::npos);
}

// sum_c-block W * (dY col^T) == sum over map c of A * col2im(W^T dY), for every kept map.
TEST_CASE("The weight block dot equals the activation-gradient sum of each input map", "[sensitivity][ops][kernels]") {
  std::mt19937 rng(9);
  const ConvGeometry g = ConvGeometry::Square(5, 7, 6, 3, 2, 1);
  const int64_t batch = 2, cout = 4, area = g.kernel_area(), n = batch * g.out_plane();
  const ChannelSet kept{{0, 2, 3}};
  const int64_t rows = 3 * area;
  const Tensor a = testing::RandomTensor({batch, 5, 7, 6}, rng);
  const Tensor w = testing::RandomTensor({cout, 5 * area}, rng);
  const Tensor dy = testing::RandomTensor({cout, n}, rng);
  Tensor col = Tensor::Zeros({rows, n});
  REQUIRE(Im2ColBatch(a, g, &kept, col).ok());
  // dW (Full, dropped columns zero) = dY col^T; dcol = W_kept^T dY; dA = col2im(dcol), in double.
  std::vector<float> dw(static_cast<size_t>(cout * 5 * area), 0.0f), dcol(static_cast<size_t>(rows * n));
  const float* C = col.data<float>();
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t column = kept.kept[static_cast<size_t>(r / area)] * area + r % area;
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) sum += double{dy.data<float>()[o * n + j]} * C[r * n + j];
      dw[static_cast<size_t>(o * 5 * area + column)] = static_cast<float>(sum);
    }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t column = kept.kept[static_cast<size_t>(r / area)] * area + r % area;
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t o = 0; o < cout; ++o)
        sum += double{w.data<float>()[o * 5 * area + column]} * dy.data<float>()[o * n + j];
      dcol[static_cast<size_t>(r * n + j)] = static_cast<float>(sum);
    }
  }
  Tensor da = Tensor::Zeros({batch, 5, 7, 6});
  REQUIRE(Col2ImBatch(Tensor::FromVector({rows, n}, dcol), g, &kept, da, 0.0f).ok());
  Tensor dot = Tensor::Zeros({3});
  REQUIRE(ChannelBlockDot(w, Tensor::FromVector({cout, 5 * area}, dw), area, &kept, dot).ok());
  for (size_t r = 0; r < 3; ++r) {
    const int64_t c = kept.kept[r];
    double direct = 0.0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < g.in_plane(); ++i) {
        const int64_t at = (b * 5 + c) * g.in_plane() + i;
        direct += double{a.data<float>()[at]} * da.data<float>()[at];
      }
    INFO("map " << c);
    CHECK(dot.ToVector()[r] == Approx(direct).epsilon(1e-4).margin(1e-5));
  }
}

}  // namespace
}  // namespace sieve::ops
