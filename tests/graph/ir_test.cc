// Tests of the IR: the op table, graph building and lookups, pattern expansion and scaling, and
// the two steps that make a graph follow its sites' patterns (attributes and live shapes).
#include "graph/ir.h"

#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <string>

#include "graph/verify.h"
#include "ops/matmul/matmul.h"
#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::MakeFcLayer;
using testing::MakeMlp;
using testing::NodeNamed;
using testing::SiteNamed;
using testing::Val;

const ops::MatMulAttr& MatMulOf(const Graph& g, std::string_view node) {
  return std::get<ops::MatMulAttr>(g.node(NodeNamed(g, node)).attr);
}

TEST_CASE("The op table names every kind once and round-trips names", "[graph]") {
  std::set<std::string> names;
  for (int i = 0; i < static_cast<int>(OpKind::kCount); ++i) {
    const auto kind = static_cast<OpKind>(i);
    const OpInfo& info = GetOpInfo(kind);
    INFO(info.name);
    CHECK(names.insert(info.name).second);
    CHECK(std::string(OpKindName(kind)) == info.name);
    auto back = OpKindFromName(info.name);
    REQUIRE(back.ok());
    CHECK(*back == kind);
    CHECK(info.attr < std::variant_size_v<NodeAttr>);
    CHECK(info.outputs >= 1);
  }
  CHECK(GetOpInfo(OpKind::kMatMul).attr == kAttrIndex<ops::MatMulAttr>);
  CHECK(GetOpInfo(OpKind::kScatterAddRows).base == BaseInput::kRequired);
  CHECK(GetOpInfo(OpKind::kMaxPool).int32_outputs == 2u);  // argmax
  auto typo = OpKindFromName("Matmul");
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.status().code() == StatusCode::kNotFound);
  CHECK_THAT(typo.status().message(), Catch::Contains("'Matmul'") && Catch::Contains("nearest: 'MatMul'"));
}

TEST_CASE("Graph records producers and consumers and finds names with a suggestion", "[graph]") {
  Graph g = MakeMlp();
  CHECK(g.num_values() == 20);
  CHECK(g.num_nodes() == 14);
  const ValueId h1 = Val(g, "h1");
  CHECK(g.value(h1).producer == NodeNamed(g, "fc1.relu"));
  CHECK(g.value(Val(g, "fc1.w")).producer == kNoNode);
  CHECK(g.Consumers(h1) ==
        std::vector<NodeId>{NodeNamed(g, "fc2.fwd"), NodeNamed(g, "fc2.wgrad"), NodeNamed(g, "fc1.relu.grad")});
  // The base of fc2.wgrad is an input like any other.
  CHECK(g.Consumers(Val(g, "fc2.w.grad.init")) == std::vector<NodeId>{NodeNamed(g, "fc2.wgrad")});
  CHECK(g.Consumers(Val(g, "fc1.w.grad")).empty());
  CHECK(g.CheckTopologicalOrder().ok());

  auto missing = g.FindValue("fc1.wt");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK_THAT(missing.status().message(),
             Catch::Contains("no value named 'fc1.wt'") && Catch::Contains("nearest: 'fc1.w'"));
  CHECK_THAT(g.FindNode("fc2.dgard").status().message(), Catch::Contains("nearest: 'fc2.dgrad'"));
  CHECK_THAT(g.FindSite("h2.drop").status().message(), Catch::Contains("nearest: 'h1.drop'"));
  CHECK_THAT(Graph().FindSite("x").status().message(), Catch::Contains("the graph has none"));
}

TEST_CASE("CheckTopologicalOrder names the node that reads a value too early", "[graph]") {
  Graph g;
  const ValueId a = g.AddValue("a", ValueRole::kInput, {2});
  const ValueId b = g.AddValue("b", ValueRole::kActivation, {2});
  const ValueId c = g.AddValue("c", ValueRole::kActivation, {2});
  g.AddNode(OpKind::kCopy, "early", {b}, {c});
  g.AddNode(OpKind::kCopy, "late", {a}, {b});
  Status st = g.CheckTopologicalOrder();
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("node 'early' (#0 Copy)") && Catch::Contains("value 'b'") &&
                               Catch::Contains("before its producer node 'late'"));

  Graph orphan;
  const ValueId d = orphan.AddValue("d", ValueRole::kActivation, {2});
  const ValueId e = orphan.AddValue("e", ValueRole::kActivation, {2});
  orphan.AddNode(OpKind::kCopy, "reader", {d}, {e});
  CHECK_THAT(orphan.CheckTopologicalOrder().message(), Catch::Contains("'d'") && Catch::Contains("never produced"));
}

TEST_CASE("Views write into an assembled value and read a produced one, in order", "[graph]") {
  // An LSTM-like sequence [B=2, T=3, H=4]: step t writes rows t of every batch entry (strides
  // [T*H, 1]); a reader of the whole sequence must come after every step.
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 4});
  const ValueId seq = g.AddValue("seq", ValueRole::kActivation, {2, 3, 4});
  std::vector<ValueId> steps;
  for (int t = 0; t < 3; ++t)
    steps.push_back(g.AddView("h" + std::to_string(t), ValueRole::kActivation, {2, 4}, seq, t * 4, {12, 1}));
  const ValueId flat = g.AddView("flat", ValueRole::kActivation, {6, 4}, seq);
  const ValueId out = g.AddValue("out", ValueRole::kActivation, {6, 4});
  CHECK(g.StorageRoot(steps[2]) == seq);
  CHECK(g.StorageOffset(steps[2]) == 8);
  CHECK_FALSE(g.IsAssembled(seq));  // no writer yet

  g.AddNode(OpKind::kCopy, "step0", {x}, {steps[0]});
  g.AddNode(OpKind::kCopy, "step1", {steps[0]}, {steps[1]});
  SECTION("a reader after the last writer is in order") {
    g.AddNode(OpKind::kCopy, "step2", {steps[1]}, {steps[2]});
    g.AddNode(OpKind::kCopy, "read", {flat}, {out});
    CHECK(g.IsAssembled(seq));
    CHECK(g.CheckTopologicalOrder().ok());
    CHECK(Verify(g).ok());
  }
  SECTION("a reader before the last writer is named with the writer") {
    g.AddNode(OpKind::kCopy, "read", {flat}, {out});
    g.AddNode(OpKind::kCopy, "step2", {steps[1]}, {steps[2]});
    const Status st = g.CheckTopologicalOrder();
    CHECK_THAT(st.message(), Catch::Contains("node 'read'") && Catch::Contains("assembled from value 'h2'") &&
                                 Catch::Contains("before its producer node 'step2'"));
  }
  SECTION("a view that reaches past its root's buffer fails verification") {
    g.AddNode(OpKind::kCopy, "step2", {steps[1]}, {steps[2]});
    const ValueId past = g.AddView("past", ValueRole::kActivation, {2, 4}, seq, 10, {12, 1});
    g.AddNode(OpKind::kCopy, "read", {past}, {g.AddValue("sink", ValueRole::kActivation, {2, 4})});
    CHECK_THAT(Verify(g).message(),
               Catch::Contains("'past'") && Catch::Contains("reaches element 25") && Catch::Contains("which has 24"));
  }
}

TEST_CASE("ExpandPattern keeps index i exactly when the unit i / group is kept", "[graph]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t width = 1 + rng() % 13, group = 1 + rng() % 5;
    const int64_t period = 1 + rng() % 6, keep = 1 + rng() % period, offset = rng() % period;
    ops::ChannelSet set;
    for (int64_t c = 0; c < width; ++c)
      if (rng() % 2) set.kept.push_back(c);
    for (const ops::IndexPattern& p :
         {ops::IndexPattern(ops::RowPattern{keep, period, offset}), ops::IndexPattern(set)}) {
      const ops::IndexPattern expanded = ExpandPattern(p, group);
      INFO(ops::PatternToString(p) << " group " << group << " -> " << ops::PatternToString(expanded));
      for (int64_t i = 0; i < width * group; ++i) REQUIRE(ops::IsKept(expanded, i) == ops::IsKept(p, i / group));
      CHECK(ops::KeptCount(expanded, width * group) == ops::KeptCount(p, width) * group);
    }
  }
}

TEST_CASE("SiteScale is the pattern's inverse keep fraction or the nominal one", "[graph]") {
  DropoutSite row{.name = "r", .kind = SiteKind::kRow, .width = 8, .rate = 0.5};
  row.pattern = ops::RowPattern{1, 2, 0};
  CHECK(SiteScale(row) == 2.0f);
  row.pattern = ops::RowPattern{2, 3, 1};
  CHECK(SiteScale(row) == Approx(1.5f));
  row.scaling = ScaleMode::kNominal;
  CHECK(SiteScale(row) == 2.0f);  // 1 / (1 - 0.5), whatever the pattern
  DropoutSite tile{.name = "t", .kind = SiteKind::kTile, .rate = 0.75, .tile_rows = 2, .tile_cols = 2};
  tile.pattern = ops::TilePattern{2, 2, 4, 1};
  CHECK(SiteScale(tile) == 4.0f);
  DropoutSite channel{.name = "c", .kind = SiteKind::kChannel, .width = 8, .rate = 0.6};
  channel.pattern = ops::ChannelSet{{1, 4, 6}};
  CHECK(SiteScale(channel) == Approx(8.0f / 3.0f));
}

TEST_CASE("ResolveSiteUses writes an FC layer's row pattern into its three GEMMs and bias", "[graph]") {
  Graph g = MakeFcLayer();
  const SiteId s = SiteNamed(g, "fc.drop");
  CHECK(g.attrs_current());
  g.SetSitePattern(s, ops::RowPattern{1, 2, 1});
  CHECK_FALSE(g.attrs_current());
  REQUIRE(ResolveSiteUses(g).ok());
  CHECK(g.attrs_current());
  CHECK_FALSE(g.shapes_current());

  const ops::IndexPattern row = ops::RowPattern{1, 2, 1};
  const ops::MatMulAttr& fwd = MatMulOf(g, "fc.fwd");
  REQUIRE(fwd.n);
  CHECK(fwd.n->pattern == row);
  CHECK(fwd.n->extent == 8);
  CHECK(fwd.n->b == ops::Layout::kFull);
  CHECK(fwd.n->c == ops::Layout::kPacked);
  CHECK((!fwd.m && !fwd.k && !fwd.tile));
  CHECK(fwd.trans_b);
  CHECK(fwd.alpha == 1.0f);  // the producer of the units does not scale
  const ops::MatMulAttr& dgrad = MatMulOf(g, "fc.dgrad");
  REQUIRE(dgrad.k);
  CHECK(dgrad.k->pattern == row);
  CHECK(dgrad.k->a == ops::Layout::kPacked);
  CHECK(dgrad.k->b == ops::Layout::kFull);
  const ops::MatMulAttr& wgrad = MatMulOf(g, "fc.wgrad");
  REQUIRE(wgrad.m);
  CHECK(wgrad.m->a == ops::Layout::kPacked);
  CHECK(wgrad.m->c == ops::Layout::kFull);
  for (const char* bias : {"fc.bias", "fc.bias.grad"}) {
    const BiasAttr& attr = std::get<BiasAttr>(g.node(NodeNamed(g, bias)).attr);
    REQUIRE(attr.cols);
    CHECK(*attr.cols == row);
  }

  // A site added with a pattern counts as setting it.
  g.AddSite({.name = "later", .kind = SiteKind::kRow, .width = 8, .rate = 0.5, .pattern = ops::RowPattern{1, 2, 0}});
  CHECK_FALSE(g.attrs_current());
  REQUIRE(ResolveSiteUses(g).ok());
  CHECK(g.attrs_current());

  // The next iteration's pattern replaces this one.
  g.SetSitePattern(s, ops::RowPattern{3, 4, 2});
  REQUIRE(ResolveSiteUses(g).ok());
  CHECK(MatMulOf(g, "fc.fwd").n->pattern == ops::IndexPattern(ops::RowPattern{3, 4, 2}));
}

TEST_CASE("ResolveSiteUses annotates producer N and consumer K of an MLP site and scales the consumer", "[graph]") {
  Graph g = MakeMlp();
  const SiteId s = SiteNamed(g, "h1.drop");
  for (int repeat = 0; repeat < 2; ++repeat) {  // resolving again must not compound the scale
    g.SetSitePattern(s, ops::RowPattern{1, 2, 0});
    REQUIRE(ResolveSiteUses(g).ok());
    CHECK(MatMulOf(g, "fc1.fwd").n->c == ops::Layout::kPacked);
    CHECK(MatMulOf(g, "fc1.fwd").alpha == 1.0f);
    CHECK(MatMulOf(g, "fc2.fwd").k->a == ops::Layout::kPacked);
    CHECK(MatMulOf(g, "fc2.fwd").alpha == 2.0f);
    CHECK(MatMulOf(g, "fc2.wgrad").n->b == ops::Layout::kPacked);
    CHECK(MatMulOf(g, "fc2.wgrad").alpha == 2.0f);
    CHECK(MatMulOf(g, "fc2.dgrad").n->c == ops::Layout::kPacked);
    CHECK(MatMulOf(g, "fc2.dgrad").alpha == 2.0f);
    CHECK(MatMulOf(g, "fc1.wgrad").m->a == ops::Layout::kPacked);
    CHECK(MatMulOf(g, "fc1.wgrad").alpha == 1.0f);
  }
  g.SetSitePattern(s, ops::RowPattern{3, 4, 0});
  REQUIRE(ResolveSiteUses(g).ok());
  CHECK(MatMulOf(g, "fc2.fwd").alpha == Approx(4.0f / 3.0f));
}

TEST_CASE("ResolveSiteUses fails without a pattern, naming node and site, and changes nothing", "[graph]") {
  Graph g = MakeMlp();
  Status st = ResolveSiteUses(g);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(st.message(), Catch::Contains("node 'fc1.fwd' (#0 MatMul)") && Catch::Contains("site 'h1.drop'") &&
                               Catch::Contains("no pattern"));

  // A pattern of the wrong family is refused too, before any attribute changes.
  g.SetSitePattern(SiteNamed(g, "h1.drop"), ops::TilePattern{2, 2, 2, 0});
  st = ResolveSiteUses(g);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("a row site needs a row pattern"));
  CHECK(MatMulOf(g, "fc1.fwd").is_dense());
  CHECK_FALSE(g.attrs_current());
}

TEST_CASE("ResolveLiveShapes packs exactly the axes the site packs", "[graph]") {
  Graph g = MakeMlp();
  const SiteId s = SiteNamed(g, "h1.drop");
  Status st = ResolveLiveShapes(g);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("value 'fc1.mm'") && Catch::Contains("axis 1") &&
                               Catch::Contains("site 'h1.drop'") && Catch::Contains("no pattern"));

  g.SetSitePattern(s, ops::RowPattern{1, 3, 0});  // keeps units 0, 3, 6 of 8
  REQUIRE(ResolveLiveShapes(g).ok());
  CHECK(g.shapes_current());
  CHECK_FALSE(g.attrs_current());
  for (const char* packed : {"fc1.mm", "fc1.out", "h1", "h1.grad", "fc1.out.grad"})
    CHECK(g.value(Val(g, packed)).live == Shape{4, 3});
  for (const Value& v : g.values())
    if (v.packed.empty()) CHECK(v.live == v.planned);
  CHECK(g.value(Val(g, "fc2.w")).live == Shape{3, 8});

  g.SetSitePattern(s, ops::RowPattern{1, 1, 0});  // keeps everything: dense again
  REQUIRE(ResolveLiveShapes(g).ok());
  CHECK(g.value(Val(g, "h1")).live == Shape{4, 8});
}

// Builds the resolved operands with their live shapes and asks the MatMul primitive's own
// validation whether it would accept the call.
void ExpectEveryMatMulAccepted(const Graph& g) {
  for (const Node& n : g.nodes()) {
    if (n.kind != OpKind::kMatMul) continue;
    INFO(DescribeNode(n));
    auto make = [&](ValueId id) { return Tensor::Zeros(g.value(id).live); };
    auto args = ops::MakeMatMulArgs(make(n.inputs[0]), make(n.inputs[1]), make(n.outputs[0]),
                                    std::get<ops::MatMulAttr>(n.attr));
    INFO(args.status().ToString());
    CHECK(args.ok());
  }
}

TEST_CASE("Resolved MLP, conv and tile graphs verify and are accepted by the MatMul primitive", "[graph]") {
  SECTION("MLP with a row site between the layers") {
    Graph g = MakeMlp(5, 7, 11, 3);
    g.SetSitePattern(SiteNamed(g, "h1.drop"), ops::RowPattern{2, 5, 4});
    REQUIRE(ResolveSiteUses(g).ok());
    REQUIRE(ResolveLiveShapes(g).ok());
    CHECK(Verify(g).ok());
    CHECK(g.value(Val(g, "h1")).live == Shape{5, 5});  // units 0, 4, 5, 9, 10 of 11
    ExpectEveryMatMulAccepted(g);
  }
  SECTION("convolution whose input channels a channel site drops") {
    // x [2, 3, 5, 5], 3x3 kernel, no padding: one implicit-GEMM MatMul, K = 3*9, W is 4 x 27.
    Graph g;
    const ops::ConvGeometry geometry = ops::ConvGeometry::Square(3, 5, 5, 3);
    const SiteId s = g.AddSite({.name = "conv.drop", .kind = SiteKind::kChannel, .width = 3, .rate = 0.3});
    const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 3, 5, 5});
    const ValueId w = g.AddParam("conv.w", {4, 27});
    const ValueId y = g.AddValue("conv.y", ValueRole::kActivation, {2, 4, 3, 3});
    SiteUse k{.site = s, .target = SiteTarget::kMatMulK, .group = 9, .scale = true};
    const ops::MatMulAttr conv{.conv = ops::ImplicitConv{ops::ImplicitConv::Role::kForward, geometry}};
    g.AddNode(OpKind::kMatMul, "conv.fwd", {w, x}, {y}, conv, Phase::kForward, {k});
    REQUIRE(Verify(g).ok());

    g.SetSitePattern(s, ops::ChannelSet{{0, 2}});
    REQUIRE(ResolveSiteUses(g).ok());
    REQUIRE(ResolveLiveShapes(g).ok());
    CHECK(Verify(g).ok());
    const ops::MatMulAttr& mm = MatMulOf(g, "conv.fwd");
    REQUIRE(mm.conv);
    REQUIRE(mm.k);
    CHECK(mm.k->extent == 27);
    CHECK(ops::KeptIndices(mm.k->pattern, 27) ==
          std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 18, 19, 20, 21, 22, 23, 24, 25, 26});
    CHECK((mm.k->a == ops::Layout::kFull && mm.k->b == ops::Layout::kFull));
    CHECK(mm.alpha == Approx(1.5f));  // 3 channels, 2 kept
    CHECK(g.value(x).live == Shape{2, 3, 5, 5});
    ExpectEveryMatMulAccepted(g);
  }
  SECTION("FC forward with a tile site on its weight") {
    Graph g;
    const SiteId s =
        g.AddSite({.name = "fc.tiles", .kind = SiteKind::kTile, .rate = 0.5, .tile_rows = 2, .tile_cols = 3});
    const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 6});
    const ValueId w = g.AddParam("fc.w", {8, 6});
    const ValueId y = g.AddValue("fc.out", ValueRole::kActivation, {4, 8});
    SiteUse tile{.site = s, .target = SiteTarget::kMatMulTile, .scale = true};  // rows N, cols K
    ops::MatMulAttr attr;
    attr.trans_b = true;
    g.AddNode(OpKind::kMatMul, "fc.fwd", {x, w}, {y}, attr, Phase::kForward, {tile});
    g.SetSitePattern(s, ops::TilePattern{2, 3, 2, 1});
    REQUIRE(ResolveSiteUses(g).ok());
    REQUIRE(ResolveLiveShapes(g).ok());
    CHECK(Verify(g).ok());
    const ops::MatMulAttr& mm = MatMulOf(g, "fc.fwd");
    REQUIRE(mm.tile);
    CHECK(mm.tile->pattern == ops::TilePattern{2, 3, 2, 1});
    CHECK(mm.tile->rows == ops::Dim::kN);
    CHECK(mm.tile->cols == ops::Dim::kK);
    CHECK(mm.alpha == 2.0f);
    CHECK(g.value(y).live == Shape{4, 8});  // tiles shrink work, never shapes
    ExpectEveryMatMulAccepted(g);
  }
}

}  // namespace
}  // namespace sieve::graph
