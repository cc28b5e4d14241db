// Pooling: hand-checked examples (Caffe's ceil rounding and average divisor, ties, NaN, -inf), the
// CPU fast path against the naive reference over a sweep of geometries, finite-difference
// gradient checks of both backward passes, global average pooling, and the validation errors.
#include "ops/kernels/pooling.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
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

std::vector<int32_t> Int32Values(const Tensor& t) {
  const int32_t* p = t.data<int32_t>();
  return std::vector<int32_t>(p, p + t.numel());
}

Tensor Shaped(int64_t batch, const ConvGeometry& g, bool output, DType dtype = DType::kFloat32) {
  return Tensor::Zeros({batch, g.channels, output ? g.out_h() : g.height, output ? g.out_w() : g.width}, dtype);
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST_CASE("Pooling of a 4x4 image by hand", "[ops][kernels][pooling]") {
  std::vector<float> values(16);
  std::iota(values.begin(), values.end(), 0.0f);
  Tensor x = Tensor::FromVector({1, 1, 4, 4}, values);
  const ConvGeometry g = ConvGeometry::Square(1, 4, 4, 2, 2);
  Tensor y = Shaped(1, g, true), argmax = Shaped(1, g, true, DType::kInt32);
  REQUIRE(MaxPoolForward(x, g, y, argmax).ok());
  CHECK(y.ToVector() == std::vector<float>{5, 7, 13, 15});
  CHECK(Int32Values(argmax) == std::vector<int32_t>{5, 7, 13, 15});
  REQUIRE(AvgPoolForward(x, g, y).ok());
  CHECK(y.ToVector() == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});

  Tensor dx = Tensor::Zeros({1, 1, 4, 4});
  REQUIRE(MaxPoolBackward(Tensor::FromVector({1, 1, 2, 2}, {1, 2, 3, 4}), argmax, g, dx, 0.0f).ok());
  CHECK(dx.ToVector() == std::vector<float>{0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4});
}

TEST_CASE("Average pooling divides by the window clipped to the padded input (Caffe)", "[ops][kernels][pooling]") {
  // 4x4 ones, 3x3 windows, stride 2, padding 1, ceil rounding: 3x3 outputs. The last row and column
  // of windows hang one cell past the padded input, so they divide by 2 along that axis.
  ConvGeometry g = ConvGeometry::Square(1, 4, 4, 3, 2, 1);
  g.ceil_mode = true;
  REQUIRE(g.out_h() == 3);
  Tensor x = Tensor::FromVector({1, 1, 4, 4}, std::vector<float>(16, 1.0f));
  Tensor y = Shaped(1, g, true);
  REQUIRE(AvgPoolForward(x, g, y).ok());
  const std::vector<float> want = {4 / 9.f, 6 / 9.f, 2 / 6.f, 6 / 9.f, 1.f, 3 / 6.f, 2 / 6.f, 3 / 6.f, 1 / 4.f};
  const std::vector<float> got = y.ToVector();
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-6));

  // Backward spreads dy / divisor over the image cells of each window.
  Tensor dx = Tensor::Zeros({1, 1, 4, 4});
  Tensor dy = Tensor::Zeros({1, 1, 3, 3});
  dy.data<float>()[8] = 1.0f;  // the corner window: one image cell, divisor 4
  REQUIRE(AvgPoolBackward(dy, g, dx, 0.0f).ok());
  const std::vector<float> spread = dx.ToVector();
  CHECK(spread[15] == 0.25f);
  CHECK(std::accumulate(spread.begin(), spread.end(), 0.0f) == 0.25f);
}

TEST_CASE("Max pooling keeps the first maximum, lets NaN win and handles -inf windows", "[ops][kernels][pooling]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // Three 1x2 windows over a 1x6 row: a tie, a NaN after a larger value, and two -inf.
  const std::vector<float> row = {3, 3, 5, nan, -inf, -inf};
  ConvGeometry g = ConvGeometry::Square(1, 1, 6, 1, 1);
  g.kernel_w = g.stride_w = 2;
  for (bool fast : {false, true}) {
    std::vector<float> y(3);
    std::vector<int32_t> argmax(3);
    (fast ? cpu::MaxPoolForward : ref::MaxPoolForward)(row.data(), 1, g, y.data(), argmax.data());
    CHECK(argmax == std::vector<int32_t>{0, 3, 4});
    CHECK(y[0] == 3.0f);
    CHECK(std::isnan(y[1]));
    CHECK(y[2] == -inf);
  }
}

TEST_CASE("Pooling CPU matches the reference over geometries", "[ops][kernels][pooling]") {
  std::mt19937 rng(5);
  const int64_t odd_channels[] = {1, 3, 5};
  for (int64_t kernel : {1, 2, 3, 5}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t pad : {0, 1, 2}) {
        if (pad >= kernel) continue;
        for (bool ceil_mode : {false, true}) {
          for (int64_t batch : {1, 3}) {
            ConvGeometry g = ConvGeometry::Square(odd_channels[rng() % 3], 1, 1, kernel, stride, pad);
            g.ceil_mode = ceil_mode;
            g.height = std::max<int64_t>(1, kernel - 2 * pad) + static_cast<int64_t>(rng() % 7);
            g.width = std::max<int64_t>(1, kernel - 2 * pad) + static_cast<int64_t>(rng() % 8);
            REQUIRE(ValidatePoolingGeometry(g).ok());
            INFO(g.ToString() << " batch " << batch);
            const int64_t planes = batch * g.channels;
            const int64_t in_size = planes * g.in_plane(), out_size = planes * g.out_plane();
            const std::vector<float> x = RandomValues(in_size, rng), dy = RandomValues(out_size, rng);
            const std::vector<float> dx0 = RandomValues(in_size, rng);
            const float out_tol = 1e-6f * static_cast<float>(g.kernel_area());

            std::vector<float> y_ref(out_size), y_cpu(out_size, 9.0f);
            std::vector<int32_t> arg_ref(out_size), arg_cpu(out_size, -7);
            ref::MaxPoolForward(x.data(), planes, g, y_ref.data(), arg_ref.data());
            cpu::MaxPoolForward(x.data(), planes, g, y_cpu.data(), arg_cpu.data());
            REQUIRE(y_cpu == y_ref);
            REQUIRE(arg_cpu == arg_ref);

            ref::AvgPoolForward(x.data(), planes, g, y_ref.data());
            cpu::AvgPoolForward(x.data(), planes, g, y_cpu.data());
            for (int64_t i = 0; i < out_size; ++i) REQUIRE(std::abs(y_cpu[i] - y_ref[i]) <= out_tol);

            for (float beta : {0.0f, 1.0f, 0.5f}) {
              INFO("beta " << beta);
              // A cell is in at most ceil(k/s)^2 windows; each adds at most |dy| <= 1.
              const float in_tol = 2e-6f * static_cast<float>(g.kernel_area() + 1);
              std::vector<float> want = dx0, got = dx0;
              ref::MaxPoolBackward(dy.data(), arg_ref.data(), planes, g, want.data(), beta);
              cpu::MaxPoolBackward(dy.data(), arg_ref.data(), planes, g, got.data(), beta);
              for (int64_t i = 0; i < in_size; ++i) REQUIRE(std::abs(got[i] - want[i]) <= in_tol);
              want = got = dx0;
              ref::AvgPoolBackward(dy.data(), planes, g, want.data(), beta);
              cpu::AvgPoolBackward(dy.data(), planes, g, got.data(), beta);
              for (int64_t i = 0; i < in_size; ++i) REQUIRE(std::abs(got[i] - want[i]) <= in_tol);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("Pooling backward passes with beta 0 overwrite NaN garbage", "[ops][kernels][pooling]") {
  const ConvGeometry g = ConvGeometry::Square(2, 5, 5, 3, 2, 1);
  std::mt19937 rng(3);
  Tensor x = Tensor::FromVector({1, 2, 5, 5}, RandomValues(50, rng));
  Tensor y = Shaped(1, g, true), argmax = Shaped(1, g, true, DType::kInt32);
  REQUIRE(MaxPoolForward(x, g, y, argmax).ok());
  Tensor dx = Shaped(1, g, false);
  for (bool max : {true, false}) {
    dx.Fill(std::numeric_limits<float>::quiet_NaN());
    REQUIRE((max ? MaxPoolBackward(y, argmax, g, dx, 0.0f) : AvgPoolBackward(y, g, dx, 0.0f)).ok());
    for (float v : dx.ToVector()) REQUIRE(std::isfinite(v));
  }
}

// Central differences of L(x) = <w, pool(x)>, computed in double from the float outputs, against
// the analytic backward with dy = w. Max pooling gets well-separated input values so that no
// perturbation changes a window's argmax.
void CheckPoolingGradient(bool max, const ConvGeometry& g, int64_t batch, std::mt19937& rng) {
  INFO((max ? "max " : "avg ") << g.ToString());
  const int64_t in_size = batch * g.channels * g.in_plane();
  std::vector<float> x(static_cast<size_t>(in_size));
  if (max) {
    std::iota(x.begin(), x.end(), 0.0f);
    std::shuffle(x.begin(), x.end(), rng);
    for (float& v : x) v = 0.1f * v - 1.0f;
  } else {
    x = RandomValues(in_size, rng);
  }
  Tensor y = Shaped(batch, g, true), argmax = Shaped(batch, g, true, DType::kInt32);
  const std::vector<float> w = RandomValues(y.numel(), rng);
  auto loss = [&](const std::vector<float>& input) {
    Tensor xt = Tensor::FromVector({batch, g.channels, g.height, g.width}, input);
    SIEVE_CHECK_OK(max ? MaxPoolForward(xt, g, y, argmax) : AvgPoolForward(xt, g, y));
    return Dot(w, y.ToVector());
  };
  loss(x);
  Tensor grad = Shaped(batch, g, false);
  Tensor dy = Tensor::FromVector(y.shape(), w);
  REQUIRE((max ? MaxPoolBackward(dy, argmax, g, grad, 0.0f) : AvgPoolBackward(dy, g, grad, 0.0f)).ok());
  const std::vector<float> analytic = grad.ToVector();
  const float eps = 1e-2f;  // a quarter of the spacing of the max-pooling inputs
  for (int64_t i = 0; i < in_size; ++i) {
    std::vector<float> plus = x, minus = x;
    plus[i] += eps;
    minus[i] -= eps;
    const double numeric = (loss(plus) - loss(minus)) / (static_cast<double>(plus[i]) - minus[i]);
    REQUIRE(std::abs(numeric - analytic[i]) <= 1e-3 * (1.0 + std::abs(numeric)));
  }
}

TEST_CASE("Pooling gradients match central differences", "[ops][kernels][pooling]") {
  std::mt19937 rng(11);
  for (bool max : {true, false}) {
    ConvGeometry overlapping = ConvGeometry::Square(2, 5, 6, 3, 2, 1);
    CheckPoolingGradient(max, overlapping, 2, rng);
    overlapping.ceil_mode = true;
    CheckPoolingGradient(max, overlapping, 2, rng);
    CheckPoolingGradient(max, ConvGeometry::Square(3, 4, 4, 2, 2, 0), 1, rng);
    ConvGeometry dense = ConvGeometry::Square(1, 5, 5, 3, 1, 2);
    dense.kernel_w = 5;  // pad_w 2 < 5
    CheckPoolingGradient(max, dense, 1, rng);
  }
}

TEST_CASE("Global average pooling is the plane mean", "[ops][kernels][pooling]") {
  std::mt19937 rng(8);
  ConvGeometry g = ConvGeometry::Square(7, 6, 5, 1);
  g.kernel_h = 6;
  g.kernel_w = 5;
  const std::vector<float> x = RandomValues(3 * 7 * 30, rng);
  Tensor y = Shaped(3, g, true);
  REQUIRE(y.shape() == Shape{3, 7, 1, 1});
  REQUIRE(AvgPoolForward(Tensor::FromVector({3, 7, 6, 5}, x), g, y).ok());
  const std::vector<float> got = y.ToVector();
  for (int64_t p = 0; p < 21; ++p) {
    const double mean = std::accumulate(x.begin() + p * 30, x.begin() + (p + 1) * 30, 0.0) / 30.0;
    CHECK(got[p] == Approx(mean).margin(1e-6));
  }
}

TEST_CASE("Pooling validation names shapes and expectations", "[ops][kernels][pooling]") {
  const ConvGeometry g = ConvGeometry::Square(3, 6, 6, 2, 2);
  Tensor x = Shaped(2, g, false), y = Shaped(2, g, true), argmax = Shaped(2, g, true, DType::kInt32);
  REQUIRE(MaxPoolForward(x, g, y, argmax).ok());

  Status wrong_y = MaxPoolForward(x, g, Tensor::Zeros({2, 3, 4, 3}), argmax);
  REQUIRE_FALSE(wrong_y.ok());
  CHECK_THAT(wrong_y.message(), Catch::Contains("[2, 3, 3, 3]") && Catch::Contains("[2, 3, 4, 3]"));
  Status float_argmax = MaxPoolForward(x, g, y, y);
  REQUIRE_FALSE(float_argmax.ok());
  CHECK_THAT(float_argmax.message(), Catch::Contains("int32"));
  Status wrong_batch = AvgPoolBackward(Shaped(1, g, true), g, x, 0.0f);
  REQUIRE_FALSE(wrong_batch.ok());
  CHECK_THAT(wrong_batch.message(), Catch::Contains("[1, 3, 3, 3]"));
  CHECK_FALSE(AvgPoolForward(x, g, x).ok());

  // Tensors of one arena may share storage as long as they do not overlap.
  Tensor arena = Tensor::Zeros({216 + 54});
  Tensor x_in = arena.Slice(0, 0, 216).Reshape({2, 3, 6, 6}).value();
  CHECK(AvgPoolForward(x_in, g, arena.Slice(0, 216, 270).Reshape({2, 3, 3, 3}).value()).ok());
  Status overlap = AvgPoolForward(x_in, g, arena.Slice(0, 200, 254).Reshape({2, 3, 3, 3}).value());
  REQUIRE_FALSE(overlap.ok());
  CHECK_THAT(overlap.message(), Catch::Contains("overlap"));

  ConvGeometry big_pad = ConvGeometry::Square(3, 6, 6, 2, 2, 2);
  Status pad = ValidatePoolingGeometry(big_pad);
  REQUIRE_FALSE(pad.ok());
  CHECK_THAT(pad.message(), Catch::Contains("2x2 vs 2x2"));
  ConvGeometry dilated = g;
  dilated.dilation_h = 2;
  CHECK_THAT(AvgPoolForward(x, dilated, y).message(), Catch::Contains("dilation"));
  CHECK_FALSE(AvgPoolForward(x, ConvGeometry::Square(3, 6, 6, 7), y).ok());
}

}  // namespace
}  // namespace sieve::ops
