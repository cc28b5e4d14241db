// CUDA gather and scatter of sub-matrices (the cuda:: half of ops/kernels/gather_scatter.h), on the
// calling thread's current device and the Sieve stream.
//
// One kernel serves both directions. Consecutive threads take consecutive packed columns, so the
// packed side is read or written in full 128-byte lines and the full side in ascending addresses.
// Every thread maps its columns to dense indices once and then walks rows; one row-index
// computation serves kColsPerThread elements. Row patterns are mapped arithmetically (no index
// upload); only ChannelSet lists are copied to the device, through the kIndices scratch buffer.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/gather_scatter.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreadsX = 32;
constexpr int kThreadsY = 8;
constexpr int kColsPerThread = 4;
constexpr int64_t kColsPerBlock = int64_t{kThreadsX} * kColsPerThread;
// Enough resident blocks to fill an H100/H200 several times over; each thread loops over the rows
// that remain.
constexpr int64_t kTargetBlocks = 4096;
constexpr int64_t kMaxGridY = 65535;

// Maps a packed position j (0 <= j < kept) to the dense index it stands for.
struct IndexMap {
  enum Kind : int { kAll, kRowPattern, kList };
  Kind kind = kAll;
  // Row pattern (k, T, o): the kept indices are base + q*T + s for s < k, q >= 0, minus the
  // `skip` values of that sequence that fall below zero; base = o - T.
  int64_t keep = 1, period = 1, base = 0, skip = 0;
  const int64_t* list = nullptr;
};

__device__ __forceinline__ int64_t DenseIndex(const IndexMap& map, int64_t j) {
  if (map.kind == IndexMap::kAll) return j;
  if (map.kind == IndexMap::kList) return map.list[j];
  const int64_t t = j + map.skip;
  if (map.keep == 1) return map.base + t * map.period;
  int64_t q;
  // A 32-bit division costs a fraction of a 64-bit one, and patterns are almost always that small.
  if (t <= std::numeric_limits<uint32_t>::max() && map.keep <= std::numeric_limits<uint32_t>::max()) {
    q = static_cast<uint32_t>(t) / static_cast<uint32_t>(map.keep);
  } else {
    q = t / map.keep;
  }
  return map.base + q * map.period + (t - q * map.keep);
}

// rows x cols is the packed extent. Gather: dst[i, j] = src[R(i), C(j)].
// Scatter: dst[R(i), C(j)] = src[i, j] + beta * dst[R(i), C(j)], overwriting when beta == 0.
template <bool kScatter>
__global__ void __launch_bounds__(kThreadsX* kThreadsY)
    SubmatrixCopyKernel(const float* __restrict__ src, int64_t ld_src, float* __restrict__ dst, int64_t ld_dst,
                        int64_t rows, int64_t cols, IndexMap row_map, IndexMap col_map, float beta) {
  const int64_t first_col = static_cast<int64_t>(blockIdx.x) * kColsPerBlock + threadIdx.x;
  int64_t dense_col[kColsPerThread];
#pragma unroll
  for (int u = 0; u < kColsPerThread; ++u) {
    const int64_t j = first_col + u * kThreadsX;
    dense_col[u] = j < cols ? DenseIndex(col_map, j) : 0;
  }
  const int64_t row_step = static_cast<int64_t>(gridDim.y) * kThreadsY;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * kThreadsY + threadIdx.y; i < rows; i += row_step) {
    const int64_t dense_row = DenseIndex(row_map, i);
#pragma unroll
    for (int u = 0; u < kColsPerThread; ++u) {
      const int64_t j = first_col + u * kThreadsX;
      if (j < cols) {
        if constexpr (kScatter) {
          float& out = dst[dense_row * ld_dst + dense_col[u]];
          const float in = src[i * ld_src + j];
          out = beta == 0.0f ? in : in + beta * out;
        } else {
          dst[i * ld_dst + j] = src[dense_row * ld_src + dense_col[u]];
        }
      }
    }
  }
}

// The map of `pattern`; a ChannelSet's list pointer is filled in once the list is on the device.
IndexMap MakeMap(const IndexPattern* pattern) {
  IndexMap map;
  if (pattern == nullptr) return map;
  if (const auto* row = std::get_if<RowPattern>(pattern)) {
    if (row->keep == row->period) return map;
    map.kind = IndexMap::kRowPattern;
    map.keep = row->keep;
    map.period = row->period;
    map.base = row->offset - row->period;
    map.skip = std::min(row->keep, row->period - row->offset);
    return map;
  }
  map.kind = IndexMap::kList;
  return map;
}

void Launch(bool scatter, const float* src, int64_t ld_src, float* dst, int64_t ld_dst, int64_t full_rows,
            int64_t full_cols, const IndexPattern* rows, const IndexPattern* cols, float beta) {
  const int64_t kept_rows = rows ? KeptCount(*rows, full_rows) : full_rows;
  const int64_t kept_cols = cols ? KeptCount(*cols, full_cols) : full_cols;
  if (kept_rows == 0 || kept_cols == 0) return;

  IndexMap row_map = MakeMap(rows);
  IndexMap col_map = MakeMap(cols);
  std::vector<int64_t> lists;  // the row list (if any), then the column list (if any)
  if (row_map.kind == IndexMap::kList) lists = KeptIndices(*rows, full_rows);
  const size_t col_list_at = lists.size();
  if (col_map.kind == IndexMap::kList) {
    const std::vector<int64_t> kept = KeptIndices(*cols, full_cols);
    lists.insert(lists.end(), kept.begin(), kept.end());
  }
  if (!lists.empty()) {
    const size_t bytes = lists.size() * sizeof(int64_t);
    auto* device_lists = static_cast<int64_t*>(CudaScratchBuffer(CurrentCudaDevice(), CudaScratch::kIndices, bytes));
    // From pageable memory the copy is staged before this returns, so `lists` may go out of scope.
    SIEVE_CUDA_CHECK(cudaMemcpyAsync(device_lists, lists.data(), bytes, cudaMemcpyHostToDevice, CudaStream()));
    if (row_map.kind == IndexMap::kList) row_map.list = device_lists;
    if (col_map.kind == IndexMap::kList) col_map.list = device_lists + col_list_at;
  }

  const int64_t blocks_x = (kept_cols + kColsPerBlock - 1) / kColsPerBlock;
  SIEVE_CHECK(blocks_x <= std::numeric_limits<int32_t>::max(), "submatrix copy of " << kept_cols << " columns");
  const int64_t row_blocks = (kept_rows + kThreadsY - 1) / kThreadsY;
  const int64_t blocks_y = std::clamp<int64_t>(std::min(row_blocks, kTargetBlocks / blocks_x), 1, kMaxGridY);
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(blocks_y));
  const dim3 block(kThreadsX, kThreadsY);
  if (scatter) {
    SubmatrixCopyKernel<true>
        <<<grid, block, 0, CudaStream()>>>(src, ld_src, dst, ld_dst, kept_rows, kept_cols, row_map, col_map, beta);
  } else {
    SubmatrixCopyKernel<false>
        <<<grid, block, 0, CudaStream()>>>(src, ld_src, dst, ld_dst, kept_rows, kept_cols, row_map, col_map, beta);
  }
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void GatherSubmatrix(const float* src, int64_t ld_src, int64_t src_rows, int64_t src_cols, const IndexPattern* rows,
                     const IndexPattern* cols, float* dst, int64_t ld_dst) {
  Launch(/*scatter=*/false, src, ld_src, dst, ld_dst, src_rows, src_cols, rows, cols, 0.0f);
}

void ScatterSubmatrix(const float* src, int64_t ld_src, int64_t dst_rows, int64_t dst_cols, const IndexPattern* rows,
                      const IndexPattern* cols, float* dst, int64_t ld_dst, float beta) {
  Launch(/*scatter=*/true, src, ld_src, dst, ld_dst, dst_rows, dst_cols, rows, cols, beta);
}

}  // namespace sieve::ops::cuda
