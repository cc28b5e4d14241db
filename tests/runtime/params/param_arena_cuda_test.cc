// [cuda] tests for ParamArena on a GPU: the same layout as on the host, views aligned in device
// memory, ZeroGrads, and weights initialised from the seed equal to the CPU arena's (bit for bit
// for constant, uniform and xavier; up to rare one-ulp differences for gaussian and msra).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/params/param_arena.h"

namespace sieve::runtime {
namespace {

void RegisterAll(ParamArena& arena) {
  REQUIRE(arena.Register("fc1.w", {300, 784}, {.init = InitSpec::Xavier()}).ok());
  REQUIRE(arena.Register("fc1.b", {300}, {.init = InitSpec::Constant(0.1f)}).ok());
  REQUIRE(arena.Register("conv.w", {16, 3, 5, 5}, {.init = InitSpec::Msra(VarianceNorm::kAverage)}).ok());
  REQUIRE(arena.Register("emb", {37, 11}, {.init = InitSpec::Uniform(-0.3f, 0.7f)}).ok());
  REQUIRE(arena.Register("proj", {13, 29}, {.init = InitSpec::Gaussian(0.05f, 0.02f)}).ok());
}

TEST_CASE("A CUDA arena matches the CPU arena's layout and initial weights", "[cuda][runtime][params][arena]") {
  ParamArena cpu, gpu;
  RegisterAll(cpu);
  RegisterAll(gpu);
  REQUIRE(cpu.Finalize(Device::CPU(), ops::SolverType::kAdam).ok());
  REQUIRE(gpu.Finalize(Device::CUDA(), ops::SolverType::kAdam).ok());
  REQUIRE(cpu.Initialize(31).ok());
  REQUIRE(gpu.Initialize(31).ok());
  CHECK(gpu.total_elements() == cpu.total_elements());
  for (size_t i = 0; i < gpu.entries().size(); ++i) {
    const ParamEntry& g = gpu.entries()[i];
    const ParamEntry& c = cpu.entries()[i];
    INFO("parameter " << g.name << " " << InitSpecToString(g.spec.init));
    CHECK(g.offset == c.offset);
    CHECK(g.param.device() == Device::CUDA());
    CHECK(reinterpret_cast<uintptr_t>(g.param.raw_data()) % kParamAlignBytes == 0);
    CHECK(reinterpret_cast<uintptr_t>(g.state[1].raw_data()) % kParamAlignBytes == 0);
    const std::vector<float> got = g.param.ToVector(), want = c.param.ToVector();
    const bool gaussian = g.spec.init.type == InitType::kGaussian || g.spec.init.type == InitType::kMsra;
    if (!gaussian) {
      CHECK(got == want);
      continue;
    }
    int64_t differ = 0;
    double worst = 0.0;
    for (size_t k = 0; k < got.size(); ++k) {
      if (got[k] == want[k]) continue;
      ++differ;
      worst = std::max(worst, std::fabs(static_cast<double>(got[k]) - want[k]) / std::fabs(want[k]));
    }
    CHECK(differ <= static_cast<int64_t>(got.size()) / 1000 + 1);
    CHECK(worst <= 2.5e-7);
  }
  const std::vector<float> grads = gpu.flat_grads()->ToVector();
  CHECK(std::all_of(grads.begin(), grads.end(), [](float x) { return x == 0.0f; }));
}

TEST_CASE("ZeroGrads clears a CUDA arena's gradients", "[cuda][runtime][params][arena]") {
  ParamArena gpu;
  RegisterAll(gpu);
  REQUIRE(gpu.Finalize(Device::CUDA(), ops::SolverType::kSGD).ok());
  Tensor grad = *gpu.grad("emb");
  REQUIRE(grad.CopyFrom(Tensor::FromVector(grad.shape(), std::vector<float>(37 * 11, 2.0f))).ok());
  const std::vector<float> before = gpu.flat_grads()->ToVector();
  CHECK(std::count(before.begin(), before.end(), 2.0f) == 37 * 11);
  REQUIRE(gpu.ZeroGrads().ok());
  const std::vector<float> after = gpu.flat_grads()->ToVector();
  CHECK(std::all_of(after.begin(), after.end(), [](float x) { return x == 0.0f; }));
}

}  // namespace
}  // namespace sieve::runtime
