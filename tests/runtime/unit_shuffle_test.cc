// Unit shuffling (runtime/unit_shuffle.h): the seeded permutation, the parameter axes a row site's
// units index, the permutation applied to weights, gradients and Adam's two state slots (producer
// rows and bias, consumer columns), the dense network output unchanged by it, the epoch schedule,
// and the errors.
#include "runtime/unit_shuffle.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/lower.h"
#include "graph/sequential.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

constexpr int64_t kBatch = 5;

graph::DropoutSpec ShuffledRow(double rate, int64_t every) {
  graph::DropoutSpec spec = graph::RowDropout(rate);
  spec.shuffle_every_epochs = every;
  return spec;
}

// data [6] -> fc1 (11) -> relu -> drop1 (row, shuffled every 2 epochs) -> fc2 (9) -> tanh
// -> drop2 (row, every 3) -> fc3 (4).
graph::Network MakeMlp() {
  graph::Sequential mlp({6});
  mlp.Add(graph::FullyConnected(11))
      .Add(graph::ReLU())
      .Add(ShuffledRow(0.5, 2))
      .Add(graph::FullyConnected(9))
      .Add(graph::Tanh())
      .Add(ShuffledRow(0.3, 3))
      .Add(graph::FullyConnected(4));
  return *mlp.Build();
}

graph::LoweredNet LowerOk(const graph::Network& network, bool training) {
  auto lowered = graph::Lower(network, {.batch = kBatch, .training = training});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  return std::move(*lowered);
}

// An Adam arena for `net` with random weights, gradients and state.
void MakeArena(const graph::LoweredNet& net, ParamArena& arena) {
  for (const graph::ParamDecl& p : net.params) REQUIRE(arena.Register(p.name, p.shape, p.spec).ok());
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kAdam).ok());
  REQUIRE(arena.Initialize(5).ok());
  std::mt19937 rng(23);
  for (const ParamEntry& p : arena) {
    REQUIRE(p.state.size() == 2);
    for (const Tensor& t : {p.param, p.grad, p.state[0], p.state[1]})
      REQUIRE(t.CopyFrom(sieve::testing::RandomTensor(p.shape, rng)).ok());
  }
}

// The dense (evaluation) network's logits on `data` with the arena's weights.
std::vector<float> Logits(const graph::LoweredNet& eval, const ParamArena& arena, const Tensor& data) {
  auto exec = Executor::Create(eval.graph, Device::CPU());
  REQUIRE(exec.ok());
  for (const graph::ParamDecl& p : eval.params) REQUIRE((*exec)->Bind(p.value, *arena.param(p.name)).ok());
  REQUIRE((*exec)->Bind(eval.inputs.front(), data).ok());
  REQUIRE((*exec)->Bind(eval.labels.front(), Tensor::Zeros({kBatch}, DType::kInt32)).ok());
  REQUIRE((*exec)->RunPhase(graph::Phase::kForward, {}).ok());
  return (*exec)->Get(*eval.graph.FindValue("fc3.out"))->ToVector();
}

// Element (i, j) of a 2-D tensor's values (or entry i of a vector).
float At(const std::vector<float>& v, const Shape& shape, int64_t i, int64_t j = 0) {
  return v[static_cast<size_t>(shape.size() == 1 ? i : i * shape[1] + j)];
}

TEST_CASE("UnitPermutation is a permutation that depends only on seed, site and epoch", "[runtime][ard][shuffle]") {
  const graph::SiteId site{2};
  const std::vector<int64_t> p = UnitPermutation(37, 9, site, 4);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 37; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
  CHECK(UnitPermutation(37, 9, site, 4) == p);
  CHECK(UnitPermutation(37, 9, site, 5) != p);
  CHECK(UnitPermutation(37, 10, site, 4) != p);
  CHECK(UnitPermutation(37, 9, graph::SiteId{3}, 4) != p);
  int moved = 0;
  for (int64_t i = 0; i < 37; ++i) moved += p[static_cast<size_t>(i)] != i;
  CHECK(moved > 20);
  CHECK(UnitPermutation(1, 9, site, 4) == std::vector<int64_t>{0});
  CHECK(UnitPermutation(0, 9, site, 4).empty());
}

TEST_CASE("SiteUnitAxes finds the producer rows, its bias and the consumer columns", "[runtime][ard][shuffle]") {
  const graph::LoweredNet net = LowerOk(MakeMlp(), true);
  auto axes = SiteUnitAxes(net, *net.graph.FindSite("drop1.site"));
  INFO(axes.status().ToString());
  REQUIRE(axes.ok());
  REQUIRE(axes->size() == 3);
  CHECK((*axes)[0].param == "fc1.w");
  CHECK((*axes)[0].axis == 0);
  CHECK((*axes)[1].param == "fc1.b");
  CHECK((*axes)[1].axis == 0);
  CHECK((*axes)[2].param == "fc2.w");
  CHECK((*axes)[2].axis == 1);
}

TEST_CASE("ShuffleUnits permutes weights, gradients and optimizer state and keeps the network output",
          "[runtime][ard][shuffle]") {
  const graph::LoweredNet train = LowerOk(MakeMlp(), true);
  const graph::LoweredNet eval = LowerOk(MakeMlp(), false);
  ParamArena arena;
  MakeArena(train, arena);
  std::mt19937 rng(29);
  const Tensor data = sieve::testing::RandomTensor({kBatch, 6}, rng);
  const std::vector<float> before = Logits(eval, arena, data);
  // The old values of every tensor of every parameter: param, grad, two state slots.
  std::map<std::string, std::vector<std::vector<float>>> old;
  for (const ParamEntry& p : arena)
    old[p.name] = {p.param.ToVector(), p.grad.ToVector(), p.state[0].ToVector(), p.state[1].ToVector()};

  const graph::SiteId site = *train.graph.FindSite("drop1.site");
  REQUIRE(ShuffleUnits(train, site, arena, 41, 2).ok());
  const std::vector<int64_t> perm = UnitPermutation(11, 41, site, 2);
  for (const ParamEntry& p : arena) {
    INFO(p.name);
    const std::vector<std::vector<float>> now = {p.param.ToVector(), p.grad.ToVector(), p.state[0].ToVector(),
                                                 p.state[1].ToVector()};
    for (size_t t = 0; t < now.size(); ++t) {
      INFO("tensor " << t << " (param, grad, m, v)");
      const std::vector<float>& was = old[p.name][t];
      if (p.name == "fc1.w" || p.name == "fc1.b") {
        const int64_t cols = p.shape.size() == 1 ? 1 : p.shape[1];
        for (int64_t i = 0; i < 11; ++i)
          for (int64_t j = 0; j < cols; ++j)
            REQUIRE(At(now[t], p.shape, i, j) == At(was, p.shape, perm[static_cast<size_t>(i)], j));
      } else if (p.name == "fc2.w") {
        for (int64_t i = 0; i < 9; ++i)
          for (int64_t j = 0; j < 11; ++j)
            REQUIRE(At(now[t], p.shape, i, j) == At(was, p.shape, i, perm[static_cast<size_t>(j)]));
      } else {
        CHECK(now[t] == was);
      }
    }
  }
  // The dense function is the same; only the order of the sum over the hidden units changed.
  sieve::testing::CheckClose(Logits(eval, arena, data), before, 1e-5, 1e-6);
  CHECK(arena.param("fc1.w")->ToVector() != old["fc1.w"][0]);
}

TEST_CASE("ShuffleScheduledUnits shuffles the sites whose period divides the epoch", "[runtime][ard][shuffle]") {
  const graph::LoweredNet train = LowerOk(MakeMlp(), true);
  REQUIRE(train.unit_shuffles.size() == 2);
  ParamArena arena;
  MakeArena(train, arena);
  const std::vector<float> fc1 = arena.param("fc1.w")->ToVector();
  const std::vector<float> fc2 = arena.param("fc2.w")->ToVector();
  const std::vector<float> fc3 = arena.param("fc3.w")->ToVector();
  auto count = ShuffleScheduledUnits(train, arena, 3, 1);
  REQUIRE(count.ok());
  CHECK(*count == 0);
  CHECK(arena.param("fc1.w")->ToVector() == fc1);
  count = ShuffleScheduledUnits(train, arena, 3, 3);  // drop2 only: fc2's rows, fc3's columns
  REQUIRE(count.ok());
  CHECK(*count == 1);
  CHECK(arena.param("fc1.w")->ToVector() == fc1);
  CHECK(arena.param("fc2.w")->ToVector() != fc2);
  CHECK(arena.param("fc3.w")->ToVector() != fc3);
  count = ShuffleScheduledUnits(train, arena, 3, 6);
  REQUIRE(count.ok());
  CHECK(*count == 2);
  CHECK(arena.param("fc1.w")->ToVector() != fc1);
  CHECK_FALSE(ShuffleScheduledUnits(train, arena, 3, 0).ok());
}

TEST_CASE("Unit shuffling reports sites it cannot follow and bad permutations", "[runtime][ard][shuffle]") {
  graph::Sequential mlp({6});
  mlp.Add(graph::RowDropout(0.5))
      .Add(graph::FullyConnected(8))
      .Add(graph::TileDropout(0.5, 2, 2))
      .Add(graph::FullyConnected(3));
  const graph::LoweredNet net = LowerOk(*mlp.Build(), true);
  ParamArena arena;
  MakeArena(net, arena);

  auto axes = SiteUnitAxes(net, *net.graph.FindSite("drop1.site"));  // on the input: no producer
  REQUIRE_FALSE(axes.ok());
  CHECK(axes.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(axes.status().message(), Catch::Contains("site 'drop1.site'"));
  CHECK_THAT(axes.status().message(), Catch::Contains("no N use"));
  axes = SiteUnitAxes(net, *net.graph.FindSite("drop2.site"));
  REQUIRE_FALSE(axes.ok());
  CHECK_THAT(axes.status().message(), Catch::Contains("row sites only"));
  CHECK_FALSE(SiteUnitAxes(net, graph::SiteId{7}).ok());

  const std::vector<float> w = arena.param("fc1.w")->ToVector();
  const std::vector<UnitAxis> fc1_rows = {{"fc1.w", 0}};
  const Status twice = PermuteUnits(fc1_rows, {0, 1, 2, 3, 4, 5, 6, 6}, arena);
  CHECK_THAT(twice.message(), Catch::Contains("6 out of range or twice"));
  const Status wrong_extent = PermuteUnits(fc1_rows, {0, 1, 2}, arena);
  CHECK_THAT(wrong_extent.message(), Catch::Contains("'fc1.w' [8, 6] has no axis 0 of 3 units"));
  const Status unknown = PermuteUnits({{"fc9.w", 0}}, {1, 0}, arena);
  CHECK(unknown.code() == StatusCode::kNotFound);
  CHECK(arena.param("fc1.w")->ToVector() == w);  // nothing changed
}

}  // namespace
}  // namespace sieve::runtime
