// Learning-rate policies: the name table, Caffe's checks on the settings, and the rate formulas.
#include "runtime/solver/lr_policy.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

namespace sieve::runtime {

namespace {

constexpr const char* kLrPolicyNames[] = {"fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"};
static_assert(std::size(kLrPolicyNames) == static_cast<size_t>(LrPolicyType::kCount));

bool ReadsGamma(LrPolicyType type) {
  return type == LrPolicyType::kStep || type == LrPolicyType::kExp || type == LrPolicyType::kInv ||
         type == LrPolicyType::kMultiStep || type == LrPolicyType::kSigmoid;
}

}  // namespace

const char* LrPolicyName(LrPolicyType type) {
  SIEVE_CHECK(type < LrPolicyType::kCount, "lr policy " << static_cast<int>(type));
  return kLrPolicyNames[static_cast<int>(type)];
}

StatusOr<LrPolicyType> ParseLrPolicy(std::string_view name) {
  std::string valid;
  for (size_t i = 0; i < std::size(kLrPolicyNames); ++i) {
    if (name == kLrPolicyNames[i]) return static_cast<LrPolicyType>(i);
    valid += (i ? ", " : "") + std::string(kLrPolicyNames[i]);
  }
  return SIEVE_ERROR(StatusCode::kInvalidArgument, "unknown lr_policy '" << name << "'; valid policies are " << valid);
}

StatusOr<LrPolicy> LrPolicy::Create(LrPolicyConfig config) {
  SIEVE_ENSURE(config.type < LrPolicyType::kCount, StatusCode::kInvalidArgument,
               "unknown lr_policy " << static_cast<int>(config.type));
  const char* name = LrPolicyName(config.type);
  SIEVE_ENSURE(std::isfinite(config.base_lr) && config.base_lr >= 0.0f, StatusCode::kInvalidArgument,
               "lr_policy " << name << ": base_lr must be finite and >= 0, got " << config.base_lr);
  if (ReadsGamma(config.type)) {
    SIEVE_ENSURE(std::isfinite(config.gamma) && config.gamma >= 0.0f, StatusCode::kInvalidArgument,
                 "lr_policy " << name << ": gamma must be finite and >= 0, got " << config.gamma);
  }
  if (config.type == LrPolicyType::kInv || config.type == LrPolicyType::kPoly) {
    SIEVE_ENSURE(std::isfinite(config.power), StatusCode::kInvalidArgument,
                 "lr_policy " << name << ": power must be finite, got " << config.power);
  }
  switch (config.type) {
    case LrPolicyType::kStep:
    case LrPolicyType::kSigmoid:
      SIEVE_ENSURE(config.stepsize > 0, StatusCode::kInvalidArgument,
                   "lr_policy " << name << ": stepsize must be > 0, got " << config.stepsize);
      break;
    case LrPolicyType::kPoly:
      SIEVE_ENSURE(config.max_iter > 0, StatusCode::kInvalidArgument,
                   "lr_policy poly: max_iter must be > 0, got " << config.max_iter);
      // A negative power would raise the rate without bound as iter approaches max_iter.
      SIEVE_ENSURE(config.power >= 0.0f, StatusCode::kInvalidArgument,
                   "lr_policy poly: power must be >= 0, got " << config.power);
      break;
    case LrPolicyType::kMultiStep:
      for (size_t i = 0; i < config.stepvalue.size(); ++i) {
        SIEVE_ENSURE(config.stepvalue[i] >= 0 && (i == 0 || config.stepvalue[i] > config.stepvalue[i - 1]),
                     StatusCode::kInvalidArgument,
                     "lr_policy multistep: stepvalues must be >= 0 and strictly increasing, but stepvalue["
                         << i << "] = " << config.stepvalue[i]
                         << (i == 0 ? std::string() : " follows " + std::to_string(config.stepvalue[i - 1])));
      }
      break;
    default:
      break;
  }
  return LrPolicy(std::move(config));
}

float LrPolicy::Rate(int64_t iter) const {
  SIEVE_CHECK(iter >= 0, "learning rate of iteration " << iter);
  const double base_lr = config_.base_lr;
  const double gamma = config_.gamma;
  const double power = config_.power;
  const double it = static_cast<double>(iter);
  double rate = base_lr;
  switch (config_.type) {
    case LrPolicyType::kFixed:
      break;
    case LrPolicyType::kStep: {
      const int64_t steps_done = iter / config_.stepsize;  // floor, as Caffe's integer current_step_
      rate = base_lr * std::pow(gamma, static_cast<double>(steps_done));
      break;
    }
    case LrPolicyType::kExp:
      rate = base_lr * std::pow(gamma, it);
      break;
    case LrPolicyType::kInv:
      rate = base_lr * std::pow(1.0 + gamma * it, -power);
      break;
    case LrPolicyType::kMultiStep: {
      const auto passed =
          std::upper_bound(config_.stepvalue.begin(), config_.stepvalue.end(), iter) - config_.stepvalue.begin();
      rate = base_lr * std::pow(gamma, static_cast<double>(passed));
      break;
    }
    case LrPolicyType::kPoly: {
      const double progress =
          static_cast<double>(std::min(iter, config_.max_iter)) / static_cast<double>(config_.max_iter);
      rate = base_lr * std::pow(1.0 - progress, power);
      break;
    }
    case LrPolicyType::kSigmoid:
      rate = base_lr / (1.0 + std::exp(-gamma * (it - static_cast<double>(config_.stepsize))));
      break;
    default:
      SIEVE_CHECK(false, "lr policy " << static_cast<int>(config_.type));
  }
  return static_cast<float>(rate);
}

}  // namespace sieve::runtime
