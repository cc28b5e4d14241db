// The solver's update driver with Caffe's SGDSolver::ApplyUpdate order (BVLC/caffe
// src/caffe/solvers/sgd_solver.cpp): the policy's rate for the iteration, global-norm gradient
// clipping over every parameter, then each parameter's update with rate * lr_mult and
// weight_decay * decay_mult (the element-wise kernels of ops/kernels/optimizer.h). The solver keeps
// no state of its own: weights, gradients and optimizer state live in the ParamArena, and the
// iteration is an argument, so a run resumes from an arena and an iteration number.
// Not here: the training loop, iter_size accumulation, snapshots, and the deferred updates of
// dropped rows (SPEC 2.8).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "framework/status.h"
#include "ops/kernels/optimizer.h"
#include "runtime/params/param_arena.h"
#include "runtime/solver/lr_policy.h"

namespace sieve::runtime {

/// Solver settings, named as in Caffe's SolverParameter.
struct SolverConfig {
  ops::SolverType type = ops::SolverType::kSGD;
  LrPolicyConfig lr;             // base_lr and the learning-rate policy with its settings
  float momentum = 0.9f;         // SGD / Nesterov momentum; Adam's beta1
  float momentum2 = 0.999f;      // Adam's beta2
  float delta = 1e-8f;           // Adam's epsilon
  float weight_decay = 0.0f;     // L2 decay, times each parameter's decay_mult
  float clip_gradients = -1.0f;  // clip the global gradient norm to this; < 0 disables (Caffe's default)
};

/// How Step applies the update. kFlat runs one update over each whole arena buffer (one kernel per
/// step instead of one per parameter), which needs every parameter to share lr_mult and
/// decay_mult; the padding between regions is zero and stays zero. kAuto takes kFlat when it can.
enum class UpdatePath : uint8_t { kAuto, kPerParam, kFlat };

/// What one Step did.
struct StepReport {
  float lr = 0.0f;                          // the policy's rate at this iteration (before lr_mult)
  std::optional<double> grad_norm;          // global L2 norm of the gradients before clipping; only
                                            // computed when clipping is enabled, as in Caffe
  bool clipped = false;                     // whether the gradients were scaled down
  float clip_scale = 1.0f;                  // the factor they were scaled by
  UpdatePath path = UpdatePath::kPerParam;  // the path taken: kPerParam or kFlat
};

class Solver {
 public:
  /// Validates the settings: a known type, a valid LrPolicy (LrPolicy::Create), finite momentum,
  /// weight_decay and clip_gradients, and for Adam 0 <= momentum, momentum2 < 1 and delta > 0.
  static StatusOr<Solver> Create(SolverConfig config);

  /// One update of every parameter of `arena` at `iteration` (>= 0; Adam's bias-correction step is
  /// iteration + 1, as Caffe's iter_ + 1). Clipping scales the gradients in place. Errors: an arena
  /// that is not finalized or was laid out for a solver with a different number of state slots, a
  /// negative iteration, kFlat on an arena whose multipliers differ (naming the parameter).
  StatusOr<StepReport> Step(ParamArena& arena, int64_t iteration, UpdatePath path = UpdatePath::kAuto) const;

  const SolverConfig& config() const { return config_; }
  const LrPolicy& lr_policy() const { return lr_policy_; }

 private:
  Solver(SolverConfig config, LrPolicy lr_policy) : config_(std::move(config)), lr_policy_(std::move(lr_policy)) {}
  ops::UpdateHyper Hyper(float lr, const ParamSpec& spec, int64_t iteration) const;

  SolverConfig config_;
  LrPolicy lr_policy_;
};

}  // namespace sieve::runtime
