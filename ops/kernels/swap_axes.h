// SwapLeadingAxes: x [A, B, R] -> y [B, A, R], y[b, a, r] = x[a, b, r], a copy of R-element rows
// into the transposed order of the two leading axes. The convolution lowering uses it to turn the
// channel-major GEMM output [Cout, B, HoWo] into NCHW [B, Cout, HoWo], and its backward to turn the
// NCHW gradient back (the same op with A and B exchanged). Not a general permutation.
#pragma once

#include <cstdint>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// y[b, a, r] = x[a, b, r]. x is [A, B, R] and y is [B, A, R], both contiguous float32 on one
/// device, sharing no element (the op cannot run in place).
Status SwapLeadingAxes(const Tensor& x, const Tensor& y);

namespace ref {
// The naive reference (element by element), the oracle for the fast paths; same contract, no
// validation.
void SwapLeadingAxes(const Tensor& x, const Tensor& y);
}  // namespace ref

// Raw-pointer entry points: x holds a x b rows of r floats, y b x a rows; no validation.

namespace cpu {
// Blocks of rows (so that both sides stay in cache when rows are short), OpenMP over the blocks.
void SwapLeadingAxes(const float* x, float* y, int64_t a, int64_t b, int64_t r);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// One thread per element of y (coalesced writes; reads coalesce along r), on the default stream.
void SwapLeadingAxes(const float* x, float* y, int64_t a, int64_t b, int64_t r);
}  // namespace cuda
#endif

}  // namespace sieve::ops
