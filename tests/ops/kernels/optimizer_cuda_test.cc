// [cuda] tests for the optimizer updates: CUDA kernels follow the CPU kernels over several steps
// (to a few ulps: nvcc fuses multiply-adds), and gradient clipping over CUDA tensors matches the CPU.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "ops/kernels/optimizer.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::CheckUlps;
using testing::SymmetricValues;

TEST_CASE("CUDA updates follow the CPU kernels", "[cuda][ops][kernels][optimizer]") {
  for (const SolverType type : {SolverType::kSGD, SolverType::kNesterov, SolverType::kAdam}) {
    for (const int64_t n : {int64_t{1}, int64_t{1001}, int64_t{2048 * 784}}) {
      INFO(SolverTypeName(type) << ", n " << n);
      const std::vector<float> w0 = SymmetricValues(n, 1, 1.0f);
      Tensor w_cpu = Tensor::FromVector({n}, w0), w_gpu = w_cpu.Clone(Device::CUDA());
      std::vector<Tensor> s_cpu, s_gpu;
      for (int s = 0; s < SolverStateSlots(type); ++s) {
        s_cpu.push_back(Tensor::Zeros({n}));
        s_gpu.push_back(Tensor::Zeros({n}, DType::kFloat32, Device::CUDA()));
      }
      UpdateHyper hyper;
      hyper.lr = type == SolverType::kAdam ? 1e-3f : 0.05f;
      hyper.weight_decay = 5e-4f;
      for (int step = 1; step <= 3; ++step) {
        hyper.step = step;
        const Tensor g = Tensor::FromVector({n}, SymmetricValues(n, static_cast<uint32_t>(step + 20), 0.5f));
        REQUIRE(ApplyUpdate(type, w_cpu, g, s_cpu, hyper).ok());
        REQUIRE(ApplyUpdate(type, w_gpu, g.Clone(Device::CUDA()), s_gpu, hyper).ok());
      }
      // A fused multiply-add differs from two roundings by an ulp of the TERMS, not of the result,
      // which may nearly cancel them; the floors are the terms' magnitudes: weights up to 1,
      // momentum histories sums of three steps of lr * |g| <= 0.05 * 0.5, Adam's moments of |g| <= 0.5.
      CheckUlps(w_gpu.ToVector(), w_cpu.ToVector(), 4, 1.0, "w");
      const double state_floor = type == SolverType::kAdam ? 0.5 : 3 * hyper.lr * 0.5;
      for (size_t s = 0; s < s_cpu.size(); ++s)
        CheckUlps(s_gpu[s].ToVector(), s_cpu[s].ToVector(), 4, state_floor, "state");
    }
  }
}

TEST_CASE("CUDA gradient clipping matches the CPU and is reproducible", "[cuda][ops][kernels][optimizer]") {
  const std::vector<float> a = SymmetricValues(2048 * 784, 2, 0.01f), b = SymmetricValues(2048, 3, 0.5f);
  const Tensor a_cpu = Tensor::FromVector({2048, 784}, a), b_cpu = Tensor::FromVector({2048}, b);
  const double norm_cpu = std::sqrt(*SumOfSquares(a_cpu) + *SumOfSquares(b_cpu));
  std::vector<Tensor> grads = {a_cpu.Clone(Device::CUDA()), b_cpu.Clone()};  // one on each device
  const double first = *SumOfSquares(grads[0]);
  CHECK(first == *SumOfSquares(grads[0]));
  CHECK(first == Approx(*SumOfSquares(a_cpu)).epsilon(1e-12));

  const float clip = static_cast<float>(norm_cpu / 2);
  auto outcome = ClipGradients(grads, clip);
  REQUIRE(outcome.ok());
  CHECK(outcome->clipped);
  CHECK(outcome->norm == Approx(norm_cpu).epsilon(1e-12));
  const std::vector<float> a_after = grads[0].ToVector();
  for (size_t i = 0; i < a.size(); i += 997) CHECK(a_after[i] == a[i] * outcome->scale);
  CHECK(grads[1].ToVector()[5] == b[5] * outcome->scale);
}

}  // namespace
}  // namespace sieve::ops
