// Sub-matrix gather and scatter: the copies that compaction needs where a pattern does not allow
// a zero-copy strided view (SPEC 1). Each dimension of a 2-D matrix is either taken whole or
// restricted to the kept indices of an IndexPattern; the packed side holds the kept indices in
// ascending order. The MatMul backends use these internally, and the graph uses them to pack a
// weight once per iteration for both GEMMs that read it.
#pragma once

#include <optional>

#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/matmul/pattern.h"

namespace sieve::ops {

/// dst[i, j] = src[rows[i], cols[j]]  where rows/cols are the kept indices of each pattern
/// (all indices when the pattern is absent). dst is kept(rows) x kept(cols); both 2-D, unit
/// column stride, same device.
Status GatherSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                       const std::optional<IndexPattern>& cols, const Tensor& dst);

/// dst[rows[i], cols[j]] = src[i, j] + beta * dst[rows[i], cols[j]]; other entries of dst are
/// untouched. beta = 0 scatters, beta = 1 scatter-adds.
Status ScatterSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                        const std::optional<IndexPattern>& cols, const Tensor& dst, float beta);

namespace ref {
// Naive reference versions (CPU), the oracle for the fast paths; same contracts, no validation.
void GatherSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                     const std::optional<IndexPattern>& cols, const Tensor& dst);
void ScatterSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                      const std::optional<IndexPattern>& cols, const Tensor& dst, float beta);
}  // namespace ref

namespace cpu {
// Multi-threaded CPU versions; raw-pointer entry points so MatMul can call them on workspace.
void GatherSubmatrix(const float* src, int64_t ld_src, int64_t src_rows, int64_t src_cols,
                     const IndexPattern* rows, const IndexPattern* cols, float* dst, int64_t ld_dst);
void ScatterSubmatrix(const float* src, int64_t ld_src, int64_t dst_rows, int64_t dst_cols,
                      const IndexPattern* rows, const IndexPattern* cols, float* dst, int64_t ld_dst, float beta);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions on the current stream; index lists of ChannelSet patterns are staged to the
// device inside the call. Same raw-pointer contract as cpu::.
void GatherSubmatrix(const float* src, int64_t ld_src, int64_t src_rows, int64_t src_cols,
                     const IndexPattern* rows, const IndexPattern* cols, float* dst, int64_t ld_dst);
void ScatterSubmatrix(const float* src, int64_t ld_src, int64_t dst_rows, int64_t dst_cols,
                      const IndexPattern* rows, const IndexPattern* cols, float* dst, int64_t ld_dst, float beta);
}  // namespace cuda
#endif

}  // namespace sieve::ops
