// Edit distance with one row of the dynamic-programming table.
#include "framework/suggest.h"

#include <algorithm>
#include <numeric>

namespace sieve {

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
  const int64_t best = NearestIndex(name, static_cast<int64_t>(candidates.size()),
                                    [&](int64_t i) -> std::string_view { return candidates[static_cast<size_t>(i)]; });
  return best < 0 ? std::string() : candidates[static_cast<size_t>(best)];
}

std::string NearestSuffix(std::string_view name, const std::vector<std::string>& candidates) {
  if (candidates.empty()) return std::string();
  return " (nearest: '" + NearestName(name, candidates) + "')";
}

}  // namespace sieve
