// Tests of the deferred updates of dropped rows and tiles (runtime/solver/deferred_update.h, SPEC 2.8):
// over many steps with a new random row and tile pattern each step, a changing learning rate, weight
// decay and per-parameter multipliers, the deferred updates give the weights and optimizer state of
// the eager update of every entry, for SGD with and without momentum, Nesterov and Adam: bitwise when
// replaying, to float rounding in closed form. What an iteration reads is current before its step;
// the dropped blocks' gradients are never read. Also: which parameters of a graph qualify, and the
// errors.
#include "runtime/solver/deferred_update.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "tests/graph/test_graphs.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

using graph::Graph;
using graph::SiteId;

constexpr int64_t kRows = 13, kCols = 9;     // "fc.w" [13, 9] and "fc.b" [13]: a row site
constexpr int64_t kTileN = 10, kTileK = 11;  // "tile.w" [10, 11]: 3 x 4 tiles, partial at the edges
constexpr int64_t kTileRows = 3, kTileCols = 4;
constexpr int64_t kSteps = 60;

// A graph that holds only the two sites: the deferred updates read their patterns from it.
struct Sites {
  Graph graph;
  SiteId rows{}, tiles{};
  Sites() {
    rows = graph.AddSite({.name = "h.drop", .kind = graph::SiteKind::kRow, .width = kRows, .rate = 0.5});
    tiles = graph.AddSite({.name = "w.tiles",
                           .kind = graph::SiteKind::kTile,
                           .rate = 0.5,
                           .tile_rows = kTileRows,
                           .tile_cols = kTileCols});
  }
};

ParamArena MakeArena(ops::SolverType type) {
  ParamArena arena;
  const InitSpec init = InitSpec::Uniform(-1.0f, 1.0f);
  REQUIRE(arena.Register("fc.w", {kRows, kCols}, {.init = init}).ok());
  REQUIRE(arena.Register("fc.b", {kRows}, {.lr_mult = 2.0f, .decay_mult = 0.0f, .init = init}).ok());
  REQUIRE(arena.Register("tile.w", {kTileN, kTileK}, {.lr_mult = 0.5f, .init = init}).ok());
  REQUIRE(arena.Register("other.w", {5, 4}, {.init = init}).ok());
  REQUIRE(arena.Finalize(Device::CPU(), type).ok());
  REQUIRE(arena.Initialize(17).ok());
  return arena;
}

std::vector<DeferredParam> Deferred(const Sites& sites) {
  return {{.name = "fc.w", .site = sites.rows, .block_rows = 1, .block_cols = kCols},
          {.name = "fc.b", .site = sites.rows, .block_rows = 1, .block_cols = 1},
          {.name = "tile.w", .site = sites.tiles, .block_rows = kTileRows, .block_cols = kTileCols}};
}

// Is element `i` of parameter `name` (row-major) read under the sites' current patterns?
bool Kept(const Sites& sites, const std::string& name, int64_t i) {
  if (name == "fc.w" || name == "fc.b") {
    const int64_t row = name == "fc.w" ? i / kCols : i;
    return std::get<ops::RowPattern>(*sites.graph.site(sites.rows).pattern).Kept(row);
  }
  if (name == "tile.w")
    return std::get<ops::TilePattern>(*sites.graph.site(sites.tiles).pattern).Kept(i / kTileK, i % kTileK);
  return true;
}

// Draws this step's patterns: strided or generalised rows, and tiles with dp 1..3.
void DrawPatterns(Sites& sites, std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> period(1, 4);
  ops::RowPattern row{1, period(rng), 0};
  if (rng() % 3 == 0) row = {2, 5, 0};
  row.offset = static_cast<int64_t>(rng() % static_cast<uint32_t>(row.period));
  const int64_t dp = 1 + static_cast<int64_t>(rng() % 3);
  sites.graph.SetSitePattern(sites.rows, row);
  sites.graph.SetSitePattern(sites.tiles, ops::TilePattern{kTileRows, kTileCols, dp, static_cast<int64_t>(rng() % dp)});
}

// Writes this step's gradients: the same random values in both arenas where the patterns keep an
// element; where they drop it, zero in the eager arena (as the backward writes) and `dropped` in the
// deferred one.
void WriteGradients(const Sites& sites, const ParamArena& eager, const ParamArena& deferred, float dropped,
                    std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (size_t p = 0; p < eager.entries().size(); ++p) {
    const ParamEntry& e = eager.entries()[p];
    float* ge = e.grad.data<float>();
    float* gd = deferred.entries()[p].grad.data<float>();
    for (int64_t i = 0; i < e.grad.numel(); ++i) {
      const float g = value(rng);
      const bool kept = Kept(sites, e.name, i);
      ge[i] = kept ? g : 0.0f;
      gd[i] = kept ? g : dropped;
    }
  }
}

SolverConfig Config(ops::SolverType type, float momentum) {
  // A step policy halves the rate every 7 iterations; weight decay large enough to matter.
  return SolverConfig{.type = type,
                      .lr = {.type = LrPolicyType::kStep, .base_lr = 0.05f, .gamma = 0.5f, .stepsize = 7},
                      .momentum = momentum,
                      .weight_decay = 0.02f};
}

std::vector<float> Values(const Tensor& t) { return t.ToVector(); }

TEST_CASE("Deferred updates give the eager weights and state over many steps with changing patterns",
          "[runtime][solver][ard]") {
  struct Case {
    ops::SolverType type;
    float momentum;
    DeferMode mode;
  };
  const Case c = GENERATE(
      Case{ops::SolverType::kSGD, 0.0f, DeferMode::kReplay}, Case{ops::SolverType::kSGD, 0.9f, DeferMode::kReplay},
      Case{ops::SolverType::kNesterov, 0.9f, DeferMode::kReplay},
      Case{ops::SolverType::kAdam, 0.9f, DeferMode::kReplay}, Case{ops::SolverType::kSGD, 0.0f, DeferMode::kClosedForm},
      Case{ops::SolverType::kSGD, 0.9f, DeferMode::kClosedForm},
      Case{ops::SolverType::kNesterov, 0.9f, DeferMode::kClosedForm},
      Case{ops::SolverType::kAdam, 0.9f, DeferMode::kClosedForm});
  const bool bitwise = c.mode == DeferMode::kReplay || c.type == ops::SolverType::kAdam;
  const bool clip = GENERATE(false, true);
  INFO(ops::SolverTypeName(c.type) << " momentum " << c.momentum << ", " << DeferModeName(c.mode)
                                   << (clip ? ", clipping" : ""));
  SolverConfig config = Config(c.type, c.momentum);
  // Clipping measures every gradient, so the dropped ones must be zero there; otherwise they hold NaN
  // to show that nothing reads them.
  if (clip) config.clip_gradients = 1.5f;
  const float dropped = clip ? 0.0f : std::numeric_limits<float>::quiet_NaN();
  StatusOr<Solver> solver = Solver::Create(config);
  REQUIRE(solver.ok());
  Sites sites;
  ParamArena eager = MakeArena(c.type);
  ParamArena deferred_arena = MakeArena(c.type);
  StatusOr<DeferredUpdates> deferred = DeferredUpdates::Create(*solver, deferred_arena, Deferred(sites), 0, c.mode);
  INFO(deferred.status().ToString());
  REQUIRE(deferred.ok());

  std::mt19937 rng(23);
  int64_t max_stale = 0;
  for (int64_t t = 0; t < kSteps; ++t) {
    INFO("iteration " << t);
    DrawPatterns(sites, rng);
    REQUIRE(deferred->CatchUpKept(deferred_arena, sites.graph, t).ok());
    // What the iteration reads is what the eager run has.
    for (size_t p = 0; p < eager.entries().size(); ++p) {
      const std::vector<float> want = Values(eager.entries()[p].param);
      const std::vector<float> got = Values(deferred_arena.entries()[p].param);
      for (size_t i = 0; i < want.size(); ++i) {
        if (!Kept(sites, eager.entries()[p].name, static_cast<int64_t>(i))) continue;
        if (bitwise ? std::memcmp(&got[i], &want[i], sizeof(float)) != 0
                    : std::abs(got[i] - want[i]) > 1e-5f * (1.0f + std::abs(want[i]))) {
          FAIL("parameter '" << eager.entries()[p].name << "' [" << i << "] reads " << got[i] << ", eager has "
                             << want[i]);
        }
      }
    }
    WriteGradients(sites, eager, deferred_arena, dropped, rng);
    StatusOr<StepReport> want = solver->Step(eager, t);
    StatusOr<StepReport> got = deferred->Step(deferred_arena, sites.graph, t);
    INFO(got.status().ToString());
    REQUIRE(want.ok());
    REQUIRE(got.ok());
    CHECK(got->lr == want->lr);
    CHECK(got->clipped == want->clipped);
    CHECK(got->clip_scale == want->clip_scale);
    max_stale = std::max(max_stale, deferred->StaleBlocks(t + 1));
  }
  // The test defers: blocks fell behind, and some are behind at the end.
  CHECK(max_stale > 10);
  REQUIRE(deferred->CatchUpAll(deferred_arena, kSteps).ok());
  CHECK(deferred->StaleBlocks(kSteps) == 0);
  for (size_t p = 0; p < eager.entries().size(); ++p) {
    const ParamEntry& e = eager.entries()[p];
    const ParamEntry& d = deferred_arena.entries()[p];
    INFO("parameter '" << e.name << "'");
    std::vector<std::pair<Tensor, Tensor>> pairs = {{e.param, d.param}};
    for (size_t s = 0; s < e.state.size(); ++s) pairs.emplace_back(e.state[s], d.state[s]);
    for (const auto& [want, got] : pairs) {
      if (bitwise) {
        CHECK(testing::BitwiseEqual(Values(got), Values(want)));
      } else {
        testing::CheckClose(Values(got), Values(want), 1e-5, 1e-6);
      }
    }
  }
}

TEST_CASE("Deferred updates refuse a step on blocks that were not caught up", "[runtime][solver][ard]") {
  StatusOr<Solver> solver = Solver::Create(Config(ops::SolverType::kSGD, 0.9f));
  REQUIRE(solver.ok());
  Sites sites;
  ParamArena arena = MakeArena(ops::SolverType::kSGD);
  StatusOr<DeferredUpdates> deferred = DeferredUpdates::Create(*solver, arena, Deferred(sites), 0);
  REQUIRE(deferred.ok());
  // No pattern yet: nothing can say which blocks the iteration reads.
  CHECK_THAT(deferred->CatchUpKept(arena, sites.graph, 0).message(),
             Catch::Contains("h.drop") && Catch::Contains("fc.w") && Catch::Contains("no pattern"));
  sites.graph.SetSitePattern(sites.rows, ops::RowPattern{1, 2, 0});
  sites.graph.SetSitePattern(sites.tiles, ops::TilePattern{kTileRows, kTileCols, 2, 0});
  REQUIRE(deferred->Step(arena, sites.graph, 0).ok());
  // Rows 1, 3, ... fell behind; iteration 1 keeps them, so its step needs a catch-up first.
  sites.graph.SetSitePattern(sites.rows, ops::RowPattern{1, 2, 1});
  const std::vector<float> before = Values(*arena.param("other.w"));
  CHECK_THAT(deferred->Step(arena, sites.graph, 1).status().message(),
             Catch::Contains("block (1, 0)") && Catch::Contains("'fc.w'") && Catch::Contains("CatchUpKept"));
  CHECK(testing::BitwiseEqual(Values(*arena.param("other.w")), before));  // the failed step changed nothing
  REQUIRE(deferred->CatchUpKept(arena, sites.graph, 1).ok());
  CHECK(deferred->Step(arena, sites.graph, 1).ok());
  // A tile pattern of another tile shape does not cut the parameter into its blocks.
  sites.graph.SetSitePattern(sites.tiles, ops::TilePattern{2, 2, 2, 0});
  CHECK_THAT(deferred->CatchUpKept(arena, sites.graph, 2).message(), Catch::Contains("tile.w"));

  // Creation errors.
  CHECK_THAT(DeferredUpdates::Create(*solver, arena, {{.name = "nope", .site = sites.rows}}, 0).status().message(),
             Catch::Contains("nope"));
  CHECK_THAT(DeferredUpdates::Create(*solver, arena,
                                     {{.name = "fc.b", .site = sites.rows}, {.name = "fc.b", .site = sites.rows}}, 0)
                 .status()
                 .message(),
             Catch::Contains("twice"));
  CHECK_FALSE(DeferredUpdates::Create(*solver, arena, Deferred(sites), 0, DeferMode::kOff).ok());
  ParamArena adam = MakeArena(ops::SolverType::kAdam);
  CHECK_THAT(DeferredUpdates::Create(*solver, adam, Deferred(sites), 0).status().message(),
             Catch::Contains("Adam") && Catch::Contains("SGD"));
}

TEST_CASE("FindDeferrableParams takes the producer side of a row site and the weight of a tile site",
          "[runtime][solver][ard]") {
  SECTION("the hand-built MLP: fc1's weight rows and bias entries, not fc2's columns") {
    const Graph g = graph::testing::MakeMlp(4, 6, 8, 3);
    const std::vector<DeferredParam> found = FindDeferrableParams(g);
    REQUIRE(found.size() == 2);
    CHECK(found[0].name == "fc1.w");
    CHECK(found[0].site == graph::testing::SiteNamed(g, "h1.drop"));
    CHECK(found[0].block_rows == 1);
    CHECK(found[0].block_cols == 6);
    CHECK(found[1].name == "fc1.b");
    CHECK(found[1].block_cols == 1);
  }
  SECTION("a tile site on a weight whose input is also a parameter") {
    Graph g;
    const SiteId s =
        g.AddSite({.name = "w.tiles", .kind = graph::SiteKind::kTile, .rate = 0.5, .tile_rows = 2, .tile_cols = 3});
    const graph::ValueId x = g.AddParam("x", {4, 6});
    const graph::ValueId w = g.AddParam("w", {8, 6});
    const graph::ValueId labels = g.AddValue("labels", graph::ValueRole::kLabel, {4}, DType::kInt32);
    const graph::ValueId y = g.AddValue("y", graph::ValueRole::kActivation, {4, 8});
    const graph::ValueId prob = g.AddValue("prob", graph::ValueRole::kActivation, {4, 8});
    graph::SiteUse tile;
    tile.site = s;
    tile.target = graph::SiteTarget::kMatMulTile;
    tile.tile_rows = ops::Dim::kN;
    tile.tile_cols = ops::Dim::kK;
    tile.scale = true;
    ops::MatMulAttr forward;
    forward.trans_b = true;
    g.AddNode(graph::OpKind::kMatMul, "fc", {x, w}, {y}, forward, graph::Phase::kForward, {tile});
    const graph::NodeId loss =
        g.AddNode(graph::OpKind::kSoftmaxXent, "loss", {y, labels}, {prob}, graph::SoftmaxXentAttr{});
    REQUIRE(graph::AppendBackward(g, {loss}).ok());
    // The backward reads w again (dX = dY W), under the same tiles; x's rows are never selected.
    const std::vector<DeferredParam> found = FindDeferrableParams(g);
    REQUIRE(found.size() == 1);
    CHECK(found[0].name == "w");
    CHECK(found[0].site == s);
    CHECK(found[0].block_rows == 2);
    CHECK(found[0].block_cols == 3);
  }
  SECTION("a weight that another kind of node also reads is not deferred") {
    Graph g = graph::testing::MakeMlp(4, 6, 8, 3);
    const graph::ValueId w1 = graph::testing::Val(g, "fc1.w");
    const graph::ValueId copy = g.AddValue("fc1.w.copy", graph::ValueRole::kActivation, {8, 6});
    g.AddNode(graph::OpKind::kCopy, "copy", {w1}, {copy});
    const std::vector<DeferredParam> found = FindDeferrableParams(g);
    REQUIRE(found.size() == 1);
    CHECK(found[0].name == "fc1.b");
  }
}

}  // namespace
}  // namespace sieve::runtime
