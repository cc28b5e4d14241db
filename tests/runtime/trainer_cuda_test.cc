// [cuda] tests of the runtime on a GPU: the executor and the Trainer run the MLP, CNN and LSTM of the
// golden test on CUDA and follow the CPU step by step (losses and final weights), and a CUDA
// executor refuses what the CUDA backend cannot run, naming the node.
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "graph/sequential.h"
#include "runtime/trainer.h"

namespace sieve::runtime {
namespace {

// Losses of four steps on one fixed batch, and the weights after them.
struct Run {
  std::vector<double> losses;
  std::vector<float> weights;
};

Run FourSteps(const graph::Network& network, int64_t features, Device device) {
  TrainerOptions options;
  options.batch_size = 8;
  options.seed = 9;
  options.device = device;
  options.solver.lr.base_lr = 0.1f;
  options.solver.momentum = 0.9f;
  auto trainer = Trainer::Create(network, options);
  REQUIRE(trainer.ok());
  std::mt19937 rng(3);
  Tensor x = Tensor::Empty({8, features});
  Tensor y = Tensor::Empty({8}, DType::kInt32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(rng);
  for (int64_t i = 0; i < 8; ++i) y.data<int32_t>()[i] = static_cast<int32_t>(rng() % 3);
  Run run;
  for (int step = 0; step < 4; ++step) {
    auto result = (*trainer)->Step(x, y);
    REQUIRE(result.ok());
    run.losses.push_back(result->loss);
  }
  run.weights = (*trainer)->params().flat_params()->ToVector();
  return run;
}

void CompareDevices(const graph::Network& network, int64_t features) {
  const Run cpu = FourSteps(network, features, Device::CPU());
  const Run gpu = FourSteps(network, features, Device::CUDA());
  for (size_t i = 0; i < cpu.losses.size(); ++i) {
    INFO("step " << i);
    CHECK(gpu.losses[i] == Approx(cpu.losses[i]).epsilon(1e-4));
  }
  REQUIRE(gpu.weights.size() == cpu.weights.size());
  double worst = 0.0;
  for (size_t i = 0; i < cpu.weights.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(gpu.weights[i] - cpu.weights[i])));
  CHECK(worst < 1e-4);
}

TEST_CASE("CUDA training follows the CPU: MLP with dropout", "[cuda][runtime][trainer]") {
  graph::Sequential mlp({12});
  mlp.Add(graph::FullyConnected(16)).Add(graph::ReLU()).Add(graph::Dropout(0.5)).Add(graph::FullyConnected(3));
  CompareDevices(*mlp.Build(), 12);
}

TEST_CASE("CUDA training follows the CPU: CNN", "[cuda][runtime][trainer]") {
  graph::Sequential cnn({1, 8, 8});
  cnn.Add(graph::Conv2d(4, 3, 1, 1)).Add(graph::ReLU()).Add(graph::MaxPool(2, 2)).Add(graph::Conv2d(6, 3, 2, 1))
      .Add(graph::Tanh()).Add(graph::AvgPool(2, 1)).Add(graph::FullyConnected(3));
  CompareDevices(*cnn.Build(), 64);
}

TEST_CASE("CUDA training follows the CPU: stacked LSTM", "[cuda][runtime][trainer]") {
  graph::Sequential lstm({4, 3});
  lstm.Add(graph::Lstm(6, 2)).Add(graph::FullyConnected(3));
  CompareDevices(*lstm.Build(), 12);
}

TEST_CASE("A CUDA executor refuses a non-zero fill, naming the node", "[cuda][runtime][executor]") {
  graph::Graph g;
  const graph::ValueId y = g.AddValue("y", graph::ValueRole::kActivation, {2, 2});
  g.AddNode(graph::OpKind::kFill, "ones", {}, {y}, graph::FillAttr{1.0f});
  auto executor = Executor::Create(g, Device::CUDA());
  REQUIRE_FALSE(executor.ok());
  CHECK_THAT(executor.status().message(), Catch::Contains("node 'ones'") && Catch::Contains("zero only"));
}

}  // namespace
}  // namespace sieve::runtime
