// Pooling on CUDA against the CPU path: a sweep of geometries (ties included, so the first-maximum
// rule is compared too), backward passes with beta, and a window holding a NaN.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/kernels/pooling.h"

namespace sieve::ops {
namespace {

std::vector<int32_t> Int32Values(const Tensor& t) {
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  CopyBytes(out.data(), Device::CPU(), t.raw_data(), t.device(), out.size() * sizeof(int32_t));
  return out;
}

struct PoolingResults {
  std::vector<float> max_y, avg_y, max_dx, avg_dx;
  std::vector<int32_t> argmax;
};

PoolingResults RunAll(Device device, const ConvGeometry& g, int64_t batch, const std::vector<float>& x,
                      const std::vector<float>& dy, const std::vector<float>& dx0, float beta) {
  const Shape in{batch, g.channels, g.height, g.width}, out{batch, g.channels, g.out_h(), g.out_w()};
  Tensor xt = Tensor::FromVector(in, x).Clone(device);
  Tensor dyt = Tensor::FromVector(out, dy).Clone(device);
  Tensor y = Tensor::Empty(out, DType::kFloat32, device), argmax = Tensor::Empty(out, DType::kInt32, device);
  Tensor dx = Tensor::FromVector(in, dx0).Clone(device);
  PoolingResults r;
  SIEVE_CHECK_OK(MaxPoolForward(xt, g, y, argmax));
  r.max_y = y.ToVector();
  r.argmax = Int32Values(argmax);
  SIEVE_CHECK_OK(MaxPoolBackward(dyt, argmax, g, dx, beta));
  r.max_dx = dx.ToVector();
  SIEVE_CHECK_OK(AvgPoolForward(xt, g, y));
  r.avg_y = y.ToVector();
  SIEVE_CHECK_OK(dx.CopyFrom(Tensor::FromVector(in, dx0)));
  SIEVE_CHECK_OK(AvgPoolBackward(dyt, g, dx, beta));
  r.avg_dx = dx.ToVector();
  return r;
}

void RequireClose(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(std::abs(got[i] - want[i]) <= tol);
}

TEST_CASE("CUDA pooling matches the CPU", "[cuda][ops][kernels][pooling]") {
  std::mt19937 rng(31);
  for (int64_t kernel : {1, 2, 3, 5}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t pad : {0, 1, 2}) {
        if (pad >= kernel) continue;
        for (bool ceil_mode : {false, true}) {
          for (int64_t batch : {1, 3}) {
            ConvGeometry g = ConvGeometry::Square(1 + 2 * static_cast<int64_t>(rng() % 3), 1, 1, kernel, stride, pad);
            g.ceil_mode = ceil_mode;
            g.height = std::max<int64_t>(1, kernel - 2 * pad) + static_cast<int64_t>(rng() % 9);
            g.width = std::max<int64_t>(1, kernel - 2 * pad) + static_cast<int64_t>(rng() % 9);
            const float beta = static_cast<float>(rng() % 3) * 0.5f;
            INFO(g.ToString() << " batch " << batch << " beta " << beta);
            const int64_t in_size = batch * g.channels * g.in_plane(), out_size = batch * g.channels * g.out_plane();
            // Few distinct values, so windows hold ties and the first-maximum rule is compared too.
            std::vector<float> x(static_cast<size_t>(in_size)), dy(static_cast<size_t>(out_size));
            std::vector<float> dx0(static_cast<size_t>(in_size));
            for (float& v : x) v = static_cast<float>(rng() % 5) - 2.0f;
            std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
            for (float& v : dy) v = dist(rng);
            for (float& v : dx0) v = dist(rng);
            const PoolingResults want = RunAll(Device::CPU(), g, batch, x, dy, dx0, beta);
            const PoolingResults got = RunAll(Device::CUDA(), g, batch, x, dy, dx0, beta);
            REQUIRE(got.max_y == want.max_y);
            REQUIRE(got.argmax == want.argmax);
            const float tol = 4e-6f * static_cast<float>(g.kernel_area() + 1);
            RequireClose(got.avg_y, want.avg_y, tol);
            RequireClose(got.max_dx, want.max_dx, tol);
            RequireClose(got.avg_dx, want.avg_dx, tol);
          }
        }
      }
    }
  }
}

TEST_CASE("CUDA max pooling lets the first NaN win", "[cuda][ops][kernels][pooling]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const ConvGeometry g = ConvGeometry::Square(1, 2, 2, 2, 2);
  Tensor x = Tensor::FromVector({1, 1, 2, 2}, {5, nan, 7, nan}).Clone(Device::CUDA());
  Tensor y = Tensor::Empty({1, 1, 1, 1}, DType::kFloat32, Device::CUDA());
  Tensor argmax = Tensor::Empty({1, 1, 1, 1}, DType::kInt32, Device::CUDA());
  REQUIRE(MaxPoolForward(x, g, y, argmax).ok());
  CHECK(std::isnan(y.ToVector()[0]));
  CHECK(Int32Values(argmax) == std::vector<int32_t>{1});
}

}  // namespace
}  // namespace sieve::ops
