// Equivalence of the compacted ARD computation with the dense one (SPEC 2, issue 4 "Tests"): a
// network with row or tile dropout, its site patterns set by hand and resolved by the iteration
// pipeline (ResolveSites, ReplanShapes), run forward and backward by the Executor, against the
// same network lowered without dropout whose weights have the pattern's 0/1 mask and scale applied
// by hand. Dropping unit k of a row site is zeroing column k of the weight of every layer that
// reads it; dropping a tile is zeroing the tile of the weight. So with W' = W * M (M: the mask
// times the site's scale) the dense network computes the same loss, and the gradient of W is the
// dense gradient of W' times M (zero where dropped). Every other gradient (biases, the dropped
// rows of a shrunk producer, the embedding, which is the input gradient of the first LSTM) must
// equal the dense one. Covered: an MLP whose first site sits on the input (the consumer reads it
// Full) and whose others follow FC chains (producers shrink, consumers read packed); a stacked
// LSTM with an embedding, row sites on each LSTM input and on the head; row and tile families,
// rates 0.3 / 0.5 / 0.7, both scale modes, widths that neither dp nor the tiles divide, and two
// iterations with different patterns on one executor.
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "graph/pass.h"
#include "graph/sequential.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

using graph::DropoutSpec;
using graph::ValueId;

constexpr int64_t kBatch = 6;
constexpr int32_t kClasses = 5;
constexpr int32_t kVocab = 11;

// A lowered, differentiated network on the CPU executor with its own parameters.
struct Harness {
  graph::LoweredNet net;
  ParamArena arena;
  std::unique_ptr<Executor> exec;
  graph::NodeId loss{};
};

// Lowers `network` (training: with its sites; else without dropout), appends the backward,
// initialises the parameters from seed 7 and binds them and their gradients. The executor is
// created by Finish, once the patterns are resolved.
void Lower(Harness& h, const graph::Network& network, bool training) {
  auto lowered = graph::Lower(network, {.batch = kBatch, .training = training});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  h.net = std::move(*lowered);
  REQUIRE(h.net.losses.size() == 1);
  h.loss = h.net.losses.front().node;
  auto grads = graph::AppendBackward(h.net.graph, {h.loss}, h.net.custom_gradients);
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  for (const graph::ParamDecl& p : h.net.params) REQUIRE(h.arena.Register(p.name, p.shape, p.spec).ok());
  REQUIRE(h.arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  REQUIRE(h.arena.Initialize(7).ok());
}

// Creates the executor and binds parameters, gradients, inputs (by value name) and labels.
void Finish(Harness& h, const std::map<std::string, Tensor>& inputs, const Tensor& labels) {
  auto exec = Executor::Create(h.net.graph, Device::CPU());
  INFO(exec.status().ToString());
  REQUIRE(exec.ok());
  h.exec = std::move(*exec);
  const graph::Graph& g = h.net.graph;
  for (const graph::ParamDecl& p : h.net.params) {
    REQUIRE(h.exec->Bind(p.value, *h.arena.param(p.name)).ok());
    REQUIRE(h.exec->Bind(*g.FindValue(p.name + ".grad"), *h.arena.grad(p.name)).ok());
  }
  for (ValueId input : h.net.inputs) REQUIRE(h.exec->Bind(input, inputs.at(g.value(input).name)).ok());
  REQUIRE(h.exec->Bind(h.net.labels.front(), labels).ok());
}

// Random inputs of `net` by name (float in [-1, 1), int32 tokens in [0, kVocab)) and labels.
std::map<std::string, Tensor> MakeInputs(const graph::LoweredNet& net, std::mt19937& rng) {
  std::map<std::string, Tensor> inputs;
  for (ValueId id : net.inputs) {
    const graph::Value& v = net.graph.value(id);
    Tensor t = Tensor::Zeros(v.planned, v.dtype);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (v.dtype == DType::kInt32) {
        t.data<int32_t>()[i] = static_cast<int32_t>(rng() % kVocab);
      } else {
        t.data<float>()[i] = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
      }
    }
    inputs.emplace(v.name, t);
  }
  return inputs;
}

// Labels in [0, kClasses) of the net's label shape ([B], or [B, T] for a per-step head).
Tensor MakeLabels(const graph::LoweredNet& net, std::mt19937& rng) {
  Tensor t = Tensor::Zeros(net.graph.value(net.labels.front()).planned, DType::kInt32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng() % kClasses);
  return t;
}

// A site, its pattern for one iteration, and the weight whose columns (row site) or tiles (tile
// site) the pattern drops.
struct SitePlan {
  std::string site;
  ops::DropoutPattern pattern;
  std::string weight;
};

// The weight's multiplier under the site's current pattern: the site's scale where kept, 0 where
// dropped (row sites: by column; tile sites: by tile of the [N, K] weight).
std::vector<float> WeightMask(const graph::DropoutSite& site, const Shape& shape) {
  const float scale = graph::SiteScale(site);
  std::vector<float> mask(static_cast<size_t>(ShapeNumel(shape)));
  for (int64_t n = 0; n < shape[0]; ++n) {
    for (int64_t k = 0; k < shape[1]; ++k) {
      const bool kept = site.kind == graph::SiteKind::kRow ? std::get<ops::RowPattern>(*site.pattern).Kept(k)
                                                           : std::get<ops::TilePattern>(*site.pattern).Kept(n, k);
      mask[static_cast<size_t>(n * shape[1] + k)] = kept ? scale : 0.0f;
    }
  }
  return mask;
}

// Sets the plans' patterns in the ARD net and runs the iteration pipeline, runs both nets forward
// and backward (the dense one with masked weights) and compares the loss and every gradient.
void CheckIteration(Harness& ard, Harness& dense, const std::vector<SitePlan>& plans, int64_t iteration) {
  graph::Graph& g = ard.net.graph;
  for (const SitePlan& plan : plans) g.SetSitePattern(*g.FindSite(plan.site), plan.pattern);
  graph::PassManager pipeline = graph::MakeIterationPipeline({});
  graph::PassContext context{.iteration = iteration, .seed = 3};
  const Status resolved = pipeline.Run(g, context);
  INFO(resolved.ToString());
  REQUIRE(resolved.ok());

  // The dense net's weights: the ARD net's, masked.
  std::map<std::string, std::vector<float>> masks;
  for (const SitePlan& plan : plans) {
    const graph::DropoutSite& site = g.site(*g.FindSite(plan.site));
    masks.emplace(plan.weight, WeightMask(site, ard.arena.param(plan.weight)->shape()));
  }
  for (const ParamEntry& p : ard.arena) {
    std::vector<float> w = p.param.ToVector();
    if (const auto it = masks.find(p.name); it != masks.end())
      for (size_t i = 0; i < w.size(); ++i) w[i] *= it->second[i];
    REQUIRE(dense.arena.param(p.name)->CopyFrom(Tensor::FromVector(p.shape, w)).ok());
  }

  REQUIRE(ard.exec->Run({.iteration = iteration, .seed = 3}).ok());
  REQUIRE(dense.exec->Run({.iteration = iteration, .seed = 3}).ok());
  const double ard_loss = ard.exec->Stats(ard.loss).loss();
  const double dense_loss = dense.exec->Stats(dense.loss).loss();
  INFO("iteration " << iteration);
  CHECK(ard_loss == Approx(dense_loss).epsilon(1e-5));
  for (const ParamEntry& p : ard.arena) {
    INFO("gradient of " << p.name);
    std::vector<float> want = dense.arena.grad(p.name)->ToVector();
    if (const auto it = masks.find(p.name); it != masks.end())
      for (size_t i = 0; i < want.size(); ++i) want[i] *= it->second[i];
    sieve::testing::CheckClose(p.grad.ToVector(), want, 2e-4, 2e-6);
  }
}

// Builds the ARD and dense harnesses of `network` and checks `iterations` (one plan list each).
void CheckEquivalence(const graph::Network& network, const std::vector<std::vector<SitePlan>>& iterations) {
  Harness ard, dense;
  Lower(ard, network, /*training=*/true);
  Lower(dense, network, /*training=*/false);
  REQUIRE(dense.net.graph.num_sites() == 0);
  std::mt19937 rng(17);
  const std::map<std::string, Tensor> inputs = MakeInputs(ard.net, rng);
  const Tensor labels = MakeLabels(ard.net, rng);
  // Resolve the first patterns before the executor verifies the graph.
  graph::Graph& g = ard.net.graph;
  for (const SitePlan& plan : iterations.front()) g.SetSitePattern(*g.FindSite(plan.site), plan.pattern);
  graph::PassContext context;
  REQUIRE(graph::MakeIterationPipeline({}).Run(g, context).ok());
  Finish(ard, inputs, labels);
  Finish(dense, inputs, labels);
  for (size_t i = 0; i < iterations.size(); ++i) CheckIteration(ard, dense, iterations[i], static_cast<int64_t>(i));
}

DropoutSpec Spec(DropoutSpec spec, graph::ScaleMode scaling) {
  spec.scaling = scaling;
  return spec;
}

// Two iterations of row patterns and of tile patterns near each rate (tile patterns reach only
// 1 - 1/dp), chosen so that no width or tile grid is a multiple of the period.
std::vector<ops::RowPattern> RowPatterns(double rate, int iteration) {
  if (rate < 0.4)
    return iteration == 0 ? std::vector<ops::RowPattern>{{7, 10, 4}, {2, 3, 1}, {2, 3, 0}, {7, 10, 9}}
                          : std::vector<ops::RowPattern>{{2, 3, 2}, {7, 10, 0}, {5, 7, 6}, {2, 3, 1}};
  if (rate < 0.6)
    return iteration == 0 ? std::vector<ops::RowPattern>{{1, 2, 1}, {1, 2, 0}, {2, 4, 3}, {1, 2, 1}}
                          : std::vector<ops::RowPattern>{{1, 2, 0}, {3, 6, 5}, {1, 2, 1}, {1, 2, 0}};
  return iteration == 0 ? std::vector<ops::RowPattern>{{3, 10, 8}, {1, 3, 2}, {1, 4, 3}, {3, 10, 1}}
                        : std::vector<ops::RowPattern>{{1, 4, 0}, {3, 10, 5}, {1, 3, 1}, {1, 3, 0}};
}

std::vector<int64_t> TileDps(double rate, int iteration) {
  if (rate < 0.4) return iteration == 0 ? std::vector<int64_t>{2, 1, 2} : std::vector<int64_t>{1, 2, 1};
  if (rate < 0.6) return iteration == 0 ? std::vector<int64_t>{2, 2, 3} : std::vector<int64_t>{3, 2, 2};
  return iteration == 0 ? std::vector<int64_t>{3, 4, 3} : std::vector<int64_t>{4, 3, 4};
}

TEST_CASE("Row and tile ARD MLPs compute the loss and gradients of the masked dense MLP", "[runtime][ard]") {
  for (const bool tile : {false, true}) {
    for (const double rate : {0.3, 0.5, 0.7}) {
      for (const graph::ScaleMode scaling : {graph::ScaleMode::kPattern, graph::ScaleMode::kNominal}) {
        INFO((tile ? "tile" : "row") << " p = " << rate << (scaling == graph::ScaleMode::kNominal ? " nominal" : ""));
        // data [13] -> drop0 -> fc1 (37) -> relu -> drop1 -> fc2 (29) -> tanh -> drop2 -> fc3 (5).
        // Tiles: fc1.w [37, 13] in 4x3 tiles, fc2.w [29, 37] in 5x4, fc3.w [5, 29] in 2x6.
        const auto drop = [&](int64_t tile_rows, int64_t tile_cols) {
          return Spec(tile ? graph::TileDropout(rate, tile_rows, tile_cols) : graph::RowDropout(rate), scaling);
        };
        graph::Sequential mlp({13});
        mlp.Add(drop(4, 3))
            .Add(graph::FullyConnected(37))
            .Add(graph::ReLU())
            .Add(drop(5, 4))
            .Add(graph::FullyConnected(29))
            .Add(graph::Tanh())
            .Add(drop(2, 6))
            .Add(graph::FullyConnected(kClasses));
        const char* sites[] = {"drop1.site", "drop2.site", "drop3.site"};
        const char* weights[] = {"fc1.w", "fc2.w", "fc3.w"};
        const int64_t tile_shapes[][2] = {{4, 3}, {5, 4}, {2, 6}};
        std::vector<std::vector<SitePlan>> iterations;
        for (int it = 0; it < 2; ++it) {
          std::vector<SitePlan> plans;
          for (int s = 0; s < 3; ++s) {
            const ops::DropoutPattern pattern =
                tile ? ops::DropoutPattern(ops::TilePattern{tile_shapes[s][0], tile_shapes[s][1], TileDps(rate, it)[s],
                                                            TileDps(rate, it)[s] - 1})
                     : ops::DropoutPattern(RowPatterns(rate, it)[s]);
            plans.push_back(SitePlan{sites[s], pattern, weights[s]});
          }
          iterations.push_back(std::move(plans));
        }
        CheckEquivalence(*mlp.Build(), iterations);
      }
    }
  }
}

TEST_CASE("Row ARD on a stacked LSTM computes the loss and gradients of the masked dense LSTM", "[runtime][ard]") {
  for (const bool tile_head : {false, true}) {
    for (const double rate : {0.3, 0.5, 0.7}) {
      INFO((tile_head ? "row sites, tile head" : "row sites") << " p = " << rate);
      // tokens [4] -> emb (9) -> drop_a -> lstm1 (10, sequences) -> drop_b -> lstm2 (7, last step)
      // -> drop_c -> fc (5). Row sites drop K of each LSTM input projection and of the head.
      graph::Sequential lstm({4}, DType::kInt32);
      lstm.Add(graph::Embedding(kVocab, 9), "emb")
          .Add(graph::RowDropout(rate), "drop_a")
          .Add(graph::Lstm(10, 1, true), "lstm1")
          .Add(graph::RowDropout(rate), "drop_b")
          .Add(graph::Lstm(7), "lstm2")
          .Add(tile_head ? graph::TileDropout(rate, 2, 3) : graph::RowDropout(rate), "drop_c")
          .Add(graph::FullyConnected(kClasses), "fc");
      std::vector<std::vector<SitePlan>> iterations;
      for (int it = 0; it < 2; ++it) {
        const std::vector<ops::RowPattern> rows = RowPatterns(rate, it);
        const ops::DropoutPattern head = tile_head
                                             ? ops::DropoutPattern(ops::TilePattern{2, 3, TileDps(rate, it)[0], 0})
                                             : ops::DropoutPattern(rows[2]);
        iterations.push_back({SitePlan{"drop_a.site", rows[0], "lstm1.l0.w"},
                              SitePlan{"drop_b.site", rows[1], "lstm2.l0.w"}, SitePlan{"drop_c.site", head, "fc.w"}});
      }
      CheckEquivalence(*lstm.Build(), iterations);
    }
  }
}

TEST_CASE("Row ARD on a language model's per-step head computes the loss and gradients of the masked dense LM",
          "[runtime][ard][lstmbench]") {
  for (const double rate : {0.3, 0.5, 0.7}) {
    INFO("p = " << rate);
    // tokens [4] -> emb (9) -> drop_a -> lstm (10, sequences) -> drop_b -> fc (5, axis 2: every step),
    // per-step labels: the head reads the dropped [B, T, 10] sequence, K shrinks on every step's row.
    graph::Sequential lm({4}, DType::kInt32, {4});
    lm.Add(graph::Embedding(kVocab, 9), "emb")
        .Add(graph::RowDropout(rate), "drop_a")
        .Add(graph::Lstm(10, 1, true), "lstm")
        .Add(graph::RowDropout(rate), "drop_b");
    graph::FullyConnectedSpec head = graph::FullyConnected(kClasses);
    head.axis = 2;
    lm.Add(head, "fc");
    std::vector<std::vector<SitePlan>> iterations;
    for (int it = 0; it < 2; ++it) {
      const std::vector<ops::RowPattern> rows = RowPatterns(rate, it);
      iterations.push_back({SitePlan{"drop_a.site", rows[0], "lstm.l0.w"}, SitePlan{"drop_b.site", rows[1], "fc.w"}});
    }
    CheckEquivalence(*lm.Build(), iterations);
  }
}

}  // namespace
}  // namespace sieve::runtime
