// Edit distance with one row of the dynamic-programming table.
#include "graph/suggest.h"

#include <algorithm>
#include <numeric>

namespace sieve::graph {

size_t EditDistance(std::string_view a, std::string_view b) {
  // row[j] = distance between the first i characters of a and the first j of b.
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

std::string NearestName(std::string_view name, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_distance = 0;
  for (const std::string& candidate : candidates) {
    const size_t d = EditDistance(name, candidate);
    if (best == nullptr || d < best_distance) {
      best = &candidate;
      best_distance = d;
    }
  }
  return best == nullptr ? std::string() : *best;
}

std::string NearestSuffix(std::string_view name, const std::vector<std::string>& candidates) {
  if (candidates.empty()) return std::string();
  return " (nearest: '" + NearestName(name, candidates) + "')";
}

}  // namespace sieve::graph
