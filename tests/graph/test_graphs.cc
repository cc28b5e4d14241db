// The shared test graphs, built the way the lowering will build them.
#include "tests/graph/test_graphs.h"

#include <catch2/catch.hpp>

namespace sieve::graph::testing {

namespace {

SiteUse Use(SiteId site, SiteTarget target) {
  SiteUse use;
  use.site = site;
  use.target = target;
  return use;
}

SiteUse DimUse(SiteId site, SiteTarget target, ops::Layout a, ops::Layout b, ops::Layout c, bool scale) {
  SiteUse use = Use(site, target);
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

constexpr ops::Layout kFull = ops::Layout::kFull;
constexpr ops::Layout kPacked = ops::Layout::kPacked;
constexpr Phase kBwd = Phase::kBackward;

}  // namespace

Graph MakeFcLayer(int64_t batch, int64_t in, int64_t out) {
  Graph g;
  const SiteId s = g.AddSite({.name = "fc.drop", .kind = SiteKind::kRow, .width = out, .rate = 0.5});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {batch, in});
  const ValueId w = g.AddParam("fc.w", {out, in});
  const ValueId b = g.AddParam("fc.b", {out});
  const ValueId mm = g.AddValue("fc.mm", ValueRole::kActivation, {batch, out});
  const ValueId y = g.AddValue("fc.out", ValueRole::kActivation, {batch, out});
  const ValueId dy = g.AddValue("fc.out.grad", ValueRole::kInput, {batch, out});
  const ValueId dx = g.AddValue("x.grad", ValueRole::kActivationGrad, {batch, in});
  const ValueId dw = g.AddValue("fc.w.grad", ValueRole::kParamGrad, {out, in});
  const ValueId db = g.AddValue("fc.b.grad", ValueRole::kParamGrad, {out});
  for (ValueId v : {mm, y, dy}) g.PackValue(v, s, 1);

  g.AddNode(OpKind::kMatMul, "fc.fwd", {x, w}, {mm}, Trans(false, true), Phase::kForward,
            {DimUse(s, SiteTarget::kMatMulN, kFull, kFull, kPacked, false)});
  g.AddNode(OpKind::kBiasAdd, "fc.bias", {mm, b}, {y}, BiasAttr{}, Phase::kForward, {Use(s, SiteTarget::kBiasCols)});
  g.AddNode(OpKind::kMatMul, "fc.dgrad", {dy, w}, {dx}, Trans(false, false), kBwd,
            {DimUse(s, SiteTarget::kMatMulK, kPacked, kFull, kFull, false)});
  g.AddNode(OpKind::kMatMul, "fc.wgrad", {dy, x}, {dw}, Trans(true, false), kBwd,
            {DimUse(s, SiteTarget::kMatMulM, kPacked, kFull, kFull, false)});
  g.AddNode(OpKind::kBiasBackward, "fc.bias.grad", {dy}, {db}, BiasAttr{}, kBwd, {Use(s, SiteTarget::kBiasCols)});
  return g;
}

Graph MakeMlp(int64_t batch, int64_t in, int64_t hidden, int64_t out) {
  Graph g;
  const SiteId s = g.AddSite({.name = "h1.drop", .kind = SiteKind::kRow, .width = hidden, .rate = 0.5});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {batch, in});                              // %0
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {batch}, DType::kInt32);         // %1
  const ValueId w1 = g.AddParam("fc1.w", {hidden, in});                                           // %2
  const ValueId b1 = g.AddParam("fc1.b", {hidden});                                               // %3
  const ValueId w2 = g.AddParam("fc2.w", {out, hidden});                                          // %4
  const ValueId b2 = g.AddParam("fc2.b", {out});                                                  // %5
  const ValueId mm1 = g.AddValue("fc1.mm", ValueRole::kActivation, {batch, hidden});              // %6
  const ValueId out1 = g.AddValue("fc1.out", ValueRole::kActivation, {batch, hidden});            // %7
  const ValueId h1 = g.AddValue("h1", ValueRole::kActivation, {batch, hidden});                   // %8
  const ValueId mm2 = g.AddValue("fc2.mm", ValueRole::kActivation, {batch, out});                 // %9
  const ValueId logits = g.AddValue("logits", ValueRole::kActivation, {batch, out});              // %10
  const ValueId prob = g.AddValue("prob", ValueRole::kActivation, {batch, out});                  // %11
  const ValueId dlogits = g.AddValue("logits.grad", ValueRole::kActivationGrad, {batch, out});    // %12
  const ValueId db2 = g.AddValue("fc2.b.grad", ValueRole::kParamGrad, {out});                     // %13
  const ValueId dw2_zero = g.AddValue("fc2.w.grad.init", ValueRole::kParamGrad, {out, hidden});   // %14
  const ValueId dw2 = g.AddValue("fc2.w.grad", ValueRole::kParamGrad, {out, hidden});             // %15
  const ValueId dh1 = g.AddValue("h1.grad", ValueRole::kActivationGrad, {batch, hidden});         // %16
  const ValueId dout1 = g.AddValue("fc1.out.grad", ValueRole::kActivationGrad, {batch, hidden});  // %17
  const ValueId db1 = g.AddValue("fc1.b.grad", ValueRole::kParamGrad, {hidden});                  // %18
  const ValueId dw1 = g.AddValue("fc1.w.grad", ValueRole::kParamGrad, {hidden, in});              // %19
  for (ValueId v : {mm1, out1, h1, dh1, dout1}) g.PackValue(v, s, 1);

  // Forward. fc1 produces the site's units (N); fc2 consumes them (K) and scales by the site.
  g.AddNode(OpKind::kMatMul, "fc1.fwd", {x, w1}, {mm1}, Trans(false, true), Phase::kForward,
            {DimUse(s, SiteTarget::kMatMulN, kFull, kFull, kPacked, false)});
  g.AddNode(OpKind::kBiasAdd, "fc1.bias", {mm1, b1}, {out1}, BiasAttr{}, Phase::kForward,
            {Use(s, SiteTarget::kBiasCols)});
  g.AddNode(OpKind::kActivation, "fc1.relu", {out1}, {h1}, ActivationAttr{ops::Activation::kReLU});
  g.AddNode(OpKind::kMatMul, "fc2.fwd", {h1, w2}, {mm2}, Trans(false, true), Phase::kForward,
            {DimUse(s, SiteTarget::kMatMulK, kPacked, kFull, kFull, true)});
  g.AddNode(OpKind::kBiasAdd, "fc2.bias", {mm2, b2}, {logits}, BiasAttr{});
  g.AddNode(OpKind::kSoftmaxXent, "loss", {logits, labels}, {prob}, SoftmaxXentAttr{});

  // Backward.
  g.AddNode(OpKind::kSoftmaxXentBackward, "loss.grad", {prob, labels}, {dlogits}, SoftmaxXentAttr{}, kBwd);
  g.AddNode(OpKind::kBiasBackward, "fc2.bias.grad", {dlogits}, {db2}, BiasAttr{}, kBwd);
  g.AddNode(OpKind::kFill, "fc2.w.grad.zero", {}, {dw2_zero}, FillAttr{0.0f}, kBwd);
  g.AddNode(OpKind::kMatMul, "fc2.wgrad", {dlogits, h1, dw2_zero}, {dw2}, Trans(true, false), kBwd,
            {DimUse(s, SiteTarget::kMatMulN, kFull, kPacked, kFull, true)});
  g.AddNode(OpKind::kMatMul, "fc2.dgrad", {dlogits, w2}, {dh1}, Trans(false, false), kBwd,
            {DimUse(s, SiteTarget::kMatMulN, kFull, kFull, kPacked, true)});
  g.AddNode(OpKind::kActivationBackward, "fc1.relu.grad", {h1, dh1}, {dout1}, ActivationAttr{ops::Activation::kReLU},
            kBwd);
  g.AddNode(OpKind::kBiasBackward, "fc1.bias.grad", {dout1}, {db1}, BiasAttr{}, kBwd, {Use(s, SiteTarget::kBiasCols)});
  g.AddNode(OpKind::kMatMul, "fc1.wgrad", {dout1, x}, {dw1}, Trans(true, false), kBwd,
            {DimUse(s, SiteTarget::kMatMulM, kPacked, kFull, kFull, false)});
  return g;
}

ValueId Val(const Graph& graph, std::string_view name) {
  auto id = graph.FindValue(name);
  INFO(id.status().ToString());
  REQUIRE(id.ok());
  return *id;
}

NodeId NodeNamed(const Graph& graph, std::string_view name) {
  auto id = graph.FindNode(name);
  INFO(id.status().ToString());
  REQUIRE(id.ok());
  return *id;
}

SiteId SiteNamed(const Graph& graph, std::string_view name) {
  auto id = graph.FindSite(name);
  INFO(id.status().ToString());
  REQUIRE(id.ok());
  return *id;
}

}  // namespace sieve::graph::testing
