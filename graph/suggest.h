// "Did you mean ...?" for name lookups: the edit distance between two names and the nearest of a
// set of candidates. Graph lookups (ir.h) use it, and so can any parser that resolves names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sieve::graph {

/// Levenshtein distance: the fewest single-character insertions, deletions and substitutions
/// that turn `a` into `b`.
size_t EditDistance(std::string_view a, std::string_view b);

/// The candidate nearest to `name` by edit distance (the first of equals), or "" when there are
/// no candidates.
std::string NearestName(std::string_view name, const std::vector<std::string>& candidates);

/// " (nearest: 'fc1.w')", or "" when there are no candidates; appended to not-found messages.
std::string NearestSuffix(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace sieve::graph
