// Learning-rate policies with the semantics of Caffe's SGDSolver::GetLearningRate (BVLC/caffe
// src/caffe/solvers/sgd_solver.cpp), as pure functions of the iteration:
//
//   fixed      base_lr
//   step       base_lr * gamma ^ floor(iter / stepsize)
//   exp        base_lr * gamma ^ iter
//   inv        base_lr * (1 + gamma * iter) ^ (-power)
//   multistep  base_lr * gamma ^ (number of stepvalues <= iter)
//   poly       base_lr * (1 - iter / max_iter) ^ power
//   sigmoid    base_lr / (1 + exp(-gamma * (iter - stepsize)))
//
// Caffe's multistep keeps a counter that advances by at most one per call; with strictly
// increasing stepvalues (which Create requires) and one call per iteration from 0, as Caffe's
// solver makes, that counter equals the count above, so a resumed run needs no saved step counter.
// Not here: Caffe's "plateau" and "sgdr" policies from forks, warm-up, and per-parameter lr_mult
// (the solver applies that).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/status.h"

namespace sieve::runtime {

enum class LrPolicyType : uint8_t { kFixed, kStep, kExp, kInv, kMultiStep, kPoly, kSigmoid, kCount };
/// "fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid" (Caffe's lr_policy names).
const char* LrPolicyName(LrPolicyType type);
/// Parses an lr_policy name; an unknown name returns INVALID_ARGUMENT listing the valid ones.
StatusOr<LrPolicyType> ParseLrPolicy(std::string_view name);

/// The settings of a policy, named as in Caffe's SolverParameter; each policy reads only its own.
struct LrPolicyConfig {
  LrPolicyType type = LrPolicyType::kFixed;
  float base_lr = 0.01f;
  float gamma = 0.1f;              // step, exp, inv, multistep, sigmoid
  float power = 1.0f;              // inv, poly
  int64_t stepsize = 0;            // step, sigmoid
  std::vector<int64_t> stepvalue;  // multistep: the iterations at which the rate drops by gamma
  int64_t max_iter = 0;            // poly
};

/// A validated policy. Rates are computed in double from the float settings and rounded once.
class LrPolicy {
 public:
  /// Checks the settings the policy reads, as Caffe's CHECKs do, and more: base_lr finite and >= 0;
  /// gamma finite and >= 0; power finite (and >= 0 for poly); stepsize > 0 for step and sigmoid;
  /// max_iter > 0 for poly; stepvalues >= 0 and strictly increasing. INVALID_ARGUMENT names the
  /// policy, the setting and its value.
  static StatusOr<LrPolicy> Create(LrPolicyConfig config);

  /// The learning rate at iteration `iter` >= 0 (0 is the first update). Poly keeps its max_iter
  /// rate (0 unless power is 0) from max_iter on, where Caffe's formula would leave its domain.
  float Rate(int64_t iter) const;
  const LrPolicyConfig& config() const { return config_; }

 private:
  explicit LrPolicy(LrPolicyConfig config) : config_(std::move(config)) {}

  LrPolicyConfig config_;
};

}  // namespace sieve::runtime
