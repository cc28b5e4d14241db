// Tests of sensitivity-aware and random feature-map dropout on the graph (SPEC 3): the lowering
// of channel sites (the conv's three implicit-GEMM MatMuls annotated on their im2col dimension; the
// errors for a site on the network input, a reader that is not a Conv2d, a rate that drops every
// map), and the choice of maps by SensitivityDropPass over many iterations: exactly ceil(p * C)
// dropped each time, drop frequencies equal to the exact inclusion probabilities of successive
// sampling from softmax(-s / temperature) within a 4-sigma binomial bound (so less sensitive maps
// are dropped more often), no map starved when the temperature is positive, uniform frequencies
// for random channel dropout, warm-up, and the same selections from the same seed. Also the
// estimates' byte encoding and restore checks.
#include "graph/sensitivity_pass.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "graph/pass.h"
#include "graph/sequential.h"

namespace sieve::graph {
namespace {

// data [2, 6, 6] -> conv1 (`maps` maps) -> relu1 -> drop -> conv2 (k3, 4 maps) -> flatten -> fc (3).
Network ChannelNet(int64_t maps, const DropoutSpec& drop) {
  Sequential net({2, 6, 6});
  net.Add(Conv2d(maps, 3, 1, 1))
      .Add(ReLU())
      .Add(drop, "drop")
      .Add(Conv2d(4, 3, 1, 1))
      .Add(Flatten())
      .Add(FullyConnected(3));
  StatusOr<Network> built = net.Build();
  REQUIRE(built.ok());
  return *built;
}

LoweredNet LowerTraining(const Network& network, bool backward) {
  StatusOr<LoweredNet> lowered = Lower(network, {.batch = 2, .training = true});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  if (backward) REQUIRE(AppendBackward(lowered->graph, {lowered->losses.front().node}, {}).ok());
  return std::move(lowered).value();
}

const Node& NodeNamed(const Graph& g, const std::string& name) {
  StatusOr<NodeId> id = g.FindNode(name);
  INFO(name << ": " << id.status().ToString());
  REQUIRE(id.ok());
  return g.node(*id);
}

std::unique_ptr<SensitivityDropPass> MakePass(const Graph& g, const Network& network) {
  auto pass = MakeSensitivityDropPass(g, ChannelSiteConfigs(network));
  INFO(pass.status().ToString());
  REQUIRE(pass.ok());
  return std::move(pass).value();
}

// Estimates with sensitivity[c] = values[c], every map observed once.
ChannelEstimates EstimatesOf(const std::string& site, const std::vector<double>& values) {
  return ChannelEstimates{.site = site,
                          .importance = std::vector<double>(values.size(), 1.0),
                          .sensitivity = values,
                          .observed = std::vector<int64_t>(values.size(), 1)};
}

// The exact probability that each item is among the first `picks` of successive sampling without
// replacement with probabilities proportional to `weights` (enumerating every ordered draw).
std::vector<double> InclusionProbabilities(const std::vector<double>& weights, int picks) {
  std::vector<double> p(weights.size(), 0.0);
  std::vector<bool> taken(weights.size(), false);
  std::function<void(int, double, double)> draw = [&](int depth, double prob, double left) {
    if (depth == picks) return;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (taken[i]) continue;
      const double q = prob * weights[i] / left;
      p[i] += q;
      taken[i] = true;
      draw(depth + 1, q, left - weights[i]);
      taken[i] = false;
    }
  };
  draw(0, 1.0, std::accumulate(weights.begin(), weights.end(), 0.0));
  return p;
}

// Runs the pass for `iterations` iterations with `seed` and returns per map how often it was dropped,
// checking that exactly `dropped` maps are dropped every time.
std::vector<int64_t> DropCounts(SensitivityDropPass& pass, Graph& g, SiteId site, int64_t iterations, uint64_t seed,
                                int64_t dropped) {
  std::vector<int64_t> counts(static_cast<size_t>(g.site(site).width), 0);
  for (int64_t it = 0; it < iterations; ++it) {
    PassContext context{.iteration = it, .seed = seed};
    REQUIRE(pass.Run(g, context).ok());
    const auto& kept = std::get<ops::ChannelSet>(*g.site(site).pattern).kept;
    REQUIRE(static_cast<int64_t>(kept.size()) == g.site(site).width - dropped);
    REQUIRE(std::is_sorted(kept.begin(), kept.end()));
    std::vector<bool> is_kept(counts.size(), false);
    for (int64_t c : kept) is_kept[static_cast<size_t>(c)] = true;
    for (size_t c = 0; c < counts.size(); ++c) counts[c] += is_kept[c] ? 0 : 1;
  }
  return counts;
}

TEST_CASE("Sensitivity dropout lowers to a channel site on the conv's three implicit GEMMs", "[sensitivity][graph]") {
  const Network network = ChannelNet(5, SensitivityDropout(0.4));
  LoweredNet net = LowerTraining(network, true);
  Graph& g = net.graph;
  REQUIRE(g.num_sites() == 1);
  const DropoutSite& site = g.sites().front();
  CHECK(site.kind == SiteKind::kChannel);
  CHECK(site.width == 5);
  CHECK(site.name == "drop.site");
  const Node& fwd = NodeNamed(g, "conv2.matmul");
  REQUIRE(fwd.sites.size() == 1);
  CHECK(fwd.sites[0].target == SiteTarget::kMatMulK);
  CHECK(fwd.sites[0].group == 9);
  CHECK(fwd.sites[0].scale);
  CHECK((fwd.sites[0].a == ops::Layout::kFull && fwd.sites[0].b == ops::Layout::kFull));
  CHECK(std::get<ops::MatMulAttr>(fwd.attr).conv->role == ops::ImplicitConv::Role::kForward);
  // The first conv reads the network input and is not annotated.
  CHECK(NodeNamed(g, "conv1.matmul").sites.empty());
  // Backward: the grad-weight GEMM (dW Full, N use) and the grad-input GEMM (dx Full, M use), both
  // writing the kept part into a base.
  std::vector<std::pair<ops::ImplicitConv::Role, SiteTarget>> backward;
  for (const Node& n : g.nodes()) {
    if (n.phase != Phase::kBackward) continue;
    for (const SiteUse& use : n.sites) {
      if (use.site != site.id) continue;
      REQUIRE(n.kind == OpKind::kMatMul);
      const auto& mm = std::get<ops::MatMulAttr>(n.attr);
      REQUIRE(mm.conv.has_value());
      backward.emplace_back(mm.conv->role, use.target);
      CHECK(use.scale);
      CHECK(use.group == 9);
      CHECK((use.a == ops::Layout::kFull && use.b == ops::Layout::kFull && use.c == ops::Layout::kFull));
      CHECK(n.has_base());
      CHECK(mm.beta == 1.0f);
    }
  }
  CHECK(backward == std::vector<std::pair<ops::ImplicitConv::Role, SiteTarget>>{
                        {ops::ImplicitConv::Role::kGradWeight, SiteTarget::kMatMulN},
                        {ops::ImplicitConv::Role::kGradInput, SiteTarget::kMatMulM}});

  g.SetSitePattern(site.id, ops::ChannelSet{{0, 2, 4}});
  PassContext context;
  REQUIRE(MakeIterationPipeline({}).Run(g, context).ok());
  CHECK_FALSE(g.FindValue("conv2.col").ok());  // no column matrix in the graph: the op builds it
  const auto& attr = std::get<ops::MatMulAttr>(NodeNamed(g, "conv2.matmul").attr);
  REQUIRE(attr.k.has_value());
  CHECK(attr.alpha == Approx(5.0 / 3.0));
  CHECK(ops::KeptCount(attr.k->pattern, attr.k->extent) == 27);

  // The evaluation graph is dense.
  StatusOr<LoweredNet> eval = Lower(network, {.batch = 2, .training = false});
  REQUIRE(eval.ok());
  CHECK(eval->graph.num_sites() == 0);
}

TEST_CASE("Sensitivity dropout lowering errors name the layer", "[sensitivity][graph]") {
  SECTION("on the network input") {
    Sequential net({3, 6, 6});
    net.Add(SensitivityDropout(0.3), "drop").Add(Conv2d(4, 3)).Add(Flatten()).Add(FullyConnected(2));
    StatusOr<LoweredNet> lowered = Lower(*net.Build(), {.batch = 2, .training = true});
    REQUIRE_FALSE(lowered.ok());
    CHECK(lowered.status().message().find("layer 'drop' (Dropout)") != std::string::npos);
    CHECK(lowered.status().message().find("network's input") != std::string::npos);
  }
  SECTION("read by a layer that is not a Conv2d") {
    Sequential net({2, 6, 6});
    net.Add(Conv2d(4, 3)).Add(RandomChannelDropout(0.3), "drop").Add(Flatten()).Add(FullyConnected(2));
    StatusOr<LoweredNet> lowered = Lower(*net.Build(), {.batch = 2, .training = true});
    REQUIRE_FALSE(lowered.ok());
    CHECK(lowered.status().message().find("must be read by a Conv2d; it is read by layer 'flatten1' (Flatten)") !=
          std::string::npos);
  }
  SECTION("a rate that drops every map") {
    StatusOr<LoweredNet> lowered = Lower(ChannelNet(3, SensitivityDropout(0.9)), {.batch = 2, .training = true});
    REQUIRE_FALSE(lowered.ok());
    CHECK(lowered.status().message().find("would drop ceil(0.9 * 3) = 3 of the 3 maps") != std::string::npos);
  }
  SECTION("a negative temperature") {
    StatusOr<LoweredNet> lowered = Lower(ChannelNet(3, SensitivityDropout(0.3, -1.0)), {.batch = 2, .training = true});
    REQUIRE_FALSE(lowered.ok());
    CHECK(lowered.status().message().find("temperature must be finite and >= 0") != std::string::npos);
  }
}

TEST_CASE("Channels dropped per iteration are ceil of rate times maps", "[sensitivity][graph]") {
  CHECK(ChannelsDropped(0.3, 10) == 3);
  CHECK(ChannelsDropped(0.5, 7) == 4);
  CHECK(ChannelsDropped(0.0, 7) == 0);
  CHECK(ChannelsDropped(0.7, 10) == 7);
  CHECK(ChannelsDropped(0.31, 10) == 4);
  for (const auto& [rate, maps] : std::vector<std::pair<double, int64_t>>{{0.3, 10}, {0.5, 7}, {0.7, 13}}) {
    const Network network = ChannelNet(maps, RandomChannelDropout(rate));
    LoweredNet net = LowerTraining(network, false);
    auto pass = MakePass(net.graph, network);
    DropCounts(*pass, net.graph, SiteId{0}, 20, 3, ChannelsDropped(rate, maps));
  }
}

TEST_CASE("Less sensitive maps are dropped more often, at the exact successive-sampling rates",
          "[sensitivity][graph]") {
  constexpr int64_t kMaps = 8, kIterations = 6000;
  const double temperature = GENERATE(0.5, 2.0);
  INFO("temperature " << temperature);
  const Network network = ChannelNet(kMaps, SensitivityDropout(0.3, temperature));
  LoweredNet net = LowerTraining(network, false);
  auto pass = MakePass(net.graph, network);
  std::vector<double> sensitivity(kMaps);
  for (int64_t c = 0; c < kMaps; ++c) sensitivity[static_cast<size_t>(c)] = 0.02 * static_cast<double>(c + 1);
  REQUIRE(pass->RestoreEstimates({EstimatesOf("drop.site", sensitivity)}).ok());
  const int64_t dropped = ChannelsDropped(0.3, kMaps);  // 3
  const std::vector<int64_t> counts = DropCounts(*pass, net.graph, SiteId{0}, kIterations, 17, dropped);

  const double mean = std::accumulate(sensitivity.begin(), sensitivity.end(), 0.0) / kMaps;
  std::vector<double> weights;
  for (double s : sensitivity) weights.push_back(std::exp(-(s / mean) / temperature));
  const std::vector<double> expected = InclusionProbabilities(weights, static_cast<int>(dropped));
  for (int64_t c = 0; c < kMaps; ++c) {
    const double p = expected[static_cast<size_t>(c)];
    const double freq = static_cast<double>(counts[static_cast<size_t>(c)]) / kIterations;
    INFO("map " << c << ": dropped " << freq << ", exact " << p);
    CHECK(std::abs(freq - p) <= 4.0 * std::sqrt(p * (1 - p) / kIterations));
    // No map is starved: every one is kept sometimes and dropped sometimes.
    CHECK(counts[static_cast<size_t>(c)] > 0);
    CHECK(counts[static_cast<size_t>(c)] < kIterations);
  }
  CHECK(counts.front() > counts.back());
  CHECK(expected.front() > expected.back() + 0.1);
}

TEST_CASE("Temperature 0 always drops the least sensitive maps", "[sensitivity][graph]") {
  const Network network = ChannelNet(6, SensitivityDropout(0.5, 0.0));
  LoweredNet net = LowerTraining(network, false);
  auto pass = MakePass(net.graph, network);
  REQUIRE(pass->RestoreEstimates({EstimatesOf("drop.site", {0.5, 0.1, 0.9, 0.3, 0.05, 2.0})}).ok());
  for (int64_t it = 0; it < 5; ++it) {
    PassContext context{.iteration = it, .seed = 1};
    REQUIRE(pass->Run(net.graph, context).ok());
    CHECK(std::get<ops::ChannelSet>(*net.graph.site(SiteId{0}).pattern).kept == std::vector<int64_t>{0, 2, 5});
  }
}

TEST_CASE("Random channel dropout drops every map uniformly", "[sensitivity][graph]") {
  constexpr int64_t kMaps = 9, kIterations = 4000;
  const Network network = ChannelNet(kMaps, RandomChannelDropout(0.5));
  LoweredNet net = LowerTraining(network, false);
  auto pass = MakePass(net.graph, network);
  const int64_t dropped = ChannelsDropped(0.5, kMaps);  // 5
  const std::vector<int64_t> counts = DropCounts(*pass, net.graph, SiteId{0}, kIterations, 23, dropped);
  const double p = static_cast<double>(dropped) / kMaps;
  for (int64_t c = 0; c < kMaps; ++c) {
    const double freq = static_cast<double>(counts[static_cast<size_t>(c)]) / kIterations;
    INFO("map " << c << ": dropped " << freq << ", expected " << p);
    CHECK(std::abs(freq - p) <= 4.0 * std::sqrt(p * (1 - p) / kIterations));
  }
}

TEST_CASE("Channel selections are reproducible from the seed, dense during warm-up", "[sensitivity][graph]") {
  DropoutSpec spec = SensitivityDropout(0.4, 1.0, 3);
  const Network network = ChannelNet(7, spec);
  LoweredNet a = LowerTraining(network, false), b = LowerTraining(network, false);
  auto pass_a = MakePass(a.graph, network), pass_b = MakePass(b.graph, network);
  const ChannelEstimates estimates = EstimatesOf("drop.site", {0.3, 0.1, 0.7, 0.2, 0.4, 0.9, 0.6});
  REQUIRE(pass_a->RestoreEstimates({estimates}).ok());
  REQUIRE(pass_b->RestoreEstimates({estimates}).ok());
  bool seeds_differ = false;
  for (int64_t it = 0; it < 40; ++it) {
    PassContext ca{.iteration = it, .seed = 5}, cb{.iteration = it, .seed = 5};
    REQUIRE(pass_a->Run(a.graph, ca).ok());
    REQUIRE(pass_b->Run(b.graph, cb).ok());
    const auto& kept = std::get<ops::ChannelSet>(*a.graph.site(SiteId{0}).pattern).kept;
    CHECK(kept == std::get<ops::ChannelSet>(*b.graph.site(SiteId{0}).pattern).kept);
    if (it < 3) CHECK(kept.size() == 7);
    if (it >= 3) CHECK(kept.size() == 4);
    PassContext other{.iteration = it, .seed = 6};
    REQUIRE(pass_b->Run(b.graph, other).ok());
    if (it >= 3 && std::get<ops::ChannelSet>(*b.graph.site(SiteId{0}).pattern).kept != kept) seeds_differ = true;
  }
  CHECK(seeds_differ);
}

TEST_CASE("Sensitivity estimates encode, decode and restore by site name", "[sensitivity][graph]") {
  const Network network = ChannelNet(4, SensitivityDropout(0.25));
  LoweredNet net = LowerTraining(network, false);
  auto pass = MakePass(net.graph, network);
  REQUIRE(pass->Estimates().size() == 1);
  CHECK(pass->Estimates()[0].site == "drop.site");
  ChannelEstimates e{.site = "drop.site",
                     .importance = {0.5, 1.5, 2.5, 3.5},
                     .sensitivity = {1e-3, 2e-3, 0.25, 7.0},
                     .observed = {1, 2, 3, 4}};
  const std::string bytes = EncodeEstimates({e});
  StatusOr<std::vector<ChannelEstimates>> decoded = DecodeEstimates(bytes);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 1);
  CHECK((*decoded)[0].site == e.site);
  CHECK((*decoded)[0].importance == e.importance);
  CHECK((*decoded)[0].sensitivity == e.sensitivity);
  CHECK((*decoded)[0].observed == e.observed);
  REQUIRE(pass->RestoreEstimates(*decoded).ok());
  CHECK(pass->Estimates()[0].sensitivity == e.sensitivity);

  CHECK_FALSE(DecodeEstimates(bytes.substr(0, bytes.size() - 3)).ok());
  CHECK_FALSE(DecodeEstimates(bytes + "x").ok());
  ChannelEstimates wrong = e;
  wrong.site = "other.site";
  Status st = pass->RestoreEstimates({wrong});
  CHECK(st.message().find("'other.site'") != std::string::npos);
  wrong = e;
  wrong.sensitivity.pop_back();
  st = pass->RestoreEstimates({wrong});
  CHECK(st.message().find("the site has 4 maps") != std::string::npos);
  st = pass->CheckEstimates({e, e});
  CHECK(st.message().find("appear twice") != std::string::npos);
  CHECK(pass->Estimates()[0].sensitivity == e.sensitivity);  // unchanged on error
}

}  // namespace
}  // namespace sieve::graph
