// Tests of the name-suggestion helpers.
#include "framework/suggest.h"

#include <catch2/catch.hpp>

namespace sieve {
namespace {

TEST_CASE("EditDistance counts insertions, deletions and substitutions", "[framework]") {
  CHECK(EditDistance("kitten", "sitting") == 3);
  CHECK(EditDistance("sitting", "kitten") == 3);
  CHECK(EditDistance("", "abc") == 3);
  CHECK(EditDistance("abc", "") == 3);
  CHECK(EditDistance("", "") == 0);
  CHECK(EditDistance("fc1.w", "fc1.w") == 0);
  CHECK(EditDistance("fc1.w", "fc1.wt") == 1);
  CHECK(EditDistance("flaw", "lawn") == 2);
}

TEST_CASE("NearestName picks the closest candidate, the first of equals", "[framework]") {
  const std::vector<std::string> names = {"fc1.w", "fc2.w", "fc1.b", "conv1.w"};
  CHECK(NearestName("fc2.wt", names) == "fc2.w");
  CHECK(NearestName("fc1.x", names) == "fc1.w");  // fc1.w and fc1.b are both 1 away
  CHECK(NearestName("conv.w", names) == "conv1.w");
  CHECK(NearestName("x", {}).empty());
  CHECK(NearestSuffix("fc3.w", names) == " (nearest: 'fc1.w')");
  CHECK(NearestSuffix("fc3.w", {}).empty());
}

}  // namespace
}  // namespace sieve
