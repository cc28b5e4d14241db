// CUDA bias kernels against the CPU ones: plain and packed (row pattern, wrapping row pattern,
// channel set), strided views, backward with beta, channel bias in every accepted layout.
#include <catch2/catch.hpp>
#include <cmath>
#include <optional>
#include <random>
#include <vector>

#include "ops/kernels/bias.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::RandomTensor;
using testing::CheckClose;

TEST_CASE("CUDA AddBias and BiasBackward match the CPU", "[cuda][ops][kernels][bias]") {
  std::mt19937 rng(71);
  const Device gpu = Device::CUDA();
  const std::vector<std::optional<IndexPattern>> patterns = {std::nullopt, RowPattern::Strided(2, 1),
                                                             RowPattern{3, 5, 4}, ChannelSet{{0, 1, 4, 9, 16, 25, 36}}};
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 40}, {7, 41}, {1000, 300}, {3000, 50}};
  for (const auto& [rows, extent] : shapes)
    for (const auto& pattern : patterns)
      for (int64_t pad : {0, 3}) {
        INFO(rows << " x " << extent << " pattern " << (pattern ? PatternToString(*pattern) : "none") << " pad "
                  << pad);
        const int64_t cols = pattern ? KeptCount(*pattern, extent) : extent;
        const Tensor bias = RandomTensor({extent}, rng);
        const Tensor y_cpu = RandomTensor({rows, cols + pad}, rng), y_gpu = y_cpu.Clone(gpu);
        REQUIRE(AddBias(y_cpu.Slice(1, 0, cols), bias, pattern).ok());
        REQUIRE(AddBias(y_gpu.Slice(1, 0, cols), bias.Clone(gpu), pattern).ok());
        CheckClose(y_gpu.ToVector(), y_cpu.ToVector(), 1e-6, 0.0);

        for (float beta : {0.0f, 1.0f}) {
          const Tensor db_cpu = RandomTensor({extent}, rng), db_gpu = db_cpu.Clone(gpu);
          REQUIRE(BiasBackward(y_cpu.Slice(1, 0, cols), db_cpu, beta, pattern).ok());
          REQUIRE(BiasBackward(y_gpu.Slice(1, 0, cols), db_gpu, beta, pattern).ok());
          // Float partial sums on the device against double ones on the host.
          CheckClose(db_gpu.ToVector(), db_cpu.ToVector(), 1e-5, 1e-6 * static_cast<double>(rows));
        }
      }
}

TEST_CASE("CUDA channel bias matches the CPU", "[cuda][ops][kernels][bias]") {
  std::mt19937 rng(73);
  const Device gpu = Device::CUDA();
  for (const Shape& shape : std::vector<Shape>{{1, 1}, {6, 50}, {4, 6, 24, 24}, {2, 3, 1}, {128, 16, 7, 7}}) {
    INFO("shape " << ShapeToString(shape));
    const int64_t channels = shape.size() == 2 ? shape[0] : shape[1];
    // The 2-D form also runs as a strided view.
    for (int64_t pad : shape.size() == 2 ? std::vector<int64_t>{0, 5} : std::vector<int64_t>{0}) {
      Shape base_shape = shape;
      base_shape.back() += pad;
      auto view = [&](const Tensor& t) { return pad == 0 ? t : t.Slice(1, 0, shape[1]); };
      const Tensor bias = RandomTensor({channels}, rng);
      const Tensor y_cpu = RandomTensor(base_shape, rng), y_gpu = y_cpu.Clone(gpu);
      REQUIRE(AddChannelBias(view(y_cpu), bias).ok());
      REQUIRE(AddChannelBias(view(y_gpu), bias.Clone(gpu)).ok());
      CheckClose(y_gpu.ToVector(), y_cpu.ToVector(), 1e-6, 0.0);

      const int64_t reduced = ShapeNumel(shape) / channels;
      for (float beta : {0.0f, 0.5f}) {
        const Tensor db_cpu = RandomTensor({channels}, rng), db_gpu = db_cpu.Clone(gpu);
        REQUIRE(ChannelBiasBackward(view(y_cpu), db_cpu, beta).ok());
        REQUIRE(ChannelBiasBackward(view(y_gpu), db_gpu, beta).ok());
        CheckClose(db_gpu.ToVector(), db_cpu.ToVector(), 1e-5, 1e-6 * static_cast<double>(reduced));
      }
    }
  }
}

}  // namespace
}  // namespace sieve::ops
