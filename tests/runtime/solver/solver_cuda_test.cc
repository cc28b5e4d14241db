// [cuda] tests for the solver on a GPU arena: three steps of each solver with clipping agree with
// the same steps on the CPU, and the flat and per-parameter paths agree bit for bit on the GPU.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ops/kernels/random_fill.h"
#include "runtime/solver/solver.h"

namespace sieve::runtime {
namespace {

ParamArena MakeArena(Device device, ops::SolverType type, bool mixed_mults) {
  ParamArena arena;
  const Shape shapes[] = {{33, 17}, {33}, {1}, {256, 160}};
  for (size_t i = 0; i < std::size(shapes); ++i) {
    const ParamSpec spec = {.lr_mult = mixed_mults && i % 2 ? 2.0f : 1.0f,
                            .decay_mult = mixed_mults && i % 2 ? 0.0f : 1.0f,
                            .init = InitSpec::Uniform(-0.5f, 0.5f)};
    REQUIRE(arena.Register("p" + std::to_string(i), shapes[i], spec).ok());
  }
  REQUIRE(arena.Finalize(device, type).ok());
  REQUIRE(arena.Initialize(8).ok());
  return arena;
}

// Uniform gradients (bit-identical on both devices), so the devices start each step equal.
void FillGrads(const ParamArena& arena, int64_t iteration) {
  for (int64_t i = 0; i < arena.size(); ++i) {
    const RandomStream stream{7, (static_cast<uint64_t>(i) << 32) | static_cast<uint64_t>(iteration)};
    REQUIRE(ops::FillUniform(arena.entries()[static_cast<size_t>(i)].grad, -0.2f, 0.2f, stream).ok());
  }
}

SolverConfig Config(ops::SolverType type) {
  return {.type = type,
          .lr = {.type = LrPolicyType::kStep, .base_lr = 0.05f, .gamma = 0.5f, .stepsize = 2},
          .momentum = 0.9f,
          .weight_decay = 1e-3f,
          .clip_gradients = 10.0f};
}

TEST_CASE("Solver steps on a CUDA arena match the CPU", "[cuda][runtime][solver]") {
  for (const ops::SolverType type : {ops::SolverType::kSGD, ops::SolverType::kNesterov, ops::SolverType::kAdam}) {
    INFO(ops::SolverTypeName(type));
    ParamArena cpu = MakeArena(Device::CPU(), type, true);
    ParamArena gpu = MakeArena(Device::CUDA(), type, true);
    const StatusOr<Solver> solver = Solver::Create(Config(type));
    REQUIRE(solver.ok());
    for (int64_t it = 0; it < 3; ++it) {
      FillGrads(cpu, it);
      FillGrads(gpu, it);
      const StatusOr<StepReport> a = solver->Step(cpu, it);
      const StatusOr<StepReport> b = solver->Step(gpu, it);
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      CHECK(a->clipped);
      CHECK(b->clipped);
      CHECK(*b->grad_norm == Approx(*a->grad_norm).epsilon(1e-12));
    }
    const std::vector<float> want = cpu.flat_params()->ToVector(), got = gpu.flat_params()->ToVector();
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < got.size(); ++k) {
      // Three updates, each a few float operations that the GPU may fuse into FMAs.
      if (std::fabs(static_cast<double>(got[k]) - want[k]) > 1e-6 * std::max(1.0, std::fabs(double{want[k]}))) {
        FAIL_CHECK("weight " << k << ": " << got[k] << " on the GPU vs " << want[k] << " on the CPU");
        break;
      }
    }
  }
}

TEST_CASE("The flat and per-parameter paths agree bit for bit on the GPU", "[cuda][runtime][solver]") {
  for (const ops::SolverType type : {ops::SolverType::kSGD, ops::SolverType::kNesterov, ops::SolverType::kAdam}) {
    INFO(ops::SolverTypeName(type));
    ParamArena a = MakeArena(Device::CUDA(), type, false);
    ParamArena b = MakeArena(Device::CUDA(), type, false);
    const StatusOr<Solver> solver = Solver::Create(Config(type));
    REQUIRE(solver.ok());
    for (int64_t it = 0; it < 3; ++it) {
      FillGrads(a, it);
      FillGrads(b, it);
      REQUIRE(solver->Step(a, it, UpdatePath::kPerParam).ok());
      REQUIRE(solver->Step(b, it, UpdatePath::kFlat).ok());
    }
    const std::vector<float> x = a.flat_params()->ToVector(), y = b.flat_params()->ToVector();
    CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
  }
}

}  // namespace
}  // namespace sieve::runtime
