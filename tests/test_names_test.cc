// Guards the test suite itself: ctest runs each Catch2 case by name through CMake lists and Catch
// test specs. A bracket or semicolon in a name merges CMake list entries, and '~', '*', '\' or '"'
// change what the spec selects, so ctest could run a different set of cases than it reports.
// (Commas are escaped by catch_discover_tests and are fine. Each entry also runs with
// --warn NoTests, so an entry that selects nothing fails instead of passing.)
#include <catch2/catch.hpp>

#include <string>

TEST_CASE("every test name is safe for ctest discovery", "[meta]") {
  const auto& tests = Catch::getRegistryHub().getTestCaseRegistry().getAllTests();
  REQUIRE(tests.size() > 10);
  for (const Catch::TestCase& test : tests) {
    INFO("test case: " << test.name);
    CHECK(test.name.find_first_of("[];~*\\\"") == std::string::npos);
  }
}
