// Pointwise activations (ReLU, tanh, sigmoid) and their backward.
//
//   forward:   y = f(x)
//   backward:  dx = dy * f'(x), computed from the forward's OUTPUT y:
//              ReLU: [y > 0]   tanh: 1 - y^2   sigmoid: y (1 - y)
//
// so a layer keeps only y for its backward, never x. ReLU is max(x, 0); a NaN input gives NaN
// on every path (a diverging run stays visible).
// Both passes may run in place (y the same tensor as x; dx the same tensor as dy).
#pragma once

#include <cstdint>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// The activation functions; ActivationName gives "relu", "tanh", "sigmoid".
enum class Activation : uint8_t { kReLU, kTanh, kSigmoid, kCount };
const char* ActivationName(Activation kind);

/// y = f(x). x and y are float32 with the same shape, each either contiguous (any rank) or a 2-D
/// view with unit column stride; y may be x itself but must not partly overlap it. Same device.
Status ActivationForward(Activation kind, const Tensor& x, const Tensor& y);

/// dx = dy * f'(.) from the forward output y. y, dy, dx as in ActivationForward; dx may be dy
/// (or y) itself but must not partly overlap either.
Status ActivationBackward(Activation kind, const Tensor& y, const Tensor& dy, const Tensor& dx);

namespace ref {
// Naive reference versions (CPU; the function in double, rounded once), the oracle for the fast
// paths; same contracts, no validation.
void ActivationForward(Activation kind, const Tensor& x, const Tensor& y);
void ActivationBackward(Activation kind, const Tensor& y, const Tensor& dy, const Tensor& dx);
}  // namespace ref

// Raw-pointer entry points over a rows x cols matrix, each operand with its own leading dimension;
// no validation. Contiguous operands are best passed as a single row.

namespace cpu {
// SIMD (Eigen packets for tanh and sigmoid, about 2e-7 relative; `omp simd` loops otherwise), the
// same bits for an element wherever it sits; OpenMP over chunks for large sizes.
void ActivationForward(Activation kind, const float* x, int64_t ld_x, float* y, int64_t ld_y, int64_t rows,
                       int64_t cols);
void ActivationBackward(Activation kind, const float* y, int64_t ld_y, const float* dy, int64_t ld_dy, float* dx,
                        int64_t ld_dx, int64_t rows, int64_t cols);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions on the default stream (tanhf, expf).
void ActivationForward(Activation kind, const float* x, int64_t ld_x, float* y, int64_t ld_y, int64_t rows,
                       int64_t cols);
void ActivationBackward(Activation kind, const float* y, int64_t ld_y, const float* dy, int64_t ld_dy, float* dx,
                        int64_t ld_dx, int64_t rows, int64_t cols);
}  // namespace cuda
#endif

}  // namespace sieve::ops
