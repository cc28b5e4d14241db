// Tests for the learning-rate policies (runtime/solver/lr_policy.h): each of Caffe's formulas at
// hand-computed iterations, multistep at and around its boundaries (and equal to Caffe's stateful
// counter), names, and the settings checks.
#include "runtime/solver/lr_policy.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

namespace sieve::runtime {
namespace {

LrPolicy Make(LrPolicyConfig config) {
  StatusOr<LrPolicy> policy = LrPolicy::Create(std::move(config));
  REQUIRE(policy.ok());
  return std::move(policy).value();
}

// Rates are rounded to float once, so they agree with the exact value to within float rounding.
void CheckRate(const LrPolicy& policy, int64_t iter, double want) {
  INFO(LrPolicyName(policy.config().type) << " at iteration " << iter);
  CHECK(policy.Rate(iter) == Approx(want).epsilon(1e-6).margin(1e-12));
}

TEST_CASE("fixed keeps base_lr", "[runtime][solver][lr]") {
  const LrPolicy policy = Make({.type = LrPolicyType::kFixed, .base_lr = 0.01f, .gamma = -5.0f});
  CheckRate(policy, 0, 0.01);
  CheckRate(policy, 123456, 0.01);
}

TEST_CASE("step drops by gamma every stepsize iterations", "[runtime][solver][lr]") {
  const LrPolicy policy = Make({.type = LrPolicyType::kStep, .base_lr = 0.01f, .gamma = 0.1f, .stepsize = 100});
  CheckRate(policy, 0, 0.01);
  CheckRate(policy, 99, 0.01);
  CheckRate(policy, 100, 0.001);
  CheckRate(policy, 199, 0.001);
  CheckRate(policy, 250, 0.0001);
}

TEST_CASE("exp decays by gamma every iteration", "[runtime][solver][lr]") {
  const LrPolicy policy = Make({.type = LrPolicyType::kExp, .base_lr = 0.01f, .gamma = 0.99f});
  CheckRate(policy, 0, 0.01);
  CheckRate(policy, 1, 0.0099);
  CheckRate(policy, 2, 0.009801);
  CheckRate(policy, 10, 0.0090438207500880);  // 0.99^10 = 0.904382075008805
}

TEST_CASE("inv follows (1 + gamma iter)^-power", "[runtime][solver][lr]") {
  // The LeNet solver's schedule: gamma 1e-4, power 0.75.
  const LrPolicy policy = Make({.type = LrPolicyType::kInv, .base_lr = 0.01f, .gamma = 1e-4f, .power = 0.75f});
  CheckRate(policy, 0, 0.01);
  CheckRate(policy, 10000, 0.0059460355750136);  // 2^-0.75
  CheckRate(policy, 30000, 0.0035355339059327);  // 4^-0.75 = 1 / (2 sqrt 2)
}

TEST_CASE("multistep drops by gamma at each stepvalue", "[runtime][solver][lr]") {
  const LrPolicy policy =
      Make({.type = LrPolicyType::kMultiStep, .base_lr = 0.01f, .gamma = 0.5f, .stepvalue = {10, 20, 35}});
  CheckRate(policy, 0, 0.01);
  CheckRate(policy, 9, 0.01);
  CheckRate(policy, 10, 0.005);
  CheckRate(policy, 11, 0.005);
  CheckRate(policy, 19, 0.005);
  CheckRate(policy, 20, 0.0025);
  CheckRate(policy, 34, 0.0025);
  CheckRate(policy, 35, 0.00125);
  CheckRate(policy, 100000, 0.00125);

  // A stepvalue of 0 drops the rate from the first iteration on, as in Caffe.
  const LrPolicy at_zero = Make({.type = LrPolicyType::kMultiStep, .base_lr = 1.0f, .gamma = 0.1f, .stepvalue = {0}});
  CheckRate(at_zero, 0, 0.1);
  // No stepvalues: base_lr throughout.
  CheckRate(Make({.type = LrPolicyType::kMultiStep, .base_lr = 0.3f, .gamma = 0.1f}), 50, 0.3);
}

TEST_CASE("multistep equals Caffe's stateful step counter", "[runtime][solver][lr]") {
  // Caffe's GetLearningRate, called once per iteration from 0, advances current_step_ by at most one.
  const std::vector<int64_t> stepvalue = {3, 4, 5, 9, 30};
  const LrPolicy policy =
      Make({.type = LrPolicyType::kMultiStep, .base_lr = 1.0f, .gamma = 0.5f, .stepvalue = stepvalue});
  size_t current_step = 0;
  for (int64_t iter = 0; iter < 40; ++iter) {
    if (current_step < stepvalue.size() && iter >= stepvalue[current_step]) ++current_step;
    CheckRate(policy, iter, std::pow(0.5, static_cast<double>(current_step)));
  }
}

TEST_CASE("poly decays to zero at max_iter", "[runtime][solver][lr]") {
  const LrPolicy square = Make({.type = LrPolicyType::kPoly, .base_lr = 0.01f, .power = 2.0f, .max_iter = 100});
  CheckRate(square, 0, 0.01);
  CheckRate(square, 50, 0.0025);
  CheckRate(square, 90, 0.0001);
  CheckRate(square, 100, 0.0);
  CheckRate(square, 150, 0.0);  // held at the max_iter rate beyond it
  const LrPolicy root = Make({.type = LrPolicyType::kPoly, .base_lr = 0.01f, .power = 0.5f, .max_iter = 100});
  CheckRate(root, 75, 0.005);
  const LrPolicy linear = Make({.type = LrPolicyType::kPoly, .base_lr = 0.2f, .power = 1.0f, .max_iter = 8});
  CheckRate(linear, 2, 0.15);
}

TEST_CASE("sigmoid is centred on stepsize", "[runtime][solver][lr]") {
  const LrPolicy policy = Make({.type = LrPolicyType::kSigmoid, .base_lr = 0.01f, .gamma = 0.1f, .stepsize = 50});
  CheckRate(policy, 50, 0.005);
  CheckRate(policy, 0, 6.6928509242848554e-05);  // 0.01 / (1 + e^5)
  CheckRate(policy, 100, 0.0099330714907571);    // 0.01 / (1 + e^-5)
}

TEST_CASE("lr_policy names parse, and unknown names list the valid ones", "[runtime][solver][lr]") {
  for (int i = 0; i < static_cast<int>(LrPolicyType::kCount); ++i) {
    const auto type = static_cast<LrPolicyType>(i);
    const StatusOr<LrPolicyType> parsed = ParseLrPolicy(LrPolicyName(type));
    REQUIRE(parsed.ok());
    CHECK(*parsed == type);
  }
  const StatusOr<LrPolicyType> bad = ParseLrPolicy("Step");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.status().message(),
             Catch::Contains("'Step'") && Catch::Contains("fixed, step, exp, inv, multistep, poly, sigmoid"));
}

TEST_CASE("Invalid policy settings are refused, naming the setting", "[runtime][solver][lr]") {
  struct Case {
    LrPolicyConfig config;
    const char* expect;
  };
  const Case cases[] = {
      {{.type = LrPolicyType::kStep, .stepsize = 0}, "step: stepsize must be > 0, got 0"},
      {{.type = LrPolicyType::kSigmoid, .stepsize = -3}, "sigmoid: stepsize must be > 0, got -3"},
      {{.type = LrPolicyType::kExp, .gamma = -0.5f}, "exp: gamma must be finite and >= 0, got -0.5"},
      {{.type = LrPolicyType::kInv, .power = INFINITY}, "inv: power must be finite"},
      {{.type = LrPolicyType::kPoly, .max_iter = 0}, "poly: max_iter must be > 0"},
      {{.type = LrPolicyType::kPoly, .power = -1.0f, .max_iter = 10}, "poly: power must be >= 0"},
      {{.type = LrPolicyType::kMultiStep, .stepvalue = {10, 10}}, "stepvalue[1] = 10 follows 10"},
      {{.type = LrPolicyType::kMultiStep, .stepvalue = {-1}}, "stepvalue[0] = -1"},
      {{.type = LrPolicyType::kFixed, .base_lr = -0.1f}, "base_lr must be finite and >= 0"},
      {{.type = LrPolicyType::kFixed, .base_lr = NAN}, "base_lr must be finite and >= 0"},
  };
  for (const Case& c : cases) {
    INFO(c.expect);
    const StatusOr<LrPolicy> policy = LrPolicy::Create(c.config);
    REQUIRE_FALSE(policy.ok());
    CHECK(policy.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(policy.status().message(), Catch::Contains(c.expect));
  }
}

}  // namespace
}  // namespace sieve::runtime
