// Tests of the executor's FLOP accounting (SPEC 2, issue 4): the MatMul FLOPs a run executes equal
// the analytic count for the sampled patterns, counted here by brute force over the kept units or
// weight elements, for a row site between two FC layers (forward and backward), for a tile site
// on a weight and for a channel site on an implicit convolution (counted over every image); a run
// without patterns executes its dense count.
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "graph/autodiff.h"
#include "graph/pass.h"
#include "runtime/executor.h"
#include "tests/graph/test_graphs.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

using graph::Graph;
using graph::ValueId;
using graph::ValueRole;

// Binds every external buffer of the executor's plan: float buffers to random values, int32 ones
// (labels) to class 0.
void BindExternals(Executor& executor, std::mt19937& rng) {
  for (const graph::PlannedBuffer& buffer : executor.plan().buffers) {
    if (!buffer.external) continue;
    const Tensor tensor = buffer.dtype == DType::kInt32 ? Tensor::Zeros({buffer.elements}, DType::kInt32)
                                                        : testing::RandomTensor({buffer.elements}, rng);
    const Status bound = executor.Bind(buffer.root, tensor);
    INFO(bound.ToString());
    REQUIRE(bound.ok());
  }
}

// Runs the per-iteration pipeline (no sampling pass: the test set the patterns) and the executor.
void RunIteration(Graph& graph, Executor& executor) {
  graph::PassManager pipeline = graph::MakeIterationPipeline({});
  graph::PassContext context;
  const Status resolved = pipeline.Run(graph, context);
  INFO(resolved.ToString());
  REQUIRE(resolved.ok());
  const Status ran = executor.Run({});
  INFO(ran.ToString());
  REQUIRE(ran.ok());
}

TEST_CASE("The executor counts the MatMul FLOPs of an MLP with a row site at the analytic value", "[runtime][ard]") {
  constexpr int64_t kBatch = 5, kIn = 7, kHidden = 11, kOut = 3;
  Graph graph = graph::testing::MakeMlp(kBatch, kIn, kHidden, kOut);
  const graph::SiteId site = graph::testing::SiteNamed(graph, "h1.drop");
  auto executor = Executor::Create(graph, Device::CPU());
  REQUIRE(executor.ok());
  std::mt19937 rng(3);
  BindExternals(**executor, rng);

  // Per hidden unit kept: fc1.fwd and fc1.wgrad each do B*In multiply-adds, fc2.fwd, fc2.wgrad and
  // fc2.dgrad each B*Out (the MLP's input needs no gradient, so there is no fc1.dgrad).
  auto analytic = [&](int64_t hidden) { return 2 * hidden * (2 * kBatch * kIn + 3 * kBatch * kOut); };
  const std::vector<ops::RowPattern> patterns = {{1, 1, 0}, {1, 2, 1}, {1, 3, 2}, {1, 4, 0}, {2, 5, 3}, {3, 4, 1}};
  for (const ops::RowPattern& pattern : patterns) {
    INFO(pattern.ToString());
    graph.SetSitePattern(site, pattern);
    RunIteration(graph, **executor);
    int64_t kept = 0;
    for (int64_t i = 0; i < kHidden; ++i)
      kept += ((i - pattern.offset) % pattern.period + pattern.period) % pattern.period < pattern.keep;
    CHECK((*executor)->flops().executed == analytic(kept));
    CHECK((*executor)->flops().dense == analytic(kHidden));
  }
}

TEST_CASE("The executor counts the MatMul FLOPs of a tile site at the analytic value", "[runtime][ard]") {
  // y = x W^T with a tile site on W [10, 7] (tiles 3x2: a partial last tile row and column), x a
  // parameter so that all three GEMMs run: forward, dX = dY W and dW = dY^T X.
  constexpr int64_t kBatch = 4, kN = 10, kK = 7;
  Graph graph;
  const graph::SiteId site =
      graph.AddSite({.name = "w.tiles", .kind = graph::SiteKind::kTile, .rate = 0.5, .tile_rows = 3, .tile_cols = 2});
  const ValueId x = graph.AddParam("x", {kBatch, kK});
  const ValueId w = graph.AddParam("w", {kN, kK});
  const ValueId labels = graph.AddValue("labels", ValueRole::kLabel, {kBatch}, DType::kInt32);
  const ValueId y = graph.AddValue("y", ValueRole::kActivation, {kBatch, kN});
  const ValueId prob = graph.AddValue("prob", ValueRole::kActivation, {kBatch, kN});
  graph::SiteUse tile;
  tile.site = site;
  tile.target = graph::SiteTarget::kMatMulTile;
  tile.tile_rows = ops::Dim::kN;
  tile.tile_cols = ops::Dim::kK;
  tile.scale = true;
  ops::MatMulAttr forward;
  forward.trans_b = true;
  graph.AddNode(graph::OpKind::kMatMul, "fc", {x, w}, {y}, forward, graph::Phase::kForward, {tile});
  const graph::NodeId loss =
      graph.AddNode(graph::OpKind::kSoftmaxXent, "loss", {y, labels}, {prob}, graph::SoftmaxXentAttr{});
  const StatusOr<graph::Gradients> grads = graph::AppendBackward(graph, {loss});
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  auto executor = Executor::Create(graph, Device::CPU());
  REQUIRE(executor.ok());
  std::mt19937 rng(5);
  BindExternals(**executor, rng);

  for (int64_t dp = 1; dp <= 3; ++dp) {
    for (int64_t offset = 0; offset < dp; ++offset) {
      const ops::TilePattern pattern{3, 2, dp, offset};
      INFO(pattern.ToString());
      graph.SetSitePattern(site, pattern);
      RunIteration(graph, **executor);
      int64_t kept = 0;  // elements of W in kept tiles
      for (int64_t i = 0; i < kN; ++i)
        for (int64_t j = 0; j < kK; ++j) kept += ((i / 3 + j / 2) % dp == offset);
      // Each of the three GEMMs does one multiply-add per kept element of W and row of the batch.
      CHECK((*executor)->flops().executed == 3 * 2 * kBatch * kept);
      CHECK((*executor)->flops().dense == 3 * 2 * kBatch * kN * kK);
    }
  }
}

TEST_CASE("The executor counts the FLOPs of an implicit convolution over every image of the batch", "[runtime][ard]") {
  // y = conv(x) (3x3, no padding) with a channel site over x's maps, x a parameter so that all three
  // implicit-GEMM MatMuls run: forward, grad-weight and grad-input.
  constexpr int64_t kBatch = 3, kMaps = 4, kSize = 5, kFilters = 2, kArea = 9, kPlane = 9;
  Graph graph;
  const graph::SiteId site =
      graph.AddSite({.name = "x.drop", .kind = graph::SiteKind::kChannel, .width = kMaps, .rate = 0.5});
  const ValueId x = graph.AddParam("x", {kBatch, kMaps, kSize, kSize});
  const ValueId w = graph.AddParam("w", {kFilters, kMaps * kArea});
  const ValueId labels = graph.AddValue("labels", ValueRole::kLabel, {kBatch}, DType::kInt32);
  const ValueId y = graph.AddValue("y", ValueRole::kActivation, {kBatch, kFilters, 3, 3});
  const ValueId logits = graph.AddView("logits", ValueRole::kActivation, {kBatch, kFilters * kPlane}, y);
  const ValueId prob = graph.AddValue("prob", ValueRole::kActivation, {kBatch, kFilters * kPlane});
  const ops::MatMulAttr conv{
      .conv = ops::ImplicitConv{ops::ImplicitConv::Role::kForward, ops::ConvGeometry::Square(kMaps, kSize, kSize, 3)}};
  const graph::SiteUse use{.site = site, .target = graph::SiteTarget::kMatMulK, .group = kArea, .scale = true};
  graph.AddNode(graph::OpKind::kMatMul, "conv", {w, x}, {y}, conv, graph::Phase::kForward, {use});
  const graph::NodeId loss =
      graph.AddNode(graph::OpKind::kSoftmaxXent, "loss", {logits, labels}, {prob}, graph::SoftmaxXentAttr{});
  const StatusOr<graph::Gradients> grads = graph::AppendBackward(graph, {loss});
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  auto executor = Executor::Create(graph, Device::CPU());
  REQUIRE(executor.ok());
  std::mt19937 rng(7);
  BindExternals(**executor, rng);

  // Each of the three GEMMs does, per image and kept map, Cout * Ho*Wo * k*k multiply-adds.
  auto analytic = [&](int64_t kept) { return 3 * 2 * kBatch * kFilters * kPlane * kArea * kept; };
  for (const std::vector<int64_t>& kept : {std::vector<int64_t>{0, 1, 2, 3}, {1, 3}, {2}}) {
    INFO(kept.size() << " maps kept");
    graph.SetSitePattern(site, ops::ChannelSet{kept});
    RunIteration(graph, **executor);
    CHECK((*executor)->flops().executed == analytic(static_cast<int64_t>(kept.size())));
    CHECK((*executor)->flops().dense == analytic(kMaps));
  }
}

TEST_CASE("A forward-only run counts only the forward MatMuls", "[runtime][ard]") {
  constexpr int64_t kBatch = 4, kIn = 6, kHidden = 8, kOut = 3;
  Graph graph = graph::testing::MakeMlp(kBatch, kIn, kHidden, kOut);
  graph.SetSitePattern(graph::testing::SiteNamed(graph, "h1.drop"), ops::RowPattern{1, 2, 0});
  auto executor = Executor::Create(graph, Device::CPU());
  REQUIRE(executor.ok());
  std::mt19937 rng(7);
  BindExternals(**executor, rng);
  RunIteration(graph, **executor);
  REQUIRE((*executor)->RunPhase(graph::Phase::kForward, {}).ok());
  // fc1.fwd keeps 4 of 8 outputs, fc2.fwd 4 of 8 inputs.
  CHECK((*executor)->flops().executed == 2 * kBatch * 4 * (kIn + kOut));
  CHECK((*executor)->flops().dense == 2 * kBatch * kHidden * (kIn + kOut));
}

}  // namespace
}  // namespace sieve::runtime
