// im2col / col2im: ConvGeometry arithmetic, a hand-checked example, the CPU fast path against the
// naive reference over a sweep of geometries and kept-channel sets, the adjoint identity, a
// finite-difference check of the gradient, and the validation errors.
#include "ops/kernels/im2col.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

namespace sieve::ops {
namespace {

std::vector<float> RandomValues(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// The kept-channel sets every sweep covers: all (nullptr), none, one, all listed, a random subset.
std::vector<std::optional<ChannelSet>> ChannelVariants(int64_t channels, std::mt19937& rng) {
  std::vector<std::optional<ChannelSet>> out;
  out.push_back(std::nullopt);
  out.push_back(ChannelSet{});
  out.push_back(ChannelSet{{static_cast<int64_t>(rng() % channels)}});
  ChannelSet all;
  all.kept.resize(static_cast<size_t>(channels));
  std::iota(all.kept.begin(), all.kept.end(), int64_t{0});
  out.push_back(all);
  ChannelSet some;
  for (int64_t c = 0; c < channels; ++c)
    if (rng() % 2) some.kept.push_back(c);
  out.push_back(some);
  return out;
}

const ChannelSet* Ptr(const std::optional<ChannelSet>& s) { return s ? &*s : nullptr; }
int64_t KeptOf(const std::optional<ChannelSet>& s, int64_t channels) {
  return s ? static_cast<int64_t>(s->kept.size()) : channels;
}

// One random geometry per (kernel, stride, pad): odd channel count, image at least as large as the
// dilated kernel minus the padding, dilation and rounding mode drawn at random.
ConvGeometry RandomGeometry(int64_t kernel, int64_t stride, int64_t pad, std::mt19937& rng) {
  const int64_t odd_channels[] = {1, 3, 5, 7};
  ConvGeometry g = ConvGeometry::Square(odd_channels[rng() % 4], 1, 1, kernel, stride, pad);
  g.dilation_h = 1 + static_cast<int64_t>(rng() % 2);
  g.dilation_w = 1 + static_cast<int64_t>(rng() % 2);
  g.ceil_mode = rng() % 4 == 0;
  const int64_t min_h = std::max<int64_t>(1, g.dilation_h * (kernel - 1) + 1 - 2 * pad);
  const int64_t min_w = std::max<int64_t>(1, g.dilation_w * (kernel - 1) + 1 - 2 * pad);
  g.height = min_h + static_cast<int64_t>(rng() % 7);
  g.width = min_w + static_cast<int64_t>(rng() % 8);
  return g;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST_CASE("ConvGeometry output sizes follow floor and Caffe's ceil rounding", "[ops][kernels][conv]") {
  CHECK(ConvGeometry::Square(3, 28, 28, 5, 1, 2).out_h() == 28);
  ConvGeometry g = ConvGeometry::Square(1, 7, 9, 3, 2, 0);
  CHECK(g.out_h() == 3);
  CHECK(g.out_w() == 4);
  g.dilation_h = 2;  // dilated extent 5
  CHECK(g.out_h() == 2);

  ConvGeometry c = ConvGeometry::Square(1, 6, 6, 3, 2, 1);
  CHECK(c.out_h() == 3);
  c.ceil_mode = true;
  CHECK(c.out_h() == 4);
  // Rounding up would start the last window in the right padding: dropped.
  ConvGeometry d = ConvGeometry::Square(1, 5, 5, 2, 2, 1);
  CHECK(d.out_h() == 3);
  d.ceil_mode = true;
  CHECK(d.out_h() == 3);
  CHECK(d.ToString() == "C=1 H=5 W=5 k=2x2 s=2x2 p=1x1 d=1x1 ceil -> 3x3");
}

TEST_CASE("ConvGeometry rejects empty outputs naming the numbers", "[ops][kernels][conv]") {
  ConvGeometry g = ConvGeometry::Square(2, 3, 8, 5, 1, 0);
  Status s = g.Validate();
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("padded height 3 + 2*0 = 3") && Catch::Contains("kernel height 5"));
  g.pad_h = 1;
  CHECK(g.Validate().ok());

  ConvGeometry w = ConvGeometry::Square(2, 8, 4, 3, 1, 0);
  w.dilation_w = 2;
  Status sw = w.Validate();
  REQUIRE_FALSE(sw.ok());
  CHECK_THAT(sw.message(), Catch::Contains("padded width 4") && Catch::Contains("kernel width 5 (dilated)"));

  ConvGeometry zero_stride = ConvGeometry::Square(1, 4, 4, 2, 0, 0);
  CHECK_THAT(zero_stride.Validate().message(), Catch::Contains("stride"));
  ConvGeometry no_channels = ConvGeometry::Square(0, 4, 4, 2, 1, 0);
  CHECK_FALSE(no_channels.Validate().ok());
}

TEST_CASE("InsideOutputs is the brute-force range of outputs reading inside the image", "[ops][kernels][conv]") {
  for (int64_t out = 0; out <= 6; ++out) {
    for (int64_t in = 1; in <= 6; ++in) {
      for (int64_t stride = 1; stride <= 3; ++stride) {
        for (int64_t shift = -8; shift <= 8; ++shift) {
          int64_t begin = -1, end = -1;
          for (int64_t o = 0; o < out; ++o) {
            const int64_t i = o * stride + shift;
            if (i < 0 || i >= in) continue;
            if (begin < 0) begin = o;
            end = o + 1;
          }
          const OutputRange r = InsideOutputs(out, in, stride, shift);
          INFO("out " << out << " in " << in << " stride " << stride << " shift " << shift);
          REQUIRE((0 <= r.begin && r.begin <= r.end && r.end <= out));
          if (begin < 0) {
            REQUIRE(r.begin == r.end);
          } else {
            REQUIRE(r.begin == begin);
            REQUIRE(r.end == end);
          }
        }
      }
    }
  }
}

TEST_CASE("Im2Col builds the documented rows and columns", "[ops][kernels][conv]") {
  // One 3x3 image 1..9, 2x2 kernel: row ki*2+kj lists the cell (oh+ki, ow+kj) of each output pixel.
  std::vector<float> values(9);
  std::iota(values.begin(), values.end(), 1.0f);
  Tensor x = Tensor::FromVector({1, 1, 3, 3}, values);
  Tensor col = Tensor::Zeros({4, 4});
  REQUIRE(Im2ColBatch(x, ConvGeometry::Square(1, 3, 3, 2), nullptr, col).ok());
  CHECK(col.ToVector() == std::vector<float>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});

  // Two channels, only channel 1 kept, 3x3 kernel with padding 1 on a 2x2 image: rank 0 is channel 1
  // and the padding reads zero.
  Tensor x2 = Tensor::FromVector({1, 2, 2, 2}, {1, 2, 3, 4, 10, 20, 30, 40});
  const ChannelSet only_second{{1}};
  Tensor col2 = Tensor::Zeros({9, 4});
  REQUIRE(Im2ColBatch(x2, ConvGeometry::Square(2, 2, 2, 3, 1, 1), &only_second, col2).ok());
  const std::vector<float> c2 = col2.ToVector();
  CHECK(std::vector<float>(c2.begin(), c2.begin() + 4) == std::vector<float>{0, 0, 0, 10});           // (ki,kj)=(0,0)
  CHECK(std::vector<float>(c2.begin() + 16, c2.begin() + 20) == std::vector<float>{10, 20, 30, 40});  // centre
  CHECK(std::vector<float>(c2.begin() + 32, c2.end()) == std::vector<float>{40, 0, 0, 0});            // (2,2)
}

TEST_CASE("Im2Col CPU matches the reference over geometries and channel sets", "[ops][kernels][conv]") {
  std::mt19937 rng(1234);
  for (int64_t kernel : {1, 2, 3, 5}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t pad : {0, 1, 2}) {
        for (int64_t batch : {1, 3}) {
          const ConvGeometry g = RandomGeometry(kernel, stride, pad, rng);
          REQUIRE(g.Validate().ok());
          const std::vector<float> x = RandomValues(batch * g.channels * g.in_plane(), rng);
          for (const auto& set : ChannelVariants(g.channels, rng)) {
            INFO(g.ToString() << " batch " << batch << " kept " << KeptOf(set, g.channels));
            // A wider matrix with a column offset: the block must land exactly and nothing else change.
            const int64_t rows = KeptOf(set, g.channels) * g.kernel_area();
            const int64_t offset = 3, ld = offset + batch * g.out_plane() + 2;
            std::vector<float> want(static_cast<size_t>(rows * ld), 7.0f), got = want;
            ref::Im2Col(x.data(), batch, g, Ptr(set), want.data(), ld, offset);
            cpu::Im2Col(x.data(), batch, g, Ptr(set), got.data(), ld, offset);
            REQUIRE(got == want);

            // The Tensor API: the whole batch, and one image into its own block.
            Tensor xt = Tensor::FromVector({batch, g.channels, g.height, g.width}, x);
            Tensor col = Tensor::Zeros({rows, batch * g.out_plane()});
            REQUIRE(Im2ColBatch(xt, g, Ptr(set), col).ok());
            std::vector<float> dense(static_cast<size_t>(rows * batch * g.out_plane()));
            ref::Im2Col(x.data(), batch, g, Ptr(set), dense.data(), batch * g.out_plane(), 0);
            REQUIRE(col.ToVector() == dense);

            const int64_t n = batch - 1;
            Tensor one = Tensor::Zeros({rows, g.out_plane() + 1});
            REQUIRE(Im2Col(xt, n, g, Ptr(set), one, 1).ok());
            std::vector<float> block(static_cast<size_t>(rows * (g.out_plane() + 1)), 0.0f);
            ref::Im2Col(x.data() + n * g.channels * g.in_plane(), 1, g, Ptr(set), block.data(), g.out_plane() + 1, 1);
            REQUIRE(one.ToVector() == block);
          }
        }
      }
    }
  }
}

TEST_CASE("Col2Im CPU matches the reference and leaves dropped channels alone", "[ops][kernels][conv]") {
  std::mt19937 rng(99);
  for (int64_t kernel : {1, 2, 3, 5}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t pad : {0, 1, 2}) {
        for (int64_t batch : {1, 3}) {
          const ConvGeometry g = RandomGeometry(kernel, stride, pad, rng);
          const int64_t image_size = batch * g.channels * g.in_plane();
          const std::vector<float> dx0 = RandomValues(image_size, rng);
          for (const auto& set : ChannelVariants(g.channels, rng)) {
            for (float beta : {0.0f, 1.0f, 0.5f}) {
              INFO(g.ToString() << " batch " << batch << " kept " << KeptOf(set, g.channels) << " beta " << beta);
              const int64_t rows = KeptOf(set, g.channels) * g.kernel_area();
              const int64_t offset = 2, ld = offset + batch * g.out_plane() + 1;
              const std::vector<float> col = RandomValues(rows * ld, rng);
              std::vector<float> want = dx0, got = dx0;
              ref::Col2Im(col.data(), ld, offset, batch, g, Ptr(set), want.data(), beta);
              cpu::Col2Im(col.data(), ld, offset, batch, g, Ptr(set), got.data(), beta);
              // Each cell sums at most kernel_area entries of magnitude <= 1 (plus beta * old).
              const float tol = 2e-6f * static_cast<float>(g.kernel_area() + 1);
              for (int64_t i = 0; i < image_size; ++i) {
                const int64_t c = (i / g.in_plane()) % g.channels;
                const bool kept = !set || std::binary_search(set->kept.begin(), set->kept.end(), c);
                if (kept) {
                  REQUIRE(std::abs(got[i] - want[i]) <= tol);
                } else {
                  REQUIRE(got[i] == dx0[i]);
                  REQUIRE(want[i] == dx0[i]);
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("Col2Im with beta 0 overwrites NaN garbage", "[ops][kernels][conv]") {
  const ConvGeometry g = ConvGeometry::Square(3, 4, 5, 3, 1, 1);
  const ChannelSet kept{{0, 2}};
  Tensor dx = Tensor::Empty({2, 3, 4, 5});
  dx.Fill(std::numeric_limits<float>::quiet_NaN());
  Tensor col = Tensor::Empty({2 * 9, 2 * g.out_plane()});
  col.Fill(1.0f);
  REQUIRE(Col2ImBatch(col, g, &kept, dx, 0.0f).ok());
  const std::vector<float> v = dx.ToVector();
  for (int64_t i = 0; i < dx.numel(); ++i) {
    const int64_t c = (i / g.in_plane()) % 3;
    if (c == 1) {
      CHECK(std::isnan(v[i]));
    } else {
      CHECK(std::isfinite(v[i]));
      CHECK(v[i] >= 4.0f);  // a 3x3 window with padding 1 covers every cell at least 4 times
    }
  }
}

TEST_CASE("Col2Im is the adjoint of Im2Col", "[ops][kernels][conv]") {
  // <col2im(c), x> == <c, im2col(x)> for the CPU path and the reference alike.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 24; ++trial) {
    const int64_t kernel = 1 + trial % 5, stride = 1 + trial % 2, pad = trial % 3;
    const ConvGeometry g = RandomGeometry(kernel, stride, pad, rng);
    const int64_t batch = 1 + trial % 3;
    for (const auto& set : ChannelVariants(g.channels, rng)) {
      INFO(g.ToString() << " batch " << batch << " kept " << KeptOf(set, g.channels));
      const int64_t rows = KeptOf(set, g.channels) * g.kernel_area(), cols = batch * g.out_plane();
      Tensor x = Tensor::FromVector({batch, g.channels, g.height, g.width},
                                    RandomValues(batch * g.channels * g.in_plane(), rng));
      Tensor c = Tensor::FromVector({rows, cols}, RandomValues(rows * cols, rng));
      Tensor col = Tensor::Zeros({rows, cols});
      Tensor dx = Tensor::Zeros(x.shape());
      REQUIRE(Im2ColBatch(x, g, Ptr(set), col).ok());
      REQUIRE(Col2ImBatch(c, g, Ptr(set), dx, 0.0f).ok());
      const double lhs = Dot(dx.ToVector(), x.ToVector()), rhs = Dot(c.ToVector(), col.ToVector());
      REQUIRE(std::abs(lhs - rhs) <= 1e-5 * (1.0 + std::abs(rhs)) * static_cast<double>(g.kernel_area()));

      std::vector<float> ref_col(static_cast<size_t>(rows * cols)), ref_dx(static_cast<size_t>(x.numel()), 0.0f);
      const std::vector<float> xv = x.ToVector(), cv = c.ToVector();
      ref::Im2Col(xv.data(), batch, g, Ptr(set), ref_col.data(), cols, 0);
      ref::Col2Im(cv.data(), cols, 0, batch, g, Ptr(set), ref_dx.data(), 0.0f);
      REQUIRE(std::abs(Dot(ref_dx, xv) - Dot(cv, ref_col)) <= 1e-5 * (1.0 + std::abs(rhs)));
    }
  }
}

TEST_CASE("Col2Im is the gradient of <w, Im2Col(x)> by central differences", "[ops][kernels][conv]") {
  std::mt19937 rng(21);
  ConvGeometry g = ConvGeometry::Square(3, 4, 5, 3, 2, 1);
  g.dilation_w = 2;
  const ChannelSet kept{{0, 2}};
  const int64_t batch = 2, rows = 2 * g.kernel_area(), cols = batch * g.out_plane();
  Tensor x = Tensor::FromVector({batch, 3, 4, 5}, RandomValues(batch * 3 * 20, rng));
  Tensor w = Tensor::FromVector({rows, cols}, RandomValues(rows * cols, rng));
  Tensor grad = Tensor::Zeros(x.shape());
  REQUIRE(Col2ImBatch(w, g, &kept, grad, 0.0f).ok());
  auto loss = [&](const Tensor& input) {
    Tensor col = Tensor::Zeros({rows, cols});
    SIEVE_CHECK_OK(Im2ColBatch(input, g, &kept, col));
    return Dot(w.ToVector(), col.ToVector());
  };
  const float eps = 1e-2f;
  const std::vector<float> xv = x.ToVector(), gv = grad.ToVector();
  for (int64_t i = 0; i < x.numel(); ++i) {
    std::vector<float> plus = xv, minus = xv;
    plus[i] += eps;
    minus[i] -= eps;
    const double numeric = (loss(Tensor::FromVector(x.shape(), plus)) - loss(Tensor::FromVector(x.shape(), minus))) /
                           (static_cast<double>(plus[i]) - minus[i]);
    REQUIRE(std::abs(numeric - gv[i]) <= 1e-3 * (1.0 + std::abs(numeric)));
  }
}

TEST_CASE("Im2Col validation names shapes and expectations", "[ops][kernels][conv]") {
  const ConvGeometry g = ConvGeometry::Square(3, 6, 6, 3, 1, 1);
  Tensor x = Tensor::Zeros({2, 3, 6, 6});
  Tensor col = Tensor::Zeros({27, 72});

  Status wrong_image = Im2ColBatch(Tensor::Zeros({2, 4, 6, 6}), g, nullptr, col);
  REQUIRE_FALSE(wrong_image.ok());
  CHECK_THAT(wrong_image.message(), Catch::Contains("[2, 4, 6, 6]") && Catch::Contains("[B, 3, 6, 6]"));

  const ChannelSet two{{0, 2}};
  Status wrong_rows = Im2ColBatch(x, g, &two, col);
  REQUIRE_FALSE(wrong_rows.ok());
  CHECK_THAT(wrong_rows.message(), Catch::Contains("18 rows") && Catch::Contains("[27, 72]"));

  Status narrow = Im2Col(x, 1, g, nullptr, col, 40);
  REQUIRE_FALSE(narrow.ok());
  CHECK_THAT(narrow.message(), Catch::Contains("40 + 36"));

  const ChannelSet unsorted{{2, 0}};
  CHECK_FALSE(Im2ColBatch(x, g, &unsorted, Tensor::Zeros({18, 72})).ok());
  const ChannelSet outside{{1, 3}};
  Status out_of_range = Col2ImBatch(Tensor::Zeros({18, 72}), g, &outside, x, 0.0f);
  REQUIRE_FALSE(out_of_range.ok());
  CHECK_THAT(out_of_range.message(), Catch::Contains("3-channel"));

  CHECK(Im2Col(x, 2, g, nullptr, Tensor::Zeros({27, 36}), 0).code() == StatusCode::kOutOfRange);
  CHECK_FALSE(Im2ColBatch(x, ConvGeometry::Square(3, 6, 6, 9), nullptr, col).ok());
  CHECK_FALSE(Col2ImBatch(col, g, nullptr, x.Slice(3, 0, 6, 2), 0.0f).ok());

  // In-place use cannot work: the column matrix may not overlap the image.
  Tensor both = Tensor::Zeros({216 + 27 * 72});
  Tensor x_in = both.Slice(0, 0, 216).Reshape({2, 3, 6, 6}).value();
  CHECK_THAT(Im2ColBatch(x_in, g, nullptr, both.MatrixView(100, 27, 72, 72)).message(), Catch::Contains("overlaps"));
  CHECK(Im2ColBatch(x_in, g, nullptr, both.MatrixView(216, 27, 72, 72)).ok());
}

}  // namespace
}  // namespace sieve::ops
