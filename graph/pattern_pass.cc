// The pattern sampling pass: per-site search problems, the draw of one pattern, and the pass.
#include "graph/pattern_pass.h"

#include <sstream>
#include <utility>

#include "framework/rng.h"

namespace sieve::graph {

namespace {

constexpr int64_t kMaxStreamIteration = int64_t{1} << 32;
constexpr int64_t kMaxStreamSite = int64_t{1} << 24;

// The dense extent of GEMM dimension `dim` of a MatMul node: M and N from the output C, K from A.
StatusOr<int64_t> MatMulExtent(const Graph& graph, const Node& node, ops::Dim dim) {
  const Value& a = graph.value(node.inputs.at(0));
  const Value& c = graph.value(node.outputs.at(0));
  SIEVE_ENSURE(a.planned.size() == 2 && c.planned.size() == 2, StatusCode::kInvalidArgument,
               DescribeNode(node) << ": a tiled MatMul needs 2-D operands, A is " << ShapeToString(a.planned)
                                  << " and C " << ShapeToString(c.planned));
  const auto& attr = std::get<ops::MatMulAttr>(node.attr);
  switch (dim) {
    case ops::Dim::kM:
      return c.planned[0];
    case ops::Dim::kN:
      return c.planned[1];
    default:
      return a.planned[attr.trans_a ? 0 : 1];
  }
}

}  // namespace

StatusOr<SearchProblem> SiteSearchProblem(const Graph& graph, const DropoutSite& site) {
  SIEVE_ENSURE(site.kind == SiteKind::kRow || site.kind == SiteKind::kTile, StatusCode::kInvalidArgument,
               DescribeSite(site) << " draws no row or tile patterns");
  SearchProblem problem;
  problem.kind = site.kind;
  problem.rate = site.rate;
  problem.spec = site.search;
  if (site.kind == SiteKind::kRow) {
    problem.width = site.width;
    return problem;
  }
  for (const Node& node : graph.nodes()) {
    if (node.kind != OpKind::kMatMul) continue;
    for (const SiteUse& use : node.sites) {
      if (use.site != site.id || use.target != SiteTarget::kMatMulTile) continue;
      SIEVE_ASSIGN_OR_RETURN(const int64_t extent, MatMulExtent(graph, node, use.tile_cols));
      SIEVE_ENSURE(site.tile_cols >= 1 && extent >= 1, StatusCode::kInvalidArgument,
                   DescribeSite(site) << " tiles " << DescribeNode(node) << " with tiles of " << site.tile_cols
                                      << " columns over an extent of " << extent);
      problem.width = (extent + site.tile_cols - 1) / site.tile_cols;
      return problem;
    }
  }
  return SIEVE_ERROR(StatusCode::kInvalidArgument,
                     DescribeSite(site) << " tiles no MatMul, so its tile grid (and its search problem) is unknown");
}

StatusOr<std::vector<SiteDistribution>> SearchSiteDistributions(const Graph& graph, const SearchOptions& options) {
  std::vector<SiteDistribution> sites;
  for (const DropoutSite& site : graph.sites()) {
    if (site.kind != SiteKind::kRow && site.kind != SiteKind::kTile) continue;
    SIEVE_ENSURE(Index(site.id) < kMaxStreamSite, StatusCode::kOutOfRange,
                 DescribeSite(site) << ": pattern streams number at most " << kMaxStreamSite << " sites");
    SIEVE_ASSIGN_OR_RETURN(SearchProblem problem, SiteSearchProblem(graph, site));
    auto result = SearchPatternDistribution(problem, options);
    if (!result.ok()) return Status(result.status().code(), DescribeSite(site) + ": " + result.status().message());
    sites.push_back(SiteDistribution{site.id, site.name, problem, std::move(result).value()});
  }
  return sites;
}

ops::DropoutPattern SamplePattern(const DropoutSite& site, const SearchResult& result, uint64_t seed,
                                  int64_t iteration) {
  SIEVE_CHECK(iteration >= 0 && iteration < kMaxStreamIteration, "iteration " << iteration);
  const RandomStream stream{seed, MakeStreamId(StreamKind::kPattern, static_cast<uint64_t>(Index(site.id)),
                                               static_cast<uint64_t>(iteration))};
  const PhiloxBlock bits = stream.Block(0);
  const double u = static_cast<double>(bits.x[0]) * 0x1p-32;
  // The last candidate with positive probability takes u beyond the rounded-down total.
  size_t chosen = result.candidates.size();
  double cumulative = 0.0;
  for (size_t c = 0; c < result.candidates.size(); ++c) {
    if (result.probabilities[c] <= 0.0) continue;
    chosen = c;
    cumulative += result.probabilities[c];
    if (u < cumulative) break;
  }
  SIEVE_CHECK(chosen < result.candidates.size(), DescribeSite(site) << ": its distribution has no mass");
  const PatternCandidate& candidate = result.candidates[chosen];
  const int64_t offset =
      static_cast<int64_t>((static_cast<uint64_t>(bits.x[1]) * static_cast<uint64_t>(candidate.period)) >> 32);
  if (site.kind == SiteKind::kTile) return ops::TilePattern{site.tile_rows, site.tile_cols, candidate.period, offset};
  return ops::RowPattern{candidate.keep, candidate.period, offset};
}

Status PatternSamplingPass::Run(Graph& graph, PassContext& context) {
  SIEVE_ENSURE(context.iteration >= 0 && context.iteration < kMaxStreamIteration, StatusCode::kOutOfRange,
               "pattern sampling: iteration " << context.iteration << " is outside the pattern streams' [0, 2^32)");
  for (const SiteDistribution& entry : sites_) {
    SIEVE_ENSURE(graph.has_site(entry.site), StatusCode::kFailedPrecondition,
                 "pattern sampling: the graph has no site $" << Index(entry.site) << " ('" << entry.site_name
                                                             << "'), which the pass was made for");
    const DropoutSite& site = graph.site(entry.site);
    SIEVE_ENSURE(site.name == entry.site_name && site.kind == entry.problem.kind, StatusCode::kFailedPrecondition,
                 "pattern sampling: the pass was made for a " << SiteKindName(entry.problem.kind) << " site '"
                                                              << entry.site_name << "' at $" << Index(entry.site)
                                                              << ", but the graph has " << DescribeSite(site));
    graph.SetSitePattern(entry.site, SamplePattern(site, *entry.result, context.seed, context.iteration));
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<PatternSamplingPass>> MakePatternSamplingPass(const Graph& graph,
                                                                       const SearchOptions& options) {
  SIEVE_ASSIGN_OR_RETURN(std::vector<SiteDistribution> sites, SearchSiteDistributions(graph, options));
  return std::make_unique<PatternSamplingPass>(std::move(sites));
}

}  // namespace sieve::graph
