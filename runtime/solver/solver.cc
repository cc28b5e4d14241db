// The solver's update driver: settings checks, then per step the rate, clipping and the updates.
#include "runtime/solver/solver.h"

#include <cmath>
#include <utility>
#include <vector>

namespace sieve::runtime {

namespace {

bool InUnitInterval(float x) { return x >= 0.0f && x < 1.0f; }

// The first parameter whose multipliers differ from the first parameter's, for kFlat's error.
const ParamEntry* FirstMultMismatch(const ParamArena& arena) {
  for (const ParamEntry& e : arena) {
    const ParamSpec& first = arena.entries().front().spec;
    if (e.spec.lr_mult != first.lr_mult || e.spec.decay_mult != first.decay_mult) return &e;
  }
  return nullptr;
}

}  // namespace

StatusOr<Solver> Solver::Create(SolverConfig config) {
  SIEVE_ENSURE(config.type < ops::SolverType::kCount, StatusCode::kInvalidArgument,
               "unknown solver type " << static_cast<int>(config.type));
  const char* name = ops::SolverTypeName(config.type);
  SIEVE_ENSURE(
      std::isfinite(config.momentum) && std::isfinite(config.weight_decay) && std::isfinite(config.clip_gradients),
      StatusCode::kInvalidArgument,
      name << " solver needs finite momentum, weight_decay and clip_gradients, got " << config.momentum << ", "
           << config.weight_decay << " and " << config.clip_gradients);
  if (config.type == ops::SolverType::kAdam) {
    SIEVE_ENSURE(InUnitInterval(config.momentum) && InUnitInterval(config.momentum2) && config.delta > 0.0f &&
                     std::isfinite(config.delta),
                 StatusCode::kInvalidArgument,
                 "Adam solver needs 0 <= momentum (beta1) < 1, 0 <= momentum2 (beta2) < 1 and a finite delta > 0, got "
                     << config.momentum << ", " << config.momentum2 << " and " << config.delta);
  }
  SIEVE_ASSIGN_OR_RETURN(LrPolicy lr_policy, LrPolicy::Create(config.lr));
  return Solver(std::move(config), std::move(lr_policy));
}

ops::UpdateHyper Solver::Hyper(float lr, const ParamSpec& spec, int64_t iteration) const {
  // The products are formed in float, as Caffe's local_rate and local_decay are.
  return ops::UpdateHyper{.lr = lr * spec.lr_mult,
                          .weight_decay = config_.weight_decay * spec.decay_mult,
                          .momentum = config_.momentum,
                          .momentum2 = config_.momentum2,
                          .delta = config_.delta,
                          .step = iteration + 1};
}

StatusOr<StepReport> Solver::Step(ParamArena& arena, int64_t iteration, UpdatePath path) const {
  const char* name = ops::SolverTypeName(config_.type);
  SIEVE_ENSURE(arena.finalized(), StatusCode::kFailedPrecondition,
               name << " step on an arena of " << arena.size() << " parameters that is not finalized");
  SIEVE_ENSURE(arena.state_slots() == ops::SolverStateSlots(config_.type), StatusCode::kInvalidArgument,
               name << " keeps " << ops::SolverStateSlots(config_.type)
                    << " optimizer state slot(s) per parameter, but the arena was finalized for "
                    << ops::SolverTypeName(arena.solver_type()) << " with " << arena.state_slots());
  SIEVE_ENSURE(iteration >= 0, StatusCode::kInvalidArgument, name << " step at negative iteration " << iteration);
  if (path == UpdatePath::kAuto) path = arena.HasUniformMults() ? UpdatePath::kFlat : UpdatePath::kPerParam;
  if (path == UpdatePath::kFlat) {
    const ParamEntry* mismatch = FirstMultMismatch(arena);
    SIEVE_ENSURE(mismatch == nullptr, StatusCode::kInvalidArgument,
                 "the flat update needs one lr_mult and decay_mult for all parameters, but '"
                     << mismatch->name << "' " << ShapeToString(mismatch->shape) << " has " << mismatch->spec.lr_mult
                     << " and " << mismatch->spec.decay_mult << " where '" << arena.entries().front().name << "' has "
                     << arena.entries().front().spec.lr_mult << " and " << arena.entries().front().spec.decay_mult);
  }

  StepReport report;
  report.lr = lr_policy_.Rate(iteration);
  report.path = path;
  if (config_.clip_gradients >= 0.0f) {
    // Over the views, not the flat buffer, so both update paths see bit-identical clipped gradients.
    std::vector<Tensor> grads;
    grads.reserve(static_cast<size_t>(arena.size()));
    for (const ParamEntry& e : arena) grads.push_back(e.grad);
    SIEVE_ASSIGN_OR_RETURN(const ops::ClipOutcome clip, ops::ClipGradients(grads, config_.clip_gradients));
    report.grad_norm = clip.norm;
    report.clipped = clip.clipped;
    report.clip_scale = clip.scale;
  }

  if (path == UpdatePath::kFlat) {
    if (arena.size() == 0) return report;
    SIEVE_ASSIGN_OR_RETURN(const Tensor params, arena.flat_params());
    SIEVE_ASSIGN_OR_RETURN(const Tensor grads, arena.flat_grads());
    std::vector<Tensor> state;
    for (int s = 0; s < arena.state_slots(); ++s) {
      SIEVE_ASSIGN_OR_RETURN(Tensor slot, arena.flat_state(s));
      state.push_back(std::move(slot));
    }
    SIEVE_RETURN_IF_ERROR(ops::ApplyUpdate(config_.type, params, grads, state,
                                           Hyper(report.lr, arena.entries().front().spec, iteration)));
    return report;
  }
  for (const ParamEntry& e : arena) {
    const Status updated =
        ops::ApplyUpdate(config_.type, e.param, e.grad, e.state, Hyper(report.lr, e.spec, iteration));
    SIEVE_ENSURE(updated.ok(), updated.code(),
                 "updating parameter '" << e.name << "' " << ShapeToString(e.shape) << ": " << updated.message());
  }
  return report;
}

}  // namespace sieve::runtime
