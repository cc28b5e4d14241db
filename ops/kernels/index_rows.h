// Rows selected by an index tensor: the embedding lookup and its backward.
//
//   GatherRows:      out[i, :] = table[indices[i], :]
//   ScatterAddRows:  dst[indices[i], :] += src[i, :]     for i = 0 .. n-1, in that order
//
// Indices are int32 and may repeat; a repeated row accumulates every contribution. Rows of dst
// that no index names are untouched (an embedding gradient starts from zero or from an earlier
// accumulation; only the rows a batch uses are written). Both kernels add in index order, so a
// row's result does not depend on threads or scheduling, and CPU and CUDA agree bit for bit.
//
// Unlike GatherSubmatrix (gather_scatter.h), which selects by a dropout pattern, these select by
// data.
#pragma once

#include <cstdint>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// out[i, :] = table[indices[i], :]. table is [V, D] and out [n, D], 2-D float32 with unit column
/// stride (strided views are fine) and not overlapping; indices is a contiguous int32 tensor of n
/// elements (any rank), each in [0, V), else the error names the position and the value. Same
/// device; on CUDA the indices are copied to the host to be checked.
Status GatherRows(const Tensor& table, const Tensor& indices, const Tensor& out);

/// dst[indices[i], :] += src[i, :]; src is [n, D], dst is [V, D]; otherwise as GatherRows.
Status ScatterAddRows(const Tensor& src, const Tensor& indices, const Tensor& dst);

namespace ref {
// Naive reference versions (CPU), the literal loops above; the oracle for the fast paths. Same
// contracts, no validation.
void GatherRows(const Tensor& table, const Tensor& indices, const Tensor& out);
void ScatterAddRows(const Tensor& src, const Tensor& indices, const Tensor& dst);
}  // namespace ref

// Raw-pointer entry points, without validation. `table_rows` / `dst_rows` bound the indices: an
// index outside [0, rows) gathers a zero row and scatters nothing (never an out-of-bounds access;
// the Tensor-level API reports it instead).

namespace cpu {
// Gather: OpenMP over positions. Scatter-add: OpenMP over column slabs, each thread walking all
// positions in order for its own columns, so duplicate indices never race and need no sort.
void GatherRows(const float* table, int64_t ld_table, int64_t table_rows, const int32_t* indices, int64_t n,
                int64_t cols, float* out, int64_t ld_out);
void ScatterAddRows(const float* src, int64_t ld_src, const int32_t* indices, int64_t n, int64_t cols, float* dst,
                    int64_t ld_dst, int64_t dst_rows);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions on the default stream; `indices` is device memory. Scatter-add sorts the
// (index, position) pairs with CUB's stable radix sort and lets one block own each distinct
// destination row, adding its positions in order: no atomics, deterministic.
void GatherRows(const float* table, int64_t ld_table, int64_t table_rows, const int32_t* indices, int64_t n,
                int64_t cols, float* out, int64_t ld_out);
void ScatterAddRows(const float* src, int64_t ld_src, const int32_t* indices, int64_t n, int64_t cols, float* dst,
                    int64_t ld_dst, int64_t dst_rows);
}  // namespace cuda
#endif

}  // namespace sieve::ops
