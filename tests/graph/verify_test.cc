// Tests of the verifier: the hand-built graphs pass in every state of an iteration, and each rule
// has a case that breaks it and expects a message naming the node (or value, or site).
#include "graph/verify.h"

#include <array>
#include <catch2/catch.hpp>
#include <initializer_list>
#include <random>

#include "ops/matmul/matmul.h"
#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::MakeFcLayer;
using testing::MakeMlp;
using testing::NodeNamed;
using testing::SiteNamed;
using testing::Val;

void ExpectInvalid(const Graph& g, std::initializer_list<const char*> fragments) {
  const Status st = Verify(g);
  INFO(st.ToString());
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == StatusCode::kInvalidArgument);
  for (const char* fragment : fragments) CHECK_THAT(st.message(), Catch::Contains(fragment));
}

Node& NodeOf(Graph& g, std::string_view name) { return g.mutable_node(NodeNamed(g, name)); }
Value& ValueOf(Graph& g, std::string_view name) { return g.mutable_value(Val(g, name)); }

// The MLP with its site resolved for row(1, 2, 0): h1 keeps 4 of 8 units.
Graph ResolvedMlp() {
  Graph g = MakeMlp();
  g.SetSitePattern(SiteNamed(g, "h1.drop"), ops::RowPattern{1, 2, 0});
  REQUIRE(ResolveSiteUses(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());
  return g;
}

TEST_CASE("Verify accepts the hand-built graphs in every state of an iteration", "[graph]") {
  CHECK(Verify(MakeFcLayer()).ok());
  Graph g = MakeMlp();
  CHECK(Verify(g).ok());
  const SiteId s = SiteNamed(g, "h1.drop");
  g.SetSitePattern(s, ops::RowPattern{1, 3, 2});  // patterns drawn, nothing resolved yet
  CHECK(Verify(g).ok());
  REQUIRE(ResolveSiteUses(g).ok());  // attributes follow, live shapes stale
  CHECK(Verify(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());  // both follow
  CHECK(Verify(g).ok());
  g.SetSitePattern(s, ops::RowPattern{2, 3, 0});
  REQUIRE(ResolveLiveShapes(g).ok());  // live shapes first this time
  CHECK(Verify(g).ok());
}

TEST_CASE("Verify rejects duplicate and missing names", "[graph]") {
  Graph g = MakeMlp();
  SECTION("values") {
    g.AddValue("h1", ValueRole::kInput, {1});
    ExpectInvalid(g, {"two values are named 'h1'", "%8", "%20"});
  }
  SECTION("nodes") {
    g.AddNode(OpKind::kFill, "loss", {}, {g.AddValue("z", ValueRole::kActivation, {1})}, FillAttr{});
    ExpectInvalid(g, {"two nodes are named 'loss'", "#5", "#14"});
  }
  SECTION("sites") {
    g.AddSite({.name = "h1.drop", .kind = SiteKind::kRow, .width = 8, .rate = 0.5});
    ExpectInvalid(g, {"two sites are named 'h1.drop'"});
  }
  SECTION("empty") {
    NodeOf(g, "loss").name.clear();
    ExpectInvalid(g, {"node #5 has no name"});
  }
  SECTION("ids are table positions") {
    NodeOf(g, "loss").id = NodeId{3};
    ExpectInvalid(g, {"node at position 5 has id #3"});
  }
}

TEST_CASE("Verify rejects ids out of range", "[graph]") {
  Graph g = MakeMlp();
  SECTION("node input") {
    NodeOf(g, "fc2.bias").inputs[1] = ValueId{99};
    ExpectInvalid(g, {"node 'fc2.bias' (#4 BiasAdd)", "input 1 is %99", "20 values"});
  }
  SECTION("node output") {
    NodeOf(g, "loss").outputs[0] = ValueId{-1};
    ExpectInvalid(g, {"node 'loss'", "output 0 is %-1"});
  }
  SECTION("site use") {
    NodeOf(g, "fc1.fwd").sites[0].site = SiteId{5};
    ExpectInvalid(g, {"node 'fc1.fwd'", "uses site $5, which does not exist"});
  }
  SECTION("packed axis") {
    ValueOf(g, "h1").packed[0].site = SiteId{3};
    ExpectInvalid(g, {"value 'h1'", "packed by site $3"});
  }
  SECTION("producer") {
    ValueOf(g, "fc1.w").producer = NodeId{2};
    ExpectInvalid(g, {"value 'fc1.w'", "records producer #2 but is produced by no node"});
  }
}

TEST_CASE("Verify checks arity and the attribute alternative per kind", "[graph]") {
  Graph g = MakeMlp();
  SECTION("too many inputs") {
    NodeOf(g, "fc1.relu").inputs.push_back(Val(g, "x"));
    ExpectInvalid(g, {"node 'fc1.relu' (#2 Activation)", "has 2 inputs, Activation takes 1"});
  }
  SECTION("too few outputs") {
    NodeOf(g, "loss").outputs.clear();
    ExpectInvalid(g, {"node 'loss' (#5 SoftmaxXent)", "has 0 outputs, SoftmaxXent has 1"});
  }
  SECTION("missing required base") {
    Graph r;
    const ValueId src = r.AddValue("src", ValueRole::kInput, {3, 4});
    const ValueId ids = r.AddValue("ids", ValueRole::kInput, {3}, DType::kInt32);
    const ValueId dst = r.AddValue("emb.grad", ValueRole::kParamGrad, {10, 4});
    r.AddNode(OpKind::kScatterAddRows, "emb.scatter", {src, ids}, {dst}, {}, Phase::kBackward);
    ExpectInvalid(r, {"node 'emb.scatter' (#0 ScatterAddRows)", "has 2 inputs, ScatterAddRows takes 3", "the base"});
  }
  SECTION("wrong attribute") {
    NodeOf(g, "fc2.fwd").attr = BiasAttr{};
    ExpectInvalid(g, {"node 'fc2.fwd' (#3 MatMul)", "attribute is BiasAttr, MatMul carries MatMulAttr"});
  }
  SECTION("unknown kind") {
    NodeOf(g, "loss").kind = static_cast<OpKind>(200);
    ExpectInvalid(g, {"node 'loss'", "unknown kind 200"});
  }
  SECTION("unknown phase") {
    NodeOf(g, "loss").phase = Phase::kCount;
    ExpectInvalid(g, {"node 'loss'", "unknown phase"});
  }
}

TEST_CASE("Verify ties beta to the base input", "[graph]") {
  Graph g = MakeMlp();
  SECTION("a kind without a base cannot accumulate") {
    std::get<BiasAttr>(NodeOf(g, "fc2.bias").attr).beta = 1.0f;
    ExpectInvalid(g, {"node 'fc2.bias' (#4 BiasAdd)", "beta 1", "BiasAdd takes none"});
  }
  SECTION("accumulating needs the prior value") {
    std::get<ops::MatMulAttr>(NodeOf(g, "fc1.wgrad").attr).beta = 1.0f;
    ExpectInvalid(g, {"node 'fc1.wgrad' (#13 MatMul)", "beta 1 accumulates", "as input 2 (the base)"});
  }
  SECTION("the base looks like the output") {
    ValueOf(g, "fc2.w.grad.init").planned = ValueOf(g, "fc2.w.grad.init").live = {3, 7};
    ExpectInvalid(
        g, {"node 'fc2.wgrad' (#9 MatMul)", "base value 'fc2.w.grad.init'", "planned shape of value 'fc2.w.grad'"});
  }
}

TEST_CASE("Verify checks the dataflow: produced once, leaves never, in order, forward before backward", "[graph]") {
  Graph g = MakeMlp();
  SECTION("produced twice") {
    g.AddNode(OpKind::kCopy, "dup", {Val(g, "fc1.out")}, {Val(g, "h1")});
    ExpectInvalid(g, {"value 'h1'", "produced twice: by node 'fc1.relu' (#2 Activation) and by node 'dup'"});
  }
  SECTION("never produced") {
    g.AddValue("orphan", ValueRole::kActivation, {2});
    ExpectInvalid(g, {"value 'orphan'", "(activation) is never produced"});
  }
  SECTION("a leaf written by a node") {
    g.AddNode(OpKind::kFill, "bad.fill", {}, {Val(g, "fc1.w")}, FillAttr{});
    ExpectInvalid(g, {"value 'fc1.w'", "is a param, which comes from outside the graph", "node 'bad.fill'"});
  }
  SECTION("read before produced") {
    Graph r;
    const ValueId a = r.AddValue("a", ValueRole::kInput, {2});
    const ValueId b = r.AddValue("b", ValueRole::kActivation, {2});
    const ValueId c = r.AddValue("c", ValueRole::kActivation, {2});
    r.AddNode(OpKind::kCopy, "early", {b}, {c});
    r.AddNode(OpKind::kCopy, "late", {a}, {b});
    ExpectInvalid(r, {"node 'early' (#0 Copy)", "read before its producer node 'late'"});
  }
  SECTION("forward reads backward") {
    NodeOf(g, "fc2.bias.grad").phase = Phase::kForward;
    ExpectInvalid(g, {"node 'fc2.bias.grad'", "a forward node reads value 'logits.grad'", "node 'loss.grad'"});
  }
}

TEST_CASE("Verify checks dtypes: int32 labels, indices and argmax, float32 elsewhere", "[graph]") {
  SECTION("labels") {
    Graph g = MakeMlp();
    ValueOf(g, "labels").dtype = DType::kFloat32;
    ExpectInvalid(g, {"value 'labels'", "labels must be int32"});
  }
  SECTION("indices") {
    Graph g;
    const ValueId table = g.AddParam("emb.w", {10, 4});
    const ValueId ids = g.AddValue("ids", ValueRole::kInput, {3});
    const ValueId out = g.AddValue("emb.out", ValueRole::kActivation, {3, 4});
    g.AddNode(OpKind::kIndexRows, "emb", {table, ids}, {out});
    ExpectInvalid(g, {"node 'emb' (#0 IndexRows)", "input 1 'ids' is float32, IndexRows needs int32"});
  }
  SECTION("argmax") {
    Graph g;
    const ValueId x = g.AddValue("x", ValueRole::kInput, {1, 2, 4, 4});
    const ValueId y = g.AddValue("pool.y", ValueRole::kActivation, {1, 2, 2, 2});
    const ValueId argmax = g.AddValue("pool.argmax", ValueRole::kActivation, {1, 2, 2, 2});
    g.AddNode(OpKind::kMaxPool, "pool", {x}, {y, argmax}, PoolAttr{ops::ConvGeometry::Square(2, 4, 4, 2, 2)});
    ExpectInvalid(g, {"node 'pool' (#0 MaxPool)", "output 1 'pool.argmax' is float32, MaxPool needs int32"});
  }
  SECTION("unknown role") {
    Graph g = MakeMlp();
    ValueOf(g, "x").role = ValueRole::kCount;
    ExpectInvalid(g, {"value 'x'", "unknown role"});
  }
  SECTION("unsupported dtype") {
    Graph g = MakeMlp();
    ValueOf(g, "x").dtype = DType::kBFloat16;
    ExpectInvalid(g, {"value 'x'", "only float32 and int32"});
  }
}

TEST_CASE("Verify checks live shapes against planned shapes and the current patterns", "[graph]") {
  SECTION("live exceeds planned") {
    Graph g = MakeMlp();
    ValueOf(g, "h1").live = {4, 9};
    ExpectInvalid(g, {"value 'h1'", "live shape [4, 9] exceeds planned [4, 8] on axis 1"});
  }
  SECTION("negative planned extent") {
    Graph g = MakeMlp();
    g.AddValue("neg", ValueRole::kInput, {2, -1});
    ExpectInvalid(g, {"value 'neg'", "negative planned extent"});
  }
  SECTION("live rank") {
    Graph g = MakeMlp();
    ValueOf(g, "h1").live = {32};
    ExpectInvalid(g, {"value 'h1'", "has rank 1, planned [4, 8] rank 2"});
  }
  SECTION("packed axis disagrees with the pattern") {
    Graph g = ResolvedMlp();
    ValueOf(g, "fc1.mm").live = {4, 5};
    ExpectInvalid(g, {"value 'fc1.mm'", "live extent 5 on axis 1 should be 4 under the current patterns"});
  }
  SECTION("unpacked axis shrunk") {
    Graph g = ResolvedMlp();
    ValueOf(g, "fc2.w").live = {3, 4};
    ExpectInvalid(g, {"value 'fc2.w'", "live extent 4 on axis 1 should be 8"});
  }
}

TEST_CASE("Verify checks dropout sites and their patterns", "[graph]") {
  Graph g = MakeMlp();
  const SiteId s = SiteNamed(g, "h1.drop");
  SECTION("rate") {
    g.AddSite({.name = "bad", .kind = SiteKind::kRow, .width = 8, .rate = 1.0});
    ExpectInvalid(g, {"site 'bad' ($1 row)", "rate 1 is outside [0, 1)"});
  }
  SECTION("kind") {
    g.AddSite({.name = "bad", .kind = SiteKind::kCount, .width = 8, .rate = 0.5});
    ExpectInvalid(g, {"site 'bad'", "unknown site kind"});
  }
  SECTION("scale mode") {
    g.AddSite({.name = "bad", .kind = SiteKind::kRow, .width = 8, .rate = 0.5, .scaling = ScaleMode::kCount});
    ExpectInvalid(g, {"site 'bad' ($1 row)", "unknown scale mode"});
  }
  SECTION("width") {
    g.AddSite({.name = "bad", .kind = SiteKind::kChannel, .width = 0, .rate = 0.5});
    ExpectInvalid(g, {"site 'bad' ($1 channel)", "width 0 must be positive"});
  }
  SECTION("tile shape") {
    g.AddSite({.name = "bad", .kind = SiteKind::kTile, .rate = 0.5, .tile_rows = 0});
    ExpectInvalid(g, {"site 'bad' ($1 tile)", "tile shape 0x32"});
  }
  SECTION("pattern of another family") {
    g.SetSitePattern(s, ops::TilePattern{2, 2, 2, 0});
    ExpectInvalid(g, {"site 'h1.drop'", "a row site needs a row pattern"});
  }
  SECTION("malformed row pattern") {
    g.SetSitePattern(s, ops::RowPattern{3, 2, 0});
    ExpectInvalid(g, {"site 'h1.drop'", "row(k=3,T=2,o=0) needs 1 <= k <= T"});
  }
  SECTION("empty channel set") {
    const SiteId c = g.AddSite({.name = "conv.drop", .kind = SiteKind::kChannel, .width = 4, .rate = 0.5});
    g.SetSitePattern(c, ops::ChannelSet{});
    ExpectInvalid(g, {"site 'conv.drop'", "keep at least one channel"});
  }
  SECTION("channel out of range") {
    const SiteId c = g.AddSite({.name = "conv.drop", .kind = SiteKind::kChannel, .width = 4, .rate = 0.5});
    g.SetSitePattern(c, ops::ChannelSet{{1, 4}});
    ExpectInvalid(g, {"site 'conv.drop'", "inside [0, 4)"});
  }
  SECTION("tile pattern with other tiles") {
    const SiteId t = g.AddSite({.name = "tiles", .kind = SiteKind::kTile, .rate = 0.5});
    g.SetSitePattern(t, ops::TilePattern{16, 32, 2, 0});
    ExpectInvalid(g, {"site 'tiles'", "the site's tiles are 32x32"});
  }
  SECTION("Bernoulli sites draw no pattern") {
    const SiteId b = g.AddSite({.name = "bern", .kind = SiteKind::kBernoulli, .width = 8, .rate = 0.5});
    g.SetSitePattern(b, ops::RowPattern{1, 2, 0});
    ExpectInvalid(g, {"site 'bern'", "never a pattern"});
  }
}

TEST_CASE("Verify checks packed axes of values", "[graph]") {
  Graph g = MakeMlp();
  const SiteId s = SiteNamed(g, "h1.drop");
  SECTION("tile sites pack nothing") {
    const SiteId t = g.AddSite({.name = "tiles", .kind = SiteKind::kTile, .rate = 0.5});
    g.PackValue(Val(g, "fc2.w"), t, 0);
    ExpectInvalid(g, {"value 'fc2.w'", "packed by site 'tiles' ($1 tile); only row and channel sites pack"});
  }
  SECTION("axis out of range") {
    g.PackValue(Val(g, "x"), s, 3);
    ExpectInvalid(g, {"value 'x'", "packed along axis 3, which it does not have"});
  }
  SECTION("axis packed twice") {
    g.PackValue(Val(g, "h1"), s, 1);
    ExpectInvalid(g, {"value 'h1'", "axis 1 is packed twice"});
  }
  SECTION("extent is not width times group") {
    g.PackValue(Val(g, "x"), s, 1);
    ExpectInvalid(g, {"value 'x'", "axis 1 has planned extent 6 but site 'h1.drop'", "packs 8 units x group 1"});
  }
}

TEST_CASE("Verify checks site uses: target, site kind, extent and packing", "[graph]") {
  Graph g = MakeMlp();
  const SiteId s = SiteNamed(g, "h1.drop");
  SiteUse& fc1_use = NodeOf(g, "fc1.fwd").sites[0];
  SECTION("a target the kind lacks") {
    NodeOf(g, "fc1.relu").sites.push_back(SiteUse{.site = s, .target = SiteTarget::kBiasCols});
    ExpectInvalid(g, {"node 'fc1.relu' (#2 Activation)", "Activation has no bias_cols"});
  }
  SECTION("a site of the wrong kind") {
    const SiteId t = g.AddSite({.name = "tiles", .kind = SiteKind::kTile, .rate = 0.5});
    NodeOf(g, "fc1.fwd").sites[0].site = t;
    ExpectInvalid(g, {"node 'fc1.fwd'", "site 'tiles' ($1 tile) cannot decide N (needs a row or channel site)"});
  }
  SECTION("two uses of one target") {
    const SiteUse again = fc1_use;
    NodeOf(g, "fc1.fwd").sites.push_back(again);
    ExpectInvalid(g, {"node 'fc1.fwd'", "two site uses decide N"});
  }
  SECTION("scale outside a MatMul") {
    NodeOf(g, "fc1.bias").sites[0].scale = true;
    ExpectInvalid(g, {"node 'fc1.bias' (#1 BiasAdd)", "only a MatMul can fold"});
  }
  SECTION("group") {
    fc1_use.group = 0;
    ExpectInvalid(g, {"node 'fc1.fwd'", "group 0, must be >= 1"});
  }
  SECTION("extent") {
    fc1_use.group = 2;
    ExpectInvalid(g, {"node 'fc1.fwd'", "N has dense extent 8 but site 'h1.drop'", "spans 8 units x group 2"});
  }
  SECTION("a use packs an operand the value does not") {
    fc1_use.b = ops::Layout::kPacked;
    ExpectInvalid(g, {"node 'fc1.fwd'", "stores input 1 'fc1.w' packed along axis 0", "the value is not packed there"});
  }
  SECTION("a value packed without a use") {
    fc1_use.c = ops::Layout::kFull;
    ExpectInvalid(g, {"node 'fc1.fwd'", "output 0 'fc1.mm' is packed along axis 1 by site 'h1.drop'",
                      "no site use of the node stores it packed there"});
  }
  SECTION("a bias whose columns no use selects") {
    NodeOf(g, "fc1.bias.grad").sites.clear();
    ExpectInvalid(g, {"node 'fc1.bias.grad' (#12 BiasBackward)", "input 0 'fc1.out.grad' is packed along axis 1"});
  }
  SECTION("like-output operands are packed alike") {
    const ValueId copy = g.AddValue("h1.copy", ValueRole::kActivation, {4, 8});
    g.AddNode(OpKind::kCopy, "h1.copy", {Val(g, "h1")}, {copy});
    ExpectInvalid(g, {"node 'h1.copy' (#14 Copy)", "input 0 value 'h1'", "must be packed like value 'h1.copy'"});
  }
}

TEST_CASE("Verify checks tile uses", "[graph]") {
  Graph g;
  const SiteId t = g.AddSite({.name = "tiles", .kind = SiteKind::kTile, .rate = 0.5, .tile_rows = 2, .tile_cols = 2});
  const SiteId r = g.AddSite({.name = "rows", .kind = SiteKind::kRow, .width = 8, .rate = 0.5});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 6});
  const ValueId w = g.AddParam("w", {8, 6});
  const ValueId y = g.AddValue("y", ValueRole::kActivation, {4, 8});
  ops::MatMulAttr attr;
  attr.trans_b = true;
  const NodeId n = g.AddNode(OpKind::kMatMul, "fc", {x, w}, {y}, attr, Phase::kForward,
                             {SiteUse{.site = t, .target = SiteTarget::kMatMulTile}});
  REQUIRE(Verify(g).ok());
  SECTION("two distinct dimensions") {
    g.mutable_node(n).sites[0].tile_cols = ops::Dim::kN;
    ExpectInvalid(g, {"node 'fc' (#0 MatMul)", "needs two distinct GEMM dimensions"});
  }
  SECTION("no selection on a tiled dimension") {
    g.mutable_node(n).sites.push_back(SiteUse{.site = r, .target = SiteTarget::kMatMulN});
    ExpectInvalid(g, {"node 'fc'", "dimension N carries both a tile use and a N use"});
  }
}

TEST_CASE("Verify checks MatMul operand shapes, planned and live", "[graph]") {
  SECTION("planned shapes follow the transposes") {
    Graph g = MakeMlp();
    ValueOf(g, "fc2.w").planned = ValueOf(g, "fc2.w").live = {3, 7};
    ExpectInvalid(g, {"node 'fc2.fwd' (#3 MatMul): planned shapes", "dimension K mismatch: operand b has 7, expected 8",
                      "A [4, 8], B [3, 7]^T, C [4, 3]"});
  }
  SECTION("a transpose flag flipped") {
    Graph g = MakeMlp();
    std::get<ops::MatMulAttr>(NodeOf(g, "fc1.fwd").attr).trans_b = false;
    ExpectInvalid(g, {"node 'fc1.fwd' (#0 MatMul)", "dimension"});
  }
  SECTION("a selection's extent") {
    Graph g = ResolvedMlp();
    std::get<ops::MatMulAttr>(NodeOf(g, "fc1.fwd").attr).n->extent = 9;
    ExpectInvalid(g,
                  {"node 'fc1.fwd' (#0 MatMul): planned shapes", "dimension N mismatch: operand b has 8, expected 9"});
  }
  SECTION("live shapes follow the selections and layouts") {
    Graph g = ResolvedMlp();
    std::get<ops::MatMulAttr>(NodeOf(g, "fc2.fwd").attr).k->a = ops::Layout::kFull;
    ExpectInvalid(g, {"node 'fc2.fwd' (#3 MatMul): live shapes", "dimension K mismatch: operand a has 4, expected 8"});
  }
}

// A convolution x [2, 3, 5, 5] -> y [2, 4, 3, 3] (3x3 kernel) as its three implicit-GEMM MatMuls,
// a channel site over the 3 input maps on each one's im2col dimension.
struct ConvGraph {
  Graph g;
  SiteId site;
  ConvGraph() {
    const ops::ConvGeometry geometry = ops::ConvGeometry::Square(3, 5, 5, 3);
    site = g.AddSite({.name = "conv.drop", .kind = SiteKind::kChannel, .width = 3, .rate = 0.3});
    const ValueId x = g.AddValue("x", ValueRole::kActivation, {2, 3, 5, 5});
    g.AddNode(OpKind::kFill, "x.fill", {}, {x}, FillAttr{});
    const ValueId w = g.AddParam("conv.w", {4, 27});
    const ValueId y = g.AddValue("y", ValueRole::kActivation, {2, 4, 3, 3});
    const ValueId dy = g.AddValue("dy", ValueRole::kActivationGrad, {2, 4, 3, 3});
    const ValueId dw = g.AddValue("dw", ValueRole::kParamGrad, {4, 27});
    const ValueId dx = g.AddValue("dx", ValueRole::kActivationGrad, {2, 3, 5, 5});
    using Role = ops::ImplicitConv::Role;
    auto conv = [&](Role role) { return ops::MatMulAttr{.conv = ops::ImplicitConv{role, geometry}}; };
    auto use = [&](SiteTarget target) { return SiteUse{.site = site, .target = target, .group = 9, .scale = true}; };
    g.AddNode(OpKind::kMatMul, "conv.fwd", {w, x}, {y}, conv(Role::kForward), Phase::kForward,
              {use(SiteTarget::kMatMulK)});
    g.AddNode(OpKind::kFill, "dy.fill", {}, {dy}, FillAttr{}, Phase::kBackward);
    g.AddNode(OpKind::kMatMul, "conv.dw", {dy, x}, {dw}, conv(Role::kGradWeight), Phase::kBackward,
              {use(SiteTarget::kMatMulN)});
    g.AddNode(OpKind::kMatMul, "conv.dx", {w, dy}, {dx}, conv(Role::kGradInput), Phase::kBackward,
              {use(SiteTarget::kMatMulM)});
  }
  ops::MatMulAttr& attr(std::string_view node) { return std::get<ops::MatMulAttr>(NodeOf(g, node).attr); }
  void Resolve(const ops::ChannelSet& kept) {
    g.SetSitePattern(site, kept);
    REQUIRE(ResolveSiteUses(g).ok());
    REQUIRE(ResolveLiveShapes(g).ok());
  }
};

TEST_CASE("Verify checks implicit-convolution MatMuls per role", "[graph]") {
  ConvGraph c;
  REQUIRE(Verify(c.g).ok());
  c.Resolve(ops::ChannelSet{{0, 2}});
  REQUIRE(Verify(c.g).ok());
  SECTION("the weight's patch size") {
    ValueOf(c.g, "conv.w").planned = ValueOf(c.g, "conv.w").live = {4, 18};
    ExpectInvalid(c.g, {"node 'conv.fwd' (#1 MatMul): planned shapes", "implicit convolution (forward",
                        "operand a must be [4, 27]", "A [4, 18], B [2, 3, 5, 5], C [2, 4, 3, 3]"});
  }
  SECTION("the output image") {
    ValueOf(c.g, "y").planned = ValueOf(c.g, "y").live = {2, 4, 5, 5};
    ExpectInvalid(c.g, {"node 'conv.fwd'", "operand c must be [2, 4, 3, 3]"});
  }
  SECTION("the grad-weight output") {
    ValueOf(c.g, "dw").planned = ValueOf(c.g, "dw").live = {27, 4};
    ExpectInvalid(c.g, {"node 'conv.dw'", "implicit convolution (grad-weight", "operand c must be [4, 27]"});
  }
  SECTION("the grad-input output") {
    ValueOf(c.g, "dx").planned = ValueOf(c.g, "dx").live = {2, 3, 4, 4};
    ExpectInvalid(c.g, {"node 'conv.dx'", "implicit convolution (grad-input", "operand c must be [2, 3, 5, 5]"});
  }
  SECTION("a bad geometry") {
    c.attr("conv.fwd").conv->geometry.kernel_h = 7;
    ExpectInvalid(c.g, {"node 'conv.fwd'", "implicit convolution (forward)"});
  }
  SECTION("a transpose") {
    c.attr("conv.dx").trans_a = true;
    ExpectInvalid(c.g, {"node 'conv.dx'", "the role fixes the transposes"});
  }
  SECTION("a selection off the im2col dimension") {
    c.attr("conv.fwd").m = ops::DimSelection{ops::ChannelSet{{0}}, 4};
    ExpectInvalid(c.g, {"node 'conv.fwd'", "dimension M carries a selection; only the im2col dimension K may"});
  }
  SECTION("a packed selection") {
    c.attr("conv.dw").n->c = ops::Layout::kPacked;
    ExpectInvalid(c.g, {"node 'conv.dw' (#3 MatMul): live shapes", "dimension N must be Full in every operand"});
  }
  SECTION("a selection that splits a map's kh*kw block") {
    c.attr("conv.dx").m->pattern = ops::ChannelSet{{0, 1, 2}};
    ExpectInvalid(c.g, {"node 'conv.dx'", "must keep whole input maps (channel sets of 9-index blocks)"});
  }
  SECTION("a site use on another dimension or packed") {
    NodeOf(c.g, "conv.fwd").sites[0].target = SiteTarget::kMatMulN;
    ExpectInvalid(c.g, {"node 'conv.fwd'", "implicit convolution (forward) takes a use of site 'conv.drop'",
                        "only on its im2col dimension K, Full in every operand; got N"});
    NodeOf(c.g, "conv.fwd").sites[0].target = SiteTarget::kMatMulK;
    NodeOf(c.g, "conv.fwd").sites[0].b = ops::Layout::kPacked;
    ExpectInvalid(c.g, {"node 'conv.fwd'", "Full in every operand; got K"});
  }
  SECTION("a use whose extent is not Cin * kh * kw") {
    NodeOf(c.g, "conv.dx").sites[0].group = 4;
    ExpectInvalid(c.g, {"node 'conv.dx'", "M has dense extent 27 but site 'conv.drop'", "spans 3 units x group 4"});
  }
}

TEST_CASE("Verify checks the attributes of the helper kinds", "[graph]") {
  Graph g;
  const SiteId bern = g.AddSite({.name = "drop", .kind = SiteKind::kBernoulli, .width = 8, .rate = 0.25});
  const SiteId row = g.AddSite({.name = "rows", .kind = SiteKind::kRow, .width = 8, .rate = 0.25});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 3, 5, 5});
  const ValueId y = g.AddValue("y", ValueRole::kActivation, {2, 3, 5, 5});
  SECTION("Bernoulli dropout names a Bernoulli site with its rate") {
    const NodeId n = g.AddNode(OpKind::kDropout, "drop", {x}, {y}, DropoutAttr{0.25f, bern});
    REQUIRE(Verify(g).ok());
    std::get<DropoutAttr>(g.mutable_node(n).attr).rate = 0.5f;
    ExpectInvalid(g, {"node 'drop' (#0 Dropout)", "rate 0.5 differs from site 'drop'"});
    std::get<DropoutAttr>(g.mutable_node(n).attr) = DropoutAttr{0.25f, row};
    ExpectInvalid(g, {"node 'drop'", "names site 'rows' ($1 row), not a Bernoulli site"});
    std::get<DropoutAttr>(g.mutable_node(n).attr) = DropoutAttr{0.25f, SiteId{7}};
    ExpectInvalid(g, {"node 'drop'", "dropout site $7 does not exist"});
  }
  SECTION("per-channel bias takes no column pattern") {
    const ValueId b = g.AddParam("b", {3});
    g.AddNode(OpKind::kChannelBiasAdd, "cbias", {x, b}, {y}, BiasAttr{ops::RowPattern{1, 2, 0}});
    ExpectInvalid(g, {"node 'cbias' (#0 ChannelBiasAdd)", "takes no column pattern"});
  }
  SECTION("pooling geometry") {
    const ValueId p = g.AddValue("p", ValueRole::kActivation, {2, 3, 3, 3});
    g.AddNode(OpKind::kAvgPool, "pool", {x}, {p}, PoolAttr{ops::ConvGeometry::Square(3, 5, 5, 2, 2, 2)});
    ExpectInvalid(g, {"node 'pool' (#0 AvgPool)"});
  }
  SECTION("activation") {
    g.AddNode(OpKind::kActivation, "act", {x}, {y}, ActivationAttr{static_cast<ops::Activation>(9)});
    ExpectInvalid(g, {"node 'act' (#0 Activation)", "unknown activation"});
  }
}

TEST_CASE("CheckMatMulShapes names the three shapes", "[graph]") {
  ops::MatMulAttr attr;
  attr.trans_b = true;
  Status st = CheckMatMulShapes(attr, {4, 6}, {8, 6}, {4, 7});
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("dimension N mismatch: operand c has 7, expected 8") &&
                               Catch::Contains("A [4, 6], B [8, 6]^T, C [4, 7]"));
  CHECK(CheckMatMulShapes(attr, {4, 6}, {8, 6}, {4, 8}).ok());
  CHECK_THAT(CheckMatMulShapes(attr, {4, 6, 1}, {8, 6}, {4, 8}).message(), Catch::Contains("must be 2-D"));
}

TEST_CASE("CheckMatMulShapes accepts exactly what ops::MakeMatMulArgs accepts", "[graph]") {
  std::mt19937 rng(2024);
  auto uniform = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng() % (hi - lo + 1)); };
  auto layout = [&] { return rng() % 2 ? ops::Layout::kPacked : ops::Layout::kFull; };
  int accepted = 0, rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    ops::MatMulAttr attr;
    attr.trans_a = rng() % 2;
    attr.trans_b = rng() % 2;
    const int64_t dense[3] = {uniform(1, 7), uniform(1, 7), uniform(1, 7)};  // M, N, K
    int64_t stored[3][3];                                                    // [operand a/b/c][dim]
    for (int d = 0; d < 3; ++d) {
      for (auto& row : stored) row[d] = dense[d];
      if (rng() % 2) continue;
      ops::DimSelection s;
      if (rng() % 2) {
        const int64_t period = uniform(1, 4);
        s.pattern = ops::RowPattern{uniform(1, period), period, rng() % 12 ? uniform(0, period - 1) : period};
      } else {
        ops::ChannelSet set;
        for (int64_t i = 0; i < dense[d]; ++i)
          if (rng() % 2 || (i == dense[d] - 1 && set.kept.empty())) set.kept.push_back(i);
        s.pattern = set;
      }
      s.extent = rng() % 12 ? dense[d] : dense[d] + 1;
      s.a = layout();
      s.b = layout();
      s.c = layout();
      const int64_t kept = ops::KeptCount(s.pattern, s.extent);
      if (s.a == ops::Layout::kPacked) stored[0][d] = kept;
      if (s.b == ops::Layout::kPacked) stored[1][d] = kept;
      if (s.c == ops::Layout::kPacked) stored[2][d] = kept;
      (d == 0 ? attr.m : d == 1 ? attr.n : attr.k) = s;
    }
    if (rng() % 4 == 0) {
      const int64_t dp = uniform(1, 3);
      attr.tile = ops::TileSelection{ops::TilePattern{uniform(1, 3), uniform(1, 3), dp, uniform(0, dp - 1)},
                                     static_cast<ops::Dim>(rng() % 3), static_cast<ops::Dim>(rng() % 3)};
    }
    constexpr int kM = 0, kN = 1, kK = 2;
    Shape a = attr.trans_a ? Shape{stored[0][kK], stored[0][kM]} : Shape{stored[0][kM], stored[0][kK]};
    Shape b = attr.trans_b ? Shape{stored[1][kN], stored[1][kK]} : Shape{stored[1][kK], stored[1][kN]};
    Shape c = {stored[2][kM], stored[2][kN]};
    if (rng() % 3 == 0) {
      Shape* victim = std::array{&a, &b, &c}[rng() % 3];
      int64_t& extent = (*victim)[rng() % 2];
      extent = extent > 1 && rng() % 2 ? extent - 1 : extent + 1;
    }
    const bool ours = CheckMatMulShapes(attr, a, b, c).ok();
    auto theirs = ops::MakeMatMulArgs(Tensor::Zeros(a), Tensor::Zeros(b), Tensor::Zeros(c), attr);
    INFO("trial " << trial << ": " << attr.ToString() << " A " << ShapeToString(a) << " B " << ShapeToString(b) << " C "
                  << ShapeToString(c) << ": " << theirs.status().ToString());
    REQUIRE(ours == theirs.ok());
    (ours ? accepted : rejected) += 1;
  }
  CHECK(accepted > 500);
  CHECK(rejected > 500);
}

}  // namespace
}  // namespace sieve::graph
