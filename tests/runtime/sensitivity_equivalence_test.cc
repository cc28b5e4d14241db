// Equivalence and gradient checks of feature-map dropout on a convolution (SPEC 3), run by the
// Executor: a CNN whose second conv reads a channel site, its kept maps set by hand and resolved by
// the iteration pipeline, against the same CNN lowered without dropout whose second conv weight has
// the dropped maps' columns zeroed and the kept ones scaled by C / kept. Dropping input map c of a
// conv is zeroing the k*k weight columns of c, so the loss, every gradient but that weight's, and
// that weight's gradient times the mask must agree; dropped maps' weight columns and input
// gradients must be exactly zero. Swept: kernel 1/3/5, stride 1/2, padding 0/1, 5 input maps (odd),
// batch 1 to 3, two iterations with different kept maps on one executor; the executed GEMM FLOPs
// match the analytic count. Also: a finite-difference check of a small CNN with a channel site;
// the sensitivity estimates against a brute-force check (drop one map, measure the loss change) in
// rank order on a tiny network with clearly separated maps, and the importance against its
// definition; and the Trainer wiring (warm-up, shrunk FLOPs, reproducible losses).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "graph/pass.h"
#include "graph/sensitivity_pass.h"
#include "graph/sequential.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"
#include "runtime/trainer.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

using graph::ValueId;

constexpr int32_t kClasses = 4;

struct Harness {
  graph::LoweredNet net;
  ParamArena arena;
  std::unique_ptr<Executor> exec;
  graph::NodeId loss{};
  Tensor data, labels;
};

// Lowers and differentiates `network`, initialises the parameters from seed 7.
void Lower(Harness& h, const graph::Network& network, int64_t batch, bool training) {
  auto lowered = graph::Lower(network, {.batch = batch, .training = training});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  h.net = std::move(*lowered);
  h.loss = h.net.losses.front().node;
  auto grads = graph::AppendBackward(h.net.graph, {h.loss}, h.net.custom_gradients);
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  for (const graph::ParamDecl& p : h.net.params) REQUIRE(h.arena.Register(p.name, p.shape, p.spec).ok());
  REQUIRE(h.arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  REQUIRE(h.arena.Initialize(7).ok());
}

// Creates the executor (keeping `keep_alive` readable after a run) and binds everything.
void Finish(Harness& h, const Tensor& data, const Tensor& labels, std::vector<ValueId> keep_alive = {}) {
  graph::MemoryPlanOptions plan;
  plan.keep_alive = std::move(keep_alive);
  auto exec = Executor::Create(h.net.graph, Device::CPU(), plan);
  INFO(exec.status().ToString());
  REQUIRE(exec.ok());
  h.exec = std::move(*exec);
  const graph::Graph& g = h.net.graph;
  for (const graph::ParamDecl& p : h.net.params) {
    REQUIRE(h.exec->Bind(p.value, *h.arena.param(p.name)).ok());
    REQUIRE(h.exec->Bind(*g.FindValue(p.name + ".grad"), *h.arena.grad(p.name)).ok());
  }
  h.data = data;
  h.labels = labels;
  REQUIRE(h.exec->Bind(h.net.inputs.front(), h.data).ok());
  REQUIRE(h.exec->Bind(h.net.labels.front(), h.labels).ok());
}

Tensor Labels(int64_t batch, std::mt19937& rng) {
  Tensor t = Tensor::Zeros({batch}, DType::kInt32);
  for (int64_t i = 0; i < batch; ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng() % kClasses);
  return t;
}

double Run(Harness& h) {
  const Status st = h.exec->Run({.iteration = 0, .seed = 5});
  INFO(st.ToString());
  REQUIRE(st.ok());
  return h.exec->Stats(h.loss).loss();
}

void SetKept(Harness& h, const std::vector<int64_t>& kept) {
  graph::Graph& g = h.net.graph;
  g.SetSitePattern(*g.FindSite("drop.site"), ops::ChannelSet{kept});
  graph::PassContext context;
  const Status st = graph::MakeIterationPipeline({}).Run(g, context);
  INFO(st.ToString());
  REQUIRE(st.ok());
}

struct ConvCase {
  int64_t kernel, stride, pad, batch;
};

// data [2, 9, 9] -> conv1 (5 maps, k3 p1) -> act -> drop -> conv2 (3 maps, the case's geometry) ->
// act -> flatten -> fc (kClasses).
graph::Network CaseNet(const ConvCase& c, const graph::DropoutSpec& drop, graph::ActivationSpec act) {
  graph::Sequential net({2, 9, 9});
  net.Add(graph::Conv2d(5, 3, 1, 1))
      .Add(act)
      .Add(drop, "drop")
      .Add(graph::Conv2d(3, c.kernel, c.stride, c.pad))
      .Add(act)
      .Add(graph::Flatten())
      .Add(graph::FullyConnected(kClasses));
  StatusOr<graph::Network> built = net.Build();
  REQUIRE(built.ok());
  return *built;
}

TEST_CASE("Feature-map dropout on a conv equals the dense conv with masked weights", "[sensitivity][runtime]") {
  const ConvCase cases[] = {{1, 1, 0, 1}, {3, 1, 1, 3}, {3, 2, 0, 2}, {5, 1, 0, 1},
                            {5, 2, 1, 3}, {1, 2, 1, 2}, {3, 2, 1, 1}};
  for (const ConvCase& c : cases) {
    INFO("kernel " << c.kernel << " stride " << c.stride << " pad " << c.pad << " batch " << c.batch);
    const graph::Network network = CaseNet(c, graph::SensitivityDropout(0.4), graph::ReLU());
    std::mt19937 rng(static_cast<uint32_t>(c.kernel * 100 + c.stride * 10 + c.pad + c.batch));
    const Tensor data = testing::RandomTensor({c.batch, 2, 9, 9}, rng);
    const Tensor labels = Labels(c.batch, rng);
    Harness sparse, dense;
    Lower(sparse, network, c.batch, true);
    Lower(dense, network, c.batch, false);
    const graph::Graph& g = sparse.net.graph;
    const ValueId conv2_in = g.node(*g.FindNode("conv2.matmul")).inputs[1];
    const ValueId conv2_in_grad = *g.FindValue(g.value(conv2_in).name + ".grad");
    Finish(sparse, data, labels, {conv2_in_grad});
    Finish(dense, data, labels);
    const int64_t area = c.kernel * c.kernel;
    const std::vector<float> w = sparse.arena.param("conv2.w")->ToVector();

    for (const std::vector<int64_t>& kept : {std::vector<int64_t>{0, 3, 4}, std::vector<int64_t>{1, 2, 4}}) {
      INFO("kept maps " << kept[0] << ", " << kept[1] << ", " << kept[2]);
      SetKept(sparse, kept);
      const double sparse_loss = Run(sparse);
      // The dense weight: kept columns scaled by 5/3, dropped ones zero.
      std::vector<float> mask(w.size(), 0.0f);
      for (size_t i = 0; i < w.size(); ++i) {
        const auto map = static_cast<int64_t>(i % static_cast<size_t>(5 * area)) / area;
        if (std::find(kept.begin(), kept.end(), map) != kept.end()) mask[i] = 5.0f / 3.0f;
      }
      std::vector<float> masked(w.size());
      for (size_t i = 0; i < w.size(); ++i) masked[i] = w[i] * mask[i];
      REQUIRE(dense.arena.param("conv2.w")->CopyFrom(Tensor::FromVector({3, 5 * area}, masked)).ok());
      const double dense_loss = Run(dense);
      CHECK(sparse_loss == Approx(dense_loss).epsilon(1e-5));

      for (const ParamEntry& p : sparse.arena) {
        INFO(p.name);
        std::vector<float> want = dense.arena.grad(p.name)->ToVector();
        if (p.name == "conv2.w")
          for (size_t i = 0; i < want.size(); ++i) want[i] *= mask[i];
        const std::vector<float> got = p.grad.ToVector();
        testing::CheckClose(got, want, 1e-4, 1e-5);
        if (p.name == "conv2.w")
          for (size_t i = 0; i < got.size(); ++i)
            if (mask[i] == 0.0f) REQUIRE(got[i] == 0.0f);
      }
      // Dropped maps get exactly zero input gradient.
      const std::vector<float> dx = sparse.exec->Get(conv2_in_grad)->ToVector();
      const int64_t plane = 81;
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t map = 0; map < 5; ++map) {
          if (std::find(kept.begin(), kept.end(), map) != kept.end()) continue;
          for (int64_t i = 0; i < plane; ++i) REQUIRE(dx[static_cast<size_t>((b * 5 + map) * plane + i)] == 0.0f);
        }
      // The three conv2 GEMMs lose the 2 dropped maps' share of their K (resp. N, M) dimension.
      const int64_t out = ops::ConvGeometry::Square(5, 9, 9, c.kernel, c.stride, c.pad).out_plane();
      const int64_t saved = 3 * 2 * 3 * (2 * area) * (c.batch * out);
      CHECK(sparse.exec->flops().dense == dense.exec->flops().dense);
      CHECK(sparse.exec->flops().executed == dense.exec->flops().executed - saved);
    }
  }
}

// Central differences of the loss of the compacted graph (Tanh, so no kinks) against its gradients.
TEST_CASE("A small CNN with a channel site matches finite differences", "[sensitivity][runtime]") {
  const graph::Network network = CaseNet({3, 2, 1, 2}, graph::RandomChannelDropout(0.4), graph::Tanh());
  std::mt19937 rng(31);
  Harness h;
  Lower(h, network, 2, true);
  Finish(h, testing::RandomTensor({2, 2, 9, 9}, rng), Labels(2, rng));
  SetKept(h, {0, 1, 3});
  Run(h);
  for (const ParamEntry& p : h.arena) {
    const std::vector<float> analytic = p.grad.ToVector();
    float* w = p.param.data<float>();
    std::vector<int64_t> samples;
    for (int s = 0; s < 8; ++s) samples.push_back(static_cast<int64_t>(rng() % static_cast<uint32_t>(p.param.numel())));
    if (p.name == "conv2.w") samples.insert(samples.end(), {2 * 9, 2 * 9 + 4, 45 + 4 * 9 + 8});  // dropped maps 2, 4
    for (const int64_t i : samples) {
      const float saved = w[i];
      constexpr double kEps = 1e-3;
      w[i] = saved + static_cast<float>(kEps);
      const double plus = Run(h);
      w[i] = saved - static_cast<float>(kEps);
      const double minus = Run(h);
      w[i] = saved;
      const double numeric = (plus - minus) / (2 * kEps);
      const double got = analytic[static_cast<size_t>(i)];
      INFO(p.name << "[" << i << "]: analytic " << got << ", numeric " << numeric);
      CHECK(std::abs(got - numeric) <= 2e-2 * std::max(std::abs(numeric), std::abs(got)) + 3e-4);
      if (p.name == "conv2.w" && (i % 45) / 9 != 0 && (i % 45) / 9 != 1 && (i % 45) / 9 != 3) {
        CHECK(numeric == 0.0);  // the loss does not depend on a dropped map's weights
        CHECK(got == 0.0);
      }
    }
  }
}

// Tiny network, dense (warm-up) iteration: the estimates the pass measures against brute force.
TEST_CASE("Sensitivity estimates rank maps as dropping each one changes the loss", "[sensitivity][runtime]") {
  graph::Sequential seq({2, 6, 6});
  seq.Add(graph::Conv2d(4, 3, 1, 1))
      .Add(graph::ReLU())
      .Add(graph::SensitivityDropout(0.25, 1.0, 100), "drop")
      .Add(graph::Conv2d(3, 3, 1, 1))
      .Add(graph::Flatten())
      .Add(graph::FullyConnected(kClasses));
  const graph::Network network = *seq.Build();
  std::mt19937 rng(41);
  const Tensor data = testing::RandomTensor({4, 2, 6, 6}, rng, 0.0f, 1.0f);
  const Tensor labels = Labels(4, rng);
  Harness h;
  Lower(h, network, 4, true);
  // Clearly separated maps: conv2 reads map c through weights scaled by 0.03, 0.2, 1, 4.
  const float scale[] = {0.03f, 0.2f, 1.0f, 4.0f};
  float* w2 = h.arena.param("conv2.w")->data<float>();
  for (int64_t i = 0; i < 3 * 36; ++i) w2[i] *= scale[(i % 36) / 9];
  auto made = graph::MakeSensitivityDropPass(h.net.graph, graph::ChannelSiteConfigs(network));
  REQUIRE(made.ok());
  graph::SensitivityDropPass* pass = made->get();
  std::vector<std::unique_ptr<graph::Pass>> choose;
  choose.push_back(std::move(*made));
  graph::PassManager pipeline = graph::MakeIterationPipeline(std::move(choose));
  Finish(h, data, labels, pass->ObservedValues());
  graph::PassContext context{.iteration = 0, .seed = 1};
  REQUIRE(pipeline.Run(h.net.graph, context).ok());
  CHECK(std::get<ops::ChannelSet>(*h.net.graph.site(graph::SiteId{0}).pattern).kept.size() == 4);  // warm-up
  const double base = Run(h);
  REQUIRE(pass->Observe(h.net.graph, [&](ValueId v) { return h.exec->Get(v); }).ok());
  const graph::ChannelEstimates& e = pass->Estimates().front();

  // Importance: mean |A_c| of the conv's input.
  const std::vector<float> a = h.exec->Get(pass->ObservedValues().front())->ToVector();
  for (int64_t c = 0; c < 4; ++c) {
    double sum = 0.0;
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t i = 0; i < 36; ++i) sum += std::abs(a[static_cast<size_t>((b * 4 + c) * 36 + i)]);
    CHECK(e.importance[static_cast<size_t>(c)] == Approx(sum / 144.0).epsilon(1e-5));
    CHECK(e.observed[static_cast<size_t>(c)] == 1);
  }
  // Brute force: the loss with map c dropped (its weight columns zeroed, no rescaling).
  std::vector<double> change(4);
  const std::vector<float> saved = h.arena.param("conv2.w")->ToVector();
  for (int64_t c = 0; c < 4; ++c) {
    for (int64_t o = 0; o < 3; ++o)
      for (int64_t j = 0; j < 9; ++j) w2[o * 36 + c * 9 + j] = 0.0f;
    change[static_cast<size_t>(c)] = std::abs(Run(h) - base);
    REQUIRE(h.arena.param("conv2.w")->CopyFrom(Tensor::FromVector({3, 36}, saved)).ok());
  }
  std::vector<int64_t> by_estimate(4), by_brute_force(4);
  std::iota(by_estimate.begin(), by_estimate.end(), 0);
  std::iota(by_brute_force.begin(), by_brute_force.end(), 0);
  std::sort(by_estimate.begin(), by_estimate.end(), [&](int64_t x, int64_t y) {
    return e.sensitivity[static_cast<size_t>(x)] < e.sensitivity[static_cast<size_t>(y)];
  });
  std::sort(by_brute_force.begin(), by_brute_force.end(),
            [&](int64_t x, int64_t y) { return change[static_cast<size_t>(x)] < change[static_cast<size_t>(y)]; });
  for (int64_t c = 0; c < 4; ++c)
    INFO("map " << c << ": sensitivity " << e.sensitivity[static_cast<size_t>(c)] << ", loss change "
                << change[static_cast<size_t>(c)]);
  CHECK(by_estimate == by_brute_force);
  CHECK(by_estimate == std::vector<int64_t>{0, 1, 2, 3});
}

TEST_CASE("The Trainer chooses maps after warm-up, shrinks the conv GEMMs and repeats from the seed",
          "[sensitivity][runtime]") {
  graph::Sequential seq({1, 8, 8});
  seq.Add(graph::Conv2d(6, 3, 1, 1))
      .Add(graph::ReLU())
      .Add(graph::SensitivityDropout(0.5, 1.0, 2), "drop")
      .Add(graph::Conv2d(4, 3, 1, 1))
      .Add(graph::ReLU())
      .Add(graph::MaxPool(2, 2))
      .Add(graph::Flatten())
      .Add(graph::FullyConnected(kClasses));
  const graph::Network network = *seq.Build();
  SolverConfig solver;
  solver.lr.base_lr = 0.05f;
  std::mt19937 rng(2);
  const Tensor features = testing::RandomTensor({4, 64}, rng);
  const Tensor labels = Labels(4, rng);
  std::vector<std::vector<double>> losses(2);
  for (int run = 0; run < 2; ++run) {
    auto trainer = Trainer::Create(network, {.batch_size = 4, .solver = solver, .seed = 9});
    INFO(trainer.status().ToString());
    REQUIRE(trainer.ok());
    for (int64_t it = 0; it < 6; ++it) {
      auto step = (*trainer)->Step(features, labels);
      INFO(step.status().ToString());
      REQUIRE(step.ok());
      losses[static_cast<size_t>(run)].push_back(step->loss);
      // conv2's three GEMMs: 2 * 4 * (6 * 9) * (4 * 64) FLOPs each dense; after warm-up 3 of 6 maps.
      const int64_t saved = it < 2 ? 0 : 3 * 2 * 4 * (3 * 9) * (4 * 64);
      CHECK(step->dense_flops - step->executed_flops == saved);
    }
    const graph::ChannelEstimates& e = (*trainer)->channel_dropout().Estimates().front();
    CHECK(e.site == "drop.site");
    // Two dense iterations observe every map; four more observe 3 maps each.
    CHECK(std::accumulate(e.observed.begin(), e.observed.end(), int64_t{0}) == 2 * 6 + 4 * 3);
    for (double s : e.sensitivity) CHECK(s >= 0.0);
  }
  CHECK(losses[0] == losses[1]);
}

}  // namespace
}  // namespace sieve::runtime
