// "Did you mean ...?" for name lookups: the edit distance between two names and the nearest of a
// set of candidates, for every not-found message: graph lookups, the parameter arena, parsers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sieve {

/// Levenshtein distance: the fewest single-character insertions, deletions and substitutions
/// that turn `a` into `b`.
size_t EditDistance(std::string_view a, std::string_view b);

/// The index of the candidate nearest to `name` by edit distance (the first of equals), or -1
/// when count == 0; `name_of(i)` returns candidate i as something convertible to string_view.
template <typename NameOf>
int64_t NearestIndex(std::string_view name, int64_t count, NameOf&& name_of) {
  int64_t best = -1;
  size_t best_distance = 0;
  for (int64_t i = 0; i < count; ++i) {
    const size_t d = EditDistance(name, name_of(i));
    if (best < 0 || d < best_distance) {
      best = i;
      best_distance = d;
    }
  }
  return best;
}

/// The candidate nearest to `name` by edit distance (the first of equals), or "" when there are
/// no candidates.
std::string NearestName(std::string_view name, const std::vector<std::string>& candidates);

/// " (nearest: 'fc1.w')", or "" when there are no candidates; appended to not-found messages.
std::string NearestSuffix(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace sieve
