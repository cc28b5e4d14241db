// Bias kernels: the per-feature bias of an FC-style output [batch x features], which may be packed
// under a dropout pattern (only the kept units stored, SPEC 2.2), and the per-channel bias of a
// convolution output [(batch x) channels x spatial]; forward adds, backward reduces.
//
//   AddBias:              y[b, j] += bias[col(j)]
//   BiasBackward:         db[col(j)] = sum_b dy[b, j] + beta * db[col(j)]
//   AddChannelBias:       y[n, c, s] += bias[c]
//   ChannelBiasBackward:  db[c] = sum_{n, s} dy[n, c, s] + beta * db[c]
//
// col(j) = j without a pattern; with a pattern over the bias, y holds only the kept units in
// ascending order and col(j) is the j-th kept index. beta = 0 overwrites (garbage or NaN in db
// does not propagate), beta = 1 accumulates; a backward touches only the kept entries of db.
//
// This file is not the FC or conv layer (graph/lowering); it is only their bias arithmetic.
#pragma once

#include <cstdint>
#include <optional>

#include "framework/host_device.h"
#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/matmul/pattern.h"

namespace sieve::ops {

/// y[b, j] += bias[col(j)]. `y` is 2-D float32 with unit column stride (a strided view is fine);
/// `bias` is 1-D contiguous float32 with the dense width: y has bias.numel() columns without a
/// pattern, KeptCount(cols, bias.numel()) with one. Same device.
Status AddBias(const Tensor& y, const Tensor& bias, const std::optional<IndexPattern>& cols = std::nullopt);

/// db[col(j)] = sum_b dy[b, j] + beta * db[col(j)] for each stored column j of dy; dropped
/// entries of db are untouched. Shapes as AddBias (dy like y, db like bias).
Status BiasBackward(const Tensor& dy, const Tensor& db, float beta,
                    const std::optional<IndexPattern>& cols = std::nullopt);

/// y[n, c, s] += bias[c] over the channels of a conv output: `y` is [C, S] (2-D, unit column
/// stride, any leading dimension, e.g. one image's Cout x HoWo GEMM output), [N, C, S] or
/// [N, C, H, W] (contiguous). `bias` is 1-D contiguous with C entries.
Status AddChannelBias(const Tensor& y, const Tensor& bias);

/// db[c] = sum_{n, s} dy[n, c, s] + beta * db[c]; dy shaped as y of AddChannelBias.
Status ChannelBiasBackward(const Tensor& dy, const Tensor& db, float beta);

namespace ref {
// Naive reference versions (CPU, double accumulation), the oracle for the fast paths; same
// contracts as above, no validation.
void AddBias(const Tensor& y, const Tensor& bias, const std::optional<IndexPattern>& cols);
void BiasBackward(const Tensor& dy, const Tensor& db, float beta, const std::optional<IndexPattern>& cols);
void AddChannelBias(const Tensor& y, const Tensor& bias);
void ChannelBiasBackward(const Tensor& dy, const Tensor& db, float beta);
}  // namespace ref

// Raw-pointer entry points, without validation. The matrix forms take rows x cols with leading
// dimension ld; `pattern` (nullptr: none) selects col(j) and must be valid for the bias extent.
// The channel forms take batch*channels rows of `spatial` floats, row (n, c) starting at
// (n*channels + c) * ld.

namespace cpu {
// OpenMP over rows (forward) or over fixed row x column blocks (backward, double accumulation).
// The backward's summation order depends only on the shape, never on the thread count.
void AddBias(float* y, int64_t ld_y, int64_t rows, int64_t cols, const float* bias, const IndexPattern* pattern);
void BiasBackward(const float* dy, int64_t ld_dy, int64_t rows, int64_t cols, float* db, float beta,
                  const IndexPattern* pattern);
void AddChannelBias(float* y, int64_t ld_y, int64_t batch, int64_t channels, int64_t spatial, const float* bias);
void ChannelBiasBackward(const float* dy, int64_t ld_dy, int64_t batch, int64_t channels, int64_t spatial, float* db,
                         float beta);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions on the default stream; `pattern` is a host object (a row pattern travels as
// kernel arguments; a ChannelSet's indices are staged to the device inside the call). The
// backward reductions use a fixed order (no atomics), so results are reproducible.
void AddBias(float* y, int64_t ld_y, int64_t rows, int64_t cols, const float* bias, const IndexPattern* pattern);
void BiasBackward(const float* dy, int64_t ld_dy, int64_t rows, int64_t cols, float* db, float beta,
                  const IndexPattern* pattern);
void AddChannelBias(float* y, int64_t ld_y, int64_t batch, int64_t channels, int64_t spatial, const float* bias);
void ChannelBiasBackward(const float* dy, int64_t ld_dy, int64_t batch, int64_t channels, int64_t spatial, float* db,
                         float beta);
}  // namespace cuda
#endif

namespace internal {
/// The j-th kept index of a row pattern in closed form, so kernels need no index list. The kept
/// residues mod T are o .. o+k-1; past T they wrap to 0 .. w-1 with w = max(0, o + k - T), and
/// sorted ascending they are 0 .. w-1 followed by o .. T-1. The identity is {1, 1, 0, 0}.
struct KeptIndexOfRow {
  int64_t keep = 1;
  int64_t period = 1;
  int64_t offset = 0;
  int64_t wrap = 0;

  static KeptIndexOfRow From(const RowPattern& p) {
    const int64_t w = p.offset + p.keep - p.period;
    return {p.keep, p.period, p.offset, w > 0 ? w : 0};
  }
  SIEVE_HOST_DEVICE int64_t operator()(int64_t j) const {
    const int64_t q = j / keep, r = j - q * keep;
    return q * period + (r < wrap ? r : offset + r - wrap);
  }
};
}  // namespace internal

}  // namespace sieve::ops
