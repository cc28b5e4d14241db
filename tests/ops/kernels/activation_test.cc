// Activations: the CPU fast path against the double reference (contiguous and strided, in place,
// sizes across the OpenMP threshold, extreme inputs), finite-difference gradients, NaN through
// ReLU, and the errors a caller can cause.
#include "ops/kernels/activation.h"
#include "tests/testing/random_tensors.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace sieve::ops {
namespace {

using testing::RandomTensor;
using testing::RandomValues;
using testing::CheckClose;

constexpr Activation kAll[] = {Activation::kReLU, Activation::kTanh, Activation::kSigmoid};

// The fast paths promise a few float ulps of the exactly rounded value.
constexpr double kRtol = 1e-6;
constexpr double kAtol = 1e-30;

// A [rows, cols] view: contiguous when pad is 0, else inside rows of cols + pad.
Tensor View(const Tensor& base, int64_t cols, int64_t pad) { return pad == 0 ? base : base.Slice(1, 0, cols); }

TEST_CASE("ActivationName names each activation", "[ops][kernels][activation]") {
  CHECK(std::string(ActivationName(Activation::kReLU)) == "relu");
  CHECK(std::string(ActivationName(Activation::kTanh)) == "tanh");
  CHECK(std::string(ActivationName(Activation::kSigmoid)) == "sigmoid");
}

TEST_CASE("Activations on the CPU match the reference", "[ops][kernels][activation]") {
  std::mt19937 rng(17);
  struct Case {
    int64_t rows, cols, pad;
  };
  // 300 x 301 and 260 x 260 (strided) cross the OpenMP threshold; 1 x 70000 is split into chunks.
  const std::vector<Case> cases = {{1, 1, 0},     {5, 3, 0},     {33, 17, 4}, {300, 301, 0},
                                   {260, 260, 3}, {1, 70000, 0}, {7, 1, 2}};
  for (Activation kind : kAll)
    for (const Case& c : cases) {
      INFO(ActivationName(kind) << " " << c.rows << " x " << c.cols << " pad " << c.pad);
      const Tensor x_base = RandomTensor({c.rows, c.cols + c.pad}, rng, -6.0f, 6.0f);
      const Tensor x = View(x_base, c.cols, c.pad);
      const Tensor y_want = RandomTensor({c.rows, c.cols + c.pad}, rng, -6.0f, 6.0f), y_got = y_want.Clone();
      ref::ActivationForward(kind, x, View(y_want, c.cols, c.pad));
      REQUIRE(ActivationForward(kind, x, View(y_got, c.cols, c.pad)).ok());
      CheckClose(y_got.ToVector(), y_want.ToVector(), kRtol, kAtol);  // padding must be untouched too

      const Tensor dy = View(RandomTensor({c.rows, c.cols + c.pad}, rng, -6.0f, 6.0f), c.cols, c.pad);
      const Tensor dx_want = RandomTensor({c.rows, c.cols + c.pad}, rng, -6.0f, 6.0f), dx_got = dx_want.Clone();
      ref::ActivationBackward(kind, View(y_want, c.cols, c.pad), dy, View(dx_want, c.cols, c.pad));
      REQUIRE(ActivationBackward(kind, View(y_want, c.cols, c.pad), dy, View(dx_got, c.cols, c.pad)).ok());
      CheckClose(dx_got.ToVector(), dx_want.ToVector(), kRtol, kAtol);
    }
}

TEST_CASE("Activations keep their accuracy at extreme inputs", "[ops][kernels][activation]") {
  std::vector<float> values = {-100.0f, -87.0f, -30.0f, -20.0f, -9.5f, -8.0f, -1e-3f, -1e-6f, 0.0f,
                               1e-6f,   1e-3f,  0.5f,   8.0f,   9.5f,  20.0f, 30.0f,  87.0f,  100.0f};
  std::mt19937 rng(23);
  for (float v : RandomValues(1000, rng, -25.0f, 25.0f)) values.push_back(v);
  const int64_t n = static_cast<int64_t>(values.size());
  const Tensor x = Tensor::FromVector({n}, values);
  for (Activation kind : kAll) {
    INFO(ActivationName(kind));
    const Tensor want = Tensor::Zeros({n}), got = Tensor::Zeros({n});
    ref::ActivationForward(kind, x, want);
    REQUIRE(ActivationForward(kind, x, got).ok());
    CheckClose(got.ToVector(), want.ToVector(), kRtol, kAtol);
  }
}

TEST_CASE("Activations run in place", "[ops][kernels][activation]") {
  std::mt19937 rng(29);
  for (Activation kind : kAll) {
    INFO(ActivationName(kind));
    const Tensor base = RandomTensor({40, 50}, rng, -6.0f, 6.0f);
    const Tensor x = base.Slice(1, 0, 45);
    const Tensor out_of_place = Tensor::Zeros({40, 45});
    REQUIRE(ActivationForward(kind, x, out_of_place).ok());
    REQUIRE(ActivationForward(kind, x, x).ok());
    CHECK(x.ToVector() == out_of_place.ToVector());

    const Tensor dy = RandomTensor({40, 45}, rng, -6.0f, 6.0f);
    const Tensor dx = Tensor::Zeros({40, 45});
    REQUIRE(ActivationBackward(kind, x, dy, dx).ok());
    REQUIRE(ActivationBackward(kind, x, dy, dy).ok());
    CHECK(dy.ToVector() == dx.ToVector());
  }
}

TEST_CASE("Activations propagate NaN on every path", "[ops][kernels][activation]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Eight values, so the NaN sits inside a vector lane of the fast path, not only in a tail.
  const Tensor x = Tensor::FromVector({8}, {-1.0f, nan, 2.0f, -0.0f, 0.5f, 30.0f, -30.0f, 1.0f});
  for (Activation kind : kAll) {
    INFO(ActivationName(kind));
    const Tensor got = Tensor::Zeros({8}), want = Tensor::Zeros({8});
    REQUIRE(ActivationForward(kind, x, got).ok());
    ref::ActivationForward(kind, x, want);
    const std::vector<float> g = got.ToVector(), w = want.ToVector();
    CHECK(std::isnan(g[1]));
    CHECK(std::isnan(w[1]));
    for (size_t i : {0, 2, 3, 4, 5, 6, 7}) CHECK(std::isfinite(g[i]));
  }
  const Tensor relu = Tensor::Zeros({8});
  REQUIRE(ActivationForward(Activation::kReLU, x, relu).ok());
  CHECK(relu.ToVector()[0] == 0.0f);
  CHECK(relu.ToVector()[2] == 2.0f);
}

// L(x) = sum r * f(x) in double; ActivationBackward(f(x), r) must be dL/dx.
TEST_CASE("Activation gradients match central finite differences", "[ops][kernels][activation]") {
  std::mt19937 rng(31);
  const int64_t rows = 4, cols = 6;
  const float h = 1e-3f;
  for (Activation kind : kAll) {
    INFO(ActivationName(kind));
    std::vector<float> x0 = RandomValues(rows * cols, rng, -3.0f, 3.0f);
    for (float& v : x0)
      if (std::abs(v) < 0.1f) v += 0.2f;  // keep ReLU's kink out of the difference stencil
    const std::vector<float> r = RandomValues(rows * cols, rng, -1.0f, 1.0f);
    auto loss = [&](const std::vector<float>& xv) {
      const Tensor y = Tensor::Zeros({rows, cols});
      REQUIRE(ActivationForward(kind, Tensor::FromVector({rows, cols}, xv), y).ok());
      const std::vector<float> yv = y.ToVector();
      double l = 0.0;
      for (size_t i = 0; i < yv.size(); ++i) l += static_cast<double>(r[i]) * yv[i];
      return l;
    };
    const Tensor y = Tensor::Zeros({rows, cols}), dx = Tensor::Zeros({rows, cols});
    REQUIRE(ActivationForward(kind, Tensor::FromVector({rows, cols}, x0), y).ok());
    REQUIRE(ActivationBackward(kind, y, Tensor::FromVector({rows, cols}, r), dx).ok());
    const std::vector<float> analytic = dx.ToVector();
    for (size_t k = 0; k < x0.size(); ++k) {
      std::vector<float> plus = x0, minus = x0;
      plus[k] += h;
      minus[k] -= h;
      const double numeric = (loss(plus) - loss(minus)) / (static_cast<double>(plus[k]) - minus[k]);
      INFO("x[" << k << "] = " << x0[k]);
      CHECK(analytic[k] == Approx(numeric).margin(1e-4).epsilon(1e-3));
    }
  }
}

TEST_CASE("Activations reject mismatched shapes, partial overlap and bad layouts", "[ops][kernels][activation]") {
  Status s = ActivationForward(Activation::kTanh, Tensor::Zeros({3, 4}), Tensor::Zeros({4, 3}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[3, 4]") && Catch::Contains("[4, 3]") && Catch::Contains("tanh"));

  const Tensor storage = Tensor::Zeros({4, 8});
  s = ActivationForward(Activation::kReLU, storage.Slice(1, 0, 6), storage.Slice(1, 1, 7));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("overlap"));

  s = ActivationBackward(Activation::kSigmoid, storage.Slice(1, 0, 4), Tensor::Zeros({4, 4}), storage.Slice(1, 2, 6));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("overlap"));

  s = ActivationForward(Activation::kReLU, Tensor::Zeros({4, 8}).Slice(1, 0, 8, 2), Tensor::Zeros({4, 4}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("unit column stride"));

  s = ActivationForward(Activation::kReLU, Tensor::Zeros({2, 3}, DType::kInt32), Tensor::Zeros({2, 3}, DType::kInt32));
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace sieve::ops
