// Tests for Status, StatusOr and the error macros.
#include <catch2/catch.hpp>

#include "framework/status.h"

namespace sieve {
namespace {

Status FailsWhenNegative(int x) {
  SIEVE_ENSURE(x >= 0, StatusCode::kInvalidArgument, "x must be >= 0, got " << x);
  return Status::Ok();
}

StatusOr<int> Doubled(int x) {
  SIEVE_RETURN_IF_ERROR(FailsWhenNegative(x));
  return 2 * x;
}

StatusOr<int> Quadrupled(int x) {
  SIEVE_ASSIGN_OR_RETURN(int twice, Doubled(x));
  return 2 * twice;
}

TEST_CASE("Status carries code, message, file and line", "[framework]") {
  const Status ok = FailsWhenNegative(1);
  CHECK(ok.ok());
  CHECK(ok.ToString() == "OK");
  const Status bad = FailsWhenNegative(-3);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.message(), Catch::Contains("x must be >= 0, got -3"));
  CHECK_THAT(bad.message(), Catch::Contains("status_test.cc:"));
  CHECK_THAT(bad.ToString(), Catch::StartsWith("INVALID_ARGUMENT: "));
}

TEST_CASE("StatusOr propagates values and errors", "[framework]") {
  StatusOr<int> v = Quadrupled(5);
  REQUIRE(v.ok());
  CHECK(*v == 20);
  StatusOr<int> e = Quadrupled(-1);
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().code() == StatusCode::kInvalidArgument);
  StatusOr<int> from_ok_status{Status::Ok()};
  CHECK_FALSE(from_ok_status.ok());
  CHECK(from_ok_status.status().code() == StatusCode::kInternal);
}

}  // namespace
}  // namespace sieve
