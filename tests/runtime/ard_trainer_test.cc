// Tests of approximate random dropout in the Trainer (SPEC 2, issue 4): each step reports the MatMul
// FLOPs it executed, equal to the analytic count for the patterns the sampling pass drew (row and tile
// MLPs with widths that no period or tile divides); and training with deferred updates of dropped rows
// and tiles (SPEC 2.8) gives the losses and weights of eager updates of every weight, bitwise when
// replaying, for SGD, SGD with momentum, Nesterov and Adam with weight decay and a changing learning
// rate, also across an evaluation and a save in the middle.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "graph/sequential.h"
#include "runtime/trainer.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

constexpr int64_t kBatch = 8, kIn = 12, kHidden1 = 40, kHidden2 = 30, kClasses = 3;

enum class Family { kBernoulli, kRow, kTile };

// kIn -> 40 -> 30 -> 3 with ReLU and dropout after each hidden layer (4 x 4 tiles for the tile family).
graph::Network Mlp(Family family, double p1 = 0.5, double p2 = 0.3) {
  auto drop = [&](double p) {
    return family == Family::kRow    ? graph::RowDropout(p)
           : family == Family::kTile ? graph::TileDropout(p, 4, 4)
                                     : graph::Dropout(p);
  };
  graph::Sequential mlp({kIn});
  mlp.Add(graph::FullyConnected(kHidden1)).Add(graph::ReLU()).Add(drop(p1));
  mlp.Add(graph::FullyConnected(kHidden2)).Add(graph::ReLU()).Add(drop(p2));
  mlp.Add(graph::FullyConnected(kClasses));
  auto built = mlp.Build();
  INFO(built.status().ToString());
  REQUIRE(built.ok());
  return *built;
}

struct Batch {
  Tensor x, y;
};

Batch RandomBatch(uint32_t seed) {
  std::mt19937 rng(seed);
  Batch b{testing::RandomTensor({kBatch, kIn}, rng), Tensor::Empty({kBatch}, DType::kInt32)};
  for (int64_t i = 0; i < kBatch; ++i) b.y.data<int32_t>()[i] = static_cast<int32_t>(rng() % kClasses);
  return b;
}

std::unique_ptr<Trainer> MakeTrainer(const graph::Network& net, TrainerOptions options) {
  auto trainer = Trainer::Create(net, std::move(options));
  INFO(trainer.status().ToString());
  REQUIRE(trainer.ok());
  return std::move(trainer).value();
}

// Units of a row site's current pattern that are kept.
int64_t KeptUnits(const graph::DropoutSite& site) {
  const auto& pattern = std::get<ops::RowPattern>(*site.pattern);
  int64_t kept = 0;
  for (int64_t i = 0; i < site.width; ++i) kept += pattern.Kept(i);
  return kept;
}

// Elements of a [rows, cols] weight inside the kept tiles of a tile site's current pattern.
int64_t KeptElements(const graph::DropoutSite& site, int64_t rows, int64_t cols) {
  const auto& pattern = std::get<ops::TilePattern>(*site.pattern);
  int64_t kept = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) kept += pattern.Kept(i, j);
  return kept;
}

TEST_CASE("Trainer steps report the analytic MatMul FLOPs of the sampled patterns", "[runtime][ard]") {
  // Per layer: the forward and weight-gradient GEMMs, and the input gradient except for the first
  // layer (the network's input needs none). Each does 2 FLOPs per multiply-add of a batch row.
  const int64_t dense = 2 * kBatch * (2 * kIn * kHidden1 + 3 * kHidden1 * kHidden2 + 3 * kHidden2 * kClasses);
  const Batch batch = RandomBatch(1);
  const Family family = GENERATE(Family::kBernoulli, Family::kRow, Family::kTile);
  INFO("family " << static_cast<int>(family));
  auto trainer = MakeTrainer(Mlp(family), {.batch_size = kBatch});
  const graph::Graph& g = trainer->train_graph();
  std::vector<const graph::DropoutSite*> sites;
  for (const graph::DropoutSite& site : g.sites())
    if (site.kind == graph::SiteKind::kRow || site.kind == graph::SiteKind::kTile) sites.push_back(&site);
  REQUIRE(sites.size() == (family == Family::kBernoulli ? 0u : 2u));
  bool shrank = false;
  for (int step = 0; step < 12; ++step) {
    auto result = trainer->Step(batch.x, batch.y);
    INFO(result.status().ToString());
    REQUIRE(result.ok());
    CHECK(result->dense_flops == dense);
    int64_t executed = dense;
    if (family == Family::kRow) {
      const int64_t h1 = KeptUnits(*sites[0]), h2 = KeptUnits(*sites[1]);
      executed = 2 * kBatch * (2 * kIn * h1 + 3 * h1 * h2 + 3 * h2 * kClasses);
    } else if (family == Family::kTile) {
      // The tile sites shrink the weights of the FCs after them: fc2 [30, 40] and fc3 [3, 30].
      executed = 2 * kBatch *
                 (2 * kIn * kHidden1 + 3 * KeptElements(*sites[0], kHidden2, kHidden1) +
                  3 * KeptElements(*sites[1], kClasses, kHidden2));
    }
    CHECK(result->executed_flops == executed);
    shrank = shrank || executed < dense;
  }
  CHECK(shrank == (family != Family::kBernoulli));
}

TEST_CASE("Trainer with deferred updates gives the losses and weights of eager updates", "[runtime][ard]") {
  struct Case {
    ops::SolverType type;
    float momentum;
  };
  const Case c = GENERATE(Case{ops::SolverType::kSGD, 0.0f}, Case{ops::SolverType::kSGD, 0.9f},
                          Case{ops::SolverType::kNesterov, 0.9f}, Case{ops::SolverType::kAdam, 0.9f});
  const Family family = GENERATE(Family::kRow, Family::kTile);
  INFO(ops::SolverTypeName(c.type) << " momentum " << c.momentum << ", family " << static_cast<int>(family));
  TrainerOptions options{.batch_size = kBatch};
  options.solver = {.type = c.type,
                    .lr = {.type = LrPolicyType::kStep, .base_lr = 0.05f, .gamma = 0.5f, .stepsize = 5},
                    .momentum = c.momentum,
                    .weight_decay = 0.01f};
  options.seed = 5;
  options.defer_updates = DeferMode::kReplay;
  // High rates, so that blocks stay behind for several steps.
  const graph::Network net = Mlp(family, 0.7, 0.5);
  TrainerOptions eager_options = options;
  eager_options.defer_updates = DeferMode::kOff;
  auto eager = MakeTrainer(net, eager_options);
  auto deferred = MakeTrainer(net, options);

  const std::filesystem::path saved =
      std::filesystem::temp_directory_path() / ("sieve_ard_trainer_" + std::to_string(::getpid()) + ".weights");
  const Batch eval_batch = RandomBatch(99);
  auto eval_set = Dataset::Create(eval_batch.x, eval_batch.y, kClasses);
  REQUIRE(eval_set.ok());
  for (int step = 0; step < 24; ++step) {
    INFO("step " << step);
    const Batch batch = RandomBatch(100 + static_cast<uint32_t>(step));
    auto want = eager->Step(batch.x, batch.y);
    auto got = deferred->Step(batch.x, batch.y);
    REQUIRE(want.ok());
    INFO(got.status().ToString());
    REQUIRE(got.ok());
    CHECK(got->loss == want->loss);  // the forward read the same weights, to the bit
    if (step == 10) {
      // Evaluation reads every weight: it catches up and gives the eager model's numbers.
      auto eval_want = eager->Evaluate(*eval_set);
      auto eval_got = deferred->Evaluate(*eval_set);
      REQUIRE(eval_got.ok());
      CHECK(eval_got->loss == eval_want->loss);
    }
    if (step == 15) REQUIRE(deferred->SaveWeights(saved.string()).ok());
  }
  // The save caught up: its weights are those of the eager run at that step...
  auto reloaded = MakeTrainer(net, eager_options);
  REQUIRE(reloaded->LoadWeights(saved.string()).ok());
  std::filesystem::remove(saved);
  // ...and at the end, after SyncWeights, the weights and optimizer state are the eager ones.
  REQUIRE(deferred->SyncWeights().ok());
  for (size_t p = 0; p < eager->params().entries().size(); ++p) {
    const ParamEntry& e = eager->params().entries()[p];
    const ParamEntry& d = deferred->params().entries()[p];
    INFO("parameter '" << e.name << "'");
    CHECK(testing::BitwiseEqual(d.param.ToVector(), e.param.ToVector()));
    for (size_t s = 0; s < e.state.size(); ++s)
      CHECK(testing::BitwiseEqual(d.state[s].ToVector(), e.state[s].ToVector()));
  }
}

TEST_CASE("Trainer shuffles units after an epoch with deferred updates caught up first", "[runtime][ard]") {
  // Row sites that shuffle their producer's units every epoch; three epochs of four batches.
  graph::DropoutSpec drop = graph::RowDropout(0.6);
  drop.shuffle_every_epochs = 1;
  graph::Sequential mlp({kIn});
  mlp.Add(graph::FullyConnected(kHidden1)).Add(graph::ReLU()).Add(drop);
  mlp.Add(graph::FullyConnected(kHidden2)).Add(graph::ReLU()).Add(drop);
  mlp.Add(graph::FullyConnected(kClasses));
  const graph::Network net = *mlp.Build();
  std::mt19937 rng(8);
  Tensor labels = Tensor::Empty({4 * kBatch}, DType::kInt32);
  for (int64_t i = 0; i < 4 * kBatch; ++i) labels.data<int32_t>()[i] = static_cast<int32_t>(rng() % kClasses);
  auto train = Dataset::Create(testing::RandomTensor({4 * kBatch, kIn}, rng), labels, kClasses);
  REQUIRE(train.ok());
  TrainerOptions options{.batch_size = kBatch};
  options.solver.momentum = 0.9f;
  options.solver.weight_decay = 0.01f;
  options.defer_updates = DeferMode::kReplay;
  TrainerOptions eager_options = options;
  eager_options.defer_updates = DeferMode::kOff;
  auto eager = MakeTrainer(net, eager_options);
  auto deferred = MakeTrainer(net, options);
  REQUIRE(eager->Fit(*train, {.epochs = 3, .display = 0}).ok());
  REQUIRE(deferred->Fit(*train, {.epochs = 3, .display = 0}).ok());
  REQUIRE(deferred->SyncWeights().ok());
  for (size_t p = 0; p < eager->params().entries().size(); ++p) {
    const ParamEntry& e = eager->params().entries()[p];
    const ParamEntry& d = deferred->params().entries()[p];
    INFO("parameter '" << e.name << "'");
    CHECK(testing::BitwiseEqual(d.param.ToVector(), e.param.ToVector()));
    for (size_t s = 0; s < e.state.size(); ++s)
      CHECK(testing::BitwiseEqual(d.state[s].ToVector(), e.state[s].ToVector()));
  }
  // The shuffles happened: without them the weights differ.
  graph::Sequential plain({kIn});
  drop.shuffle_every_epochs = 0;
  plain.Add(graph::FullyConnected(kHidden1)).Add(graph::ReLU()).Add(drop);
  plain.Add(graph::FullyConnected(kHidden2)).Add(graph::ReLU()).Add(drop);
  plain.Add(graph::FullyConnected(kClasses));
  auto unshuffled = MakeTrainer(*plain.Build(), options);
  REQUIRE(unshuffled->Fit(*train, {.epochs = 3, .display = 0}).ok());
  REQUIRE(unshuffled->SyncWeights().ok());
  CHECK_FALSE(testing::BitwiseEqual(unshuffled->params().flat_params()->ToVector(),
                                    deferred->params().flat_params()->ToVector()));
}

TEST_CASE("Trainer defers the producer rows of row sites and the weights of tile sites", "[runtime][ard]") {
  auto row = MakeTrainer(Mlp(Family::kRow), {.batch_size = kBatch});
  // fc1 and fc2 produce the two row sites' units; fc3 only consumes them.
  auto names = [](const std::vector<DeferredParam>& params) {
    std::vector<std::string> out;
    for (const DeferredParam& p : params) out.push_back(p.name);
    return out;
  };
  CHECK(names(FindDeferrableParams(row->train_graph())) ==
        std::vector<std::string>{"fc1.w", "fc1.b", "fc2.w", "fc2.b"});
  auto tile = MakeTrainer(Mlp(Family::kTile), {.batch_size = kBatch});
  CHECK(names(FindDeferrableParams(tile->train_graph())) == std::vector<std::string>{"fc2.w", "fc3.w"});
  auto bernoulli = MakeTrainer(Mlp(Family::kBernoulli), {.batch_size = kBatch});
  CHECK(FindDeferrableParams(bernoulli->train_graph()).empty());
}

}  // namespace
}  // namespace sieve::runtime
