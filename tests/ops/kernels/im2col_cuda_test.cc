// im2col / col2im on CUDA against the CPU path: a sweep of geometries and kept-channel sets with
// column offsets and wide column matrices, and kept sets larger than one launch's channel chunk.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

#include "ops/kernels/im2col.h"

namespace sieve::ops {
namespace {

std::vector<float> RandomValues(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

std::optional<ChannelSet> RandomSubset(int64_t channels, int64_t keep_one_in, std::mt19937& rng) {
  ChannelSet s;
  for (int64_t c = 0; c < channels; ++c)
    if (rng() % keep_one_in != 0) s.kept.push_back(c);
  return s;
}

const ChannelSet* Ptr(const std::optional<ChannelSet>& s) { return s ? &*s : nullptr; }

// Runs Im2ColBatch, Im2Col of the last image at a column offset, and Col2ImBatch with `beta` on
// `device`, starting from the same host data, and returns everything they wrote.
std::vector<std::vector<float>> RunAll(Device device, const ConvGeometry& g, int64_t batch, const ChannelSet* set,
                                       const std::vector<float>& x, const std::vector<float>& col_in,
                                       const std::vector<float>& dx_in, float beta) {
  const int64_t kept = set ? static_cast<int64_t>(set->kept.size()) : g.channels;
  const int64_t rows = kept * g.kernel_area(), cols = batch * g.out_plane() + 2;
  const Shape image{batch, g.channels, g.height, g.width};
  Tensor xt = Tensor::FromVector(image, x).Clone(device);
  Tensor col =
      Tensor::FromVector({rows, cols}, std::vector<float>(static_cast<size_t>(rows * cols), 7.0f)).Clone(device);
  SIEVE_CHECK_OK(Im2ColBatch(xt, g, set, col));
  Tensor one =
      Tensor::FromVector({rows, g.out_plane() + 3}, std::vector<float>(rows * (g.out_plane() + 3), 7.0f)).Clone(device);
  SIEVE_CHECK_OK(Im2Col(xt, batch - 1, g, set, one, 3));
  Tensor grad_col = Tensor::FromVector({rows, cols}, col_in).Clone(device);
  Tensor dx = Tensor::FromVector(image, dx_in).Clone(device);
  SIEVE_CHECK_OK(Col2ImBatch(grad_col, g, set, dx, beta));
  Tensor dx_one = Tensor::FromVector(image, dx_in).Clone(device);
  SIEVE_CHECK_OK(Col2Im(grad_col.MatrixView(1, rows, g.out_plane(), cols), 0, g, set, dx_one, 0, beta));
  Synchronize(device);
  return {col.ToVector(), one.ToVector(), dx.ToVector(), dx_one.ToVector()};
}

void CompareCudaToCpu(const ConvGeometry& g, int64_t batch, const std::optional<ChannelSet>& set, float beta,
                      std::mt19937& rng) {
  INFO(g.ToString() << " batch " << batch << " kept " << (set ? set->kept.size() : g.channels) << " beta " << beta);
  const int64_t kept = set ? static_cast<int64_t>(set->kept.size()) : g.channels;
  const int64_t image_size = batch * g.channels * g.in_plane();
  const std::vector<float> x = RandomValues(image_size, rng), dx = RandomValues(image_size, rng);
  const std::vector<float> col = RandomValues(kept * g.kernel_area() * (batch * g.out_plane() + 2), rng);
  const auto want = RunAll(Device::CPU(), g, batch, Ptr(set), x, col, dx, beta);
  const auto got = RunAll(Device::CUDA(), g, batch, Ptr(set), x, col, dx, beta);
  REQUIRE(got[0] == want[0]);  // copies are exact
  REQUIRE(got[1] == want[1]);
  const float tol = 2e-6f * static_cast<float>(g.kernel_area() + 1);
  for (int k : {2, 3}) {
    for (int64_t i = 0; i < image_size; ++i) {
      const int64_t c = (i / g.in_plane()) % g.channels;
      const bool dropped = set && !std::binary_search(set->kept.begin(), set->kept.end(), c);
      if (dropped) {
        REQUIRE(got[k][i] == dx[i]);
      } else {
        REQUIRE(std::abs(got[k][i] - want[k][i]) <= tol);
      }
    }
  }
}

TEST_CASE("CUDA im2col and col2im match the CPU", "[cuda][ops][kernels][conv]") {
  std::mt19937 rng(17);
  for (int64_t kernel : {1, 2, 3, 5}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t pad : {0, 1, 2}) {
        for (int64_t batch : {1, 3}) {
          ConvGeometry g = ConvGeometry::Square(1 + 2 * static_cast<int64_t>(rng() % 4), 1, 1, kernel, stride, pad);
          g.dilation_w = 1 + static_cast<int64_t>(rng() % 2);
          g.ceil_mode = rng() % 4 == 0;
          g.height = std::max<int64_t>(1, kernel - 2 * pad) + static_cast<int64_t>(rng() % 9);
          g.width = std::max<int64_t>(1, g.dilation_w * (kernel - 1) + 1 - 2 * pad) + static_cast<int64_t>(rng() % 9);
          const float beta = static_cast<float>(rng() % 3) * 0.5f;
          CompareCudaToCpu(g, batch, std::nullopt, beta, rng);
          CompareCudaToCpu(g, batch, ChannelSet{}, beta, rng);
          CompareCudaToCpu(g, batch, ChannelSet{{g.channels - 1}}, beta, rng);
          CompareCudaToCpu(g, batch, RandomSubset(g.channels, 2, rng), beta, rng);
        }
      }
    }
  }
}

TEST_CASE("CUDA im2col and col2im handle more kept channels than one launch carries", "[cuda][ops][kernels][conv]") {
  std::mt19937 rng(23);
  const ConvGeometry g = ConvGeometry::Square(1100, 4, 3, 3, 1, 1);
  CompareCudaToCpu(g, 2, std::nullopt, 0.0f, rng);
  CompareCudaToCpu(g, 2, RandomSubset(g.channels, 3, rng), 1.0f, rng);
}

}  // namespace
}  // namespace sieve::ops
