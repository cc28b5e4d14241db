// Elementwise sum of two float32 tensors, y = a + b: how the backward sums two gradient
// contributions to one value when neither can accumulate into the other (a MatMul with beta = 1
// is the other way). Not a broadcasting add; a bias has its own kernels (bias.h).
#pragma once

#include <cstdint>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// y = a + b. a, b and y are float32 with the same shape and device, each either contiguous (any
/// rank) or a 2-D view with unit column stride (any leading dimension). y may be a or b itself
/// (in place) but must not share elements with either otherwise.
Status Add(const Tensor& a, const Tensor& b, const Tensor& y);

namespace ref {
// The naive reference (CPU; the sum in double, rounded once, which is the float sum), the oracle
// for the fast paths; same contract, no validation.
void Add(const Tensor& a, const Tensor& b, const Tensor& y);
}  // namespace ref

// Raw-pointer entry points over a rows x cols matrix, each operand with its own leading dimension;
// no validation. Contiguous operands are best passed as a single row.

namespace cpu {
// `omp simd` loops; OpenMP over row chunks for large sizes.
void Add(const float* a, int64_t ld_a, const float* b, int64_t ld_b, float* y, int64_t ld_y, int64_t rows,
         int64_t cols);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// A grid-stride kernel on the default stream.
void Add(const float* a, int64_t ld_a, const float* b, int64_t ld_b, float* y, int64_t ld_y, int64_t rows,
         int64_t cols);
}  // namespace cuda
#endif

}  // namespace sieve::ops
