// The pattern-distribution search of SPEC 2.5. For a row or tile dropout site (its width, target
// rate p and pattern settings) it finds a probability distribution P over candidate patterns such
// that a pattern drawn from P, at a uniform offset, drops every unit with probability p and drops
// two units together about as often as independent dropout would (p^2). It minimises
//
//   L(theta) = w_r (E_P[r] - p)^2 + w_c sum_d pi_d (C_P(d) - p^2)^2 + w_s sum_j P_j (r_j - p)^2 - w_h H(P),
//   P = softmax(theta)
//
// The spread term w_s E_P[(r - p)^2] keeps the rate of each drawn pattern near p: one pattern is
// drawn per batch, so without it a distribution can meet the mean rate by mixing batches that drop
// nothing with batches dropped hard (and scaled up a lot), which trains worse than Bernoulli dropout,
// whose per-batch rate barely varies (docs/accuracy/ard_mlp.md).
//
// with Adam from theta = 0 for a fixed number of steps (so it is deterministic), then enforces the
// rate constraint exactly by the smallest change of P that meets it (an exponential tilt along the
// candidates' rates). Results are cached per site signature in a process-wide cache, so equal
// sites search once. docs/pattern_search.md explains the candidates, the distance weights and the
// settings, with the table for the MLP's widths.
//
// This is not the sampler: PatternSamplingPass (graph/pattern_pass.h) draws each iteration's
// pattern from these distributions. PatternFamily and PatternSearchSpec, the per-site settings,
// are declared in graph/ir.h beside DropoutSite and come with this header.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "framework/status.h"
#include "graph/ir.h"

namespace sieve::graph {

/// A candidate pattern up to its offset: keeps `keep` of every `period` units (row (k, T); the
/// strided row pattern dp and the tile pattern dp are (1, dp)). Drawn with an offset uniform in
/// [0, period), it drops every unit with probability rate() and no unit is special.
struct PatternCandidate {
  int64_t keep = 1;
  int64_t period = 1;

  /// 1 - keep / period.
  double rate() const { return 1.0 - static_cast<double>(keep) / static_cast<double>(period); }
  /// C(d): the probability that two units `distance` apart are both dropped, at a uniform offset.
  /// The dropped units of one period form a cyclic run of m = period - keep, so with
  /// delta = distance mod period, C(d) = (max(0, m - delta) + max(0, m - period + delta)) / period.
  /// For tile patterns, `distance` counts tiles along a row (or a column) of the tile grid.
  double CoDrop(int64_t distance) const;
  /// "dp=3" for keep 1, else "k=2,T=5".
  std::string ToString() const;
  friend bool operator==(const PatternCandidate&, const PatternCandidate&) = default;
};

/// The candidates of a site, by ascending period, then keep:
///   row:              dp = 1..D (keep 1, period dp);
///   row, generalized: (1, 1) and every (k, T) with 1 <= k < T <= D (the (T, T) patterns all
///                     keep everything, so (1, 1) stands for them);
///   tile:             dp = 1..D.
/// D is max_period capped at `width` (units of a row site, tiles along a row of the tile grid),
/// so that every pattern keeps at least one unit (or one tile per tile row) at every offset.
/// Fails when max_period or width is below 1.
StatusOr<std::vector<PatternCandidate>> PatternCandidates(SiteKind kind, int64_t width, int64_t max_period,
                                                          bool generalized);

/// What a search is about: the signature of a site.
struct SearchProblem {
  SiteKind kind = SiteKind::kRow;  ///< kRow or kTile
  /// Row sites: the number of units. Tile sites: the number of tiles along a row of the weight's
  /// tile grid. Sets the candidates' largest period and the distance weights.
  int64_t width = 0;
  double rate = 0.5;  ///< the target drop rate p, 0 <= p < 1
  PatternSearchSpec spec;
};

/// The loss weights and the optimiser (docs/pattern_search.md says why these defaults).
struct SearchOptions {
  double rate_weight = 1.0;    ///< w_r
  double codrop_weight = 1.0;  ///< w_c
  /// w_s, on E_P[(r - p)^2], the spread of the per-batch drop rate around p.
  double spread_weight = 5.0;
  double entropy_weight = 1e-3;  ///< w_h
  /// Distances d = 1..Dmax enter the co-drop term, Dmax = width - 1 capped at this when positive.
  /// Their weights pi_d are proportional to width - d, the number of unit pairs d apart.
  int64_t max_distance = 0;
  int64_t steps = 2000;  ///< Adam steps from theta = 0
  double learning_rate = 0.05;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
};

/// The rate constraint the search guarantees: |E_P[r] - p| <= this (SPEC 2.5).
inline constexpr double kSearchRateTolerance = 1e-3;

/// A site's pattern distribution and how well it does.
struct SearchResult {
  SearchProblem problem;
  SearchOptions options;
  std::vector<PatternCandidate> candidates;
  std::vector<double> probabilities;     ///< P, one per candidate, summing to 1
  std::vector<double> distance_weights;  ///< pi_d for d = 1..Dmax (index d - 1), summing to 1
  std::vector<double> codrop;            ///< C_P(d) for d = 1..Dmax (index d - 1)
  double achieved_rate = 0.0;            ///< E_P[r]
  double rate_error = 0.0;               ///< |E_P[r] - p|
  /// sqrt(sum_d pi_d (C_P(d) - p^2)^2): the weighted RMS distance from independent dropout.
  double codrop_error = 0.0;
  /// sqrt(E_P[(r - p)^2]): the RMS of the drawn pattern's (per-batch) rate around p; the std of the
  /// per-batch rate whenever the rate constraint holds (Bernoulli dropout: about sqrt(p(1-p)/width)).
  double rate_spread = 0.0;
  double max_codrop_error = 0.0;  ///< max_d |C_P(d) - p^2|
  int64_t worst_distance = 0;     ///< the d of max_codrop_error (0 when there is no distance)
  double entropy = 0.0;           ///< H(P) in nats
  double loss = 0.0;              ///< L at P
  double initial_loss = 0.0;      ///< L at the uniform P the optimiser starts from
};

/// The distribution for `problem`: searched (PatternFamily::kSearched), or the one candidate whose
/// rate is nearest p, the smaller period on a tie (kFixed; for generalized rows this is the
/// shortest (k, T) nearest p, so p = 0.3 gets (7, 10) with D >= 10). Cached: equal (problem,
/// options) return the same object, computed once per process; safe to call from any thread.
/// Fails, naming the problem, when p is outside [0, 1), the kind is not row or tile, the
/// candidates cannot be formed, or p exceeds the largest candidate rate (p = 0.7 needs D >= 4).
StatusOr<std::shared_ptr<const SearchResult>> SearchPatternDistribution(const SearchProblem& problem,
                                                                        const SearchOptions& options);

/// L(softmax(logits)) for `problem` (its candidates, in PatternCandidates order) and, when
/// `gradient` is given, dL/dlogits. What the optimiser descends; exposed for tests.
StatusOr<double> SearchLoss(const SearchProblem& problem, const SearchOptions& options, std::span<const double> logits,
                            std::vector<double>* gradient = nullptr);

/// How often the cache answered (for tests and the trainer's log).
struct SearchCacheStats {
  int64_t searches = 0;  ///< distributions computed
  int64_t hits = 0;      ///< calls answered from the cache
};
SearchCacheStats GetSearchCacheStats();

/// The table `sieve search` prints: the problem, the settings, the candidates with probability
/// >= 0.001 (the rest summed in one line), the achieved rate and its per-batch spread, the co-drop
/// error, the entropy and C_P(d) for the first distances.
std::string FormatSearchTable(const SearchResult& result);

/// "searched" / "fixed".
const char* PatternFamilyName(PatternFamily family);

}  // namespace sieve::graph
