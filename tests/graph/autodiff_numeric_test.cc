// Numeric tests of AppendBackward: small hand-built graphs run forward and backward on the CPU
// executor, and every parameter's gradient is compared with central finite differences of the
// loss. One graph per rule: MatMul in all four transpose cases, bias, activations, Bernoulli
// dropout, row sites with packed values, tile sites, implicit-GEMM convolutions + channel bias +
// pooling (with and without a channel site), embedding, reshaping views, assembled values, sums
// of several contributions (Add nodes, beta rewrites, a parameter read twice) and a custom
// gradient; and lowered networks (graph/lower.h) end to end, the LSTM's own CustomGradient
// included.
//
// Gradient buffers are bound filled with a large value, so an entry the backward forgets to write
// (a dropped weight whose zero base is missing) shows up as a mismatch.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "runtime/executor.h"
#include "tests/testing/random_tensors.h"

namespace sieve::graph {
namespace {

constexpr ops::Layout kFull = ops::Layout::kFull;
constexpr ops::Layout kPacked = ops::Layout::kPacked;

ops::MatMulAttr Trans(bool trans_a, bool trans_b) {
  ops::MatMulAttr attr;
  attr.trans_a = trans_a;
  attr.trans_b = trans_b;
  return attr;
}

SiteUse Use(SiteId site, SiteTarget target, int64_t group = 1) {
  SiteUse use;
  use.site = site;
  use.target = target;
  use.group = group;
  return use;
}

SiteUse DimUse(SiteId site, SiteTarget target, ops::Layout a, ops::Layout b, ops::Layout c, bool scale,
               int64_t group = 1) {
  SiteUse use = Use(site, target, group);
  use.a = a;
  use.b = b;
  use.c = c;
  use.scale = scale;
  return use;
}

Tensor Labels(int64_t n, int32_t classes, uint32_t seed) {
  Tensor t = Tensor::Empty({n}, DType::kInt32);
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng() % classes);
  return t;
}

Tensor Indices(const std::vector<int32_t>& values) {
  Tensor t = Tensor::Empty({static_cast<int64_t>(values.size())}, DType::kInt32);
  for (size_t i = 0; i < values.size(); ++i) t.data<int32_t>()[i] = values[i];
  return t;
}

// Differentiates a forward graph, runs it on the CPU and compares every parameter's gradient with
// central differences of the loss (the sum of loss_weight * mean loss over the loss nodes).
class GradientCheck {
 public:
  GradientCheck(Graph& graph, std::vector<NodeId> losses, std::vector<CustomGradient> custom = {})
      : g_(graph), losses_(std::move(losses)) {
    StatusOr<Gradients> grads = AppendBackward(g_, losses_, custom);
    INFO(grads.status().ToString());
    REQUIRE(grads.ok());
    grads_ = *grads;
  }

  const Gradients& gradients() const { return grads_; }

  /// Resolves the sites' current patterns into the whole graph (forward and backward).
  void Resolve() {
    const Status attrs = ResolveSiteUses(g_);
    INFO(attrs.ToString());
    REQUIRE(attrs.ok());
    const Status shapes = ResolveLiveShapes(g_);
    INFO(shapes.ToString());
    REQUIRE(shapes.ok());
  }

  /// Creates the executor and binds the feeds (by value name), random parameters in
  /// [-scale, scale] and gradient buffers full of garbage.
  void Start(const std::map<std::string, Tensor>& feeds, float scale = 0.5f, uint32_t seed = 1) {
    StatusOr<std::unique_ptr<runtime::Executor>> executor = runtime::Executor::Create(g_, Device::CPU());
    INFO(executor.status().ToString());
    REQUIRE(executor.ok());
    executor_ = std::move(executor).value();
    for (const auto& [name, tensor] : feeds) Bind(Find(name), tensor);
    std::mt19937 rng(seed);
    for (const auto& [param, grad] : grads_.params) {
      const Shape& shape = g_.value(param).planned;
      params_[param] = testing::RandomTensor(shape, rng, -scale, scale);
      Bind(param, params_[param]);
      grad_tensors_[param] = Tensor::Empty(shape);
      Bind(grad, grad_tensors_[param]);
    }
  }

  double Loss() {
    const Status st = executor_->RunPhase(Phase::kForward, kRun);
    INFO(st.ToString());
    REQUIRE(st.ok());
    double loss = 0.0;
    for (NodeId n : losses_)
      loss += std::get<SoftmaxXentAttr>(g_.node(n).attr).loss_weight * executor_->Stats(n).loss();
    return loss;
  }

  /// Runs forward and backward, then checks every parameter entry. An entry passes when the
  /// central difference with eps or with eps / 2 matches: |fd - grad| <= atol + rtol |grad|. With
  /// float32 activations the loss (about 1) carries a rounding error of about 1e-6, which the
  /// difference quotient turns into about 1e-4 at eps = 5e-3; the truncation error of central
  /// differences is eps^2 / 6 times a third derivative of order 1, about 2e-5; so atol = 1e-3 has
  /// a margin of several times while the gradients checked are of order 1e-2 .. 1. The second
  /// step size catches a kink of ReLU or max pooling between x - eps and x + eps. Returns the
  /// largest gradient magnitude seen, for the caller to check that it is not vacuous.
  double Check(double eps = 1e-2, double rtol = 1e-2, double atol = 1e-3) {
    for (auto& [param, grad] : grad_tensors_) grad.Fill(1e3f);
    const Status st = executor_->Run(kRun);
    INFO(st.ToString());
    REQUIRE(st.ok());
    double largest = 0.0;
    for (const auto& [param, grad] : grads_.params) {
      const std::vector<float> analytic = grad_tensors_[param].ToVector();
      float* p = params_[param].data<float>();
      for (size_t i = 0; i < analytic.size(); ++i) {
        const float original = p[i];
        double fd[2];
        for (int s = 0; s < 2; ++s) {
          const double h = s == 0 ? eps : eps / 2;
          p[i] = static_cast<float>(original + h);
          const double up = Loss();
          p[i] = static_cast<float>(original - h);
          const double down = Loss();
          p[i] = original;
          fd[s] = (up - down) / (2 * h);
        }
        const double want = analytic[i], tol = atol + rtol * std::abs(want);
        if (std::abs(fd[0] - want) > tol && std::abs(fd[1] - want) > tol)
          FAIL_CHECK("d loss / d " << g_.value(param).name << "[" << i << "]: backward " << want
                                   << ", finite differences " << fd[0] << " (eps " << eps << "), " << fd[1] << " (eps "
                                   << eps / 2 << ")");
        largest = std::max(largest, std::abs(want));
      }
    }
    return largest;
  }

  std::vector<float> Grad(const std::string& param) { return grad_tensors_.at(Find(param)).ToVector(); }

 private:
  static constexpr runtime::RunOptions kRun{.iteration = 3, .seed = 17};

  ValueId Find(const std::string& name) const {
    StatusOr<ValueId> id = g_.FindValue(name);
    INFO(id.status().ToString());
    REQUIRE(id.ok());
    return *id;
  }
  void Bind(ValueId value, const Tensor& tensor) {
    const Status st = executor_->Bind(value, tensor);
    INFO(st.ToString());
    REQUIRE(st.ok());
  }

  Graph& g_;
  std::vector<NodeId> losses_;
  Gradients grads_;
  std::unique_ptr<runtime::Executor> executor_;
  std::map<ValueId, Tensor> params_, grad_tensors_;
};

// Appends "<name>" = SoftmaxXent(logits, labels) and returns the node.
NodeId AddLoss(Graph& g, ValueId logits, ValueId labels, float weight = 1.0f) {
  const ValueId prob = g.AddValue("prob", ValueRole::kActivation, g.value(logits).planned);
  return g.AddNode(OpKind::kSoftmaxXent, "loss", {logits, labels}, {prob}, SoftmaxXentAttr{.loss_weight = weight});
}

ValueId Act(Graph& g, const std::string& name, Shape shape) {
  return g.AddValue(name, ValueRole::kActivation, std::move(shape));
}

TEST_CASE("Finite differences: MatMul in all four transpose cases with a bias", "[graph][autodiff]") {
  constexpr int64_t M = 4, N = 5, K = 3;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      INFO("trans_a " << ta << ", trans_b " << tb);
      Graph g;
      const ValueId a = g.AddParam("a", ta ? Shape{K, M} : Shape{M, K});
      const ValueId b = g.AddParam("b", tb ? Shape{N, K} : Shape{K, N});
      const ValueId bias = g.AddParam("bias", {N});
      const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {M}, DType::kInt32);
      const ValueId c = Act(g, "c", {M, N}), logits = Act(g, "logits", {M, N});
      g.AddNode(OpKind::kMatMul, "mm", {a, b}, {c}, Trans(ta, tb));
      g.AddNode(OpKind::kBiasAdd, "bias", {c, bias}, {logits}, BiasAttr{});
      GradientCheck check(g, {AddLoss(g, logits, labels)});
      check.Start({{"labels", Labels(M, N, 3)}}, 1.0f);
      CHECK(check.Check() > 1e-2);
    }
}

TEST_CASE("Finite differences: a two-layer MLP with each activation", "[graph][autodiff]") {
  for (const ops::Activation kind : {ops::Activation::kReLU, ops::Activation::kTanh, ops::Activation::kSigmoid}) {
    INFO(ops::ActivationName(kind));
    Graph g;
    const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 5});
    const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
    const ValueId w1 = g.AddParam("w1", {6, 5}), b1 = g.AddParam("b1", {6});
    const ValueId w2 = g.AddParam("w2", {3, 6}), b2 = g.AddParam("b2", {3});
    const ValueId mm1 = Act(g, "mm1", {4, 6}), z1 = Act(g, "z1", {4, 6}), h = Act(g, "h", {4, 6});
    const ValueId mm2 = Act(g, "mm2", {4, 3}), logits = Act(g, "logits", {4, 3});
    g.AddNode(OpKind::kMatMul, "fc1", {x, w1}, {mm1}, Trans(false, true));
    g.AddNode(OpKind::kBiasAdd, "fc1.bias", {mm1, b1}, {z1}, BiasAttr{});
    g.AddNode(OpKind::kActivation, "act", {z1}, {h}, ActivationAttr{kind});
    g.AddNode(OpKind::kMatMul, "fc2", {h, w2}, {mm2}, Trans(false, true));
    g.AddNode(OpKind::kBiasAdd, "fc2.bias", {mm2, b2}, {logits}, BiasAttr{});
    GradientCheck check(g, {AddLoss(g, logits, labels, 2.0f)});
    std::mt19937 rng(11);
    check.Start({{"x", testing::RandomTensor({4, 5}, rng)}, {"labels", Labels(4, 3, 5)}}, 1.0f);
    CHECK(check.Check() > 1e-2);
  }
}

TEST_CASE("Finite differences: Bernoulli dropout regenerates its mask in the backward", "[graph][autodiff]") {
  Graph g;
  const SiteId site = g.AddSite({.name = "drop", .kind = SiteKind::kBernoulli, .width = 8, .rate = 0.25});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 5});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
  const ValueId w1 = g.AddParam("w1", {8, 5}), w2 = g.AddParam("w2", {3, 8});
  const ValueId h = Act(g, "h", {4, 8}), dropped = Act(g, "dropped", {4, 8}), logits = Act(g, "logits", {4, 3});
  g.AddNode(OpKind::kMatMul, "fc1", {x, w1}, {h}, Trans(false, true));
  g.AddNode(OpKind::kDropout, "drop", {h}, {dropped}, DropoutAttr{.rate = 0.25f, .site = site});
  g.AddNode(OpKind::kMatMul, "fc2", {dropped, w2}, {logits}, Trans(false, true));
  GradientCheck check(g, {AddLoss(g, logits, labels)});
  std::mt19937 rng(2);
  check.Start({{"x", testing::RandomTensor({4, 5}, rng)}, {"labels", Labels(4, 3, 9)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
}

TEST_CASE("Finite differences: a row site packs the hidden layer and dropped weights get zero", "[graph][autodiff]") {
  Graph g;
  const SiteId s = g.AddSite({.name = "h.drop", .kind = SiteKind::kRow, .width = 8, .rate = 0.5});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 5});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
  const ValueId w1 = g.AddParam("w1", {8, 5}), b1 = g.AddParam("b1", {8});
  const ValueId w2 = g.AddParam("w2", {3, 8}), b2 = g.AddParam("b2", {3});
  const ValueId mm1 = Act(g, "mm1", {4, 8}), z1 = Act(g, "z1", {4, 8}), h = Act(g, "h", {4, 8});
  const ValueId mm2 = Act(g, "mm2", {4, 3}), logits = Act(g, "logits", {4, 3});
  for (ValueId v : {mm1, z1, h}) g.PackValue(v, s, 1);
  g.AddNode(OpKind::kMatMul, "fc1", {x, w1}, {mm1}, Trans(false, true), Phase::kForward,
            {DimUse(s, SiteTarget::kMatMulN, kFull, kFull, kPacked, false)});
  g.AddNode(OpKind::kBiasAdd, "fc1.bias", {mm1, b1}, {z1}, BiasAttr{}, Phase::kForward,
            {Use(s, SiteTarget::kBiasCols)});
  g.AddNode(OpKind::kActivation, "act", {z1}, {h}, ActivationAttr{ops::Activation::kTanh});
  g.AddNode(OpKind::kMatMul, "fc2", {h, w2}, {mm2}, Trans(false, true), Phase::kForward,
            {DimUse(s, SiteTarget::kMatMulK, kPacked, kFull, kFull, true)});
  g.AddNode(OpKind::kBiasAdd, "fc2.bias", {mm2, b2}, {logits}, BiasAttr{});
  GradientCheck check(g, {AddLoss(g, logits, labels)});
  g.SetSitePattern(s, ops::RowPattern{1, 2, 1});  // keeps the odd units, scale 2
  check.Resolve();
  std::mt19937 rng(4);
  check.Start({{"x", testing::RandomTensor({4, 5}, rng)}, {"labels", Labels(4, 3, 2)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
  const std::vector<float> dw1 = check.Grad("w1"), db1 = check.Grad("b1"), dw2 = check.Grad("w2");
  for (int unit = 0; unit < 8; unit += 2) {  // dropped units: exactly zero, not just small
    CHECK(db1[unit] == 0.0f);
    for (int c = 0; c < 5; ++c) CHECK(dw1[unit * 5 + c] == 0.0f);
    for (int r = 0; r < 3; ++r) CHECK(dw2[r * 8 + unit] == 0.0f);
  }
}

TEST_CASE("Finite differences: a tile site on an FC weight", "[graph][autodiff]") {
  Graph g;
  const SiteId s = g.AddSite({.name = "w.tiles", .kind = SiteKind::kTile, .rate = 0.5, .tile_rows = 2, .tile_cols = 2});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 6});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
  const ValueId w0 = g.AddParam("w0", {6, 6}), w = g.AddParam("w", {4, 6});
  const ValueId h = Act(g, "h", {4, 6}), t = Act(g, "t", {4, 6}), logits = Act(g, "logits", {4, 4});
  SiteUse tile = Use(s, SiteTarget::kMatMulTile);
  tile.tile_rows = ops::Dim::kN;
  tile.tile_cols = ops::Dim::kK;
  tile.scale = true;
  g.AddNode(OpKind::kMatMul, "fc0", {x, w0}, {h}, Trans(false, true));
  g.AddNode(OpKind::kActivation, "act", {h}, {t}, ActivationAttr{ops::Activation::kTanh});
  g.AddNode(OpKind::kMatMul, "fc", {t, w}, {logits}, Trans(false, true), Phase::kForward, {tile});
  GradientCheck check(g, {AddLoss(g, logits, labels)});
  g.SetSitePattern(s, ops::TilePattern{2, 2, 2, 0});
  check.Resolve();
  std::mt19937 rng(8);
  check.Start({{"x", testing::RandomTensor({4, 6}, rng)}, {"labels", Labels(4, 4, 7)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
  const std::vector<float> dw = check.Grad("w");
  for (int n = 0; n < 4; ++n)
    for (int k = 0; k < 6; ++k)
      if ((n / 2 + k / 2) % 2 != 0) CHECK(dw[n * 6 + k] == 0.0f);
}

// Two conv layers over NCHW [2, 2, 5, 5], lowered as the lowering does: one implicit-GEMM MatMul
// W [F, C*k*k] x col(x[n]) per image (ops::ImplicitConv kForward) writing [B, F, Ho, Wo], then the
// channel bias. Between them tanh and a 2x2 pool; after them a flatten view and the loss. With
// `channel_site`, conv2 keeps only some of its input maps (SPEC 3): a K use in blocks of k*k.
void ConvNet(OpKind pool, bool channel_site) {
  constexpr int64_t B = 2, C = 2, H = 5, F1 = 3, F2 = 4;
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {B, C, H, H});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {B}, DType::kInt32);
  std::optional<SiteId> site;
  if (channel_site) site = g.AddSite({.name = "c2.drop", .kind = SiteKind::kChannel, .width = F1, .rate = 0.4});
  auto conv = [&](const std::string& name, ValueId in, int64_t channels, int64_t size, int64_t filters, int64_t k,
                  int64_t pad, bool dropped) {
    const ops::ConvGeometry geom = ops::ConvGeometry::Square(channels, size, size, k, 1, pad);
    const Shape y_shape = {B, filters, geom.out_h(), geom.out_w()};
    const ValueId w = g.AddParam(name + ".w", {filters, channels * k * k});
    const ValueId bias = g.AddParam(name + ".b", {filters});
    const ValueId y = Act(g, name + ".y", y_shape);
    const ValueId out = Act(g, name + ".out", y_shape);
    std::vector<SiteUse> gemm_uses;
    if (dropped) gemm_uses.push_back(DimUse(*site, SiteTarget::kMatMulK, kFull, kFull, kFull, true, k * k));
    const ops::MatMulAttr attr{.conv = ops::ImplicitConv{ops::ImplicitConv::Role::kForward, geom}};
    g.AddNode(OpKind::kMatMul, name + ".gemm", {w, in}, {y}, attr, Phase::kForward, gemm_uses);
    g.AddNode(OpKind::kChannelBiasAdd, name + ".bias", {y, bias}, {out}, BiasAttr{});
    return out;
  };
  const ValueId c1 = conv("c1", x, C, H, F1, 3, 1, false);  // [2, 3, 5, 5]
  const ValueId t1 = Act(g, "t1", {B, F1, H, H});
  g.AddNode(OpKind::kActivation, "t1", {c1}, {t1}, ActivationAttr{ops::Activation::kTanh});
  const ops::ConvGeometry pool_geom = ops::ConvGeometry::Square(F1, H, H, 2, 2);  // floor: 2 x 2
  const ValueId pooled = Act(g, "pooled", {B, F1, 2, 2});
  if (pool == OpKind::kMaxPool) {
    const ValueId argmax = g.AddValue("argmax", ValueRole::kActivation, {B, F1, 2, 2}, DType::kInt32);
    g.AddNode(OpKind::kMaxPool, "pool", {t1}, {pooled, argmax}, PoolAttr{.geometry = pool_geom});
  } else {
    g.AddNode(OpKind::kAvgPool, "pool", {t1}, {pooled}, PoolAttr{.geometry = pool_geom});
  }
  const ValueId c2 = conv("c2", pooled, F1, 2, F2, 2, 0, channel_site);  // [2, 4, 1, 1]
  const ValueId logits = g.AddView("logits", ValueRole::kActivation, {B, F2}, c2);
  GradientCheck check(g, {AddLoss(g, logits, labels)});
  if (channel_site) {
    g.SetSitePattern(*site, ops::ChannelSet{{0, 2}});
    check.Resolve();
  }
  std::mt19937 rng(6);
  check.Start({{"x", testing::RandomTensor({B, C, H, H}, rng)}, {"labels", Labels(B, F2, 1)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
  if (channel_site) {  // conv2's weights on the dropped input map (rows 4..7 of K) get zero
    const std::vector<float> dw = check.Grad("c2.w");
    for (int f = 0; f < F2; ++f)
      for (int r = 4; r < 8; ++r) CHECK(dw[f * 12 + r] == 0.0f);
  }
}

TEST_CASE("Finite differences: convolutions with max pooling", "[graph][autodiff]") {
  ConvNet(OpKind::kMaxPool, false);
}

TEST_CASE("Finite differences: convolutions with average pooling and a channel site", "[graph][autodiff]") {
  ConvNet(OpKind::kAvgPool, true);
}

TEST_CASE("Finite differences: an embedding with repeated indices", "[graph][autodiff]") {
  Graph g;
  const ValueId ids = g.AddValue("ids", ValueRole::kInput, {6}, DType::kInt32);
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {6}, DType::kInt32);
  const ValueId table = g.AddParam("table", {7, 3}), w = g.AddParam("w", {4, 3});
  const ValueId rows = Act(g, "rows", {6, 3}), logits = Act(g, "logits", {6, 4});
  g.AddNode(OpKind::kIndexRows, "embed", {table, ids}, {rows});
  g.AddNode(OpKind::kMatMul, "fc", {rows, w}, {logits}, Trans(false, true));
  GradientCheck check(g, {AddLoss(g, logits, labels)});
  check.Start({{"ids", Indices({2, 5, 2, 0, 5, 2})}, {"labels", Labels(6, 4, 4)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
  const std::vector<float> dtable = check.Grad("table");
  for (int row : {1, 3, 4, 6})  // rows no index names
    for (int d = 0; d < 3; ++d) CHECK(dtable[row * 3 + d] == 0.0f);
}

TEST_CASE("Finite differences: a reshaping view and an assembled value", "[graph][autodiff]") {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 5});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {8}, DType::kInt32);
  const ValueId w1 = g.AddParam("w1", {6, 5}), w2 = g.AddParam("w2", {6, 5});
  // Two GEMMs write the two halves of an assembled [4, 6]; a view reads it as [8, 3].
  const ValueId both = Act(g, "both", {4, 6});
  const ValueId top = g.AddView("both.top", ValueRole::kActivation, {2, 6}, both, 0);
  const ValueId bottom = g.AddView("both.bottom", ValueRole::kActivation, {2, 6}, both, 12);
  g.AddNode(OpKind::kMatMul, "fc1", {x, w1}, {top}, Trans(false, true));
  g.AddNode(OpKind::kMatMul, "fc2", {x, w2}, {bottom}, Trans(false, true));
  const ValueId logits = g.AddView("logits", ValueRole::kActivation, {8, 3}, both);
  GradientCheck check(g, {AddLoss(g, logits, labels)});
  std::mt19937 rng(12);
  check.Start({{"x", testing::RandomTensor({2, 5}, rng)}, {"labels", Labels(8, 3, 6)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
}

// h = tanh(x W1^T) is read by fc2, by a copy that fc3 reads, and by fc4, which reads W2 again;
// the logits add the three: h's gradient sums three contributions (a beta rewrite and an Add),
// W2's two (a beta rewrite, then a copy to "w2.grad").
Graph SharedGraph(NodeId* loss) {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 6});
  const ValueId labels = g.AddValue("labels", ValueRole::kLabel, {4}, DType::kInt32);
  const ValueId w1 = g.AddParam("w1", {5, 6}), w2 = g.AddParam("w2", {3, 5}), w3 = g.AddParam("w3", {3, 5});
  const ValueId pre = Act(g, "pre", {4, 5}), h = Act(g, "h", {4, 5}), h_copy = Act(g, "h.copy", {4, 5});
  const ValueId y2 = Act(g, "y2", {4, 3}), y3 = Act(g, "y3", {4, 3}), y4 = Act(g, "y4", {4, 3});
  const ValueId sum = Act(g, "sum", {4, 3}), logits = Act(g, "logits", {4, 3});
  g.AddNode(OpKind::kMatMul, "fc1", {x, w1}, {pre}, Trans(false, true));
  g.AddNode(OpKind::kActivation, "tanh", {pre}, {h}, ActivationAttr{ops::Activation::kTanh});
  g.AddNode(OpKind::kCopy, "copy", {h}, {h_copy});
  g.AddNode(OpKind::kMatMul, "fc2", {h, w2}, {y2}, Trans(false, true));
  g.AddNode(OpKind::kMatMul, "fc3", {h_copy, w3}, {y3}, Trans(false, true));
  g.AddNode(OpKind::kMatMul, "fc4", {h, w2}, {y4}, Trans(false, true));
  g.AddNode(OpKind::kAdd, "add", {y2, y3}, {sum});
  g.AddNode(OpKind::kAdd, "add2", {sum, y4}, {logits});
  *loss = AddLoss(g, logits, labels);
  return g;
}

TEST_CASE("Finite differences: a value and a parameter read several times", "[graph][autodiff]") {
  NodeId loss{};
  Graph g = SharedGraph(&loss);
  GradientCheck check(g, {loss});
  std::mt19937 rng(3);
  check.Start({{"x", testing::RandomTensor({4, 6}, rng)}, {"labels", Labels(4, 3, 8)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
}

TEST_CASE("Finite differences: a custom gradient for fc3 and its copy", "[graph][autodiff]") {
  NodeId loss{};
  Graph g = SharedGraph(&loss);
  CustomGradient custom;
  custom.name = "fc3";
  custom.nodes = {g.node(NodeId{2}).id, g.node(NodeId{4}).id};  // copy, fc3
  custom.emit = [](GradContext& ctx) -> Status {
    Graph& graph = ctx.graph();
    SIEVE_ASSIGN_OR_RETURN(const ValueId y3, graph.FindValue("y3"));
    SIEVE_ASSIGN_OR_RETURN(const ValueId h, graph.FindValue("h"));
    SIEVE_ASSIGN_OR_RETURN(const ValueId w3, graph.FindValue("w3"));
    const ValueId dy3 = *ctx.GradOf(y3);
    const ValueId dw3 = ctx.NewGrad(w3), dh = ctx.NewGrad(h);
    ctx.Emit(OpKind::kMatMul, "fc3.dw", {dy3, h}, {dw3}, Trans(true, false));
    ctx.Emit(OpKind::kMatMul, "fc3.dh", {dy3, w3}, {dh}, Trans(false, false));
    SIEVE_RETURN_IF_ERROR(ctx.AddGrad(w3, dw3));
    return ctx.AddGrad(h, dh);
  };
  GradientCheck check(g, {loss}, {custom});
  std::mt19937 rng(3);
  check.Start({{"x", testing::RandomTensor({4, 6}, rng)}, {"labels", Labels(4, 3, 8)}}, 1.0f);
  CHECK(check.Check() > 1e-2);
}

Layer MakeLayer(std::string name, LayerSpec spec, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  return Layer{
      .name = std::move(name), .spec = std::move(spec), .inputs = std::move(inputs), .outputs = std::move(outputs)};
}

LoweredNet LowerForTraining(const Network& network, int64_t batch) {
  StatusOr<LoweredNet> lowered = Lower(network, LowerOptions{.batch = batch, .training = true});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  return std::move(lowered).value();
}

std::vector<NodeId> LossNodes(const LoweredNet& net) {
  std::vector<NodeId> nodes;
  for (const LossHead& head : net.losses) nodes.push_back(head.node);
  return nodes;
}

TEST_CASE("Finite differences: a lowered conv net with pooling and flatten and an accuracy", "[graph][autodiff]") {
  constexpr int64_t kBatch = 2;
  Network network;
  network.Add(MakeLayer("data", InputSpec{.shape = {2, 6, 6}}, {}, {"data"}))
      .Add(MakeLayer("labels", LabelSpec{}, {}, {"labels"}))
      .Add(MakeLayer("conv", Conv2dSpec{.filters = 3, .kernel = 3, .pad = 1}, {"data"}, {"conv"}))
      .Add(MakeLayer("tanh", ActivationSpec{.kind = ops::Activation::kTanh}, {"conv"}, {"tanh"}))
      .Add(MakeLayer("pool", PoolSpec{.kernel = 2, .stride = 2}, {"tanh"}, {"pool"}))
      .Add(MakeLayer("conv2", Conv2dSpec{.filters = 2, .kernel = 2, .stride = 1}, {"pool"}, {"conv2"}))
      .Add(MakeLayer("flat", FlattenSpec{}, {"conv2"}, {"flat"}))
      .Add(MakeLayer("fc", FullyConnectedSpec{.units = 4}, {"flat"}, {"fc"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"fc", "labels"}, {"prob"}))
      .Add(MakeLayer("accuracy", AccuracySpec{}, {"fc", "labels"}, {}));
  LoweredNet net = LowerForTraining(network, kBatch);
  GradientCheck check(net.graph, LossNodes(net), net.custom_gradients);
  std::mt19937 rng(21);
  check.Start({{net.graph.value(net.inputs[0]).name, testing::RandomTensor({kBatch, 2, 6, 6}, rng)},
               {net.graph.value(net.labels[0]).name, Labels(kBatch, 4, 3)}},
              0.5f);
  CHECK(check.Check() > 1e-2);
}

TEST_CASE("Finite differences: a lowered embedding and LSTM language model", "[graph][autodiff]") {
  constexpr int64_t kBatch = 2, kSteps = 3, kVocab = 5;
  for (const bool sequences : {true, false}) {
    INFO("return_sequences " << sequences);  // the FC reads the whole sequence (flattened) or the last step
    Network network;
    network.Add(MakeLayer("tokens", InputSpec{.shape = {kSteps}, .dtype = DType::kInt32}, {}, {"tokens"}))
        .Add(MakeLayer("labels", LabelSpec{}, {}, {"labels"}))
        .Add(MakeLayer("embed", EmbeddingSpec{.vocab = kVocab, .dim = 2}, {"tokens"}, {"embed"}))
        .Add(MakeLayer("lstm", LstmSpec{.units = 3, .layers = 2, .return_sequences = sequences}, {"embed"}, {"lstm"}))
        .Add(MakeLayer("fc", FullyConnectedSpec{.units = kVocab}, {"lstm"}, {"fc"}))
        .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"fc", "labels"}, {"prob"}));
    LoweredNet net = LowerForTraining(network, kBatch);
    GradientCheck check(net.graph, LossNodes(net), net.custom_gradients);
    std::map<std::string, Tensor> feeds = {{net.graph.value(net.labels[0]).name, Labels(kBatch, kVocab, 5)}};
    feeds[net.graph.value(net.inputs[0]).name] = Indices({0, 3, 3, 4, 1, 0});
    for (size_t i = 1; i < net.inputs.size(); ++i) {  // initial LSTM states
      std::mt19937 rng(static_cast<uint32_t>(i));
      feeds[net.graph.value(net.inputs[i]).name] =
          testing::RandomTensor(net.graph.value(net.inputs[i]).planned, rng, -0.5f, 0.5f);
    }
    check.Start(feeds, 0.5f);
    CHECK(check.Check() > 1e-2);
  }
}

}  // namespace
}  // namespace sieve::graph
