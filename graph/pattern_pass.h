// PatternSamplingPass: the first pass of the per-iteration pipeline (SPEC 2.1, 2.5). Before every
// training iteration it draws the pattern of every row and tile dropout site from the site's
// pattern distribution: a candidate by its probability, an offset uniform in [0, period), both
// from the Philox stream {seed, MakeStreamId(StreamKind::kPattern, site index, iteration)}, so
// a run's patterns are reproducible from its seed and every site and iteration draws
// independently. ResolveSites and ReplanShapes (pass.h) then make the graph follow the patterns.
//
// The distributions are searched once, when the pass is made (MakePatternSamplingPass), one search
// per distinct site signature (graph/pattern_search.h caches them). This is not the search itself,
// and it leaves Bernoulli and channel sites alone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/status.h"
#include "graph/ir.h"
#include "graph/pass.h"
#include "graph/pattern_search.h"
#include "ops/matmul/pattern.h"

namespace sieve::graph {

/// A row or tile site and the distribution its patterns are drawn from.
struct SiteDistribution {
  SiteId site{};
  std::string site_name;
  SearchProblem problem;
  std::shared_ptr<const SearchResult> result;
};

/// The search problem of a row or tile site of `graph`: its kind, rate and search settings, and
/// its width: the units of a row site; for a tile site the tiles along a row of its weight's tile
/// grid, ceil(extent / tile_cols) of the GEMM dimension its first MatMul use tiles by columns.
/// Fails, naming the site, for other kinds and for a tile site that no MatMul tiles.
StatusOr<SearchProblem> SiteSearchProblem(const Graph& graph, const DropoutSite& site);

/// The distribution of every row and tile site of `graph`, in site order; equal signatures share
/// one search. Fails with the first site whose search fails (e.g. a rate its candidates cannot
/// reach).
StatusOr<std::vector<SiteDistribution>> SearchSiteDistributions(const Graph& graph, const SearchOptions& options);

/// The pattern `site` draws at (`seed`, `iteration`) from `result`: the candidate c with
/// F(c-1) <= u < F(c), F the cumulative probabilities and u the stream's first 32-bit word over
/// 2^32, at offset floor(v * period / 2^32), v the second word. A row site gets the RowPattern
/// (keep, period, offset), a tile site the TilePattern (its tile shape, dp = period, offset).
/// `iteration` must be in [0, 2^32) and the site index below 2^24 (framework/rng.h).
ops::DropoutPattern SamplePattern(const DropoutSite& site, const SearchResult& result, uint64_t seed,
                                  int64_t iteration);

/// Sets this iteration's pattern of every site it was made for.
class PatternSamplingPass final : public Pass {
 public:
  explicit PatternSamplingPass(std::vector<SiteDistribution> sites) : sites_(std::move(sites)) {}
  std::string_view name() const override { return "PatternSampling"; }
  /// Fails, naming the site, when the graph no longer has the site it was made for (same index,
  /// name and kind), or the iteration is outside [0, 2^32).
  Status Run(Graph& graph, PassContext& context) override;
  /// The per-site search results, for reporting.
  const std::vector<SiteDistribution>& sites() const { return sites_; }

 private:
  std::vector<SiteDistribution> sites_;
};

/// The pass for `graph`'s row and tile sites (SearchSiteDistributions), ready for
/// MakeIterationPipeline.
StatusOr<std::unique_ptr<PatternSamplingPass>> MakePatternSamplingPass(const Graph& graph,
                                                                       const SearchOptions& options);

}  // namespace sieve::graph
