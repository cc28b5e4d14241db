// Optimizer updates and gradient clipping: solver names, argument validation, dispatch to the CPU
// or CUDA kernels, and the global-norm decision of ClipGradients.
#include "ops/kernels/optimizer.h"

#include <cmath>
#include <iterator>

namespace sieve::ops {

namespace {

constexpr const char* kSolverTypeNames[] = {"SGD", "Nesterov", "Adam"};
static_assert(std::size(kSolverTypeNames) == static_cast<size_t>(SolverType::kCount));
constexpr int kSolverStateSlots[] = {1, 1, 2};
static_assert(std::size(kSolverStateSlots) == static_cast<size_t>(SolverType::kCount));

// `t` must be a contiguous float32 tensor; `role` names it in messages.
Status ValidateFloatArray(const Tensor& t, const char* role, const char* op) {
  SIEVE_ENSURE(t.dtype() == DType::kFloat32, StatusCode::kInvalidArgument,
               op << ": " << role << " must be float32, got " << t.ToString());
  SIEVE_ENSURE(t.is_contiguous(), StatusCode::kFailedPrecondition,
               op << ": " << role << " " << ShapeToString(t.shape()) << " must be contiguous, has strides "
                  << ShapeToString(t.strides()));
  return Status::Ok();
}

// `t` must match `param` in shape and device, and be a contiguous float32 array.
Status ValidateLike(const Tensor& param, const Tensor& t, const char* role, const char* op) {
  SIEVE_ENSURE(t.shape() == param.shape(), StatusCode::kInvalidArgument,
               op << ": " << role << " " << ShapeToString(t.shape()) << " does not match param "
                  << ShapeToString(param.shape()));
  SIEVE_ENSURE(t.device() == param.device(), StatusCode::kInvalidArgument,
               op << ": " << role << " " << t.ToString() << " is not on the device of param " << param.ToString());
  return ValidateFloatArray(t, role, op);
}

bool InUnitInterval(float x) { return x >= 0.0f && x < 1.0f; }

}  // namespace

const char* SolverTypeName(SolverType type) {
  SIEVE_CHECK(type < SolverType::kCount, "solver type " << static_cast<int>(type));
  return kSolverTypeNames[static_cast<int>(type)];
}

int SolverStateSlots(SolverType type) {
  SIEVE_CHECK(type < SolverType::kCount, "solver type " << static_cast<int>(type));
  return kSolverStateSlots[static_cast<int>(type)];
}

float AdamStepSize(float lr, float beta1, float beta2, int64_t t) {
  const double td = static_cast<double>(t);
  return static_cast<float>(static_cast<double>(lr) * std::sqrt(1.0 - std::pow(static_cast<double>(beta2), td)) /
                            (1.0 - std::pow(static_cast<double>(beta1), td)));
}

Status ApplyUpdate(SolverType type, const Tensor& param, const Tensor& grad, const std::vector<Tensor>& state,
                   const UpdateHyper& hyper) {
  SIEVE_ENSURE(type < SolverType::kCount, StatusCode::kInvalidArgument,
               "ApplyUpdate: unknown solver type " << static_cast<int>(type));
  const char* op = SolverTypeName(type);
  SIEVE_RETURN_IF_ERROR(ValidateFloatArray(param, "param", op));
  SIEVE_RETURN_IF_ERROR(ValidateLike(param, grad, "grad", op));
  SIEVE_ENSURE(static_cast<int>(state.size()) == SolverStateSlots(type), StatusCode::kInvalidArgument,
               op << ": needs " << SolverStateSlots(type) << " state tensor(s) for param "
                  << ShapeToString(param.shape()) << ", got " << state.size());
  for (const Tensor& s : state) SIEVE_RETURN_IF_ERROR(ValidateLike(param, s, "state", op));
  if (type == SolverType::kAdam) {
    SIEVE_ENSURE(
        InUnitInterval(hyper.momentum) && InUnitInterval(hyper.momentum2) && hyper.delta > 0.0f && hyper.step >= 1,
        StatusCode::kInvalidArgument,
        "Adam needs 0 <= beta1 (momentum), beta2 (momentum2) < 1, delta > 0 and step >= 1; got beta1 "
            << hyper.momentum << ", beta2 " << hyper.momentum2 << ", delta " << hyper.delta << ", step " << hyper.step
            << " for param " << ShapeToString(param.shape()));
  }
  const int64_t n = param.numel();
  if (n == 0) return Status::Ok();

  float* w = param.data<float>();
  const float* g = grad.data<float>();
  float* s0 = state[0].data<float>();
  float* s1 = state.size() > 1 ? state[1].data<float>() : nullptr;
#ifdef SIEVE_WITH_CUDA
  if (param.device().is_cuda()) {
    switch (type) {
      case SolverType::kSGD:
        cuda::SgdUpdate(w, g, s0, n, hyper.lr, hyper.momentum, hyper.weight_decay);
        break;
      case SolverType::kNesterov:
        cuda::NesterovUpdate(w, g, s0, n, hyper.lr, hyper.momentum, hyper.weight_decay);
        break;
      default:  // kAdam; the type was validated above
        cuda::AdamUpdate(w, g, s0, s1, n, hyper.lr, hyper.momentum, hyper.momentum2, hyper.delta, hyper.weight_decay,
                         hyper.step);
        break;
    }
    return Status::Ok();
  }
#endif
  switch (type) {
    case SolverType::kSGD:
      cpu::SgdUpdate(w, g, s0, n, hyper.lr, hyper.momentum, hyper.weight_decay);
      break;
    case SolverType::kNesterov:
      cpu::NesterovUpdate(w, g, s0, n, hyper.lr, hyper.momentum, hyper.weight_decay);
      break;
    default:  // kAdam
      cpu::AdamUpdate(w, g, s0, s1, n, hyper.lr, hyper.momentum, hyper.momentum2, hyper.delta, hyper.weight_decay,
                      hyper.step);
      break;
  }
  return Status::Ok();
}

StatusOr<double> SumOfSquares(const Tensor& x) {
  SIEVE_RETURN_IF_ERROR(ValidateFloatArray(x, "tensor", "SumOfSquares"));
  if (x.numel() == 0) return 0.0;
#ifdef SIEVE_WITH_CUDA
  if (x.device().is_cuda()) return cuda::SumOfSquares(x.data<float>(), x.numel());
#endif
  return cpu::SumOfSquares(x.data<float>(), x.numel());
}

StatusOr<ClipOutcome> ClipGradients(const std::vector<Tensor>& grads, float clip) {
  ClipOutcome outcome;
  if (clip < 0.0f) return outcome;
  for (const Tensor& g : grads) SIEVE_RETURN_IF_ERROR(ValidateFloatArray(g, "gradient", "ClipGradients"));
  double sumsq = 0.0;
  for (const Tensor& g : grads) {
    SIEVE_ASSIGN_OR_RETURN(const double s, SumOfSquares(g));
    sumsq += s;
  }
  outcome.norm = std::sqrt(sumsq);
  // Written as Caffe's `norm > clip` test so that a NaN norm leaves the gradients alone, as there.
  if (!(outcome.norm > static_cast<double>(clip))) return outcome;
  outcome.scale = static_cast<float>(static_cast<double>(clip) / outcome.norm);
  outcome.clipped = true;
  for (const Tensor& g : grads) {
    if (g.numel() == 0) continue;
#ifdef SIEVE_WITH_CUDA
    if (g.device().is_cuda()) {
      cuda::Scale(g.data<float>(), g.numel(), outcome.scale);
      continue;
    }
#endif
    cpu::Scale(g.data<float>(), g.numel(), outcome.scale);
  }
  return outcome;
}

}  // namespace sieve::ops
