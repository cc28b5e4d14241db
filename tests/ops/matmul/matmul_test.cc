// MatMul: validation errors.
#include <catch2/catch.hpp>

#include "ops/matmul/matmul.h"

namespace sieve::ops {
namespace {
TEST_CASE("MatMul rejects mismatched shapes naming both", "[ops][matmul]") {
  Tensor a = Tensor::Zeros({4, 3}), b = Tensor::Zeros({5, 2}), c = Tensor::Zeros({4, 2});
  Status s = MatMul(a, b, c, {});
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[4, 3]") && Catch::Contains("[5, 2]"));
}
}  // namespace
}  // namespace sieve::ops
