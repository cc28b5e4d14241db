// Tests for solver files (runtime/config/solver_config.h): omitted fields take SolverConfig's and the
// loop's defaults, every field reaches its setting, paths resolve against the solver file's folder,
// each error class names the line, column and field (with the nearest valid name or the valid range),
// and truncated files fail with a message.
#include "runtime/config/solver_config.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>

namespace sieve::runtime {
namespace {

const std::string kMinimal = "net: \"net.prototxt\"\nmax_iter: 100\nbase_lr: 0.1\n";

SolverFile Parse(const std::string& text, const std::string& origin = "models/m/solver.prototxt") {
  StatusOr<SolverFile> file = ParseSolverFile(text, origin);
  INFO(file.status().ToString());
  REQUIRE(file.ok());
  return std::move(file).value();
}

// The message of a solver that must fail, after checking it starts with the expected location.
std::string Error(const std::string& text, const std::string& location) {
  StatusOr<SolverFile> file = ParseSolverFile(text, "s.prototxt");
  REQUIRE_FALSE(file.ok());
  const std::string message = file.status().message();
  INFO(message);
  CHECK(message.rfind("s.prototxt" + (location.empty() ? "" : ":" + location) + ": ", 0) == 0);
  return message;
}

TEST_CASE("a minimal solver takes the defaults", "[proto][config]") {
  const SolverFile file = Parse(kMinimal);
  const SolverConfig defaults;
  CHECK(file.net == "models/m/net.prototxt");
  CHECK(file.max_iter == 100);
  CHECK(file.solver.type == defaults.type);
  CHECK(file.solver.lr.type == LrPolicyType::kFixed);
  CHECK(file.solver.lr.base_lr == 0.1f);
  CHECK(file.solver.lr.max_iter == 100);
  CHECK(file.solver.momentum == defaults.momentum);
  CHECK(file.solver.momentum2 == defaults.momentum2);
  CHECK(file.solver.delta == defaults.delta);
  CHECK(file.solver.weight_decay == defaults.weight_decay);
  CHECK(file.solver.clip_gradients == defaults.clip_gradients);
  CHECK(file.test_iter == 0);
  CHECK(file.test_interval == 0);
  CHECK(file.test_initialization);
  CHECK(file.display == 0);
  CHECK(file.snapshot == 0);
  CHECK(file.snapshot_prefix == "models/m/solver");  // Caffe's: the solver file without its extension
  CHECK(file.snapshot_after_train);
  CHECK(file.random_seed == 1);
  CHECK(file.device == Device::CPU());
  const graph::SearchOptions search;
  CHECK(file.pattern_search.steps == search.steps);
  CHECK(file.pattern_search.entropy_weight == search.entropy_weight);
  CHECK(file.pattern_search.spread_weight == search.spread_weight);
}

TEST_CASE("every solver field reaches its setting", "[proto][config]") {
  const SolverFile file = Parse(R"(
    net: "/abs/net.prototxt"
    max_iter: 5000 test_iter: 10 test_interval: 500 test_initialization: false display: 20
    snapshot: 1000 snapshot_prefix: "snap/run" snapshot_after_train: false
    random_seed: 42 solver_mode: GPU device_id: 1
    type: "Adam" base_lr: 0.001 lr_policy: "multistep" gamma: 0.5 stepvalue: 1000 stepvalue: 3000
    momentum: 0.8 momentum2: 0.99 delta: 1e-6 weight_decay: 1e-4 clip_gradients: 5
    pattern_search { rate_weight: 2 codrop_weight: 3 entropy_weight: 0 max_distance: 64 steps: 100
                     learning_rate: 0.1 beta1: 0.5 beta2: 0.9 epsilon: 1e-6 spread_weight: 0.5 }
  )");
  CHECK(file.net == "/abs/net.prototxt");
  CHECK(file.max_iter == 5000);
  CHECK(file.test_iter == 10);
  CHECK(file.test_interval == 500);
  CHECK_FALSE(file.test_initialization);
  CHECK(file.display == 20);
  CHECK(file.snapshot == 1000);
  CHECK(file.snapshot_prefix == "models/m/snap/run");
  CHECK_FALSE(file.snapshot_after_train);
  CHECK(file.random_seed == 42);
  CHECK(file.device == Device::CUDA(1));
  CHECK(file.solver.type == ops::SolverType::kAdam);
  CHECK(file.solver.lr.base_lr == 0.001f);
  CHECK(file.solver.lr.type == LrPolicyType::kMultiStep);
  CHECK(file.solver.lr.gamma == 0.5f);
  CHECK(file.solver.lr.stepvalue == std::vector<int64_t>{1000, 3000});
  CHECK(file.solver.momentum == 0.8f);
  CHECK(file.solver.momentum2 == 0.99f);
  CHECK(file.solver.delta == 1e-6f);
  CHECK(file.solver.weight_decay == 1e-4f);
  CHECK(file.solver.clip_gradients == 5.0f);
  CHECK(file.pattern_search.rate_weight == 2.0);
  CHECK(file.pattern_search.codrop_weight == 3.0);
  CHECK(file.pattern_search.entropy_weight == 0.0);
  CHECK(file.pattern_search.max_distance == 64);
  CHECK(file.pattern_search.steps == 100);
  CHECK(file.pattern_search.learning_rate == 0.1);
  CHECK(file.pattern_search.beta1 == 0.5);
  CHECK(file.pattern_search.beta2 == 0.9);
  CHECK(file.pattern_search.epsilon == 1e-6);
  CHECK(file.pattern_search.spread_weight == 0.5);
}

TEST_CASE("each lr_policy reads its settings", "[proto][config]") {
  SolverFile file = Parse(kMinimal + "lr_policy: \"step\" gamma: 0.1 stepsize: 30");
  CHECK(file.solver.lr.type == LrPolicyType::kStep);
  CHECK(file.solver.lr.stepsize == 30);
  file = Parse(kMinimal + "lr_policy: \"inv\" gamma: 1e-4 power: 0.75");
  CHECK(file.solver.lr.power == 0.75f);
  file = Parse(kMinimal + "lr_policy: \"poly\" power: 2");
  CHECK(file.solver.lr.type == LrPolicyType::kPoly);
  file = Parse(kMinimal + "lr_policy: \"exp\" gamma: 0.99");
  CHECK(file.solver.lr.gamma == 0.99f);
  file = Parse(kMinimal + "lr_policy: \"sigmoid\" gamma: 0.01 stepsize: 50");
  CHECK(file.solver.lr.type == LrPolicyType::kSigmoid);
  // Settings a policy does not read are allowed (switching policies keeps them harmlessly).
  file = Parse(kMinimal + "lr_policy: \"fixed\" gamma: 0.1");
  CHECK(file.solver.lr.type == LrPolicyType::kFixed);
}

TEST_CASE("solver errors name the place and the field", "[proto][config]") {
  std::string m = Error(kMinimal + "momentun: 0.9\n", "4:1");
  CHECK(m.find("unknown field 'momentun' in SolverParameter (nearest valid field: 'momentum')") != std::string::npos);
  m = Error(kMinimal + "solver_mode: GPUU\n", "4:14");
  CHECK(m.find("nearest valid value: 'GPU'") != std::string::npos);
  m = Error(kMinimal + "max_iter: 10\n", "4:1");
  CHECK(m.find("max_iter") != std::string::npos);

  m = Error("max_iter: 10\nbase_lr: 0.1\n", "");
  CHECK(m.find("net is required") != std::string::npos);
  m = Error("net: \"n\"\nbase_lr: 0.1\n", "");
  CHECK(m.find("max_iter is required") != std::string::npos);
  m = Error("net: \"n\"\nmax_iter: 10\n", "");
  CHECK(m.find("base_lr is required") != std::string::npos);

  m = Error(kMinimal + "type: \"sgd\"\n", "4:1");
  CHECK(m.find("unknown solver type 'sgd' (nearest: 'SGD'); valid: SGD, Nesterov, Adam") != std::string::npos);
  m = Error(kMinimal + "lr_policy: \"stpe\"\n", "4:1");
  CHECK(m.find("unknown lr_policy 'stpe' (nearest: 'step')") != std::string::npos);
  m = Error(kMinimal + "lr_policy: \"step\"\nstepsize: 10\n", "4:1");
  CHECK(m.find("lr_policy 'step' reads gamma, which is not given") != std::string::npos);
  m = Error(kMinimal + "lr_policy: \"step\"\ngamma: 0.1\n", "4:1");
  CHECK(m.find("reads stepsize") != std::string::npos);
  m = Error(kMinimal + "lr_policy: \"multistep\"\ngamma: 0.1\nstepvalue: 100\nstepvalue: 50\n", "7:1");
  CHECK(m.find("stepvalue[1] is 50; valid: > 100") != std::string::npos);
  m = Error(kMinimal + "lr_policy: \"multistep\"\ngamma: 0.1\n", "4:1");
  CHECK(m.find("reads stepvalue") != std::string::npos);

  m = Error("net: \"n\"\nmax_iter: 0\nbase_lr: 0.1\n", "2:1");
  CHECK(m.find("max_iter is 0; valid: >= 1") != std::string::npos);
  m = Error(kMinimal + "base_lr: 0.2\n", "4:1");  // a singular field given twice is a parse error
  CHECK(m.find("in field 'base_lr'") != std::string::npos);
  m = Error("net: \"n\"\nmax_iter: 10\nbase_lr: -0.5\n", "3:1");
  CHECK(m.find("base_lr is -0.5; valid: finite and >= 0") != std::string::npos);
  m = Error(kMinimal + "test_interval: 100\n", "4:1");
  CHECK(m.find("test_iter (the test batches per pass) must be >= 1") != std::string::npos);
  m = Error(kMinimal + "random_seed: -1\n", "4:1");
  CHECK(m.find("random_seed is -1; valid: >= 0") != std::string::npos);
  m = Error(kMinimal + "type: \"Adam\"\nmomentum2: 1\n", "5:1");
  CHECK(m.find("momentum2 is 1; valid: [0, 1)") != std::string::npos);
  m = Error(kMinimal + "weight_decay: nan\n", "4:1");
  CHECK(m.find("weight_decay is nan; valid: a finite number") != std::string::npos);
  m = Error(kMinimal + "pattern_search { steps: -1 }\n", "4:18");
  CHECK(m.find("pattern_search.steps is -1; valid: >= 0") != std::string::npos);
  m = Error(kMinimal + "pattern_search { spread_weight: -1 }\n", "4:18");
  CHECK(m.find("pattern_search.spread_weight is -1; valid: finite and >= 0") != std::string::npos);
}

TEST_CASE("a missing solver file is NOT_FOUND naming the path", "[proto][config]") {
  StatusOr<SolverFile> file = LoadSolverFile("/nonexistent/solver.prototxt");
  REQUIRE_FALSE(file.ok());
  CHECK(file.status().code() == StatusCode::kNotFound);
  CHECK(file.status().message().find("/nonexistent/solver.prototxt") != std::string::npos);
}

TEST_CASE("truncated and corrupted solver files fail cleanly", "[proto][config]") {
  const std::string text = kMinimal +
                           "test_iter: 79 test_interval: 468 display: 100 type: \"SGD\" lr_policy: \"step\"\n"
                           "gamma: 0.1 stepsize: 1000 momentum: 0.9 weight_decay: 5e-4 snapshot_prefix: \"s\"\n"
                           "pattern_search { steps: 10 }\n";
  std::mt19937 rng(11);
  int failures = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string mutated = text.substr(0, std::uniform_int_distribution<size_t>(0, text.size())(rng));
    if (trial % 2 == 1 && !mutated.empty()) {
      mutated[std::uniform_int_distribution<size_t>(0, mutated.size() - 1)(rng)] =
          static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    }
    StatusOr<SolverFile> file = ParseSolverFile(mutated, "fuzz.prototxt");
    if (!file.ok()) {
      ++failures;
      INFO(file.status().message());
      CHECK(file.status().message().rfind("fuzz.prototxt", 0) == 0);
    }
  }
  CHECK(failures > 0);
}

}  // namespace
}  // namespace sieve::runtime
