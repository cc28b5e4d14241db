// Structural tests of Lower: each layer kind emits the expected nodes, values, parameters and
// heads, the result verifies, and every error names the layer, its kind and the shapes involved.
// The numbers the lowered graphs compute are checked in lower_numeric_test.cc.
#include "graph/lower.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <vector>

#include "graph/lower/lower_context.h"
#include "graph/verify.h"
#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::NodeNamed;
using testing::Val;

Layer MakeLayer(std::string name, LayerSpec spec, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  return Layer{
      .name = std::move(name), .spec = std::move(spec), .inputs = std::move(inputs), .outputs = std::move(outputs)};
}

// "name:Kind" of every node, in order.
std::vector<std::string> NodeList(const Graph& g) {
  std::vector<std::string> nodes;
  for (const Node& n : g.nodes()) nodes.push_back(n.name + ":" + OpKindName(n.kind));
  return nodes;
}

LoweredNet LowerOk(const Network& net, int64_t batch, bool training = true) {
  StatusOr<LoweredNet> lowered = Lower(net, LowerOptions{.batch = batch, .training = training});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  REQUIRE(Verify(lowered->graph).ok());
  return std::move(lowered).value();
}

void ExpectError(const Network& net, std::initializer_list<const char*> fragments, int64_t batch = 4,
                 StatusCode code = StatusCode::kInvalidArgument) {
  const StatusOr<LoweredNet> lowered = Lower(net, LowerOptions{.batch = batch});
  INFO(lowered.status().ToString());
  REQUIRE_FALSE(lowered.ok());
  CHECK(lowered.status().code() == code);
  for (const char* fragment : fragments) CHECK_THAT(lowered.status().message(), Catch::Contains(fragment));
}

// data [B, 1, 4, 4] -> fc1 (8) -> relu1 -> drop1 -> fc2 (3) -> loss, accuracy.
Network MakeMlpNet() {
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {1, 4, 4}}, {}, {"data"}))
      .Add(MakeLayer("label", LabelSpec{}, {}, {"label"}))
      .Add(MakeLayer("fc1", FullyConnectedSpec{.units = 8}, {"data"}, {"fc1"}))
      .Add(MakeLayer("relu1", ActivationSpec{}, {"fc1"}, {"relu1"}))
      .Add(MakeLayer("drop1", DropoutSpec{.rate = 0.25}, {"relu1"}, {"drop1"}))
      .Add(MakeLayer("fc2", FullyConnectedSpec{.units = 3, .bias = false}, {"drop1"}, {"fc2"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"fc2", "label"}, {"prob"}))
      .Add(MakeLayer("accuracy", AccuracySpec{}, {"fc2", "label"}, {}));
  return net;
}

TEST_CASE("Lower turns an MLP into MatMul, BiasAdd, Activation, Dropout and SoftmaxXent nodes", "[lower]") {
  const LoweredNet net = LowerOk(MakeMlpNet(), 5);
  const Graph& g = net.graph;
  CHECK(NodeList(g) == std::vector<std::string>{"fc1.matmul:MatMul", "fc1.bias:BiasAdd", "relu1.act:Activation",
                                                "drop1.dropout:Dropout", "fc2.matmul:MatMul",
                                                "loss.softmax:SoftmaxXent"});

  // Leaves.
  REQUIRE(net.inputs.size() == 1);
  REQUIRE(net.labels.size() == 1);
  CHECK(g.value(net.inputs[0]).name == "data.out");
  CHECK(g.value(net.inputs[0]).planned == Shape{5, 1, 4, 4});
  CHECK(g.value(net.labels[0]).dtype == DType::kInt32);
  CHECK(g.value(net.labels[0]).planned == Shape{5});

  // Parameters in layer order, each the kParam leaf of its name.
  REQUIRE(net.params.size() == 3);
  CHECK(net.params[0].name == "fc1.w");
  CHECK(net.params[0].shape == Shape{8, 16});
  CHECK(net.params[0].spec.init.type == runtime::InitType::kXavier);
  CHECK(net.params[1].name == "fc1.b");
  CHECK(net.params[1].shape == Shape{8});
  CHECK(net.params[2].name == "fc2.w");
  CHECK(net.params[2].shape == Shape{3, 8});
  for (const ParamDecl& p : net.params) {
    CHECK(g.value(p.value).name == p.name);
    CHECK(g.value(p.value).role == ValueRole::kParam);
    CHECK(g.value(p.value).planned == p.shape);
  }

  // fc1 reads the image batch flattened by a reading view; W is the MatMul's transposed B.
  const Node& fc1 = g.node(NodeNamed(g, "fc1.matmul"));
  const Value& flat = g.value(fc1.inputs[0]);
  CHECK(flat.name == "fc1.in");
  CHECK(flat.planned == Shape{5, 16});
  REQUIRE(flat.view);
  CHECK(flat.view->base == net.inputs[0]);
  CHECK(flat.role == ValueRole::kInput);
  CHECK(std::get<ops::MatMulAttr>(fc1.attr).trans_b);
  CHECK(g.value(fc1.outputs[0]).name == "fc1.matmul.out");
  CHECK(g.node(NodeNamed(g, "fc1.bias")).inputs == std::vector<ValueId>{Val(g, "fc1.matmul.out"), Val(g, "fc1.b")});
  CHECK(g.value(net.blobs.at("fc1")).name == "fc1.out");
  CHECK(g.value(net.blobs.at("fc2")).name == "fc2.out");  // no bias: the MatMul writes the output

  // Dropout: a Bernoulli site per sample, named by the node's attribute.
  REQUIRE(g.num_sites() == 1);
  const DropoutSite& site = g.sites()[0];
  CHECK(site.name == "drop1.site");
  CHECK(site.kind == SiteKind::kBernoulli);
  CHECK(site.width == 8);
  CHECK(site.rate == 0.25);
  const auto& drop = std::get<DropoutAttr>(g.node(NodeNamed(g, "drop1.dropout")).attr);
  CHECK(drop.site == site.id);
  CHECK(drop.rate == 0.25f);

  // The loss is a head; the accuracy reads the same logits and labels, so it shares the node.
  REQUIRE(net.losses.size() == 1);
  CHECK(net.losses[0].layer == "loss");
  CHECK(net.losses[0].node == NodeNamed(g, "loss.softmax"));
  CHECK(std::get<SoftmaxXentAttr>(g.node(net.losses[0].node).attr).loss_weight == 1.0f);
  REQUIRE(net.metrics.size() == 1);
  CHECK(net.metrics[0].layer == "accuracy");
  CHECK(net.metrics[0].node == net.losses[0].node);
  CHECK(net.blobs.at("prob") == Val(g, "loss.prob"));
  CHECK(net.custom_gradients.empty());
  CHECK(net.state_carry.empty());
}

TEST_CASE("Lower for evaluation drops the dropout nodes and keeps the losses", "[lower]") {
  const LoweredNet net = LowerOk(MakeMlpNet(), 5, /*training=*/false);
  const Graph& g = net.graph;
  CHECK(NodeList(g) == std::vector<std::string>{"fc1.matmul:MatMul", "fc1.bias:BiasAdd", "relu1.act:Activation",
                                                "fc2.matmul:MatMul", "loss.softmax:SoftmaxXent"});
  CHECK(g.num_sites() == 0);
  CHECK(net.blobs.at("drop1") == net.blobs.at("relu1"));
  CHECK(g.node(NodeNamed(g, "fc2.matmul")).inputs[0] == Val(g, "relu1.out"));
  CHECK(net.losses.size() == 1);
  CHECK(net.metrics.size() == 1);
}

TEST_CASE("Lower turns a convolution into one implicit-GEMM MatMul and ChannelBiasAdd", "[lower]") {
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {2, 7, 7}}, {}, {"data"}))
      .Add(MakeLayer("conv1", Conv2dSpec{.filters = 3, .kernel = 3, .stride = 2, .pad = 1}, {"data"}, {"conv1"}))
      .Add(MakeLayer("pool1", PoolSpec{.kernel = 2, .stride = 2, .ceil_mode = true}, {"conv1"}, {"pool1"}))
      .Add(MakeLayer("conv2", Conv2dSpec{.filters = 5, .kernel = 1, .bias = false}, {"pool1"}, {"conv2"}))
      .Add(MakeLayer("pool2", PoolSpec{.kind = PoolSpec::Kind::kAvg, .kernel = 2, .stride = 1}, {"conv2"}, {"pool2"}))
      .Add(MakeLayer("flat", FlattenSpec{}, {"pool2"}, {"flat"}));
  const LoweredNet lowered = LowerOk(net, 4);
  const Graph& g = lowered.graph;
  CHECK(NodeList(g) == std::vector<std::string>{"conv1.matmul:MatMul", "conv1.bias:ChannelBiasAdd",
                                                "pool1.pool:MaxPool", "conv2.matmul:MatMul", "pool2.pool:AvgPool"});
  // conv1: 7x7, k3 s2 p1 -> 4x4, one GEMM per image writing NCHW directly; no column matrix value.
  const Node& matmul = g.node(NodeNamed(g, "conv1.matmul"));
  CHECK(matmul.inputs == std::vector<ValueId>{Val(g, "conv1.w"), lowered.blobs.at("data")});
  const auto& attr = std::get<ops::MatMulAttr>(matmul.attr);
  REQUIRE(attr.conv.has_value());
  CHECK(attr.conv->role == ops::ImplicitConv::Role::kForward);
  CHECK(attr.conv->geometry.channels == 2);
  CHECK(attr.conv->geometry.out_h() == 4);
  CHECK(attr.conv->geometry.stride_h == 2);
  CHECK(attr.conv->geometry.pad_w == 1);
  CHECK(attr.is_dense());
  CHECK((!attr.trans_a && !attr.trans_b && attr.alpha == 1.0f && attr.beta == 0.0f));
  const Value& out = g.value(Val(g, "conv1.matmul.out"));
  CHECK(out.planned == Shape{4, 3, 4, 4});
  CHECK_FALSE(out.view);
  CHECK(!g.FindValue("conv1.col").ok());
  CHECK(g.value(lowered.blobs.at("conv1")).name == "conv1.out");
  // pool1: 4x4, k2 s2, ceil -> 2x2, with an int32 argmax.
  const Node& pool = g.node(NodeNamed(g, "pool1.pool"));
  CHECK(g.value(pool.outputs[0]).planned == Shape{4, 3, 2, 2});
  CHECK(g.value(pool.outputs[1]).dtype == DType::kInt32);
  CHECK(std::get<PoolAttr>(pool.attr).geometry.ceil_mode);
  // conv2 has no bias: its output is the MatMul's.
  CHECK(g.value(lowered.blobs.at("conv2")).name == "conv2.out");
  CHECK(g.node(NodeNamed(g, "conv2.matmul")).outputs == std::vector<ValueId>{lowered.blobs.at("conv2")});
  CHECK(g.value(lowered.blobs.at("conv2")).planned == Shape{4, 5, 2, 2});
  // pool2: 2x2, k2 s1 -> 1x1; flat is a view [4, 5].
  CHECK(g.value(lowered.blobs.at("pool2")).planned == Shape{4, 5, 1, 1});
  CHECK(g.value(lowered.blobs.at("flat")).planned == Shape{4, 5});
  CHECK(g.value(lowered.blobs.at("flat")).view->base == lowered.blobs.at("pool2"));
  // Conv weights are the GEMM's [Cout, Cin*k*k], msra by default.
  REQUIRE(lowered.params.size() == 3);
  CHECK(lowered.params[0].name == "conv1.w");
  CHECK(lowered.params[0].shape == Shape{3, 18});
  CHECK(lowered.params[0].spec.init.type == runtime::InitType::kMsra);
  CHECK(lowered.params[1].name == "conv1.b");
  CHECK(lowered.params[2].name == "conv2.w");
  CHECK(lowered.params[2].shape == Shape{5, 3});
}

TEST_CASE("Lower turns an embedding into IndexRows over flattened indices", "[lower]") {
  Network net;
  net.Add(MakeLayer("tokens", InputSpec{.shape = {6}, .dtype = DType::kInt32}, {}, {"tokens"}))
      .Add(MakeLayer("next", LabelSpec{.shape = {6}}, {}, {"next"}))
      .Add(MakeLayer("embed", EmbeddingSpec{.vocab = 10, .dim = 4}, {"tokens"}, {"embed"}))
      .Add(MakeLayer("proj", FullyConnectedSpec{.units = 60}, {"embed"}, {"proj"}))
      .Add(MakeLayer("shaped", ReshapeSpec{.shape = {6, -1}}, {"proj"}, {"shaped"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{.ignore_label = 0}, {"shaped", "next"}, {}))
      .Add(MakeLayer("accuracy", AccuracySpec{}, {"shaped", "next"}, {}));
  const LoweredNet lowered = LowerOk(net, 3);
  const Graph& g = lowered.graph;
  CHECK(NodeList(g) == std::vector<std::string>{"embed.lookup:IndexRows", "proj.matmul:MatMul", "proj.bias:BiasAdd",
                                                "loss.softmax:SoftmaxXent", "accuracy.softmax:SoftmaxXent"});
  const Node& lookup = g.node(NodeNamed(g, "embed.lookup"));
  CHECK(lookup.inputs[0] == Val(g, "embed.w"));
  const Value& ids = g.value(lookup.inputs[1]);
  CHECK(ids.name == "embed.ids");
  CHECK(ids.planned == Shape{18});
  CHECK(ids.view->base == lowered.inputs[0]);
  CHECK(g.value(lookup.outputs[0]).planned == Shape{18, 4});
  const Value& embedded = g.value(lowered.blobs.at("embed"));
  CHECK(embedded.name == "embed.out");
  CHECK(embedded.planned == Shape{3, 6, 4});
  CHECK(embedded.view->base == lookup.outputs[0]);
  // proj flattens [3, 6, 4] to [3, 24]; the reshape infers 10 from -1; the loss reads 18 rows.
  CHECK(g.value(Val(g, "proj.in")).planned == Shape{3, 24});
  CHECK(g.value(lowered.blobs.at("shaped")).planned == Shape{3, 6, 10});
  CHECK(g.value(g.node(lowered.losses[0].node).inputs[0]).planned == Shape{18, 10});
  CHECK(lowered.params[0].name == "embed.w");
  CHECK(lowered.params[0].spec.init.type == runtime::InitType::kUniform);
}

TEST_CASE("Lower views per-step logits and labels as rows and keeps a separate accuracy node", "[lower]") {
  Network net;
  net.Add(MakeLayer("x", InputSpec{.shape = {5, 7}}, {}, {"x"}))
      .Add(MakeLayer("y", LabelSpec{.shape = {5}}, {}, {"y"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{.loss_weight = 0.5f, .ignore_label = -1}, {"x", "y"}, {}))
      .Add(MakeLayer("accuracy", AccuracySpec{}, {"x", "y"}, {}));
  const LoweredNet lowered = LowerOk(net, 2);
  const Graph& g = lowered.graph;
  const Node& loss = g.node(lowered.losses[0].node);
  CHECK(g.value(loss.inputs[0]).name == "loss.logits");
  CHECK(g.value(loss.inputs[0]).planned == Shape{10, 7});
  CHECK(loss.inputs[1] == lowered.labels[0]);  // [2, 5] int32, contiguous: read as 10 labels
  CHECK(g.value(loss.outputs[0]).planned == Shape{10, 7});
  const auto& attr = std::get<SoftmaxXentAttr>(loss.attr);
  CHECK(attr.loss_weight == 0.5f);
  CHECK(attr.ignore_label == -1);
  // The loss ignores a label, so its statistics are not the accuracy's: a node of its own, weight 0.
  REQUIRE(lowered.metrics.size() == 1);
  const Node& metric = g.node(lowered.metrics[0].node);
  CHECK(metric.name == "accuracy.softmax");
  CHECK(std::get<SoftmaxXentAttr>(metric.attr).loss_weight == 0.0f);
  CHECK_FALSE(std::get<SoftmaxXentAttr>(metric.attr).ignore_label);
}

TEST_CASE("Lower lets a layer rewrite the blob it reads, in place", "[lower]") {
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {3}}, {}, {"data"}))
      .Add(MakeLayer("fc", FullyConnectedSpec{.units = 2}, {"data"}, {"h"}))
      .Add(MakeLayer("relu", ActivationSpec{.kind = ops::Activation::kTanh}, {"h"}, {"h"}))
      .Add(MakeLayer("flat", FlattenSpec{}, {"h"}, {"flat"}));
  const LoweredNet lowered = LowerOk(net, 2);
  const Graph& g = lowered.graph;
  CHECK(lowered.blobs.at("h") == Val(g, "relu.out"));
  CHECK(g.node(NodeNamed(g, "relu.act")).inputs[0] == Val(g, "fc.out"));
  CHECK(std::get<ActivationAttr>(g.node(NodeNamed(g, "relu.act")).attr).kind == ops::Activation::kTanh);
  CHECK(lowered.blobs.at("flat") == lowered.blobs.at("h"));  // already [B, N]: nothing to view
}

TEST_CASE("LowerContext copies a strided value before viewing it with another shape", "[lower]") {
  LoweredNet net;
  LowerContext ctx(net, LowerOptions{.batch = 2});
  const Layer layer = MakeLayer("head", FlattenSpec{}, {}, {});
  Graph& g = ctx.graph();
  const ValueId seq = g.AddValue("seq", ValueRole::kInput, {2, 3, 4});
  const ValueId last = g.AddView("seq.last", ValueRole::kInput, {2, 4}, seq, 8, {12, 1});
  const ValueId whole = g.AddView("seq.whole", ValueRole::kInput, {2, 3, 4}, seq, 0, {12, 4, 1});
  CHECK_FALSE(ctx.IsContiguous(last));
  CHECK(ctx.IsContiguous(whole));
  CHECK(ctx.IsContiguous(seq));
  CHECK(ctx.Contiguous(layer, whole, "dense") == whole);

  const ValueId flat = ctx.Reshape(layer, last, {8}, "flat");
  const Value& v = g.value(flat);
  CHECK(v.name == "head.flat");
  REQUIRE(v.view);
  const Value& copy = g.value(v.view->base);
  CHECK(copy.name == "head.flat.dense");
  CHECK(copy.planned == Shape{2, 4});
  REQUIRE(g.num_nodes() == 1);
  CHECK(g.nodes()[0].kind == OpKind::kCopy);
  CHECK(g.nodes()[0].name == "head.flat.dense");
  CHECK(g.nodes()[0].inputs == std::vector<ValueId>{last});
  CHECK(Verify(g).ok());
}

TEST_CASE("Lower names a missing input blob and the nearest existing one", "[lower]") {
  Network net = MakeMlpNet();
  Network broken;
  for (Layer layer : net.layers()) {
    if (layer.name == "fc2") layer.inputs = {"dropl"};
    broken.Add(layer);
  }
  ExpectError(broken, {"layer 'fc2' (FullyConnected)", "input blob 'dropl'", "nearest: 'drop1'"}, 4,
              StatusCode::kNotFound);
}

TEST_CASE("Lower rejects shapes a layer cannot take, naming both shapes", "[lower]") {
  SECTION("labels that do not match the logits") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {10}}, {}, {"x"}))
        .Add(MakeLayer("y", LabelSpec{.shape = {3}}, {}, {"y"}))
        .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"x", "y"}, {}));
    ExpectError(net, {"layer 'loss' (SoftmaxCrossEntropy)", "input 'y' has shape [4, 3] (int32)", "[4]",
                      "logits 'x' have shape [4, 10]"});
  }
  SECTION("a convolution over a flat input") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {784}}, {}, {"x"}))
        .Add(MakeLayer("conv", Conv2dSpec{.filters = 4}, {"x"}, {"conv"}));
    ExpectError(net, {"layer 'conv' (Conv2d)", "input 'x' has shape [4, 784]", "NCHW"});
  }
  SECTION("an embedding of float input") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {5}}, {}, {"x"}))
        .Add(MakeLayer("embed", EmbeddingSpec{.vocab = 3, .dim = 2}, {"x"}, {"e"}));
    ExpectError(net, {"layer 'embed' (Embedding)", "input 'x' has shape [4, 5]", "int32"});
  }
  SECTION("a reshape that does not fit") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {2, 6}}, {}, {"x"}))
        .Add(MakeLayer("r", ReshapeSpec{.shape = {5, -1}}, {"x"}, {"r"}));
    ExpectError(net, {"layer 'r' (Reshape)", "input 'x' has shape [4, 2, 6]", "12 elements per sample", "[5, -1]"});
  }
}

TEST_CASE("Lower rejects a bad convolution or pooling geometry", "[lower]") {
  SECTION("a kernel larger than the padded image") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {3, 5, 5}}, {}, {"x"}))
        .Add(MakeLayer("conv", Conv2dSpec{.filters = 4, .kernel = 7}, {"x"}, {"conv"}));
    ExpectError(net,
                {"layer 'conv' (Conv2d)", "input 'x' has shape [4, 3, 5, 5]", "bad convolution geometry", "kernel 7"});
  }
  SECTION("a zero stride") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {3, 5, 5}}, {}, {"x"}))
        .Add(MakeLayer("conv", Conv2dSpec{.filters = 4, .stride = 0}, {"x"}, {"conv"}));
    ExpectError(net, {"layer 'conv' (Conv2d)", "bad convolution geometry", "stride 0"});
  }
  SECTION("pooling padding as large as the window") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {3, 6, 6}}, {}, {"x"}))
        .Add(MakeLayer("pool", PoolSpec{.kernel = 2, .pad = 2}, {"x"}, {"pool"}));
    ExpectError(net, {"layer 'pool' (Pool)", "input 'x' has shape [4, 3, 6, 6]", "bad pooling geometry"});
  }
}

TEST_CASE("Lower rejects malformed networks and settings, naming the layer", "[lower]") {
  Network base;
  base.Add(MakeLayer("x", InputSpec{.shape = {4}}, {}, {"x"}));
  SECTION("batch") { ExpectError(base, {"batch size must be >= 1, got 0"}, 0); }
  SECTION("duplicate layer name") {
    Network net = base;
    net.Add(MakeLayer("x", FullyConnectedSpec{.units = 2}, {"x"}, {"y"}));
    ExpectError(net, {"layer 'x' (FullyConnected): an earlier layer has the same name"});
  }
  SECTION("unnamed layer") {
    Network net = base;
    net.Add(MakeLayer("", FlattenSpec{}, {"x"}, {"y"}));
    ExpectError(net, {"layer #1 (Flatten) has no name"});
  }
  SECTION("blob counts") {
    Network net = base;
    net.Add(MakeLayer("fc", FullyConnectedSpec{.units = 2}, {"x", "x"}, {"y"}));
    ExpectError(net, {"layer 'fc' (FullyConnected): reads 2 blobs, FullyConnected takes 1"});
  }
  SECTION("an accuracy with an output") {
    Network net = base;
    net.Add(MakeLayer("acc", AccuracySpec{}, {"x", "x"}, {"a"}));
    ExpectError(net, {"layer 'acc' (Accuracy): writes 1 blob, Accuracy writes 0"});
  }
  SECTION("a blob written twice") {
    Network net = base;
    net.Add(MakeLayer("fc", FullyConnectedSpec{.units = 2}, {"x"}, {"y"}))
        .Add(MakeLayer("fc2", FullyConnectedSpec{.units = 2}, {"x"}, {"y"}));
    ExpectError(net, {"layer 'fc2' (FullyConnected): output blob 'y' is already written by layer 'fc'"});
  }
  SECTION("units") {
    Network net = base;
    net.Add(MakeLayer("fc", FullyConnectedSpec{.units = 0}, {"x"}, {"y"}));
    ExpectError(net, {"layer 'fc' (FullyConnected): units must be >= 1, got 0"});
  }
  SECTION("dropout rate") {
    Network net = base;
    net.Add(MakeLayer("drop", DropoutSpec{.rate = 1.0}, {"x"}, {"y"}));
    ExpectError(net, {"layer 'drop' (Dropout): rate must be in [0, 1), got 1"});
  }
  SECTION("input shape") {
    Network net;
    net.Add(MakeLayer("x", InputSpec{.shape = {3, 0}}, {}, {"x"}));
    ExpectError(net, {"layer 'x' (Input): per-sample shape [3, 0] has an extent < 1"});
  }
}

}  // namespace
}  // namespace sieve::graph
