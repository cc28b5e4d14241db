// Solver files -> SolverFile (solver_config.h): required fields, each field's valid range checked where
// the file gives it (so the message can point at it), the settings of the chosen learning-rate policy,
// then Solver::Create as the final word on the update settings.
#include "runtime/config/solver_config.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "framework/suggest.h"
#include "proto/sieve.pb.h"
#include "runtime/config/proto_text.h"
#include "runtime/solver/lr_policy.h"

namespace sieve::runtime {

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;

// Errors placed at a field of the solver file.
class SolverReader {
 public:
  explicit SolverReader(TextLocation where) : where_(std::move(where)) {}

  Status Error(std::string_view field, const std::string& message) const {
    return SIEVE_ERROR(kInvalid, where_.At(field) << ": " << message);
  }
  Status Missing(std::string_view field, std::string_view meaning) const {
    return Error(field, std::string(field) + " is required (" + std::string(meaning) + ")");
  }
  template <typename T>
  Status OutOfRange(std::string_view field, const T& value, std::string_view valid) const {
    std::ostringstream os;
    os << field << " is " << value << "; valid: " << valid;
    return Error(field, os.str());
  }

 private:
  TextLocation where_;
};

Status AtLeast(const SolverReader& r, std::string_view field, int64_t value, int64_t min) {
  if (value >= min) return Status::Ok();
  return r.OutOfRange(field, value, ">= " + std::to_string(min));
}

// A finite value >= min (with `inclusive`) or > min.
Status FiniteAbove(const SolverReader& r, std::string_view field, double value, double min, bool inclusive) {
  if (std::isfinite(value) && (inclusive ? value >= min : value > min)) return Status::Ok();
  std::ostringstream valid;
  valid << "finite and " << (inclusive ? ">= " : "> ") << min;
  return r.OutOfRange(field, value, valid.str());
}

Status Finite(const SolverReader& r, std::string_view field, double value) {
  if (std::isfinite(value)) return Status::Ok();
  return r.OutOfRange(field, value, "a finite number");
}

Status InUnitInterval(const SolverReader& r, std::string_view field, double value) {
  if (value >= 0.0 && value < 1.0) return Status::Ok();
  return r.OutOfRange(field, value, "[0, 1)");
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

StatusOr<ops::SolverType> ReadSolverType(const SolverReader& r, const std::string& name) {
  std::vector<std::string> names;
  for (int t = 0; t < static_cast<int>(ops::SolverType::kCount); ++t) {
    names.emplace_back(ops::SolverTypeName(static_cast<ops::SolverType>(t)));
    if (name == names.back()) return static_cast<ops::SolverType>(t);
  }
  return r.Error("type",
                 "unknown solver type '" + name + "'" + NearestSuffix(name, names) + "; valid: " + JoinNames(names));
}

StatusOr<LrPolicyType> ReadLrPolicy(const SolverReader& r, const std::string& name) {
  std::vector<std::string> names;
  for (int t = 0; t < static_cast<int>(LrPolicyType::kCount); ++t)
    names.emplace_back(LrPolicyName(static_cast<LrPolicyType>(t)));
  StatusOr<LrPolicyType> type = ParseLrPolicy(name);
  if (type.ok()) return type;
  return r.Error("lr_policy",
                 "unknown lr_policy '" + name + "'" + NearestSuffix(name, names) + "; valid: " + JoinNames(names));
}

// The learning rate: base_lr, the policy, and the settings its formula reads, each required.
Status ReadLearningRate(const SolverReader& r, const proto::SolverParameter& p, LrPolicyConfig& lr) {
  if (!p.has_base_lr()) return r.Missing("base_lr", "the learning rate, e.g. base_lr: 0.01");
  lr.base_lr = p.base_lr();
  SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "base_lr", lr.base_lr, 0.0, /*inclusive=*/true));
  if (p.has_lr_policy()) {
    SIEVE_ASSIGN_OR_RETURN(lr.type, ReadLrPolicy(r, p.lr_policy()));
  }
  const LrPolicyType type = lr.type;
  const std::string policy = std::string("lr_policy '") + LrPolicyName(type) + "'";
  const bool reads_gamma = type != LrPolicyType::kFixed && type != LrPolicyType::kPoly;
  const bool reads_power = type == LrPolicyType::kInv || type == LrPolicyType::kPoly;
  const bool reads_stepsize = type == LrPolicyType::kStep || type == LrPolicyType::kSigmoid;
  if (reads_gamma) {
    if (!p.has_gamma()) return r.Error("lr_policy", policy + " reads gamma, which is not given");
    lr.gamma = p.gamma();
    SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "gamma", lr.gamma, 0.0, /*inclusive=*/true));
  }
  if (reads_power) {
    if (!p.has_power()) return r.Error("lr_policy", policy + " reads power, which is not given");
    lr.power = p.power();
    if (type == LrPolicyType::kPoly) {
      SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "power", lr.power, 0.0, /*inclusive=*/true));
    } else {
      SIEVE_RETURN_IF_ERROR(Finite(r, "power", lr.power));
    }
  }
  if (reads_stepsize) {
    if (!p.has_stepsize()) return r.Error("lr_policy", policy + " reads stepsize, which is not given");
    lr.stepsize = p.stepsize();
    SIEVE_RETURN_IF_ERROR(AtLeast(r, "stepsize", lr.stepsize, 1));
  }
  if (type == LrPolicyType::kMultiStep) {
    if (p.stepvalue_size() == 0)
      return r.Error("lr_policy", policy + " reads stepvalue (the iterations where the rate drops), none is given");
    for (int i = 0; i < p.stepvalue_size(); ++i) {
      const std::string field = "stepvalue[" + std::to_string(i) + "]";
      const int64_t floor = i == 0 ? 0 : p.stepvalue(i - 1) + 1;
      if (p.stepvalue(i) < floor)
        return r.OutOfRange(
            field, p.stepvalue(i),
            i == 0 ? ">= 0" : "> " + std::to_string(p.stepvalue(i - 1)) + " (stepvalues strictly increase)");
      lr.stepvalue.push_back(p.stepvalue(i));
    }
  }
  return Status::Ok();
}

// The update: type, learning rate, momenta, decay and clipping.
Status ReadUpdate(const SolverReader& r, const proto::SolverParameter& p, SolverConfig& solver) {
  if (p.has_type()) {
    SIEVE_ASSIGN_OR_RETURN(solver.type, ReadSolverType(r, p.type()));
  }
  SIEVE_RETURN_IF_ERROR(ReadLearningRate(r, p, solver.lr));
  if (p.has_momentum()) solver.momentum = p.momentum();
  if (p.has_momentum2()) solver.momentum2 = p.momentum2();
  if (p.has_delta()) solver.delta = p.delta();
  if (p.has_weight_decay()) solver.weight_decay = p.weight_decay();
  if (p.has_clip_gradients()) solver.clip_gradients = p.clip_gradients();
  if (solver.type == ops::SolverType::kAdam) {
    SIEVE_RETURN_IF_ERROR(InUnitInterval(r, "momentum", solver.momentum));
    SIEVE_RETURN_IF_ERROR(InUnitInterval(r, "momentum2", solver.momentum2));
    SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "delta", solver.delta, 0.0, /*inclusive=*/false));
  } else {
    SIEVE_RETURN_IF_ERROR(Finite(r, "momentum", solver.momentum));
  }
  SIEVE_RETURN_IF_ERROR(Finite(r, "weight_decay", solver.weight_decay));
  SIEVE_RETURN_IF_ERROR(Finite(r, "clip_gradients", solver.clip_gradients));
  return Status::Ok();
}

// The loop: iterations, testing, logging and snapshots.
Status ReadLoop(const SolverReader& r, const proto::SolverParameter& p, std::string_view origin, SolverFile& file) {
  if (!p.has_max_iter()) return r.Missing("max_iter", "the training iterations");
  file.max_iter = p.max_iter();
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "max_iter", file.max_iter, 1));
  if (p.has_test_iter()) file.test_iter = p.test_iter();
  if (p.has_test_interval()) file.test_interval = p.test_interval();
  if (p.has_test_initialization()) file.test_initialization = p.test_initialization();
  if (p.has_display()) file.display = p.display();
  if (p.has_snapshot()) file.snapshot = p.snapshot();
  if (p.has_snapshot_after_train()) file.snapshot_after_train = p.snapshot_after_train();
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "test_iter", file.test_iter, 0));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "test_interval", file.test_interval, 0));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "display", file.display, 0));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "snapshot", file.snapshot, 0));
  if (file.test_interval > 0 && file.test_iter < 1)
    return r.Error(p.has_test_iter() ? "test_iter" : "test_interval",
                   "test_interval " + std::to_string(file.test_interval) +
                       " tests the net, so test_iter (the test batches per pass) must be >= 1, got " +
                       std::to_string(file.test_iter));
  if (p.has_snapshot_prefix() && !p.snapshot_prefix().empty()) {
    file.snapshot_prefix = ResolveAgainst(origin, p.snapshot_prefix());
  } else {
    file.snapshot_prefix = std::filesystem::path(origin).replace_extension().string();
  }
  return Status::Ok();
}

Status ReadDevice(const SolverReader& r, const proto::SolverParameter& p, SolverFile& file) {
  if (p.has_random_seed()) {
    if (p.random_seed() < 0)
      return r.OutOfRange("random_seed", p.random_seed(),
                          ">= 0 (Sieve runs are reproducible: there is no seed from the clock)");
    file.random_seed = static_cast<uint64_t>(p.random_seed());
  }
  if (p.has_device_id()) SIEVE_RETURN_IF_ERROR(AtLeast(r, "device_id", p.device_id(), 0));
  file.device = p.solver_mode() == proto::SolverParameter::GPU ? Device::CUDA(p.device_id()) : Device::CPU();
  return Status::Ok();
}

Status ReadPatternSearch(const SolverReader& r, const proto::SolverParameter& p, graph::SearchOptions& search) {
  if (!p.has_pattern_search()) return Status::Ok();
  const proto::PatternSearchParameter& s = p.pattern_search();
  if (s.has_rate_weight()) search.rate_weight = s.rate_weight();
  if (s.has_codrop_weight()) search.codrop_weight = s.codrop_weight();
  if (s.has_spread_weight()) search.spread_weight = s.spread_weight();
  if (s.has_entropy_weight()) search.entropy_weight = s.entropy_weight();
  if (s.has_max_distance()) search.max_distance = s.max_distance();
  if (s.has_steps()) search.steps = s.steps();
  if (s.has_learning_rate()) search.learning_rate = s.learning_rate();
  if (s.has_beta1()) search.beta1 = s.beta1();
  if (s.has_beta2()) search.beta2 = s.beta2();
  if (s.has_epsilon()) search.epsilon = s.epsilon();
  SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "pattern_search.rate_weight", search.rate_weight, 0.0, true));
  SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "pattern_search.codrop_weight", search.codrop_weight, 0.0, true));
  SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "pattern_search.spread_weight", search.spread_weight, 0.0, true));
  SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "pattern_search.entropy_weight", search.entropy_weight, 0.0, true));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "pattern_search.max_distance", search.max_distance, 0));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "pattern_search.steps", search.steps, 0));
  SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "pattern_search.learning_rate", search.learning_rate, 0.0, false));
  SIEVE_RETURN_IF_ERROR(InUnitInterval(r, "pattern_search.beta1", search.beta1));
  SIEVE_RETURN_IF_ERROR(InUnitInterval(r, "pattern_search.beta2", search.beta2));
  SIEVE_RETURN_IF_ERROR(FiniteAbove(r, "pattern_search.epsilon", search.epsilon, 0.0, false));
  return Status::Ok();
}

}  // namespace

StatusOr<SolverFile> ParseSolverFile(std::string_view text, std::string_view origin) {
  proto::SolverParameter p;
  SIEVE_ASSIGN_OR_RETURN(const std::unique_ptr<ParsedText> parsed, ParsedText::Parse(text, origin, p));
  const SolverReader r(parsed->root());
  SolverFile file;
  if (!p.has_net() || p.net().empty()) return r.Missing("net", "the net file, relative to this solver file's folder");
  file.net = ResolveAgainst(origin, p.net());
  SIEVE_RETURN_IF_ERROR(ReadLoop(r, p, origin, file));
  SIEVE_RETURN_IF_ERROR(ReadUpdate(r, p, file.solver));
  file.solver.lr.max_iter = file.max_iter;
  SIEVE_RETURN_IF_ERROR(ReadDevice(r, p, file));
  SIEVE_RETURN_IF_ERROR(ReadPatternSearch(r, p, file.pattern_search));
  if (StatusOr<Solver> solver = Solver::Create(file.solver); !solver.ok())
    return Status(solver.status().code(), std::string(origin) + ": " + solver.status().message());
  return file;
}

StatusOr<SolverFile> LoadSolverFile(const std::string& path) {
  SIEVE_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path, "solver file"));
  return ParseSolverFile(text, path);
}

}  // namespace sieve::runtime
