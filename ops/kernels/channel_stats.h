// Per-feature-map statistics for sensitivity-aware feature-map dropout (SPEC 3): the reductions
// the running importance and sensitivity estimates of a conv's input maps are made of
// (graph/sensitivity_pass.h). Both read only the kept maps of the iteration and write one value
// per kept map, in the order of the kept list (rank r is kept channel channels->kept[r]):
//
//   ChannelMeanAbs   out[r] = mean over images and pixels of |x[n, c_r, h, w]|   (importance)
//   ChannelBlockDot  out[r] = sum over rows i and j < group of w[i, c_r*group + j] * dw[i, c_r*group + j]
//
// ChannelBlockDot over a conv's weight [Cout, Cin*k*k] and its gradient, with group = k*k, is the
// sensitivity sum of A_c * dL/dA_c over the conv's input map c, exactly: the column matrix is
// im2col(A) and col2im its adjoint, so sum(A_c * col2im(W^T dY)_c) = sum(col_c * (W^T dY)_c) =
// sum(W_c * (dY col^T)_c) = sum(W_c * dW_c), the dropout scale included on both sides. It reads
// Cout*k*k numbers per map instead of B*H*W pairs, and needs no tensor that the backward does not
// keep anyway.
//
// These are not the estimates themselves (the EMA, the normalisation and the sampling live in the
// pass) and not graph ops: the trainer calls them after a training run.
#pragma once

#include <cstdint>

#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/matmul/pattern.h"

namespace sieve::ops {

/// out[r] = mean |x[:, c_r, :, :]| over the kept channels (all when `channels` is nullptr).
/// x: contiguous float32 [B, C, H, W]; out: float32 [kept] on x's device, contiguous.
Status ChannelMeanAbs(const Tensor& x, const ChannelSet* channels, const Tensor& out);

/// out[r] = sum_i sum_{j < group} w[i, c_r*group + j] * dw[i, c_r*group + j]. w and dw: contiguous
/// float32 2-D of the same shape [rows, C*group] on one device; out: float32 [kept] there.
Status ChannelBlockDot(const Tensor& w, const Tensor& dw, int64_t group, const ChannelSet* channels, const Tensor& out);

// Raw-pointer entry points shared by ref, cpu and cuda, without validation. `channels` must be
// valid for `num_channels` (sorted, unique, in range) or nullptr for all.

namespace ref {
// One element at a time in double; the test oracle.
void ChannelMeanAbs(const float* x, int64_t batch, int64_t num_channels, int64_t plane, const ChannelSet* channels,
                    float* out);
void ChannelBlockDot(const float* w, const float* dw, int64_t rows, int64_t num_channels, int64_t group,
                     const ChannelSet* channels, float* out);
}  // namespace ref

namespace cpu {
// OpenMP over kept channels, double accumulators per channel (sums in a fixed order, so the result
// does not depend on the thread count).
void ChannelMeanAbs(const float* x, int64_t batch, int64_t num_channels, int64_t plane, const ChannelSet* channels,
                    float* out);
void ChannelBlockDot(const float* w, const float* dw, int64_t rows, int64_t num_channels, int64_t group,
                     const ChannelSet* channels, float* out);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// One thread block per kept channel, a fixed-shape tree reduction in double (deterministic); the
// kept indices travel as kernel parameters, so there is no staging copy and no host sync.
void ChannelMeanAbs(const float* x, int64_t batch, int64_t num_channels, int64_t plane, const ChannelSet* channels,
                    float* out);
void ChannelBlockDot(const float* w, const float* dw, int64_t rows, int64_t num_channels, int64_t group,
                     const ChannelSet* channels, float* out);
}  // namespace cuda
#endif

}  // namespace sieve::ops
