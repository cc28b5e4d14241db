// The pattern-distribution search: candidates, the loss and its gradient, Adam, the rate
// projection, the process-wide cache and the printed table.
#include "graph/pattern_search.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <utility>

namespace sieve::graph {

namespace {

// The loss of SPEC 2.5 for one problem, with everything that does not depend on P precomputed.
// C_P(d) is a sum of per-candidate functions periodic in d, so it is evaluated per distinct
// period T over the residues d mod T: the cost per evaluation is O(Dmax * #periods +
// sum of periods), not O(Dmax * #candidates).
class Objective {
 public:
  static StatusOr<Objective> Make(const SearchProblem& problem, const SearchOptions& options) {
    Objective o;
    o.problem_ = problem;
    o.options_ = options;
    SIEVE_ASSIGN_OR_RETURN(o.candidates_, PatternCandidates(problem.kind, problem.width, problem.spec.max_period,
                                                            problem.spec.generalized));
    for (const PatternCandidate& c : o.candidates_) {
      auto it = std::find(o.periods_.begin(), o.periods_.end(), c.period);
      if (it == o.periods_.end()) it = o.periods_.insert(o.periods_.end(), c.period);
      o.period_index_.push_back(static_cast<int>(it - o.periods_.begin()));
      std::vector<double> table(static_cast<size_t>(c.period));
      for (int64_t residue = 0; residue < c.period; ++residue) table[residue] = c.CoDrop(residue);
      o.codrop_tables_.push_back(std::move(table));
    }
    int64_t max_distance = problem.width - 1;
    if (options.max_distance > 0) max_distance = std::min(max_distance, options.max_distance);
    double total = 0.0;
    for (int64_t d = 1; d <= max_distance; ++d) {
      o.weights_.push_back(static_cast<double>(problem.width - d));
      total += o.weights_.back();
    }
    for (double& w : o.weights_) w /= total;
    return o;
  }

  const std::vector<PatternCandidate>& candidates() const { return candidates_; }
  const std::vector<double>& weights() const { return weights_; }
  int64_t num_distances() const { return static_cast<int64_t>(weights_.size()); }

  // E_P[r].
  double Rate(std::span<const double> probs) const {
    double rate = 0.0;
    for (size_t c = 0; c < candidates_.size(); ++c) rate += probs[c] * candidates_[c].rate();
    return rate;
  }

  // C_P(d) for d = 1..Dmax.
  std::vector<double> CoDrop(std::span<const double> probs) const {
    std::vector<std::vector<double>> mixed(periods_.size());  // per period: sum of P_c C_c(residue)
    for (size_t t = 0; t < periods_.size(); ++t) mixed[t].assign(static_cast<size_t>(periods_[t]), 0.0);
    for (size_t c = 0; c < candidates_.size(); ++c)
      for (size_t residue = 0; residue < codrop_tables_[c].size(); ++residue)
        mixed[period_index_[c]][residue] += probs[c] * codrop_tables_[c][residue];
    std::vector<double> codrop(weights_.size(), 0.0);
    for (size_t t = 0; t < periods_.size(); ++t) {
      int64_t residue = 1 % periods_[t];
      for (double& value : codrop) {
        value += mixed[t][residue];
        if (++residue == periods_[t]) residue = 0;
      }
    }
    return codrop;
  }

  // E_P[(r - p)^2]: the mean squared distance of the drawn pattern's rate from p.
  double Spread(std::span<const double> probs) const {
    double spread = 0.0;
    for (size_t c = 0; c < candidates_.size(); ++c) {
      const double offset = candidates_[c].rate() - problem_.rate;
      spread += probs[c] * offset * offset;
    }
    return spread;
  }

  // H(P) in nats; log_probs[c] is log P_c (only read where P_c > 0).
  static double Entropy(std::span<const double> probs, std::span<const double> log_probs) {
    double entropy = 0.0;
    for (size_t c = 0; c < probs.size(); ++c)
      if (probs[c] > 0.0) entropy -= probs[c] * log_probs[c];
    return entropy;
  }

  // L at P. With `dloss_dprobs`, also dL/dP_c (which needs every P_c > 0).
  double Loss(std::span<const double> probs, std::span<const double> log_probs,
              std::vector<double>* dloss_dprobs) const {
    const double p = problem_.rate, p2 = p * p;
    const double rate_gap = Rate(probs) - p;
    const std::vector<double> codrop = CoDrop(probs);
    double codrop_term = 0.0;
    for (size_t d = 0; d < codrop.size(); ++d) codrop_term += weights_[d] * (codrop[d] - p2) * (codrop[d] - p2);
    const double loss = options_.rate_weight * rate_gap * rate_gap + options_.codrop_weight * codrop_term +
                        options_.spread_weight * Spread(probs) - options_.entropy_weight * Entropy(probs, log_probs);
    if (dloss_dprobs == nullptr) return loss;

    // Per period: G(residue) = sum over d = residue (mod T) of pi_d (C_P(d) - p^2).
    std::vector<std::vector<double>> folded(periods_.size());
    for (size_t t = 0; t < periods_.size(); ++t) {
      folded[t].assign(static_cast<size_t>(periods_[t]), 0.0);
      int64_t residue = 1 % periods_[t];
      for (size_t d = 0; d < codrop.size(); ++d) {
        folded[t][residue] += weights_[d] * (codrop[d] - p2);
        if (++residue == periods_[t]) residue = 0;
      }
    }
    dloss_dprobs->assign(candidates_.size(), 0.0);
    for (size_t c = 0; c < candidates_.size(); ++c) {
      double codrop_grad = 0.0;
      for (size_t residue = 0; residue < codrop_tables_[c].size(); ++residue)
        codrop_grad += codrop_tables_[c][residue] * folded[period_index_[c]][residue];
      const double offset = candidates_[c].rate() - p;
      (*dloss_dprobs)[c] = 2.0 * options_.rate_weight * rate_gap * candidates_[c].rate() +
                           2.0 * options_.codrop_weight * codrop_grad + options_.spread_weight * offset * offset +
                           options_.entropy_weight * (log_probs[c] + 1.0);
    }
    return loss;
  }

  // L(softmax(logits)) and dL/dlogits.
  double LossOfLogits(std::span<const double> logits, std::vector<double>* gradient) const {
    std::vector<double> probs, log_probs;
    Softmax(logits, &probs, &log_probs);
    std::vector<double> dprobs;
    const double loss = Loss(probs, log_probs, gradient ? &dprobs : nullptr);
    if (gradient != nullptr) {
      // Through the softmax: dL/dtheta_j = P_j (dL/dP_j - sum_c P_c dL/dP_c).
      double mean = 0.0;
      for (size_t c = 0; c < probs.size(); ++c) mean += probs[c] * dprobs[c];
      gradient->resize(probs.size());
      for (size_t c = 0; c < probs.size(); ++c) (*gradient)[c] = probs[c] * (dprobs[c] - mean);
    }
    return loss;
  }

  static void Softmax(std::span<const double> logits, std::vector<double>* probs, std::vector<double>* log_probs) {
    const double top = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (double l : logits) sum += std::exp(l - top);
    const double log_sum = top + std::log(sum);
    probs->resize(logits.size());
    log_probs->resize(logits.size());
    for (size_t c = 0; c < logits.size(); ++c) {
      (*log_probs)[c] = logits[c] - log_sum;
      (*probs)[c] = std::exp((*log_probs)[c]);
    }
  }

 private:
  SearchProblem problem_;
  SearchOptions options_;
  std::vector<PatternCandidate> candidates_;
  std::vector<int64_t> periods_;                    // the distinct periods, in order of first appearance
  std::vector<int> period_index_;                   // per candidate: its period's index in periods_
  std::vector<std::vector<double>> codrop_tables_;  // per candidate: C_c(residue), residue in [0, period)
  std::vector<double> weights_;                     // pi_d, d = 1..Dmax
};

std::string Describe(const SearchProblem& problem) {
  std::ostringstream os;
  os << SiteKindName(problem.kind) << " site of width " << problem.width << " at rate " << problem.rate << " ("
     << PatternFamilyName(problem.spec.family) << ", max period " << problem.spec.max_period
     << (problem.spec.generalized ? ", generalized" : "") << ")";
  return os.str();
}

Status CheckProblem(const SearchProblem& problem, const SearchOptions& options) {
  SIEVE_ENSURE(problem.kind == SiteKind::kRow || problem.kind == SiteKind::kTile, StatusCode::kInvalidArgument,
               "pattern search for a " << Describe(problem) << ": only row and tile sites draw patterns");
  SIEVE_ENSURE(problem.rate >= 0.0 && problem.rate < 1.0, StatusCode::kInvalidArgument,
               "pattern search for a " << Describe(problem) << ": the rate must be in [0, 1)");
  SIEVE_ENSURE(problem.spec.family == PatternFamily::kSearched || problem.spec.family == PatternFamily::kFixed,
               StatusCode::kInvalidArgument, "pattern search for a " << Describe(problem) << ": unknown family");
  SIEVE_ENSURE(!problem.spec.generalized || problem.kind == SiteKind::kRow, StatusCode::kInvalidArgument,
               "pattern search for a " << Describe(problem) << ": generalized (k, T) patterns are row patterns");
  SIEVE_ENSURE(options.steps >= 0 && options.learning_rate > 0.0 && options.beta1 >= 0.0 && options.beta1 < 1.0 &&
                   options.beta2 >= 0.0 && options.beta2 < 1.0 && options.epsilon > 0.0 && options.rate_weight >= 0.0 &&
                   options.codrop_weight >= 0.0 && options.spread_weight >= 0.0 && options.entropy_weight >= 0.0,
               StatusCode::kInvalidArgument,
               "pattern search for a " << Describe(problem)
                                       << ": the options need steps >= 0, learning rate > 0, betas in [0, 1), "
                                          "epsilon > 0 and non-negative loss weights");
  return Status::Ok();
}

// Adam on the logits from zero: the deterministic search of SPEC 2.5. Returns the logits.
std::vector<double> Descend(const Objective& objective, const SearchOptions& options) {
  const size_t n = objective.candidates().size();
  std::vector<double> theta(n, 0.0), m(n, 0.0), v(n, 0.0), grad;
  double beta1_power = 1.0, beta2_power = 1.0;
  for (int64_t step = 0; step < options.steps; ++step) {
    objective.LossOfLogits(theta, &grad);
    beta1_power *= options.beta1;
    beta2_power *= options.beta2;
    for (size_t c = 0; c < n; ++c) {
      m[c] = options.beta1 * m[c] + (1.0 - options.beta1) * grad[c];
      v[c] = options.beta2 * v[c] + (1.0 - options.beta2) * grad[c] * grad[c];
      const double m_hat = m[c] / (1.0 - beta1_power), v_hat = v[c] / (1.0 - beta2_power);
      theta[c] -= options.learning_rate * m_hat / (std::sqrt(v_hat) + options.epsilon);
    }
  }
  return theta;
}

// The distribution nearest P (in KL divergence) whose mean rate is p: P_c exp(lambda r_c),
// normalised, with lambda found by bisection (the mean rate increases with lambda). p must lie in
// [min rate, max rate]; at an end, lambda runs off until the other candidates underflow to zero.
void EnforceRate(const Objective& objective, double p, std::vector<double>* logits) {
  const std::vector<PatternCandidate>& candidates = objective.candidates();
  auto rate_at = [&](double lambda, std::vector<double>* probs) {
    std::vector<double> tilted(*logits), log_probs;
    for (size_t c = 0; c < tilted.size(); ++c) tilted[c] += lambda * candidates[c].rate();
    Objective::Softmax(tilted, probs, &log_probs);
    return objective.Rate(*probs);
  };
  constexpr double kLambdaLimit = 1e6;
  std::vector<double> probs;
  double lo = -1.0, hi = 1.0;
  while (rate_at(lo, &probs) > p && lo > -kLambdaLimit) lo *= 2.0;
  while (rate_at(hi, &probs) < p && hi < kLambdaLimit) hi *= 2.0;
  for (int iteration = 0; iteration < 200 && hi - lo > 1e-13 * std::max(1.0, std::abs(lo)); ++iteration) {
    const double mid = 0.5 * (lo + hi);
    (rate_at(mid, &probs) < p ? lo : hi) = mid;
  }
  const double lambda = std::abs(rate_at(lo, &probs) - p) <= std::abs(rate_at(hi, &probs) - p) ? lo : hi;
  for (size_t c = 0; c < logits->size(); ++c) (*logits)[c] += lambda * candidates[c].rate();
}

// Everything a SearchResult reports about P.
SearchResult Measure(const Objective& objective, const SearchProblem& problem, const SearchOptions& options,
                     std::vector<double> probs) {
  SearchResult result;
  result.problem = problem;
  result.options = options;
  result.candidates = objective.candidates();
  std::vector<double> log_probs(probs.size());
  for (size_t c = 0; c < probs.size(); ++c) log_probs[c] = probs[c] > 0.0 ? std::log(probs[c]) : 0.0;
  result.achieved_rate = objective.Rate(probs);
  result.rate_error = std::abs(result.achieved_rate - problem.rate);
  result.codrop = objective.CoDrop(probs);
  result.distance_weights = objective.weights();
  const double p2 = problem.rate * problem.rate;
  double squared = 0.0;
  for (size_t d = 0; d < result.codrop.size(); ++d) {
    const double error = std::abs(result.codrop[d] - p2);
    squared += result.distance_weights[d] * error * error;
    if (error > result.max_codrop_error) {
      result.max_codrop_error = error;
      result.worst_distance = static_cast<int64_t>(d) + 1;
    }
  }
  result.codrop_error = std::sqrt(squared);
  result.rate_spread = std::sqrt(objective.Spread(probs));
  result.entropy = Objective::Entropy(probs, log_probs);
  result.loss = objective.Loss(probs, log_probs, nullptr);
  result.initial_loss = objective.LossOfLogits(std::vector<double>(probs.size(), 0.0), nullptr);
  result.probabilities = std::move(probs);
  return result;
}

StatusOr<SearchResult> Search(const SearchProblem& problem, const SearchOptions& options) {
  SIEVE_RETURN_IF_ERROR(CheckProblem(problem, options));
  SIEVE_ASSIGN_OR_RETURN(const Objective objective, Objective::Make(problem, options));
  const std::vector<PatternCandidate>& candidates = objective.candidates();
  double max_rate = 0.0;
  for (const PatternCandidate& c : candidates) max_rate = std::max(max_rate, c.rate());
  SIEVE_ENSURE(problem.rate <= max_rate, StatusCode::kInvalidArgument,
               "pattern search for a " << Describe(problem) << ": the largest candidate rate is " << max_rate << " ("
                                       << candidates.back().ToString()
                                       << "); raise the max period (rate p needs a period >= 1 / (1 - p))");

  std::vector<double> probs(candidates.size(), 0.0);
  if (problem.spec.family == PatternFamily::kFixed) {
    size_t nearest = 0;  // candidates ascend by period, so the first nearest has the smallest period
    for (size_t c = 1; c < candidates.size(); ++c)
      if (std::abs(candidates[c].rate() - problem.rate) < std::abs(candidates[nearest].rate() - problem.rate))
        nearest = c;
    probs[nearest] = 1.0;
  } else {
    std::vector<double> logits = Descend(objective, options);
    EnforceRate(objective, problem.rate, &logits);
    std::vector<double> log_probs;
    Objective::Softmax(logits, &probs, &log_probs);
  }
  SearchResult result = Measure(objective, problem, options, std::move(probs));
  SIEVE_CHECK(problem.spec.family == PatternFamily::kFixed || result.rate_error <= kSearchRateTolerance,
              "the rate projection missed for a " << Describe(problem) << ": achieved " << result.achieved_rate);
  return result;
}

// The cache key: every field of the problem and the options.
using CacheKey = std::tuple<int, int64_t, double, int, int64_t, bool, double, double, double, double, int64_t, int64_t,
                            double, double, double, double>;

CacheKey KeyOf(const SearchProblem& p, const SearchOptions& o) {
  return std::make_tuple(static_cast<int>(p.kind), p.width, p.rate, static_cast<int>(p.spec.family), p.spec.max_period,
                         p.spec.generalized, o.rate_weight, o.codrop_weight, o.spread_weight, o.entropy_weight,
                         o.max_distance, o.steps, o.learning_rate, o.beta1, o.beta2, o.epsilon);
}

struct SearchCache {
  std::mutex mutex;
  std::map<CacheKey, std::shared_ptr<const SearchResult>> results;
  SearchCacheStats stats;
};

SearchCache& Cache() {
  static SearchCache* cache = new SearchCache;  // never destroyed: usable until the process ends
  return *cache;
}

// "0.5000" style fixed-point, for the table.
std::string Fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string Scientific(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1e", value);
  return buffer;
}

}  // namespace

double PatternCandidate::CoDrop(int64_t distance) const {
  const int64_t dropped = period - keep;
  const int64_t delta = ((distance % period) + period) % period;
  const int64_t both = std::max<int64_t>(0, dropped - delta) + std::max<int64_t>(0, dropped - period + delta);
  return static_cast<double>(both) / static_cast<double>(period);
}

std::string PatternCandidate::ToString() const {
  if (keep == 1) return "dp=" + std::to_string(period);
  return "k=" + std::to_string(keep) + ",T=" + std::to_string(period);
}

StatusOr<std::vector<PatternCandidate>> PatternCandidates(SiteKind kind, int64_t width, int64_t max_period,
                                                          bool generalized) {
  SIEVE_ENSURE(kind == SiteKind::kRow || kind == SiteKind::kTile, StatusCode::kInvalidArgument,
               "pattern candidates: a " << SiteKindName(kind) << " site draws no row or tile patterns");
  SIEVE_ENSURE(max_period >= 1 && width >= 1, StatusCode::kInvalidArgument,
               "pattern candidates for a " << SiteKindName(kind) << " site: max period " << max_period << " and width "
                                           << width << " must be at least 1");
  SIEVE_ENSURE(!generalized || kind == SiteKind::kRow, StatusCode::kInvalidArgument,
               "pattern candidates: generalized (k, T) patterns are row patterns, not " << SiteKindName(kind));
  const int64_t longest = std::min(max_period, width);
  std::vector<PatternCandidate> candidates;
  candidates.push_back({1, 1});
  for (int64_t period = 2; period <= longest; ++period) {
    if (!generalized) {
      candidates.push_back({1, period});
      continue;
    }
    for (int64_t keep = 1; keep < period; ++keep) candidates.push_back({keep, period});
  }
  return candidates;
}

StatusOr<std::shared_ptr<const SearchResult>> SearchPatternDistribution(const SearchProblem& problem,
                                                                        const SearchOptions& options) {
  SearchCache& cache = Cache();
  const CacheKey key = KeyOf(problem, options);
  // One lock over lookup and search: a second caller with the same signature waits for the
  // first one's result instead of searching again.
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (auto it = cache.results.find(key); it != cache.results.end()) {
    ++cache.stats.hits;
    return it->second;
  }
  SIEVE_ASSIGN_OR_RETURN(SearchResult result, Search(problem, options));
  ++cache.stats.searches;
  auto shared = std::make_shared<const SearchResult>(std::move(result));
  cache.results.emplace(key, shared);
  return shared;
}

StatusOr<double> SearchLoss(const SearchProblem& problem, const SearchOptions& options, std::span<const double> logits,
                            std::vector<double>* gradient) {
  SIEVE_RETURN_IF_ERROR(CheckProblem(problem, options));
  SIEVE_ASSIGN_OR_RETURN(const Objective objective, Objective::Make(problem, options));
  SIEVE_ENSURE(logits.size() == objective.candidates().size(), StatusCode::kInvalidArgument,
               "search loss for a " << Describe(problem) << ": " << logits.size() << " logits for "
                                    << objective.candidates().size() << " candidates");
  return objective.LossOfLogits(logits, gradient);
}

SearchCacheStats GetSearchCacheStats() {
  SearchCache& cache = Cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.stats;
}

const char* PatternFamilyName(PatternFamily family) {
  switch (family) {
    case PatternFamily::kSearched:
      return "searched";
    case PatternFamily::kFixed:
      return "fixed";
  }
  return "?";
}

std::string FormatSearchTable(const SearchResult& result) {
  const SearchProblem& problem = result.problem;
  const SearchOptions& options = result.options;
  const double p = problem.rate;
  std::ostringstream os;
  os << "pattern search: " << SiteKindName(problem.kind) << " site, "
     << (problem.kind == SiteKind::kTile ? "tiles per row " : "width ") << problem.width << ", target rate p = " << p
     << ", " << PatternFamilyName(problem.spec.family) << " family, "
     << (problem.spec.generalized ? "generalized (k, T), T <= " : "dp <= ") << result.candidates.back().period << " ("
     << result.candidates.size() << " candidates)\n";
  if (problem.spec.family == PatternFamily::kSearched)
    os << "loss: w_r " << options.rate_weight << ", w_c " << options.codrop_weight << ", w_s " << options.spread_weight
       << ", w_h " << options.entropy_weight << "; Adam " << options.steps << " steps, lr " << options.learning_rate
       << "; loss " << Scientific(result.initial_loss) << " (uniform) -> " << Scientific(result.loss) << "\n";
  os << "distances d = 1.." << result.codrop.size() << ", weights pi_d ~ (" << problem.width << " - d)\n";
  os << "  pattern      rate     probability\n";
  double rest = 0.0;
  int64_t rest_count = 0;
  for (size_t c = 0; c < result.candidates.size(); ++c) {
    if (result.probabilities[c] < 1e-3) {
      rest += result.probabilities[c];
      ++rest_count;
      continue;
    }
    std::string name = result.candidates[c].ToString();
    name.resize(std::max<size_t>(name.size(), 11), ' ');
    os << "  " << name << "  " << Fixed(result.candidates[c].rate(), 4) << "   " << Fixed(result.probabilities[c], 4)
       << "\n";
  }
  if (rest_count > 0) os << "  (" << rest_count << " more below 0.001, together " << Fixed(rest, 4) << ")\n";
  os << "achieved rate " << Fixed(result.achieved_rate, 6) << " (error " << Scientific(result.rate_error)
     << "), per-batch rate std " << Fixed(result.rate_spread, 4) << "; co-drop error " << Fixed(result.codrop_error, 4)
     << " RMS, " << Fixed(result.max_codrop_error, 4) << " max (d = " << result.worst_distance << "); entropy "
     << Fixed(result.entropy, 3) << " nats (max " << Fixed(std::log(static_cast<double>(result.candidates.size())), 3)
     << ")\n";
  if (!result.codrop.empty()) {
    os << "C_P(d) vs p^2 = " << Fixed(p * p, 4) << ":";
    const size_t shown = std::min<size_t>(result.codrop.size(), 8);
    for (size_t d = 0; d < shown; ++d) os << "  d=" << d + 1 << " " << Fixed(result.codrop[d], 4);
    os << "\n";
  }
  return os.str();
}

}  // namespace sieve::graph
