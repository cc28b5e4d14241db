// Golden losses: five training steps of a small MLP, CNN and LSTM from a fixed seed on fixed data,
// compared with losses stored when the numerics were last changed on purpose. A refactor that
// changes what is computed (an initialiser, a scale, a kernel's summation, the update rule) moves
// these numbers; one that only moves code does not.
//
// The tolerance, 2e-5 relative, admits what the same code may legitimately differ by between
// machines (BLAS kernels of another CPU generation sum in another order: ~1e-6 after five steps)
// and catches any change in the computation itself. To re-record after an intended change, run
// this test with SIEVE_GOLDEN_PRINT=1 and paste the printed values, saying why in the commit.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "graph/sequential.h"
#include "runtime/trainer.h"

namespace sieve::runtime {
namespace {

// Five losses of `network` trained with SGD + momentum on one fixed batch of 8 examples of
// `features` values each in [-1, 1) (or token ids < 10 for an int32 input), labels in [0, 3).
std::vector<double> FiveSteps(const graph::Network& network, int64_t features) {
  TrainerOptions options;
  options.batch_size = 8;
  options.seed = 2024;
  options.solver.lr.base_lr = 0.1f;
  options.solver.momentum = 0.9f;
  options.solver.weight_decay = 1e-3f;
  auto trainer = Trainer::Create(network, options);
  REQUIRE(trainer.ok());
  std::mt19937 rng(42);
  Tensor x = Tensor::Empty({8, features});
  Tensor y = Tensor::Empty({8}, DType::kInt32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(rng);
  for (int64_t i = 0; i < 8; ++i) y.data<int32_t>()[i] = static_cast<int32_t>(rng() % 3);
  std::vector<double> losses;
  for (int step = 0; step < 5; ++step) {
    auto result = (*trainer)->Step(x, y);
    REQUIRE(result.ok());
    losses.push_back(result->loss);
  }
  if (std::getenv("SIEVE_GOLDEN_PRINT")) {
    std::printf("golden:");
    for (double l : losses) std::printf(" %.9g,", l);
    std::printf("\n");
  }
  return losses;
}

void CheckGolden(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("step " << i);
    CHECK(got[i] == Approx(want[i]).epsilon(2e-5));
  }
}

TEST_CASE("Golden losses: MLP with dropout", "[runtime][golden]") {
  graph::Sequential mlp({12});
  mlp.Add(graph::FullyConnected(16)).Add(graph::ReLU()).Add(graph::Dropout(0.5)).Add(graph::FullyConnected(3));
  CheckGolden(FiveSteps(*mlp.Build(), 12), {1.49487529, 1.67396191, 1.14580636, 1.11485423, 0.98865853});
}

TEST_CASE("Golden losses: CNN", "[runtime][golden]") {
  graph::Sequential cnn({1, 8, 8});
  cnn.Add(graph::Conv2d(4, 3, 1, 1)).Add(graph::ReLU()).Add(graph::MaxPool(2, 2)).Add(graph::Conv2d(6, 3, 1, 0))
      .Add(graph::Tanh()).Add(graph::FullyConnected(3));
  CheckGolden(FiveSteps(*cnn.Build(), 64), {1.14852839, 0.907209131, 0.715795609, 0.638410576, 0.522386661});
}

TEST_CASE("Golden losses: stacked LSTM", "[runtime][golden]") {
  graph::Sequential lstm({4, 3});  // 4 time steps of 3 features
  lstm.Add(graph::Lstm(6, 2)).Add(graph::FullyConnected(3));
  CheckGolden(FiveSteps(*lstm.Build(), 12), {1.09896893, 1.09778438, 1.09570368, 1.0930981, 1.09034694});
}

}  // namespace
}  // namespace sieve::runtime
