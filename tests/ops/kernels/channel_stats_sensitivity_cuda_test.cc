// The per-channel statistics of sensitivity-aware dropout on CUDA against the CPU path, for all,
// some and more kept channels than one launch carries.
#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <vector>

#include "ops/kernels/channel_stats.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

TEST_CASE("CUDA channel statistics match the CPU", "[cuda][sensitivity][ops][kernels]") {
  std::mt19937 rng(3);
  const struct {
    int64_t batch, channels, h, w, rows, group;
  } shapes[] = {{1, 1, 1, 1, 1, 1}, {3, 5, 7, 3, 4, 9}, {2, 600, 5, 5, 6, 9}};
  for (const auto& s : shapes) {
    for (int subset = 0; subset < 2; ++subset) {
      INFO("channels " << s.channels << " subset " << subset);
      std::optional<ChannelSet> set;
      if (subset == 1) {
        set.emplace();
        for (int64_t c = 0; c < s.channels; c += 2) set->kept.push_back(c);
      }
      const ChannelSet* p = set ? &*set : nullptr;
      const int64_t kept = set ? static_cast<int64_t>(set->kept.size()) : s.channels;
      const Tensor x = testing::RandomTensor({s.batch, s.channels, s.h, s.w}, rng);
      const Tensor w = testing::RandomTensor({s.rows, s.channels * s.group}, rng);
      const Tensor dw = testing::RandomTensor({s.rows, s.channels * s.group}, rng);
      const Device gpu = Device::CUDA(0);
      Tensor cpu_out = Tensor::Zeros({kept}), gpu_out = Tensor::Zeros({kept}, DType::kFloat32, gpu);
      REQUIRE(ChannelMeanAbs(x, p, cpu_out).ok());
      REQUIRE(ChannelMeanAbs(x.Clone(gpu), p, gpu_out).ok());
      testing::CheckClose(gpu_out.Clone(Device::CPU()).ToVector(), cpu_out.ToVector(), 1e-5, 1e-7);
      REQUIRE(ChannelBlockDot(w, dw, s.group, p, cpu_out).ok());
      REQUIRE(ChannelBlockDot(w.Clone(gpu), dw.Clone(gpu), s.group, p, gpu_out).ok());
      testing::CheckClose(gpu_out.Clone(Device::CPU()).ToVector(), cpu_out.ToVector(), 1e-5, 1e-6);
    }
  }
}

}  // namespace
}  // namespace sieve::ops
