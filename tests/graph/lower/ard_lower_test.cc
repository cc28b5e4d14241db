// Structural tests of the lowering of row and tile dropout (approximate random dropout, SPEC 2):
// which nodes get which site uses (the shrinking producer's N and bias columns, the consumer's K
// or tile use, an LSTM's input projection and its custom backward), which values are packed, when
// the producer does not shrink, the sites' settings, the Sequential factories, evaluation graphs
// and the errors. The numbers these graphs compute are checked in
// tests/runtime/ard_equivalence_test.cc.
#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "graph/sequential.h"
#include "graph/verify.h"
#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::NodeNamed;
using testing::SiteNamed;
using testing::Val;
constexpr ops::Layout kFull = ops::Layout::kFull;
constexpr ops::Layout kPacked = ops::Layout::kPacked;

Layer MakeLayer(std::string name, LayerSpec spec, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  return Layer{
      .name = std::move(name), .spec = std::move(spec), .inputs = std::move(inputs), .outputs = std::move(outputs)};
}

DropoutSpec Row(double rate) { return DropoutSpec{.rate = rate, .kind = DropoutSpec::Kind::kRow}; }

LoweredNet LowerOk(const Network& net, int64_t batch = 4, bool training = true) {
  StatusOr<LoweredNet> lowered = Lower(net, LowerOptions{.batch = batch, .training = training});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  return std::move(lowered).value();
}

void ExpectError(const Network& net, std::initializer_list<const char*> fragments) {
  const StatusOr<LoweredNet> lowered = Lower(net, LowerOptions{.batch = 4});
  INFO(lowered.status().ToString());
  REQUIRE_FALSE(lowered.ok());
  CHECK(lowered.status().code() == StatusCode::kInvalidArgument);
  for (const char* fragment : fragments) CHECK_THAT(lowered.status().message(), Catch::Contains(fragment));
}

// The single use of `site` on node `node`.
const SiteUse& UseOf(const Graph& g, std::string_view node, std::string_view site) {
  const Node& n = g.node(NodeNamed(g, node));
  const SiteId id = SiteNamed(g, site);
  const SiteUse* found = nullptr;
  for (const SiteUse& use : n.sites) {
    if (use.site != id) continue;
    INFO(node << " uses " << site << " twice");
    REQUIRE(found == nullptr);
    found = &use;
  }
  INFO(node << " does not use " << site);
  REQUIRE(found != nullptr);
  return *found;
}

void CheckDimUse(const SiteUse& use, SiteTarget target, ops::Layout a, ops::Layout b, ops::Layout c, bool scale) {
  CHECK(use.target == target);
  CHECK(use.group == 1);
  CHECK(use.a == a);
  CHECK(use.b == b);
  CHECK(use.c == c);
  CHECK(use.scale == scale);
}

std::vector<PackedAxis> PackingOf(const Graph& g, std::string_view value) { return g.value(Val(g, value)).packed; }

// data [B, 7] -> fc1 (11) -> relu1 -> drop1 (row) -> fc2 (9) -> drop2 (row, in place) -> fc3 (5),
// with the loss and accuracy reading fc3. fc2 has no bias and no activation.
Network RowMlp(DropoutSpec drop1 = Row(0.5), DropoutSpec drop2 = Row(0.3)) {
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {7}}, {}, {"data"}))
      .Add(MakeLayer("label", LabelSpec{}, {}, {"label"}))
      .Add(MakeLayer("fc1", FullyConnectedSpec{.units = 11}, {"data"}, {"fc1"}))
      .Add(MakeLayer("relu1", ActivationSpec{}, {"fc1"}, {"fc1"}))
      .Add(MakeLayer("drop1", drop1, {"fc1"}, {"drop1"}))
      .Add(MakeLayer("fc2", FullyConnectedSpec{.units = 9, .bias = false}, {"drop1"}, {"fc2"}))
      .Add(MakeLayer("drop2", drop2, {"fc2"}, {"fc2"}))
      .Add(MakeLayer("fc3", FullyConnectedSpec{.units = 5}, {"fc2"}, {"fc3"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"fc3", "label"}, {}))
      .Add(MakeLayer("accuracy", AccuracySpec{}, {"fc3", "label"}, {}));
  return net;
}

TEST_CASE("Row dropout after an FC chain shrinks the producer and the consumer and emits no node", "[lower][ard]") {
  DropoutSpec drop1 = Row(0.5);
  drop1.scaling = ScaleMode::kNominal;
  drop1.family = PatternFamily::kFixed;
  drop1.max_period = 8;
  drop1.generalized = true;
  LoweredNet net = LowerOk(RowMlp(drop1));
  Graph& g = net.graph;
  REQUIRE(Verify(g).ok());
  for (const Node& n : g.nodes()) CHECK(n.kind != OpKind::kDropout);

  // The sites: kind, width, rate and the spec's settings.
  REQUIRE(g.num_sites() == 2);
  const DropoutSite& s1 = g.site(SiteNamed(g, "drop1.site"));
  CHECK(s1.kind == SiteKind::kRow);
  CHECK(s1.width == 11);
  CHECK(s1.rate == 0.5);
  CHECK(s1.scaling == ScaleMode::kNominal);
  CHECK(s1.search.family == PatternFamily::kFixed);
  CHECK(s1.search.max_period == 8);
  CHECK(s1.search.generalized);
  const DropoutSite& s2 = g.site(SiteNamed(g, "drop2.site"));
  CHECK(s2.width == 9);
  CHECK(s2.rate == 0.3);
  CHECK(s2.scaling == ScaleMode::kPattern);
  CHECK(s2.search.family == PatternFamily::kSearched);
  CHECK_FALSE(s2.search.generalized);

  // Producer fc1: N use with C packed, bias columns; its chain is packed along axis 1.
  CheckDimUse(UseOf(g, "fc1.matmul", "drop1.site"), SiteTarget::kMatMulN, kFull, kFull, kPacked, false);
  CHECK(UseOf(g, "fc1.bias", "drop1.site").target == SiteTarget::kBiasCols);
  for (const char* value : {"fc1.matmul.out", "fc1.out", "relu1.out"}) {
    INFO(value);
    const std::vector<PackedAxis> packed = PackingOf(g, value);
    REQUIRE(packed.size() == 1);
    CHECK(packed[0].site == s1.id);
    CHECK(packed[0].axis == 1);
    CHECK(packed[0].group == 1);
  }
  CHECK(net.blobs.at("drop1") == Val(g, "relu1.out"));
  // fc2 consumes site 1 (K, A packed, scaling) and produces site 2 (N, C packed; no bias).
  const Node& fc2 = g.node(NodeNamed(g, "fc2.matmul"));
  REQUIRE(fc2.sites.size() == 2);
  CheckDimUse(UseOf(g, "fc2.matmul", "drop1.site"), SiteTarget::kMatMulK, kPacked, kFull, kFull, true);
  CheckDimUse(UseOf(g, "fc2.matmul", "drop2.site"), SiteTarget::kMatMulN, kFull, kFull, kPacked, false);
  CHECK(PackingOf(g, "fc2.out").size() == 1);
  CheckDimUse(UseOf(g, "fc3.matmul", "drop2.site"), SiteTarget::kMatMulK, kPacked, kFull, kFull, true);
  CHECK(g.node(NodeNamed(g, "fc3.bias")).sites.empty());
  CHECK(net.unit_shuffles.empty());

  // The backward follows, and the graph resolves to the packed live shapes.
  StatusOr<Gradients> grads = AppendBackward(g, {net.losses.front().node}, net.custom_gradients);
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  g.SetSitePattern(s1.id, ops::RowPattern{3, 8, 5});
  g.SetSitePattern(s2.id, ops::RowPattern::Strided(3, 2));
  REQUIRE(ResolveSiteUses(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());
  const Status verified = Verify(g);
  INFO(verified.ToString());
  REQUIRE(verified.ok());
  CHECK(g.value(Val(g, "relu1.out")).live == Shape{4, 3});  // units 5, 6, 7 of 11
  CHECK(g.value(Val(g, "fc2.out")).live == Shape{4, 3});    // units 2, 5, 8 of 9
  CHECK(g.value(Val(g, "fc1.w.grad")).live == Shape{11, 7});
  // fc2 scales by site 1's nominal 1 / (1 - 0.5), fc3 by site 2's pattern: 1 kept of every 3.
  CHECK(std::get<ops::MatMulAttr>(g.node(NodeNamed(g, "fc2.matmul")).attr).alpha == 2.0f);
  CHECK(std::get<ops::MatMulAttr>(g.node(NodeNamed(g, "fc3.matmul")).attr).alpha == 3.0f);
}

TEST_CASE("Row dropout shrinks only the consumer when another layer reads the producer's values", "[lower][ard]") {
  // drop1 is not in place and fc_side reads its input blob afterwards: fc1 must stay dense.
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {6}}, {}, {"data"}))
      .Add(MakeLayer("label", LabelSpec{}, {}, {"label"}))
      .Add(MakeLayer("fc1", FullyConnectedSpec{.units = 10}, {"data"}, {"h"}))
      .Add(MakeLayer("drop1", Row(0.5), {"h"}, {"d"}))
      .Add(MakeLayer("fc2", FullyConnectedSpec{.units = 3}, {"d"}, {"y"}))
      .Add(MakeLayer("fc_side", FullyConnectedSpec{.units = 3}, {"h"}, {"y2"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"y", "label"}, {}))
      .Add(MakeLayer("loss2", SoftmaxCrossEntropySpec{}, {"y2", "label"}, {}));
  const LoweredNet lowered = LowerOk(net);
  const Graph& g = lowered.graph;
  REQUIRE(Verify(g).ok());
  CHECK(g.node(NodeNamed(g, "fc1.matmul")).sites.empty());
  CHECK(g.node(NodeNamed(g, "fc1.bias")).sites.empty());
  CHECK(PackingOf(g, "fc1.out").empty());
  CheckDimUse(UseOf(g, "fc2.matmul", "drop1.site"), SiteTarget::kMatMulK, kFull, kFull, kFull, true);
  CHECK(g.node(NodeNamed(g, "fc_side.matmul")).sites.empty());

  // The same network without the side reader: fc1 shrinks.
  Network alone;
  for (const Layer& layer : net.layers())
    if (layer.name != "fc_side" && layer.name != "loss2") alone.Add(layer);
  const LoweredNet shrunk = LowerOk(alone);
  CHECK(shrunk.graph.node(NodeNamed(shrunk.graph, "fc1.matmul")).sites.size() == 1);
  CheckDimUse(UseOf(shrunk.graph, "fc2.matmul", "drop1.site"), SiteTarget::kMatMulK, kPacked, kFull, kFull, true);
}

TEST_CASE("Row dropout on an input or a non-FC producer drops only the consumer's K", "[lower][ard]") {
  graph::Sequential mlp({12});
  mlp.Add(RowDropout(0.3))
      .Add(FullyConnected(8))
      .Add(Tanh())
      .Add(FullyConnected(6))
      .Add(RowDropout(0.5))
      .Add(FullyConnected(3));
  const LoweredNet net = LowerOk(*mlp.Build());
  const Graph& g = net.graph;
  REQUIRE(Verify(g).ok());
  CHECK(g.site(SiteNamed(g, "drop1.site")).width == 12);
  CheckDimUse(UseOf(g, "fc1.matmul", "drop1.site"), SiteTarget::kMatMulK, kFull, kFull, kFull, true);
  CHECK(PackingOf(g, "data.out").empty());
  // fc2 -> drop2 with no activation between: fc2 itself shrinks.
  CheckDimUse(UseOf(g, "fc2.matmul", "drop2.site"), SiteTarget::kMatMulN, kFull, kFull, kPacked, false);
  CheckDimUse(UseOf(g, "fc3.matmul", "drop2.site"), SiteTarget::kMatMulK, kPacked, kFull, kFull, true);
  // tanh sits between fc1 and fc2 but no dropout: fc1 stays dense along N.
  CHECK(g.node(NodeNamed(g, "fc1.matmul")).sites.size() == 1);
}

TEST_CASE("Tile dropout gives the next FC a scaling tile use over its weight", "[lower][ard]") {
  graph::Sequential mlp({10});
  mlp.Add(FullyConnected(9)).Add(ReLU()).Add(TileDropout(0.5, 4, 3)).Add(FullyConnected(5));
  LoweredNet net = LowerOk(*mlp.Build());
  Graph& g = net.graph;
  REQUIRE(Verify(g).ok());
  const DropoutSite& s = g.site(SiteNamed(g, "drop1.site"));
  CHECK(s.kind == SiteKind::kTile);
  CHECK(s.tile_rows == 4);
  CHECK(s.tile_cols == 3);
  CHECK(s.rate == 0.5);
  const SiteUse& use = UseOf(g, "fc2.matmul", "drop1.site");
  CHECK(use.target == SiteTarget::kMatMulTile);
  CHECK(use.tile_rows == ops::Dim::kN);
  CHECK(use.tile_cols == ops::Dim::kK);
  CHECK(use.scale);
  // The producer is untouched; the output blob is the input value.
  CHECK(g.node(NodeNamed(g, "fc1.matmul")).sites.empty());
  CHECK(net.blobs.at("drop1") == Val(g, "relu1.out"));

  REQUIRE(AppendBackward(g, {net.losses.front().node}, net.custom_gradients).ok());
  g.SetSitePattern(s.id, ops::TilePattern{4, 3, 2, 1});
  REQUIRE(ResolveSiteUses(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());
  REQUIRE(Verify(g).ok());
  const auto& attr = std::get<ops::MatMulAttr>(g.node(NodeNamed(g, "fc2.matmul")).attr);
  REQUIRE(attr.tile);
  CHECK(attr.tile->pattern == ops::TilePattern{4, 3, 2, 1});
  CHECK(attr.alpha == 2.0f);

  // A row site after a tiled FC cannot give it an N use too (N carries the tiles): only the
  // consumer shrinks.
  graph::Sequential both({10});
  both.Add(TileDropout(0.5, 4, 3)).Add(FullyConnected(9)).Add(ReLU()).Add(RowDropout(0.5)).Add(FullyConnected(5));
  const LoweredNet mixed = LowerOk(*both.Build());
  REQUIRE(Verify(mixed.graph).ok());
  CHECK(mixed.graph.node(NodeNamed(mixed.graph, "fc1.matmul")).sites.size() == 1);
  CheckDimUse(UseOf(mixed.graph, "fc2.matmul", "drop2.site"), SiteTarget::kMatMulK, kFull, kFull, kFull, true);
}

TEST_CASE("Row dropout on an LSTM input drops K of its input projection, forward and custom backward", "[lower][ard]") {
  Network net;
  net.Add(MakeLayer("tokens", InputSpec{.shape = {3}, .dtype = DType::kInt32}, {}, {"tok"}))
      .Add(MakeLayer("label", LabelSpec{}, {}, {"y"}))
      .Add(MakeLayer("emb", EmbeddingSpec{.vocab = 6, .dim = 5}, {"tok"}, {"x"}))
      .Add(MakeLayer("drop", Row(0.5), {"x"}, {"x"}))
      .Add(MakeLayer("lstm", LstmSpec{.units = 4, .layers = 2}, {"x"}, {"h"}))
      .Add(MakeLayer("fc", FullyConnectedSpec{.units = 3}, {"h"}, {"logits"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"logits", "y"}, {}));
  LoweredNet lowered = LowerOk(net, 2);
  Graph& g = lowered.graph;
  REQUIRE(Verify(g).ok());
  CHECK(g.site(SiteNamed(g, "drop.site")).width == 5);
  CheckDimUse(UseOf(g, "lstm.l0.xproj", "drop.site"), SiteTarget::kMatMulK, kFull, kFull, kFull, true);
  CHECK(g.node(NodeNamed(g, "lstm.l1.xproj")).sites.empty());  // the layers inside one Lstm are not dropped
  CHECK(PackingOf(g, "emb.out").empty());

  StatusOr<Gradients> grads = AppendBackward(g, {lowered.losses.front().node}, lowered.custom_gradients);
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  // dW = dxproj^T in and din = dxproj W: the forward K is their N; both start from a zero base.
  for (const char* node : {"lstm.l0.xproj.dw", "lstm.l0.xproj.din"}) {
    INFO(node);
    CheckDimUse(UseOf(g, node, "drop.site"), SiteTarget::kMatMulN, kFull, kFull, kFull, true);
    const Node& n = g.node(NodeNamed(g, node));
    REQUIRE(n.has_base());
    CHECK(g.node(g.value(n.inputs.back()).producer).kind == OpKind::kFill);
    CHECK(std::get<ops::MatMulAttr>(n.attr).beta == 1.0f);
  }
  CHECK(g.node(NodeNamed(g, "lstm.l1.xproj.dw")).sites.empty());
  g.SetSitePattern(SiteNamed(g, "drop.site"), ops::RowPattern::Strided(2, 0));
  REQUIRE(ResolveSiteUses(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());
  const Status verified = Verify(g);
  INFO(verified.ToString());
  CHECK(verified.ok());
}

TEST_CASE("Evaluation graphs of row and tile dropout have no sites and no uses", "[lower][ard]") {
  const LoweredNet net = LowerOk(RowMlp(), 4, /*training=*/false);
  CHECK(net.graph.num_sites() == 0);
  for (const Node& n : net.graph.nodes()) CHECK(n.sites.empty());
  for (const Value& v : net.graph.values()) CHECK(v.packed.empty());
  CHECK(net.blobs.at("drop1") == net.blobs.at("fc1"));
}

TEST_CASE("Sequential dropout factories make Bernoulli, row and tile specs", "[lower][ard]") {
  const DropoutSpec bernoulli = Dropout(0.4);
  CHECK(bernoulli.kind == DropoutSpec::Kind::kBernoulli);
  CHECK(bernoulli.rate == 0.4);
  const DropoutSpec row = RowDropout(0.3);
  CHECK(row.kind == DropoutSpec::Kind::kRow);
  CHECK(row.rate == 0.3);
  CHECK(row.scaling == ScaleMode::kPattern);
  CHECK(row.family == PatternFamily::kSearched);
  CHECK(row.max_period == 16);
  const DropoutSpec tile = TileDropout(0.7, 16, 8);
  CHECK(tile.kind == DropoutSpec::Kind::kTile);
  CHECK(tile.tile_rows == 16);
  CHECK(tile.tile_cols == 8);
  CHECK(TileDropout(0.5).tile_rows == 32);
  CHECK(TileDropout(0.5).tile_cols == 32);
  CHECK(std::string(DropoutKindName(DropoutSpec::Kind::kTile)) == "tile");

  // Dropout(rate) still lowers to one Bernoulli Dropout node.
  graph::Sequential mlp({4});
  mlp.Add(FullyConnected(6)).Add(ReLU()).Add(Dropout(0.5)).Add(FullyConnected(2));
  const LoweredNet net = LowerOk(*mlp.Build());
  CHECK(net.graph.site(SiteNamed(net.graph, "drop1.site")).kind == SiteKind::kBernoulli);
  CHECK(net.graph.node(NodeNamed(net.graph, "drop1.dropout")).kind == OpKind::kDropout);
}

TEST_CASE("Unit shuffling is scheduled for row sites whose producer shrinks", "[lower][ard]") {
  DropoutSpec shuffled = Row(0.5);
  shuffled.shuffle_every_epochs = 3;
  const LoweredNet net = LowerOk(RowMlp(shuffled));
  REQUIRE(net.unit_shuffles.size() == 1);
  CHECK(net.unit_shuffles[0].site == SiteNamed(net.graph, "drop1.site"));
  CHECK(net.unit_shuffles[0].every_epochs == 3);
  CHECK(LowerOk(RowMlp(shuffled), 4, /*training=*/false).unit_shuffles.empty());

  // On the input layer there is no FC whose units could be permuted.
  graph::Sequential mlp({5});
  mlp.Add(shuffled).Add(FullyConnected(3));
  ExpectError(*mlp.Build(), {"layer 'drop1' (Dropout)", "unit shuffling", "'data'"});
}

TEST_CASE("Lower rejects other readers of dropped blobs and bad row and tile settings", "[lower][ard]") {
  SECTION("an activation reads a row-dropped blob") {
    graph::Sequential mlp({5});
    mlp.Add(FullyConnected(6)).Add(RowDropout(0.5)).Add(ReLU()).Add(FullyConnected(3));
    ExpectError(*mlp.Build(), {"layer 'relu1' (Activation)", "'drop1'", "row dropout", "FullyConnected and Lstm"});
  }
  SECTION("the loss reads a tile-dropped blob") {
    graph::Sequential mlp({5});
    mlp.Add(FullyConnected(6)).Add(TileDropout(0.5));
    ExpectError(*mlp.Build(), {"layer 'loss' (SoftmaxCrossEntropy)", "tile dropout", "only FullyConnected layers"});
  }
  SECTION("an LSTM reads a tile-dropped blob") {
    graph::Sequential seq({3, 4});
    seq.Add(TileDropout(0.5)).Add(Lstm(5)).Add(FullyConnected(2));
    ExpectError(*seq.Build(), {"layer 'lstm1' (Lstm)", "'drop1'", "tile dropout"});
  }
  SECTION("an FC reads a row-dropped sequence") {
    graph::Sequential seq({3, 4});
    seq.Add(RowDropout(0.5)).Add(FullyConnected(2));
    ExpectError(*seq.Build(), {"layer 'fc1' (FullyConnected)", "[4, 3, 4]", "'drop1'", "[B, 4]"});
  }
  SECTION("settings") {
    DropoutSpec spec = Row(1.0);
    ExpectError(RowMlp(spec), {"layer 'drop1' (Dropout)", "rate must be in [0, 1), got 1"});
    spec = Row(0.5);
    spec.max_period = 0;
    ExpectError(RowMlp(spec), {"layer 'drop1' (Dropout)", "max_period must be >= 1, got 0"});
    spec = Row(0.5);
    spec.shuffle_every_epochs = -1;
    ExpectError(RowMlp(spec), {"shuffle_every_epochs must be >= 0, got -1"});
    spec = TileDropout(0.5, 0, 4);
    ExpectError(RowMlp(spec), {"layer 'drop1' (Dropout)", "tile shape must be positive, got 0x4"});
    spec = TileDropout(0.5);
    spec.generalized = true;
    ExpectError(RowMlp(spec), {"generalized", "not tile"});
    spec = TileDropout(0.5);
    spec.shuffle_every_epochs = 2;
    ExpectError(RowMlp(spec), {"unit shuffling is for row dropout"});
  }
}

}  // namespace
}  // namespace sieve::graph
