// Finite-difference checks of whole small networks, every layer kind among them: an MLP (FC,
// bias, ReLU, tanh, sigmoid, Bernoulli dropout), a CNN (conv with stride 1 and 2, padding 0 and 1,
// max and average pooling, flatten, FC) and a stacked LSTM over 3 time steps with an embedding
// in front. Each is lowered, differentiated by AppendBackward and run by the Executor; the
// gradient of every parameter element sampled is compared with a central difference of the loss.
//
// The dropout mask depends only on (seed, site, iteration), so it is the same in every forward
// of the check and the loss is a deterministic function of the parameters.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "graph/sequential.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"

namespace sieve::runtime {
namespace {

using graph::ValueId;

struct Harness {
  graph::LoweredNet net;
  ParamArena arena;
  std::unique_ptr<Executor> exec;
  std::vector<std::pair<ValueId, ValueId>> grads;
  graph::NodeId loss{};
};

// Lowers and differentiates `network` for `batch`, binds random inputs and labels in [0, classes)
// (tokens in [0, vocab) for an int32 input) and initialises the parameters from the seed.
void Build(Harness& h, const graph::Network& network, int64_t batch, int32_t classes, int32_t vocab = 0) {
  auto lowered = graph::Lower(network, {.batch = batch, .training = true});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  h.net = std::move(*lowered);
  REQUIRE(h.net.losses.size() == 1);
  h.loss = h.net.losses.front().node;
  auto grads = graph::AppendBackward(h.net.graph, {h.loss}, h.net.custom_gradients);
  REQUIRE(grads.ok());
  h.grads = grads->params;
  for (const graph::ParamDecl& p : h.net.params) REQUIRE(h.arena.Register(p.name, p.shape, p.spec).ok());
  REQUIRE(h.arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  REQUIRE(h.arena.Initialize(3).ok());
  auto exec = Executor::Create(h.net.graph, Device::CPU());
  REQUIRE(exec.ok());
  h.exec = std::move(*exec);
  for (const graph::ParamDecl& p : h.net.params) REQUIRE(h.exec->Bind(p.value, *h.arena.param(p.name)).ok());
  for (const auto& [param, grad] : h.grads)
    REQUIRE(h.exec->Bind(grad, *h.arena.grad(h.net.graph.value(param).name)).ok());
  std::mt19937 rng(11);
  for (ValueId input : h.net.inputs) {
    const graph::Value& v = h.net.graph.value(input);
    Tensor t = Tensor::Zeros(v.planned, v.dtype);
    const bool is_state = v.name.find(".h0") != std::string::npos || v.name.find(".c0") != std::string::npos;
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (v.dtype == DType::kInt32) {
        t.data<int32_t>()[i] = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
      } else {
        t.data<float>()[i] = is_state ? 0.3f * std::uniform_real_distribution<float>(-1, 1)(rng)
                                      : std::uniform_real_distribution<float>(-1, 1)(rng);
      }
    }
    REQUIRE(h.exec->Bind(input, t).ok());
  }
  for (ValueId label : h.net.labels) {
    const graph::Value& v = h.net.graph.value(label);
    Tensor t = Tensor::Zeros(v.planned, DType::kInt32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng() % classes);
    REQUIRE(h.exec->Bind(label, t).ok());
  }
}

double Loss(Harness& h) {
  REQUIRE(h.exec->RunPhase(graph::Phase::kForward, {.iteration = 0, .seed = 5}).ok());
  return h.exec->Stats(h.loss).loss();
}

// Compares the gradient of up to `samples` elements of every parameter with central differences.
void CheckGradients(Harness& h, int samples, double eps, double rtol, double atol) {
  REQUIRE(h.exec->Run({.iteration = 0, .seed = 5}).ok());
  std::mt19937 rng(13);
  for (const ParamEntry& p : h.arena) {
    const std::vector<float> analytic = p.grad.ToVector();
    float* w = p.param.data<float>();
    const int64_t n = p.param.numel();
    int checked = 0;
    for (int s = 0; s < samples && s < n; ++s) {
      const int64_t i = n <= samples ? s : static_cast<int64_t>(rng() % static_cast<uint32_t>(n));
      const float saved = w[i];
      w[i] = saved + static_cast<float>(eps);
      const double plus = Loss(h);
      w[i] = saved - static_cast<float>(eps);
      const double minus = Loss(h);
      w[i] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      INFO(p.name << "[" << i << "]: analytic " << analytic[i] << ", numeric " << numeric);
      CHECK(std::abs(analytic[i] - numeric) <= rtol * std::max(std::abs(numeric), std::abs(double{analytic[i]})) + atol);
      ++checked;
    }
    CHECK(checked > 0);
  }
}

// Tolerances: float32 forwards give the loss (about 1-2) to ~1e-7 relative, so the difference
// quotient carries ~1e-7 / eps of rounding noise (1e-4 at eps = 1e-3), while the truncation error of
// the central difference (eps^2 times the third derivative) is far below that. ReLU and max pooling
// are kinked, so the nets that have them use eps = 1e-3: a pre-activation or a pool winner within
// eps of a kink would show as a large, isolated mismatch. The smooth LSTM uses eps = 1e-2.

TEST_CASE("Whole MLP gradients match finite differences", "[runtime][gradcheck]") {
  graph::Sequential mlp({6});
  mlp.Add(graph::FullyConnected(8)).Add(graph::Tanh()).Add(graph::Dropout(0.3))
      .Add(graph::FullyConnected(7)).Add(graph::Sigmoid())
      .Add(graph::FullyConnected(5)).Add(graph::ReLU()).Add(graph::FullyConnected(3));
  Harness h;
  Build(h, *mlp.Build(), 4, 3);
  CheckGradients(h, 12, 1e-3, 2e-2, 3e-4);
}

TEST_CASE("Whole CNN gradients match finite differences", "[runtime][gradcheck]") {
  graph::Sequential cnn({2, 12, 12});
  cnn.Add(graph::Conv2d(3, 3, 1, 1)).Add(graph::Tanh()).Add(graph::MaxPool(2, 2))
      .Add(graph::Conv2d(4, 3, 2, 0)).Add(graph::Sigmoid()).Add(graph::AvgPool(2, 1))
      .Add(graph::Flatten()).Add(graph::FullyConnected(3));
  Harness h;
  Build(h, *cnn.Build(), 2, 3);
  CheckGradients(h, 10, 1e-3, 2e-2, 3e-4);
}

TEST_CASE("Whole stacked LSTM gradients over 3 time steps match finite differences", "[runtime][gradcheck]") {
  graph::Sequential lstm({3}, DType::kInt32);  // 3 token ids per sample
  lstm.Add(graph::Embedding(7, 4)).Add(graph::Lstm(5, 2, false)).Add(graph::FullyConnected(3));
  Harness h;
  Build(h, *lstm.Build(), 2, 3, 7);
  CheckGradients(h, 12, 1e-2, 2e-2, 2e-4);
}

}  // namespace
}  // namespace sieve::runtime
