// Optimizer update kernels with Caffe's solver semantics (BVLC/caffe src/caffe/solvers/
// sgd_solver.cpp, nesterov_solver.cpp, adam_solver.cpp), element-wise over one parameter's
// contiguous float array, plus Caffe's global-norm gradient clipping. With g the gradient, w the
// weight and wd the (local) L2 weight decay, every solver first forms g' = g + wd * w, then:
//
//   SGD       h = momentum * h + lr * g';                    w -= h
//   Nesterov  h_old = h;  h = momentum * h + lr * g';        w -= (1 + momentum) * h - momentum * h_old
//   Adam      m = beta1 * m + (1 - beta1) * g';  v = beta2 * v + (1 - beta2) * g'^2;
//             w -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + delta)
//
// These are not the solver: the learning-rate policy, lr_mult / decay_mult, iteration counting,
// snapshots and the deferred updates of dropped rows (SPEC 2.8) belong to the caller, which passes
// the local lr and decay of this step. The gradient is read only (Caffe overwrites its diff with
// the update; Sieve keeps the gradient intact). State slots start at zero.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

enum class SolverType : uint8_t { kSGD, kNesterov, kAdam, kCount };
/// "SGD", "Nesterov", "Adam" (the names of Caffe's solver `type`).
const char* SolverTypeName(SolverType type);
/// State tensors a solver keeps per parameter: 1 (history h) for SGD and Nesterov, 2 (m, v) for Adam.
int SolverStateSlots(SolverType type);

/// Hyper-parameters of one update step of one parameter tensor.
struct UpdateHyper {
  float lr = 0.01f;           // the local rate: policy-adjusted base_lr times the parameter's lr_mult
  float weight_decay = 0.0f;  // the local L2 decay: weight_decay times the parameter's decay_mult
  float momentum = 0.9f;      // SGD / Nesterov momentum, and Adam's beta1 (Caffe's `momentum`)
  float momentum2 = 0.999f;   // Adam's beta2 (Caffe's `momentum2`)
  float delta = 1e-8f;        // Adam's epsilon (Caffe's `delta`)
  int64_t step = 1;           // Adam's t, 1 at the first update (Caffe's iter_ + 1)
};

/// lr * sqrt(1 - beta2^t) / (1 - beta1^t): Adam's bias-corrected step size. Computed in double
/// and rounded once (Caffe rounds each factor to float), so every backend uses the same value.
float AdamStepSize(float lr, float beta1, float beta2, int64_t t);

/// One update of `param` from `grad` with the solver's state (state.size() == SolverStateSlots).
/// All tensors: contiguous float32, the shape of `param`, on its device. Errors name the shapes;
/// Adam also needs 0 <= beta1, beta2 < 1, delta > 0 and step >= 1.
Status ApplyUpdate(SolverType type, const Tensor& param, const Tensor& grad, const std::vector<Tensor>& state,
                   const UpdateHyper& hyper);

/// What ClipGradients did: the global L2 norm of the gradients before clipping, and the factor
/// they were scaled by (1 when not clipped).
struct ClipOutcome {
  double norm = 0.0;
  float scale = 1.0f;
  bool clipped = false;
};

/// Caffe's ClipGradients: with clip >= 0, computes the L2 norm over all elements of all `grads`
/// and, if it exceeds clip, scales every gradient by clip / norm. clip < 0 disables clipping (Caffe's
/// default, -1) and reads nothing. The norm is accumulated in double in a fixed order, so it is
/// reproducible run to run and independent of the thread count. Grads: contiguous float32, any
/// devices.
StatusOr<ClipOutcome> ClipGradients(const std::vector<Tensor>& grads, float clip);
/// Sum of squares of a contiguous float32 tensor, accumulated in double in a fixed order.
StatusOr<double> SumOfSquares(const Tensor& x);

namespace ref {
// Naive CPU references, the test oracle: Caffe's CPU code path transcribed step by step (separate
// passes over temporaries, as its axpy / axpby / powx / div calls make them), in float.
void SgdUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay);
void NesterovUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay);
void AdamUpdate(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float delta, float weight_decay, int64_t t);
double SumOfSquares(const float* x, int64_t n);
void Scale(float* x, int64_t n, float factor);
}  // namespace ref

namespace cpu {
// Fused single-pass CPU versions over the OpenMP team (large arrays only); same contracts as ref::.
void SgdUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay);
void NesterovUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay);
void AdamUpdate(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float delta, float weight_decay, int64_t t);
double SumOfSquares(const float* x, int64_t n);
void Scale(float* x, int64_t n, float factor);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions (pointers into device memory) on the current device and stream. SumOfSquares
// reduces in a fixed order (per-block partials, then one block) and waits for the result.
void SgdUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay);
void NesterovUpdate(float* w, const float* g, float* h, int64_t n, float lr, float momentum, float weight_decay);
void AdamUpdate(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float delta, float weight_decay, int64_t t);
double SumOfSquares(const float* x, int64_t n);
void Scale(float* x, int64_t n, float factor);
}  // namespace cuda
#endif

}  // namespace sieve::ops
