// Structural tests of AppendBackward: the backward of the shared MLP matches the hand-written one
// of tests/graph/test_graphs.h (site uses, layouts, scale flags, transposes); site uses and tiles
// map onto both backward GEMMs in all four transpose cases; names, roles and phases; summing of
// several contributions (beta/base rewrite, Add, parameters read twice); custom gradients; and
// each error AppendBackward reports. The numeric checks are in autodiff_numeric_test.cc.
#include "graph/autodiff.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graph/verify.h"
#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::MakeMlp;
using testing::NodeNamed;
using testing::Val;

constexpr ops::Layout kFull = ops::Layout::kFull;
constexpr ops::Layout kPacked = ops::Layout::kPacked;

SiteUse DimUse(SiteId site, SiteTarget target, ops::Layout a, ops::Layout b, ops::Layout c, bool scale) {
  SiteUse use;
  use.site = site;
  use.target = target;
  use.a = a;
  use.b = b;
  use.c = c;
  use.scale = scale;
  return use;
}

ops::MatMulAttr Trans(bool trans_a, bool trans_b) {
  ops::MatMulAttr attr;
  attr.trans_a = trans_a;
  attr.trans_b = trans_b;
  return attr;
}

Gradients Differentiate(Graph& g, const std::vector<NodeId>& losses, const std::vector<CustomGradient>& custom = {}) {
  StatusOr<Gradients> grads = AppendBackward(g, losses, custom);
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  return *grads;
}

void RequireVerified(const Graph& g) {
  const Status st = Verify(g);
  INFO(st.ToString());
  REQUIRE(st.ok());
}

std::string NameOf(const Graph& g, ValueId v) { return g.value(v).name; }

// The forward half of testing::MakeMlp, with the same names, ids and annotations.
Graph MlpForward(int64_t batch = 4, int64_t in = 6, int64_t hidden = 8, int64_t out = 3) {
  Graph g;
  const SiteId s = g.AddSite({.name = "h1.drop", .kind = SiteKind::kRow, .width = hidden, .rate = 0.5});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {batch, in});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {batch}, DType::kInt32);
  const ValueId w1 = g.AddParam("fc1.w", {hidden, in});
  const ValueId b1 = g.AddParam("fc1.b", {hidden});
  const ValueId w2 = g.AddParam("fc2.w", {out, hidden});
  const ValueId b2 = g.AddParam("fc2.b", {out});
  const ValueId mm1 = g.AddValue("fc1.mm", ValueRole::kActivation, {batch, hidden});
  const ValueId out1 = g.AddValue("fc1.out", ValueRole::kActivation, {batch, hidden});
  const ValueId h1 = g.AddValue("h1", ValueRole::kActivation, {batch, hidden});
  const ValueId mm2 = g.AddValue("fc2.mm", ValueRole::kActivation, {batch, out});
  const ValueId logits = g.AddValue("logits", ValueRole::kActivation, {batch, out});
  const ValueId prob = g.AddValue("prob", ValueRole::kActivation, {batch, out});
  for (ValueId v : {mm1, out1, h1}) g.PackValue(v, s, 1);
  SiteUse bias_use;
  bias_use.site = s;
  bias_use.target = SiteTarget::kBiasCols;
  g.AddNode(OpKind::kMatMul, "fc1.fwd", {x, w1}, {mm1}, Trans(false, true), Phase::kForward,
            {DimUse(s, SiteTarget::kMatMulN, kFull, kFull, kPacked, false)});
  g.AddNode(OpKind::kBiasAdd, "fc1.bias", {mm1, b1}, {out1}, BiasAttr{}, Phase::kForward, {bias_use});
  g.AddNode(OpKind::kActivation, "fc1.relu", {out1}, {h1}, ActivationAttr{ops::Activation::kReLU});
  g.AddNode(OpKind::kMatMul, "fc2.fwd", {h1, w2}, {mm2}, Trans(false, true), Phase::kForward,
            {DimUse(s, SiteTarget::kMatMulK, kPacked, kFull, kFull, true)});
  g.AddNode(OpKind::kBiasAdd, "fc2.bias", {mm2, b2}, {logits}, BiasAttr{});
  g.AddNode(OpKind::kSoftmaxXent, "loss", {logits, labels}, {prob}, SoftmaxXentAttr{});
  return g;
}

void CheckSameUses(const Node& got, const Node& want) {
  INFO(DescribeNode(got) << " vs the hand-written " << DescribeNode(want));
  REQUIRE(got.sites.size() == want.sites.size());
  for (size_t i = 0; i < got.sites.size(); ++i) {
    const SiteUse& a = got.sites[i];
    const SiteUse& b = want.sites[i];
    CHECK(a.site == b.site);
    CHECK(a.target == b.target);
    CHECK(a.group == b.group);
    CHECK(a.a == b.a);
    CHECK(a.b == b.b);
    CHECK(a.c == b.c);
    CHECK(a.scale == b.scale);
  }
}

TEST_CASE("AppendBackward builds the MLP backward that test_graphs writes by hand", "[graph][autodiff]") {
  Graph g = MlpForward();
  const int forward_nodes = g.num_nodes();
  const Gradients grads = Differentiate(g, {NodeNamed(g, "loss")});
  const Graph want = MakeMlp();

  // Each backward node against its hand-written counterpart: kind, transposes, the two GEMM
  // operands (by name) and the site uses with their layouts and scale flags.
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"loss.grad", "loss.grad"},      {"fc2.bias.grad", "fc2.bias.grad"}, {"fc2.fwd.grad_a", "fc2.dgrad"},
      {"fc2.fwd.grad_b", "fc2.wgrad"}, {"fc1.relu.grad", "fc1.relu.grad"}, {"fc1.bias.grad", "fc1.bias.grad"},
      {"fc1.fwd.grad_b", "fc1.wgrad"}};
  for (const auto& [mine, theirs] : pairs) {
    const Node& got = g.node(NodeNamed(g, mine));
    const Node& ref = want.node(NodeNamed(want, theirs));
    INFO(mine << " vs " << theirs);
    CHECK(got.phase == Phase::kBackward);
    CHECK(got.kind == ref.kind);
    CHECK(NameOf(g, got.outputs[0]) == NameOf(want, ref.outputs[0]));
    const int operands = GetOpInfo(got.kind).inputs;
    for (int i = 0; i < operands; ++i) CHECK(NameOf(g, got.inputs[i]) == NameOf(want, ref.inputs[i]));
    if (got.kind == OpKind::kMatMul) {
      CHECK(std::get<ops::MatMulAttr>(got.attr).trans_a == std::get<ops::MatMulAttr>(ref.attr).trans_a);
      CHECK(std::get<ops::MatMulAttr>(got.attr).trans_b == std::get<ops::MatMulAttr>(ref.attr).trans_b);
    }
    CheckSameUses(got, ref);
  }
  // fc1 has no input gradient (x is an input), so no fc1.fwd.grad_a.
  CHECK_FALSE(g.FindNode("fc1.fwd.grad_a").ok());

  // Dropped weights and biases get zero gradient (SPEC 2.8): every gradient a selection writes only
  // partly starts from a zero fill, where the hand-written graph has one only for fc2's weight.
  for (const char* node : {"fc2.fwd.grad_b", "fc1.fwd.grad_b", "fc1.bias.grad"}) {
    const Node& n = g.node(NodeNamed(g, node));
    INFO(node);
    REQUIRE(n.has_base());
    CHECK(g.node(g.value(n.inputs.back()).producer).kind == OpKind::kFill);
    CHECK(AttrBeta(n.attr) == 1.0f);
  }
  CHECK_FALSE(g.node(NodeNamed(g, "fc2.bias.grad")).has_base());
  CHECK_FALSE(g.node(NodeNamed(g, "fc2.fwd.grad_a")).has_base());

  // Gradients: every parameter in value order, with its kParamGrad "<param>.grad".
  REQUIRE(grads.params.size() == 4);
  const char* params[] = {"fc1.w", "fc1.b", "fc2.w", "fc2.b"};
  for (size_t i = 0; i < 4; ++i) {
    CHECK(NameOf(g, grads.params[i].first) == params[i]);
    CHECK(NameOf(g, grads.params[i].second) == std::string(params[i]) + ".grad");
    CHECK(g.value(grads.params[i].second).role == ValueRole::kParamGrad);
    CHECK(g.value(grads.params[i].second).planned == g.value(grads.params[i].first).planned);
  }
  for (int i = forward_nodes; i < g.num_nodes(); ++i) CHECK(g.node(NodeId{i}).phase == Phase::kBackward);

  // The result verifies before and after the site's pattern is resolved into it.
  RequireVerified(g);
  g.SetSitePattern(testing::SiteNamed(g, "h1.drop"), ops::RowPattern{1, 2, 1});
  REQUIRE(ResolveSiteUses(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());
  RequireVerified(g);
  CHECK(g.value(Val(g, "h1.grad")).live == Shape{4, 4});
  CHECK(g.value(Val(g, "fc1.w.grad")).live == Shape{8, 6});
}

// Which forward tensor each operand of a backward GEMM is: 'a', 'b' (the forward inputs) or 'c'
// (the output gradient); its output is the gradient of `out`.
struct GemmShape {
  char a, b, out;
  bool trans_a, trans_b;
  SiteTarget n_use, k_use;  // where the forward's N and K uses land
};

bool Spans(SiteTarget target, int operand) {  // operand 0 = A', 1 = B', 2 = C'
  switch (target) {
    case SiteTarget::kMatMulM:
      return operand != 1;
    case SiteTarget::kMatMulN:
      return operand != 0;
    default:
      return operand != 2;
  }
}

TEST_CASE("MatMul site uses map onto both backward GEMMs in all four transpose cases", "[graph][autodiff]") {
  constexpr int64_t M = 3, N = 4, K = 6;
  constexpr SiteTarget kM = SiteTarget::kMatMulM, kN = SiteTarget::kMatMulN, kK = SiteTarget::kMatMulK;
  struct Case {
    bool ta, tb;
    GemmShape grad_a, grad_b;
  };
  // Derived by hand from dop(A) = dC op(B)^T and dop(B) = op(A)^T dC, each written so that every
  // operand is read as it is stored.
  const Case cases[] = {
      {false, false, {'c', 'b', 'a', false, true, kK, kN}, {'a', 'c', 'b', true, false, kN, kM}},
      {false, true, {'c', 'b', 'a', false, false, kK, kN}, {'c', 'a', 'b', true, false, kM, kN}},
      {true, false, {'b', 'c', 'a', false, true, kK, kM}, {'a', 'c', 'b', false, false, kN, kM}},
      {true, true, {'b', 'c', 'a', true, true, kK, kM}, {'c', 'a', 'b', true, true, kM, kN}},
  };
  for (const Case& c : cases) {
    INFO("trans_a " << c.ta << ", trans_b " << c.tb);
    // C = op(A) op(B) with a row site on N (C and its gradient store the kept columns packed) and
    // one on K (A stores its kept K entries packed; the GEMM reading them scales).
    Graph g;
    const SiteId out_site = g.AddSite({.name = "n.drop", .kind = SiteKind::kRow, .width = N, .rate = 0.5});
    const SiteId in_site = g.AddSite({.name = "k.drop", .kind = SiteKind::kRow, .width = K, .rate = 0.5});
    const ValueId a = g.AddParam("a", c.ta ? Shape{K, M} : Shape{M, K});
    const ValueId b = g.AddParam("b", c.tb ? Shape{N, K} : Shape{K, N});
    const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {M}, DType::kInt32);
    const ValueId mm = g.AddValue("c", ValueRole::kActivation, {M, N});
    const ValueId prob = g.AddValue("prob", ValueRole::kActivation, {M, N});
    g.PackValue(mm, out_site, 1);
    g.PackValue(prob, out_site, 1);
    g.PackValue(a, in_site, c.ta ? 0 : 1);
    g.AddNode(OpKind::kMatMul, "mm", {a, b}, {mm}, Trans(c.ta, c.tb), Phase::kForward,
              {DimUse(out_site, kN, kFull, kFull, kPacked, false), DimUse(in_site, kK, kPacked, kFull, kFull, true)});
    const NodeId loss = g.AddNode(OpKind::kSoftmaxXent, "loss", {mm, labels}, {prob}, SoftmaxXentAttr{});
    Differentiate(g, {loss});

    auto tensor_of = [&](ValueId v) -> char {
      const std::string name = NameOf(g, v);
      if (name == "a") return 'a';
      if (name == "b") return 'b';
      if (name == "c.grad") return 'c';
      FAIL("unexpected GEMM operand " << name);
      return '?';
    };
    // The forward layout of each tensor (or its gradient) for each site; the entries of tensors
    // that do not span the site's dimension are never looked at.
    auto forward_layout = [&](char tensor, SiteId site) {
      if (site == out_site) return tensor == 'c' ? kPacked : kFull;
      return tensor == 'a' ? kPacked : kFull;
    };
    for (const auto& [name, want] : {std::pair{"mm.grad_a", c.grad_a}, std::pair{"mm.grad_b", c.grad_b}}) {
      INFO(name);
      const Node& n = g.node(NodeNamed(g, name));
      const auto& attr = std::get<ops::MatMulAttr>(n.attr);
      const char operands[3] = {tensor_of(n.inputs[0]), tensor_of(n.inputs[1]), want.out};
      CHECK(operands[0] == want.a);
      CHECK(operands[1] == want.b);
      CHECK(NameOf(g, n.outputs[0]) == std::string(1, want.out) + ".grad");
      CHECK(attr.trans_a == want.trans_a);
      CHECK(attr.trans_b == want.trans_b);
      REQUIRE(n.sites.size() == 2);
      for (const SiteUse& use : n.sites) {
        const bool is_out = use.site == out_site;
        CHECK(use.target == (is_out ? want.n_use : want.k_use));
        CHECK(use.scale == !is_out);
        const ops::Layout layouts[3] = {use.a, use.b, use.c};
        for (int i = 0; i < 3; ++i)
          if (Spans(use.target, i)) CHECK(layouts[i] == forward_layout(operands[i], use.site));
      }
      // dB is Full along the dimension N lands on, so the entries it drops come from a zero base;
      // dA is Packed along K and every entry of it is written.
      CHECK(n.has_base() == (want.out == 'b'));
    }
    RequireVerified(g);
    g.SetSitePattern(out_site, ops::RowPattern{1, 2, 0});
    g.SetSitePattern(in_site, ops::RowPattern{2, 3, 1});
    REQUIRE(ResolveSiteUses(g).ok());
    REQUIRE(ResolveLiveShapes(g).ok());
    RequireVerified(g);
    // The backward GEMMs scale like the forward: by the K site's 3/2, not by the N site's.
    CHECK(std::get<ops::MatMulAttr>(g.node(NodeNamed(g, "mm.grad_a")).attr).alpha == Approx(1.5));
    CHECK(std::get<ops::MatMulAttr>(g.node(NodeNamed(g, "mm.grad_b")).attr).alpha == Approx(1.5));
  }
}

TEST_CASE("A tile use on the weight of an FC maps onto both backward GEMMs", "[graph][autodiff]") {
  Graph g;
  const SiteId s = g.AddSite({.name = "w.tiles", .kind = SiteKind::kTile, .rate = 0.5, .tile_rows = 2, .tile_cols = 2});
  const ValueId x = g.AddParam("x", {4, 6});
  const ValueId w = g.AddParam("w", {8, 6});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
  const ValueId y = g.AddValue("y", ValueRole::kActivation, {4, 8});
  const ValueId prob = g.AddValue("prob", ValueRole::kActivation, {4, 8});
  SiteUse tile;
  tile.site = s;
  tile.target = SiteTarget::kMatMulTile;
  tile.tile_rows = ops::Dim::kN;
  tile.tile_cols = ops::Dim::kK;
  tile.scale = true;
  g.AddNode(OpKind::kMatMul, "fc", {x, w}, {y}, Trans(false, true), Phase::kForward, {tile});
  const NodeId loss = g.AddNode(OpKind::kSoftmaxXent, "loss", {y, labels}, {prob}, SoftmaxXentAttr{});
  Differentiate(g, {loss});
  // dX = dY W: N becomes K', K becomes N'; every entry of dX is written.
  const Node& dx = g.node(NodeNamed(g, "fc.grad_a"));
  REQUIRE(dx.sites.size() == 1);
  CHECK(dx.sites[0].tile_rows == ops::Dim::kK);
  CHECK(dx.sites[0].tile_cols == ops::Dim::kN);
  CHECK(dx.sites[0].scale);
  CHECK_FALSE(dx.has_base());
  // dW = dY^T X: N becomes M', K becomes N'; the tiles it drops are dW's, so they start from zero.
  const Node& dw = g.node(NodeNamed(g, "fc.grad_b"));
  REQUIRE(dw.sites.size() == 1);
  CHECK(dw.sites[0].tile_rows == ops::Dim::kM);
  CHECK(dw.sites[0].tile_cols == ops::Dim::kN);
  REQUIRE(dw.has_base());
  CHECK(g.node(g.value(dw.inputs.back()).producer).kind == OpKind::kFill);
  g.SetSitePattern(s, ops::TilePattern{2, 2, 2, 1});
  REQUIRE(ResolveSiteUses(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());
  RequireVerified(g);
}

// x [4, 6] -> h = tanh(x W1^T) [4, 5] read by two FCs whose outputs are added: logits = h W2^T +
// copy(h) W3^T. W2 is also read by a third FC on h (a parameter read twice).
struct SharedGraph {
  Graph g;
  NodeId loss{};
  SharedGraph() {
    const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 6});
    const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
    const ValueId w1 = g.AddParam("w1", {5, 6});
    const ValueId w2 = g.AddParam("w2", {3, 5});
    const ValueId w3 = g.AddParam("w3", {3, 5});
    g.AddParam("unused", {7});
    auto act = [&](const char* name, Shape shape) { return g.AddValue(name, ValueRole::kActivation, shape); };
    const ValueId pre = act("pre", {4, 5}), h = act("h", {4, 5}), h_copy = act("h.copy", {4, 5});
    const ValueId y2 = act("y2", {4, 3}), y3 = act("y3", {4, 3}), y4 = act("y4", {4, 3});
    const ValueId sum = act("sum", {4, 3}), logits = act("logits", {4, 3}), prob = act("prob", {4, 3});
    g.AddNode(OpKind::kMatMul, "fc1", {x, w1}, {pre}, Trans(false, true));
    g.AddNode(OpKind::kActivation, "tanh", {pre}, {h}, ActivationAttr{ops::Activation::kTanh});
    g.AddNode(OpKind::kCopy, "copy", {h}, {h_copy});
    g.AddNode(OpKind::kMatMul, "fc2", {h, w2}, {y2}, Trans(false, true));
    g.AddNode(OpKind::kMatMul, "fc3", {h_copy, w3}, {y3}, Trans(false, true));
    g.AddNode(OpKind::kMatMul, "fc4", {h, w2}, {y4}, Trans(false, true));
    g.AddNode(OpKind::kAdd, "add", {y2, y3}, {sum});
    g.AddNode(OpKind::kAdd, "add2", {sum, y4}, {logits});
    loss = g.AddNode(OpKind::kSoftmaxXent, "loss", {logits, labels}, {prob}, SoftmaxXentAttr{});
  }
};

TEST_CASE("Contributions to one gradient are summed by beta = 1 rewrites or Add nodes", "[graph][autodiff]") {
  SharedGraph s;
  Graph& g = s.g;
  const Gradients grads = Differentiate(g, {s.loss});
  RequireVerified(g);

  // h gets dY from fc4 (first in reverse), fc2 accumulates into it (beta 1, base = fc4's), and the
  // copy's pass-through gradient (held by h.copy as well) is added by an Add node.
  const Node& fc2 = g.node(NodeNamed(g, "fc2.grad_a"));
  REQUIRE(fc2.has_base());
  CHECK(g.value(fc2.inputs.back()).producer == NodeNamed(g, "fc4.grad_a"));
  CHECK(std::get<ops::MatMulAttr>(fc2.attr).beta == 1.0f);
  const Node& tanh = g.node(NodeNamed(g, "tanh.grad"));
  const Node& sum = g.node(g.value(tanh.inputs[1]).producer);
  CHECK(sum.kind == OpKind::kAdd);
  CHECK(sum.phase == Phase::kBackward);
  CHECK(NameOf(g, sum.inputs[0]) == NameOf(g, fc2.outputs[0]));
  CHECK(sum.inputs[1] == g.node(NodeNamed(g, "fc3.grad_a")).outputs[0]);

  // The Add nodes pass dY through: both inputs of "add2" and of "add" share one gradient value.
  CHECK(g.node(NodeNamed(g, "fc2.grad_b")).inputs[0] == g.node(NodeNamed(g, "fc3.grad_b")).inputs[0]);
  CHECK(g.node(NodeNamed(g, "fc4.grad_b")).inputs[0] == g.node(NodeNamed(g, "loss.grad")).outputs[0]);

  // w2 is read twice: its two GEMMs chain (beta 1) and the sum is copied to "w2.grad"; the others
  // are named directly; the unused parameter gets a zero gradient.
  REQUIRE(grads.params.size() == 4);
  for (const auto& [param, grad] : grads.params) {
    INFO(NameOf(g, param));
    CHECK(NameOf(g, grad) == NameOf(g, param) + ".grad");
    CHECK(g.value(grad).role == ValueRole::kParamGrad);
  }
  const Node& w2_final = g.node(g.value(grads.params[1].second).producer);
  CHECK(w2_final.kind == OpKind::kCopy);
  const Node& w2_sum = g.node(g.value(w2_final.inputs[0]).producer);
  REQUIRE(w2_sum.has_base());
  CHECK(g.node(g.value(w2_sum.inputs.back()).producer).kind == OpKind::kMatMul);
  CHECK(g.value(w2_sum.inputs.back()).role == ValueRole::kActivationGrad);
  CHECK(g.node(g.value(grads.params[0].second).producer).name == "fc1.grad_b");
  CHECK(g.node(g.value(grads.params[3].second).producer).kind == OpKind::kFill);
}

TEST_CASE("Reshaping views pass gradients to their base and other views are refused", "[graph][autodiff]") {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 6});
  const ValueId w = g.AddParam("w", {4, 6});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
  const ValueId y = g.AddValue("y", ValueRole::kActivation, {2, 4});
  const ValueId prob = g.AddValue("prob", ValueRole::kActivation, {4, 2});
  g.AddNode(OpKind::kMatMul, "fc", {x, w}, {y}, Trans(false, true));
  SECTION("a reshape of the whole value") {
    const ValueId rows = g.AddView("y.rows", ValueRole::kActivation, {4, 2}, y);
    const NodeId loss = g.AddNode(OpKind::kSoftmaxXent, "loss", {rows, labels}, {prob}, SoftmaxXentAttr{});
    Differentiate(g, {loss});
    RequireVerified(g);
    // y's gradient is a view of the view's gradient, with y's shape.
    const Value& dy = g.value(g.node(NodeNamed(g, "fc.grad_b")).inputs[0]);
    REQUIRE(dy.view);
    CHECK(dy.planned == Shape{2, 4});
    CHECK(dy.view->base == Val(g, "y.rows.grad"));
  }
  SECTION("a part of it") {
    const ValueId part = g.AddView("y.part", ValueRole::kActivation, {1, 4}, y, 4);
    const ValueId labels1 = g.AddValue("labels1", ValueRole::kLabel, {1}, DType::kInt32);
    const ValueId prob1 = g.AddValue("prob1", ValueRole::kActivation, {1, 4});
    const NodeId loss = g.AddNode(OpKind::kSoftmaxXent, "loss", {part, labels1}, {prob1}, SoftmaxXentAttr{});
    const StatusOr<Gradients> grads = AppendBackward(g, {loss});
    REQUIRE_FALSE(grads.ok());
    CHECK(grads.status().code() == StatusCode::kUnimplemented);
    CHECK_THAT(grads.status().message(),
               Catch::Contains("'y.part'") && Catch::Contains("offset 4") && Catch::Contains("CustomGradient"));
  }
}

// x [2, 3, 5, 5] -> conv (4 filters, 3x3) -> y [2, 4, 3, 3], read as logits [2, 36], with a
// channel site over x's maps when `site`; x is a parameter, so both operands want a gradient.
// With a backward role the node is not a well-formed convolution, only a node to differentiate.
struct ConvForward {
  Graph g;
  NodeId loss{};
  explicit ConvForward(bool site, ops::ImplicitConv::Role role = ops::ImplicitConv::Role::kForward) {
    const ops::ConvGeometry geometry = ops::ConvGeometry::Square(3, 5, 5, 3);
    const ValueId x = g.AddParam("x", {2, 3, 5, 5});
    const ValueId w = g.AddParam("w", {4, 27});
    const ValueId y = g.AddValue("y", ValueRole::kActivation, {2, 4, 3, 3});
    const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {2}, DType::kInt32);
    const ValueId prob = g.AddValue("prob", ValueRole::kActivation, {2, 36});
    std::vector<SiteUse> uses;
    if (site) {
      const SiteId s = g.AddSite({.name = "x.drop", .kind = SiteKind::kChannel, .width = 3, .rate = 0.4});
      uses.push_back(SiteUse{.site = s, .target = SiteTarget::kMatMulK, .group = 9, .scale = true});
    }
    g.AddNode(OpKind::kMatMul, "conv", {w, x}, {y}, ops::MatMulAttr{.conv = ops::ImplicitConv{role, geometry}},
              Phase::kForward, std::move(uses));
    const ValueId logits = g.AddView("logits", ValueRole::kActivation, {2, 36}, y);
    loss = g.AddNode(OpKind::kSoftmaxXent, "loss", {logits, labels}, {prob}, SoftmaxXentAttr{});
  }
};

TEST_CASE("An implicit convolution's backward is a grad-weight and a grad-input implicit MatMul", "[graph][autodiff]") {
  using Role = ops::ImplicitConv::Role;
  SECTION("dense: both write their whole output") {
    ConvForward c(false);
    Differentiate(c.g, {c.loss});
    RequireVerified(c.g);
    const Node& dw = c.g.node(NodeNamed(c.g, "conv.grad_a"));
    const Node& dx = c.g.node(NodeNamed(c.g, "conv.grad_b"));
    const auto& dw_attr = std::get<ops::MatMulAttr>(dw.attr);
    const auto& dx_attr = std::get<ops::MatMulAttr>(dx.attr);
    CHECK(dw_attr.conv->role == Role::kGradWeight);
    CHECK(dx_attr.conv->role == Role::kGradInput);
    CHECK(dw_attr.conv->geometry.ToString() == ops::ConvGeometry::Square(3, 5, 5, 3).ToString());
    CHECK((!dw_attr.trans_a && !dw_attr.trans_b && !dx_attr.trans_a && !dx_attr.trans_b));
    REQUIRE((dw.inputs.size() == 2 && dx.inputs.size() == 2));
    CHECK(dw.inputs[1] == Val(c.g, "x"));
    CHECK(dx.inputs[0] == Val(c.g, "w"));
    CHECK(dw.inputs[0] == dx.inputs[1]);  // dy
    CHECK(c.g.value(dw.inputs[0]).planned == Shape{2, 4, 3, 3});
    CHECK((dw_attr.beta == 0.0f && dx_attr.beta == 0.0f));
  }
  SECTION("a channel site: N use on dW, M use on dx, each over a base") {
    ConvForward c(true);
    Differentiate(c.g, {c.loss});
    RequireVerified(c.g);
    for (const auto& [name, target] :
         {std::pair{"conv.grad_a", SiteTarget::kMatMulN}, std::pair{"conv.grad_b", SiteTarget::kMatMulM}}) {
      INFO(name);
      const Node& n = c.g.node(NodeNamed(c.g, name));
      REQUIRE(n.sites.size() == 1);
      CHECK(n.sites[0].target == target);
      CHECK(n.sites[0].group == 9);
      CHECK(n.sites[0].scale);
      CHECK(n.has_base());
      CHECK(std::get<ops::MatMulAttr>(n.attr).beta == 1.0f);
    }
    c.g.SetSitePattern(SiteId{0}, ops::ChannelSet{{0, 2}});
    REQUIRE(ResolveSiteUses(c.g).ok());
    REQUIRE(ResolveLiveShapes(c.g).ok());
    RequireVerified(c.g);
    const auto& dx_attr = std::get<ops::MatMulAttr>(c.g.node(NodeNamed(c.g, "conv.grad_b")).attr);
    REQUIRE(dx_attr.m);
    CHECK(ops::KeptCount(dx_attr.m->pattern, 27) == 18);
    CHECK(dx_attr.alpha == Approx(1.5f));
  }
  SECTION("the backward roles have no gradient rule") {
    for (const Role role : {Role::kGradWeight, Role::kGradInput}) {
      ConvForward c(false, role);
      const StatusOr<Gradients> grads = AppendBackward(c.g, {c.loss});
      INFO(grads.status().ToString());
      REQUIRE_FALSE(grads.ok());
      CHECK(grads.status().code() == StatusCode::kUnimplemented);
      CHECK_THAT(grads.status().message(), Catch::Contains("node 'conv'") && Catch::Contains(ConvRoleName(role)) &&
                                               Catch::Contains("has no gradient rule"));
    }
  }
}

TEST_CASE("A custom gradient replaces the rules of its nodes and is called once", "[graph][autodiff]") {
  SharedGraph s;
  Graph& g = s.g;
  int calls = 0;
  CustomGradient custom;
  custom.name = "fc3 by hand";
  custom.nodes = {NodeNamed(g, "copy"), NodeNamed(g, "fc3")};
  custom.emit = [&](GradContext& ctx) -> Status {
    ++calls;
    // Only w3's gradient, by one GEMM dW3 = dY3^T h (h's gradient through the copy is dropped).
    const ValueId w3 = Val(ctx.graph(), "w3"), h = Val(ctx.graph(), "h");
    CHECK_FALSE(ctx.GradOf(Val(ctx.graph(), "h.copy")));
    const std::optional<ValueId> dy3 = ctx.GradOf(Val(ctx.graph(), "y3"));
    REQUIRE(dy3);
    CHECK(ctx.NeedsGrad(w3));
    CHECK_FALSE(ctx.NeedsGrad(Val(ctx.graph(), "x")));
    const ValueId dw3 = ctx.NewGrad(w3);
    ctx.Emit(OpKind::kMatMul, "fc3.custom", {*dy3, h}, {dw3}, Trans(true, false));
    return ctx.AddGrad(w3, dw3);
  };
  const Gradients grads = Differentiate(g, {s.loss}, {custom});
  CHECK(calls == 1);
  RequireVerified(g);
  CHECK_FALSE(g.FindNode("fc3.grad_a").ok());
  CHECK_FALSE(g.FindNode("fc3.grad_b").ok());
  CHECK(g.node(g.value(grads.params[2].second).producer).name == "fc3.custom");
  CHECK(NameOf(g, grads.params[2].second) == "w3.grad");
}

TEST_CASE("AppendBackward reports what it cannot differentiate", "[graph][autodiff]") {
  SharedGraph s;
  Graph& g = s.g;
  auto expect_error = [&](const std::vector<NodeId>& losses, const std::vector<CustomGradient>& custom,
                          std::initializer_list<const char*> fragments) {
    const StatusOr<Gradients> grads = AppendBackward(g, losses, custom);
    INFO(grads.status().ToString());
    REQUIRE_FALSE(grads.ok());
    for (const char* fragment : fragments) CHECK_THAT(grads.status().message(), Catch::Contains(fragment));
  };
  SECTION("a loss that is not a SoftmaxXent") {
    expect_error({NodeNamed(g, "fc2")}, {}, {"'fc2'", "not a forward SoftmaxXent"});
  }
  SECTION("a metric as the loss") {
    std::get<SoftmaxXentAttr>(g.mutable_node(s.loss).attr).loss_weight = 0.0f;
    expect_error({s.loss}, {}, {"'loss'", "loss weight 0"});
  }
  SECTION("no loss") { expect_error({}, {}, {"at least one loss"}); }
  SECTION("a node covered twice") {
    CustomGradient a{"a", {NodeNamed(g, "fc2")}, [](GradContext&) { return Status::Ok(); }};
    CustomGradient b{"b", {NodeNamed(g, "fc2"), NodeNamed(g, "fc3")}, [](GradContext&) { return Status::Ok(); }};
    expect_error({s.loss}, {a, b}, {"'a'", "'b'", "both cover", "'fc2'"});
  }
  SECTION("a region whose span holds a node it depends on") {
    CustomGradient a{"a", {NodeNamed(g, "copy"), NodeNamed(g, "add")}, [](GradContext&) { return Status::Ok(); }};
    expect_error({s.loss}, {a}, {"custom gradient 'a'", "'add'", "'fc2'", "inside the region's span"});
  }
  SECTION("a kind without a rule") {
    g.mutable_node(NodeNamed(g, "tanh")).kind = OpKind::kGather;
    g.mutable_node(NodeNamed(g, "tanh")).attr = GatherAttr{};
    expect_error({s.loss}, {}, {"'tanh'", "Gather has no gradient rule", "'h'"});
  }
  SECTION("a custom gradient's own error") {
    CustomGradient a{"mine", {NodeNamed(g, "fc3")}, [](GradContext&) {
                       return Status(StatusCode::kInvalidArgument, "something broke");
                     }};
    expect_error({s.loss}, {a}, {"custom gradient 'mine'", "something broke"});
  }
}

}  // namespace
}  // namespace sieve::graph
