// Tests of the pattern sampling pass. Statistics first (SPEC 2.6, sampling patterns, not running
// networks): over 10,000 sampled iterations per configuration every unit (or tile) is dropped
// with frequency p within a 4-sigma binomial bound, the mean number dropped is pN, the mean
// scaled value of every unit is 1 (so the mean scaled output is the dense output), and the
// empirical co-drop at each distance is the search's C_P(d). Then the pass itself: the pipeline
// follows what it draws, seeds reproduce patterns, equal sites share a search, rate 0 and the
// fixed family, and the errors.
#include "graph/pattern_pass.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <vector>

#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::MakeMlp;
using testing::NodeNamed;
using testing::SiteNamed;

constexpr uint64_t kSeed = 20240611;
constexpr int64_t kIterations = 10000;
constexpr int64_t kCoDropDistances = 8;

// One FC y = x W^T, W [out, in], whose forward GEMM skips the dropped tiles of the tile site
// "w.tiles" laid over (N, K).
Graph MakeTiledFc(int64_t in, int64_t out, int64_t tile_rows, int64_t tile_cols, double rate) {
  Graph g;
  const SiteId s = g.AddSite(
      {.name = "w.tiles", .kind = SiteKind::kTile, .rate = rate, .tile_rows = tile_rows, .tile_cols = tile_cols});
  const ValueId x = g.AddValue("x", ValueRole::kInput, {4, in});
  const ValueId w = g.AddParam("w", {out, in});
  const ValueId y = g.AddValue("y", ValueRole::kActivation, {4, out});
  SiteUse tile;
  tile.site = s;
  tile.target = SiteTarget::kMatMulTile;
  tile.tile_rows = ops::Dim::kN;
  tile.tile_cols = ops::Dim::kK;
  tile.scale = true;
  ops::MatMulAttr attr;
  attr.trans_b = true;
  g.AddNode(OpKind::kMatMul, "fc", {x, w}, {y}, attr, Phase::kForward, {tile});
  return g;
}

// The dropped units of a row pattern over `cols` units (rows = 1), or the dropped tiles of a tile
// pattern over a rows x cols tile grid, row-major.
std::vector<uint8_t> DropMask(const ops::DropoutPattern& pattern, int64_t rows, int64_t cols) {
  std::vector<uint8_t> mask(static_cast<size_t>(rows * cols));
  for (int64_t a = 0; a < rows; ++a) {
    for (int64_t c = 0; c < cols; ++c) {
      const bool kept = std::holds_alternative<ops::RowPattern>(pattern)
                            ? std::get<ops::RowPattern>(pattern).Kept(c)
                            : std::get<ops::TilePattern>(pattern).TileKept(a, c);
      mask[a * cols + c] = kept ? 0 : 1;
    }
  }
  return mask;
}

// Running sum and sum of squares of one statistic over the iterations.
struct Moments {
  double sum = 0.0, squares = 0.0;
  void Add(double x) {
    sum += x;
    squares += x * x;
  }
  double Mean(int64_t n) const { return sum / static_cast<double>(n); }
  // 4 standard errors of the mean, from the sample variance.
  double FourSigma(int64_t n) const {
    const double mean = Mean(n);
    const double variance = std::max(0.0, squares / static_cast<double>(n) - mean * mean);
    return 4.0 * std::sqrt(variance / static_cast<double>(n));
  }
};

// Draws kIterations patterns of `site` (index fixed, search result `result`) over a rows x cols
// grid of units and checks the statistics of SPEC 2.6 against p and the search's C_P(d).
void CheckSampledStatistics(DropoutSite site, const SearchResult& result, int64_t rows, int64_t cols) {
  const int64_t units = rows * cols;
  const double p = site.rate;
  std::vector<int64_t> dropped(static_cast<size_t>(units), 0);
  std::vector<Moments> scaled(static_cast<size_t>(units));
  Moments count;
  const int64_t distances = std::min<int64_t>(kCoDropDistances, cols - 1);
  std::vector<Moments> codrop(static_cast<size_t>(distances));
  for (int64_t iteration = 0; iteration < kIterations; ++iteration) {
    site.pattern = SamplePattern(site, result, kSeed, iteration);
    REQUIRE(CheckSitePattern(site).ok());
    const double scale = SiteScale(site);
    const std::vector<uint8_t> mask = DropMask(*site.pattern, rows, cols);
    int64_t dropped_now = 0;
    for (int64_t u = 0; u < units; ++u) {
      dropped[u] += mask[u];
      dropped_now += mask[u];
      scaled[u].Add(mask[u] ? 0.0 : scale);
    }
    count.Add(static_cast<double>(dropped_now));
    for (int64_t d = 1; d <= distances; ++d) {
      int64_t both = 0;
      for (int64_t a = 0; a < rows; ++a)
        for (int64_t c = 0; c + d < cols; ++c) both += mask[a * cols + c] & mask[a * cols + c + d];
      codrop[d - 1].Add(static_cast<double>(both) / static_cast<double>(rows * (cols - d)));
    }
  }

  // Each unit: binomial(n, p) drops; report the worst unit in standard deviations.
  const double sigma = std::sqrt(p * (1.0 - p) / static_cast<double>(kIterations));
  double worst_frequency = 0.0, worst_scaled = 0.0;
  int64_t worst_frequency_unit = 0, worst_scaled_unit = 0;
  for (int64_t u = 0; u < units; ++u) {
    const double frequency = static_cast<double>(dropped[u]) / static_cast<double>(kIterations);
    const double deviation = sigma > 0.0 ? std::abs(frequency - p) / sigma : std::abs(frequency - p) * 1e12;
    if (deviation > worst_frequency) worst_frequency = deviation, worst_frequency_unit = u;
    const double bound = scaled[u].FourSigma(kIterations) + 1e-9;
    const double scaled_deviation = std::abs(scaled[u].Mean(kIterations) - 1.0) / bound * 4.0;
    if (scaled_deviation > worst_scaled) worst_scaled = scaled_deviation, worst_scaled_unit = u;
  }
  INFO("worst unit " << worst_frequency_unit << ": drop frequency "
                     << static_cast<double>(dropped[worst_frequency_unit]) / kIterations << " vs p = " << p);
  CHECK(worst_frequency <= 4.0);
  INFO("worst unit " << worst_scaled_unit << ": mean scaled value " << scaled[worst_scaled_unit].Mean(kIterations));
  CHECK(worst_scaled <= 4.0);
  CHECK(std::abs(count.Mean(kIterations) - p * static_cast<double>(units)) <= count.FourSigma(kIterations) + 1e-9);
  for (int64_t d = 1; d <= distances; ++d) {
    INFO("distance " << d << ": empirical co-drop " << codrop[d - 1].Mean(kIterations) << ", searched C_P(d) "
                     << result.codrop[d - 1]);
    CHECK(std::abs(codrop[d - 1].Mean(kIterations) - result.codrop[d - 1]) <=
          codrop[d - 1].FourSigma(kIterations) + 1e-9);
  }
}

std::shared_ptr<const SearchResult> SearchFor(const Graph& graph, const DropoutSite& site) {
  auto problem = SiteSearchProblem(graph, site);
  INFO(problem.status().ToString());
  REQUIRE(problem.ok());
  // Without the rate-spread term the distributions spread over many candidates, which exercises the
  // sampler more; with it (the default) some C_P(d) are ~1e-5, too rare to observe in kIterations draws.
  SearchOptions options;
  options.spread_weight = 0.0;
  auto result = SearchPatternDistribution(*problem, options);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return *result;
}

TEST_CASE("Sampled row patterns drop every unit with frequency p and co-drop as searched", "[ard][search]") {
  for (bool generalized : {false, true}) {
    for (int64_t width : {7, 50, 333}) {
      for (double p : {0.3, 0.5, 0.7}) {
        for (ScaleMode scaling : {ScaleMode::kPattern, ScaleMode::kNominal}) {
          if (scaling == ScaleMode::kNominal && width != 50) continue;
          Graph g;
          DropoutSite site{.name = "h.drop", .kind = SiteKind::kRow, .width = width, .rate = p, .scaling = scaling};
          site.search.generalized = generalized;
          site.id = g.AddSite(site);
          const auto result = SearchFor(g, site);
          INFO((generalized ? "generalized" : "strided")
               << " width " << width << " p " << p << (scaling == ScaleMode::kNominal ? " nominal scale" : ""));
          CheckSampledStatistics(site, *result, 1, width);
        }
      }
    }
  }
}

TEST_CASE("Sampled tile patterns drop every tile with frequency p and co-drop as searched", "[ard][search]") {
  for (double p : {0.3, 0.5, 0.7}) {
    // W [64, 100] in 4x4 tiles: a 16 x 25 grid (the last tile column is partial).
    Graph g = MakeTiledFc(100, 64, 4, 4, p);
    const DropoutSite& site = g.site(SiteNamed(g, "w.tiles"));
    const auto result = SearchFor(g, site);
    CHECK(result->problem.width == 25);
    INFO("tile p " << p);
    CheckSampledStatistics(site, *result, 16, 25);
  }
}

TEST_CASE("The pattern sampling pass draws each site's pattern and the pipeline follows it", "[ard][search]") {
  Graph mlp = MakeMlp(4, 6, 40, 3);
  Graph tiled = MakeTiledFc(24, 16, 2, 4, 0.5);
  for (Graph* g : {&mlp, &tiled}) {
    auto pass = MakePatternSamplingPass(*g, SearchOptions{});
    INFO(pass.status().ToString());
    REQUIRE(pass.ok());
    REQUIRE((*pass)->sites().size() == 1);
    const SiteDistribution sampled = (*pass)->sites()[0];
    std::vector<std::unique_ptr<Pass>> choose;
    choose.push_back(std::move(*pass));
    PassManager pipeline = MakeIterationPipeline(std::move(choose));
    CHECK(pipeline.pass_names() == std::vector<std::string>{"PatternSampling", "ResolveSites", "ReplanShapes"});
    for (int64_t iteration = 0; iteration < 20; ++iteration) {
      PassContext context;
      context.iteration = iteration;
      context.seed = kSeed;
      context.options.verify_each = true;
      const Status st = pipeline.Run(*g, context);
      INFO(st.ToString());
      REQUIRE(st.ok());
      const DropoutSite& site = g->site(sampled.site);
      REQUIRE(site.pattern.has_value());
      CHECK(*site.pattern == SamplePattern(site, *sampled.result, kSeed, iteration));
      if (g == &mlp) {
        const auto& row = std::get<ops::RowPattern>(*site.pattern);
        const auto& fwd1 = std::get<ops::MatMulAttr>(mlp.node(NodeNamed(mlp, "fc1.fwd")).attr);
        REQUIRE(fwd1.n);
        CHECK(std::get<ops::RowPattern>(fwd1.n->pattern) == row);
        CHECK(mlp.value(testing::Val(mlp, "h1")).live == Shape{4, row.KeptCount(40)});
      } else {
        const auto& tile = std::get<ops::TilePattern>(*site.pattern);
        CHECK(tile.tile_rows == 2);
        CHECK(tile.tile_cols == 4);
        const auto& fc = std::get<ops::MatMulAttr>(tiled.node(NodeNamed(tiled, "fc")).attr);
        REQUIRE(fc.tile);
        CHECK(fc.tile->pattern == tile);
        CHECK(fc.alpha == Approx(static_cast<double>(tile.dp)));
      }
    }
  }
}

TEST_CASE("Patterns are reproducible from the seed and differ between seeds and sites", "[ard][search]") {
  Graph g;
  g.AddSite({.name = "a", .kind = SiteKind::kRow, .width = 64, .rate = 0.5});
  g.AddSite({.name = "b", .kind = SiteKind::kRow, .width = 64, .rate = 0.5});
  auto pass = MakePatternSamplingPass(g, SearchOptions{});
  REQUIRE(pass.ok());
  auto draw = [&](uint64_t seed) {
    Graph copy = g;
    std::vector<ops::DropoutPattern> patterns;
    for (int64_t iteration = 0; iteration < 100; ++iteration) {
      PassContext context;
      context.iteration = iteration;
      context.seed = seed;
      REQUIRE((*pass)->Run(copy, context).ok());
      for (const DropoutSite& site : copy.sites()) patterns.push_back(*site.pattern);
    }
    return patterns;
  };
  const std::vector<ops::DropoutPattern> first = draw(7), again = draw(7), other = draw(8);
  CHECK(first == again);
  CHECK(first != other);
  int64_t same_as_other_site = 0;  // the two sites draw independently: they agree only sometimes
  for (size_t i = 0; i < first.size(); i += 2) same_as_other_site += first[i] == first[i + 1] ? 1 : 0;
  CHECK(same_as_other_site < 50);
}

TEST_CASE("Equal sites share one search and other kinds are left alone", "[ard][search]") {
  Graph g;
  g.AddSite({.name = "a", .kind = SiteKind::kRow, .width = 97, .rate = 0.35});
  g.AddSite({.name = "bernoulli", .kind = SiteKind::kBernoulli, .width = 97, .rate = 0.35});
  g.AddSite({.name = "b", .kind = SiteKind::kRow, .width = 97, .rate = 0.35});
  g.AddSite({.name = "c", .kind = SiteKind::kRow, .width = 97, .rate = 0.65});
  const SearchCacheStats before = GetSearchCacheStats();
  auto pass = MakePatternSamplingPass(g, SearchOptions{});
  REQUIRE(pass.ok());
  const std::vector<SiteDistribution>& sites = (*pass)->sites();
  REQUIRE(sites.size() == 3);
  CHECK(sites[0].site_name == "a");
  CHECK(sites[1].site_name == "b");
  CHECK(sites[2].site_name == "c");
  CHECK(sites[0].result.get() == sites[1].result.get());
  CHECK(sites[0].result.get() != sites[2].result.get());
  CHECK(GetSearchCacheStats().searches == before.searches + 2);
  PassContext context;
  REQUIRE((*pass)->Run(g, context).ok());
  CHECK_FALSE(g.site(SiteNamed(g, "bernoulli")).pattern.has_value());
}

TEST_CASE("A rate-0 site keeps everything and a fixed site keeps one dp at uniform offsets", "[ard][search]") {
  Graph g;
  g.AddSite({.name = "none", .kind = SiteKind::kRow, .width = 32, .rate = 0.0});
  DropoutSite fixed{.name = "fixed", .kind = SiteKind::kRow, .width = 32, .rate = 0.7};
  fixed.search.family = PatternFamily::kFixed;
  g.AddSite(fixed);
  auto pass = MakePatternSamplingPass(g, SearchOptions{});
  REQUIRE(pass.ok());
  std::set<int64_t> offsets;
  for (int64_t iteration = 0; iteration < 200; ++iteration) {
    PassContext context;
    context.iteration = iteration;
    REQUIRE((*pass)->Run(g, context).ok());
    CHECK(*g.site(SiteNamed(g, "none")).pattern == ops::DropoutPattern(ops::RowPattern{1, 1, 0}));
    const auto& row = std::get<ops::RowPattern>(*g.site(SiteNamed(g, "fixed")).pattern);
    CHECK(row.keep == 1);
    CHECK(row.period == 3);
    offsets.insert(row.offset);
  }
  CHECK(offsets == std::set<int64_t>{0, 1, 2});
}

TEST_CASE("The pattern sampling pass fails naming the site", "[ard][search]") {
  SECTION("a rate its candidates cannot reach") {
    Graph g;
    DropoutSite site{.name = "short", .kind = SiteKind::kRow, .width = 64, .rate = 0.8};
    site.search.max_period = 4;
    g.AddSite(site);
    const Status st = MakePatternSamplingPass(g, SearchOptions{}).status();
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::Contains("site 'short'") && Catch::Contains("largest candidate rate"));
  }
  SECTION("a tile site no MatMul tiles") {
    Graph g;
    g.AddSite({.name = "loose", .kind = SiteKind::kTile, .rate = 0.5});
    const Status st = MakePatternSamplingPass(g, SearchOptions{}).status();
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::Contains("site 'loose'") && Catch::Contains("tiles no MatMul"));
  }
  SECTION("a graph without the site the pass was made for") {
    Graph g;
    g.AddSite({.name = "a", .kind = SiteKind::kRow, .width = 8, .rate = 0.5});
    auto pass = MakePatternSamplingPass(g, SearchOptions{});
    REQUIRE(pass.ok());
    Graph other;
    other.AddSite({.name = "b", .kind = SiteKind::kRow, .width = 8, .rate = 0.5});
    PassContext context;
    Status st = (*pass)->Run(other, context);
    CHECK(st.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(st.message(), Catch::Contains("'a'") && Catch::Contains("site 'b'"));
    Graph empty;
    CHECK((*pass)->Run(empty, context).code() == StatusCode::kFailedPrecondition);
    context.iteration = int64_t{1} << 32;
    st = (*pass)->Run(g, context);
    CHECK(st.code() == StatusCode::kOutOfRange);
    CHECK_THAT(st.message(), Catch::Contains("iteration 4294967296"));
  }
}

}  // namespace
}  // namespace sieve::graph
