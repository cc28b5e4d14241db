// Tests for the solver driver (runtime/solver/solver.h): three hand-computed steps of SGD, Nesterov
// and Adam on a two-parameter arena with different lr_mult / decay_mult and a step lr policy,
// global-norm clipping across parameters, bit-identical weights from the flat and the
// per-parameter update paths, and the Status errors.
#include "runtime/solver/solver.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ops/kernels/random_fill.h"

namespace sieve::runtime {
namespace {

void Set(const Tensor& t, const std::vector<float>& values) {
  REQUIRE(t.numel() == static_cast<int64_t>(values.size()));
  std::memcpy(t.data<float>(), values.data(), values.size() * sizeof(float));
}

Solver MakeSolver(SolverConfig config) {
  StatusOr<Solver> solver = Solver::Create(std::move(config));
  REQUIRE(solver.ok());
  return std::move(solver).value();
}

void CheckValues(const std::vector<float>& got, const std::vector<double>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(what << "[" << i << "]");
    // The hand values use the exact decimal settings; the solver runs on their float roundings
    // (1 - 0.999f is 1.3e-5 off 0.001, which Adam's v inherits), hence 3e-5 rather than float epsilon.
    CHECK(got[i] == Approx(want[i]).epsilon(3e-5).margin(1e-7));
  }
}

// The arena of the hand-computed tests: w [2] with lr_mult 1, decay_mult 1, and b [1] with
// lr_mult 2, decay_mult 0 (Caffe's usual bias setting), starting at w = (1, -2), b = 0.5.
ParamArena TwoParamArena(ops::SolverType type) {
  ParamArena arena;
  REQUIRE(arena.Register("w", {2}).ok());
  REQUIRE(arena.Register("b", {1}, {.lr_mult = 2.0f, .decay_mult = 0.0f}).ok());
  REQUIRE(arena.Finalize(Device::CPU(), type).ok());
  Set(*arena.param("w"), {1.0f, -2.0f});
  Set(*arena.param("b"), {0.5f});
  return arena;
}

// Gradients of iterations 0, 1, 2 as (w0, w1, b).
const std::vector<std::vector<float>> kGrads = {{0.5f, 0.25f, 1.0f}, {-0.5f, 0.0f, 0.5f}, {0.25f, -0.25f, -1.0f}};

// base_lr 0.1 with the step policy (gamma 0.5, stepsize 2): rates 0.1, 0.1, 0.05 at iterations
// 0, 1, 2. Momentum 0.9, weight_decay 0.1, so the local settings are lr 0.1 / 0.05 and decay 0.1
// for w, lr 0.2 / 0.1 and decay 0 for b.
SolverConfig HandConfig(ops::SolverType type) {
  return SolverConfig{.type = type,
                      .lr = {.type = LrPolicyType::kStep, .base_lr = 0.1f, .gamma = 0.5f, .stepsize = 2},
                      .momentum = 0.9f,
                      .weight_decay = 0.1f};
}

// Runs the three steps and checks (w0, w1, b) after each against `want_weights`.
void RunHandSteps(ops::SolverType type, const std::vector<std::vector<double>>& want_weights, ParamArena& arena) {
  const Solver solver = MakeSolver(HandConfig(type));
  const float want_lr[] = {0.1f, 0.1f, 0.05f};
  for (int64_t it = 0; it < 3; ++it) {
    INFO(ops::SolverTypeName(type) << " iteration " << it);
    const std::vector<float>& g = kGrads[static_cast<size_t>(it)];
    Set(*arena.grad("w"), {g[0], g[1]});
    Set(*arena.grad("b"), {g[2]});
    const StatusOr<StepReport> report = solver.Step(arena, it);
    REQUIRE(report.ok());
    CHECK(report->lr == want_lr[it]);
    CHECK(report->path == UpdatePath::kPerParam);  // the multipliers differ
    CHECK_FALSE(report->grad_norm.has_value());    // clipping is off
    std::vector<float> got = arena.param("w")->ToVector();
    got.push_back(arena.param("b")->ToVector()[0]);
    CheckValues(got, want_weights[static_cast<size_t>(it)], "weights");
  }
}

std::vector<float> StateValues(const ParamArena& arena, int slot) {
  std::vector<float> v = arena.state(slot, "w")->ToVector();
  v.push_back(arena.state(slot, "b")->ToVector()[0]);
  return v;
}

TEST_CASE("Solver SGD steps a two-parameter arena as computed by hand", "[runtime][solver]") {
  // Iteration 0, w0: g' = 0.5 + 0.1 * 1 = 0.6, h = 0.1 * 0.6 = 0.06, w0 = 0.94.
  //              b:  g' = 1 (no decay), h = 0.2 * 1 = 0.2, b = 0.3.
  // Iteration 1, w0: g' = -0.5 + 0.1 * 0.94 = -0.406, h = 0.9 * 0.06 - 0.0406 = 0.0134, w0 = 0.9266.
  // Iteration 2, w0: g' = 0.25 + 0.09266 = 0.34266, h = 0.01206 + 0.05 * 0.34266 = 0.029193,
  //              w0 = 0.897407.
  ParamArena arena = TwoParamArena(ops::SolverType::kSGD);
  RunHandSteps(ops::SolverType::kSGD, {{0.94, -2.005, 0.3}, {0.9266, -1.98945, 0.02}, {0.897407, -1.95300775, -0.132}},
               arena);
  CheckValues(StateValues(arena, 0), {0.029193, -0.03644225, 0.152}, "history");
}

TEST_CASE("Solver Nesterov steps a two-parameter arena as computed by hand", "[runtime][solver]") {
  // Same histories as SGD; w -= (1 + 0.9) h - 0.9 h_old. Iteration 0, w0: 0.94 -> 1 - 1.9 * 0.06 = 0.886.
  ParamArena arena = TwoParamArena(ops::SolverType::kNesterov);
  RunHandSteps(ops::SolverType::kNesterov,
               {{0.886, -2.0095, 0.12}, {0.915566, -1.9753695, -0.232}, {0.872701523, -1.92022154, -0.2688}}, arena);
  CheckValues(StateValues(arena, 0), {0.02865183, -0.0364123475, 0.152}, "history");
}

TEST_CASE("Solver Adam steps a two-parameter arena as computed by hand", "[runtime][solver]") {
  // Iteration 0 (t = 1), w0: g' = 0.6, m = 0.06, v = 0.00036, step = lr sqrt(1 - 0.999) / (1 - 0.9)
  // = 0.1 * 0.316228, w0 = 1 - 0.0316228 * 0.06 / (0.0189737 + 1e-8) = 0.9 (Adam's first step is
  // lr * sign(g) up to delta).
  ParamArena arena = TwoParamArena(ops::SolverType::kAdam);
  RunHandSteps(ops::SolverType::kAdam,
               {{0.900000053, -2.09999937, 0.300000063},
                {0.886683679, -2.04312, 0.113564188},
                {0.868517805, -2.00483681, 0.102485883}},
               arena);
  CheckValues(StateValues(arena, 0), {0.0455668373, -0.0602811943, 0.026}, "m");
  CheckValues(StateValues(arena, 1), {0.000641908519, 0.000252950269, 0.002247751}, "v");
}

TEST_CASE("Clipping scales all gradients by the global norm", "[runtime][solver]") {
  // |g_w| = 3 and |g_b| = 4 are each under the clip of 3.5, but the global norm is 5: both are
  // scaled by 3.5 / 5 = 0.7, which per-parameter clipping would not do to g_w.
  ParamArena arena;
  REQUIRE(arena.Register("w", {2}).ok());
  REQUIRE(arena.Register("b", {1}, {.lr_mult = 2.0f}).ok());
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  Set(*arena.grad("w"), {3.0f, 0.0f});
  Set(*arena.grad("b"), {4.0f});
  const Solver solver =
      MakeSolver({.type = ops::SolverType::kSGD, .lr = {.base_lr = 1.0f}, .momentum = 0.0f, .clip_gradients = 3.5f});
  const StatusOr<StepReport> report = solver.Step(arena, 0);
  REQUIRE(report.ok());
  REQUIRE(report->grad_norm.has_value());
  CHECK(*report->grad_norm == Approx(5.0));
  CHECK(report->clipped);
  CHECK(report->clip_scale == Approx(0.7f));
  CheckValues(arena.grad("w")->ToVector(), {2.1, 0.0}, "clipped g_w");
  CheckValues(arena.grad("b")->ToVector(), {2.8}, "clipped g_b");
  CheckValues(arena.param("w")->ToVector(), {-2.1, 0.0}, "w");
  CheckValues(arena.param("b")->ToVector(), {-5.6}, "b");  // lr_mult 2

  // Under the clip: the norm is reported and nothing is scaled.
  Set(*arena.grad("w"), {0.3f, 0.0f});
  Set(*arena.grad("b"), {0.4f});
  const StatusOr<StepReport> calm = solver.Step(arena, 1);
  REQUIRE(calm.ok());
  CHECK(*calm->grad_norm == Approx(0.5));
  CHECK_FALSE(calm->clipped);
  CHECK(calm->clip_scale == 1.0f);
  CheckValues(arena.grad("w")->ToVector(), {0.3, 0.0}, "unclipped g_w");
}

// An arena of odd shapes (one above the CPU kernels' parallel threshold) with equal multipliers,
// initialised from `seed`.
ParamArena RandomArena(ops::SolverType type, uint64_t seed) {
  ParamArena arena;
  const ParamSpec spec = {.lr_mult = 1.5f, .decay_mult = 0.5f, .init = InitSpec::Gaussian(0.0f, 0.5f)};
  const Shape shapes[] = {{33, 17}, {33}, {1}, {5, 7, 3}, {256, 160}, {2}};
  for (size_t i = 0; i < std::size(shapes); ++i) REQUIRE(arena.Register("p" + std::to_string(i), shapes[i], spec).ok());
  REQUIRE(arena.Finalize(Device::CPU(), type).ok());
  REQUIRE(arena.Initialize(seed).ok());
  return arena;
}

void FillGrads(const ParamArena& arena, int64_t iteration) {
  for (int64_t i = 0; i < arena.size(); ++i) {
    // Stream kind 0, left to ids made by hand: site i in bits 55..32, the iteration below.
    const RandomStream stream{99, (static_cast<uint64_t>(i) << 32) | static_cast<uint64_t>(iteration)};
    REQUIRE(ops::FillNormal(arena.entries()[static_cast<size_t>(i)].grad, 0.0f, 0.1f, stream).ok());
  }
}

bool SameBits(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.ToVector(), y = b.ToVector();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

TEST_CASE("The flat update gives bit-identical weights and state to the per-parameter one", "[runtime][solver]") {
  for (const ops::SolverType type : {ops::SolverType::kSGD, ops::SolverType::kNesterov, ops::SolverType::kAdam}) {
    INFO(ops::SolverTypeName(type));
    ParamArena per_param = RandomArena(type, 5);
    ParamArena flat = RandomArena(type, 5);
    // Clipping on and active (the gradients' norm is about 20), so the clipped gradients matter too.
    const Solver solver =
        MakeSolver({.type = type,
                    .lr = {.type = LrPolicyType::kInv, .base_lr = 0.05f, .gamma = 0.1f, .power = 0.75f},
                    .momentum = 0.9f,
                    .weight_decay = 5e-3f,
                    .clip_gradients = 5.0f});
    for (int64_t it = 0; it < 3; ++it) {
      FillGrads(per_param, it);
      FillGrads(flat, it);
      const StatusOr<StepReport> a = solver.Step(per_param, it, UpdatePath::kPerParam);
      const StatusOr<StepReport> b = solver.Step(flat, it);  // kAuto takes the flat path here
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      CHECK(a->path == UpdatePath::kPerParam);
      CHECK(b->path == UpdatePath::kFlat);
      CHECK(a->clipped);
      CHECK(*a->grad_norm == *b->grad_norm);
    }
    CHECK(SameBits(*per_param.flat_params(), *flat.flat_params()));
    for (int s = 0; s < flat.state_slots(); ++s) CHECK(SameBits(*per_param.flat_state(s), *flat.flat_state(s)));
    // The weights moved, and the padding between regions is still zero.
    CHECK_FALSE(SameBits(*flat.flat_params(), *RandomArena(type, 5).flat_params()));
    const std::vector<float> weights = flat.flat_params()->ToVector();
    int64_t zeros = 0;
    for (float w : weights) zeros += w == 0.0f;
    CHECK(zeros >= flat.total_elements() - flat.param_elements());
  }
}

TEST_CASE("Step refuses arenas and iterations it cannot use", "[runtime][solver]") {
  const Solver adam = MakeSolver({.type = ops::SolverType::kAdam});
  ParamArena unfinished;
  REQUIRE(unfinished.Register("w", {3}).ok());
  const StatusOr<StepReport> early = adam.Step(unfinished, 0);
  CHECK(early.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(early.status().message(), Catch::Contains("not finalized"));

  ParamArena sgd_arena = TwoParamArena(ops::SolverType::kSGD);
  const StatusOr<StepReport> slots = adam.Step(sgd_arena, 0);
  CHECK(slots.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(slots.status().message(), Catch::Contains("Adam keeps 2") && Catch::Contains("finalized for SGD with 1"));
  // Nesterov keeps the same one history slot as SGD, so it may take over an SGD arena.
  CHECK(MakeSolver({.type = ops::SolverType::kNesterov}).Step(sgd_arena, 0).ok());

  const Solver sgd = MakeSolver({});
  CHECK(sgd.Step(sgd_arena, -1).status().code() == StatusCode::kInvalidArgument);
  const StatusOr<StepReport> flat = sgd.Step(sgd_arena, 0, UpdatePath::kFlat);
  CHECK(flat.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(flat.status().message(), Catch::Contains("'b' [1] has 2 and 0"));
}

TEST_CASE("Solver::Create refuses invalid settings", "[runtime][solver]") {
  const StatusOr<Solver> beta2 = Solver::Create({.type = ops::SolverType::kAdam, .momentum2 = 1.0f});
  CHECK(beta2.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(beta2.status().message(), Catch::Contains("momentum2 (beta2) < 1"));
  const StatusOr<Solver> delta = Solver::Create({.type = ops::SolverType::kAdam, .delta = 0.0f});
  CHECK(delta.status().code() == StatusCode::kInvalidArgument);
  const StatusOr<Solver> decay = Solver::Create({.weight_decay = NAN});
  CHECK(decay.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(decay.status().message(), Catch::Contains("SGD solver needs finite"));
  const StatusOr<Solver> policy = Solver::Create({.lr = {.type = LrPolicyType::kStep, .stepsize = 0}});
  CHECK(policy.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(policy.status().message(), Catch::Contains("stepsize must be > 0"));
  // SGD momentum outside [0, 1) is unusual but allowed, as in Caffe.
  CHECK(Solver::Create({.momentum = 1.0f}).ok());
}

}  // namespace
}  // namespace sieve::runtime
