// CUDA bias kernels. Forward: each thread owns a column (so col(j) and the bias value are read
// once) and walks the rows its block row covers. Backward: two passes with a fixed reduction order
// and no atomics (column partials over row splits, then an ordered combine; or per-row sums, then
// per-channel sums), so the same input always gives the same bits.
#include <algorithm>
#include <cstdint>
#include <variant>
#include <vector>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/bias.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;  // grid-stride loops cover the rest
constexpr int64_t kMaxGridY = 65535;
constexpr int kSumCols = 32;       // columns per block of the column-sum pass
constexpr int kSumRowThreads = 8;  // threads down the rows per column
constexpr int64_t kRowsPerSplit = 128;
constexpr int64_t kMaxSplits = 1024;

// col(j): an explicit device list when `index` is set, else a row pattern in closed form (the
// identity when there is no pattern).
struct ColumnMap {
  const int32_t* index = nullptr;
  internal::KeptIndexOfRow row;
  __device__ int64_t operator()(int64_t j) const { return index != nullptr ? index[j] : row(j); }
};

// The column map of a call plus the device storage of a ChannelSet's list, alive for the call. The
// storage returns to the caching allocator when the call ends; the kernels that read it were queued
// before on the same (default) stream, so later users of the block are ordered after them.
struct StagedColumns {
  Tensor storage;
  ColumnMap map;
};

StagedColumns StageColumns(int64_t cols, const IndexPattern* pattern) {
  StagedColumns staged;
  if (pattern == nullptr) return staged;
  if (const auto* row = std::get_if<RowPattern>(pattern)) {
    staged.map.row = internal::KeptIndexOfRow::From(*row);
    return staged;
  }
  const auto& kept = std::get<ChannelSet>(*pattern).kept;
  std::vector<int32_t> host(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    SIEVE_CHECK(kept[static_cast<size_t>(j)] <= INT32_MAX, "bias index " << kept[static_cast<size_t>(j)]);
    host[static_cast<size_t>(j)] = static_cast<int32_t>(kept[static_cast<size_t>(j)]);
  }
  const int device = CurrentCudaDevice();
  staged.storage = Tensor::Empty({cols}, DType::kInt32, Device::CUDA(device));
  // From pageable memory the call returns once `host` is staged, so it may go out of scope.
  SIEVE_CUDA_CHECK(cudaMemcpyAsync(staged.storage.raw_data(), host.data(), host.size() * sizeof(int32_t),
                                   cudaMemcpyHostToDevice, CudaStream()));
  staged.map.index = staged.storage.data<int32_t>();
  return staged;
}

// Threads along a row: a multiple of the warp size, no more than needed for short rows.
int RowThreads(int64_t cols) { return static_cast<int>(std::min<int64_t>(kThreads, (cols + 31) / 32 * 32)); }

// A grid of (column blocks, row blocks) within kMaxBlocks in total.
dim3 Grid2D(int64_t rows, int64_t cols, int threads) {
  const int64_t x = std::min<int64_t>((cols + threads - 1) / threads, kMaxBlocks);
  const int64_t y = std::min<int64_t>({rows, kMaxGridY, std::max<int64_t>(1, kMaxBlocks / x)});
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
}

// Sum over the block in a fixed order (shuffles within warps, then across warps); the result is
// valid in thread 0. Ends with a barrier so the shared scratch can be reused by the next call.
__device__ float BlockSum(float v) {
  __shared__ float warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x >> 5) ? warp_sums[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  }
  __syncthreads();
  return v;
}

__global__ void AddBiasKernel(float* __restrict__ y, int64_t ld, int64_t rows, int64_t cols,
                              const float* __restrict__ bias, ColumnMap map) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < cols;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float b = bias[map(j)];
    for (int64_t i = blockIdx.y; i < rows; i += gridDim.y) y[i * ld + j] += b;
  }
}

// partial[split, j] = sum of dy[r, j] over the rows of one split. Block: kSumCols x kSumRowThreads.
__global__ void ColumnPartialKernel(const float* __restrict__ dy, int64_t ld, int64_t rows, int64_t cols,
                                    int64_t rows_per_split, float* __restrict__ partial) {
  __shared__ float tile[kSumRowThreads][kSumCols + 1];
  const int64_t j = blockIdx.x * static_cast<int64_t>(kSumCols) + threadIdx.x;
  const int64_t r0 = blockIdx.y * rows_per_split;
  const int64_t r1 = r0 + rows_per_split < rows ? r0 + rows_per_split : rows;
  float acc = 0.0f;
  if (j < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kSumRowThreads) acc += dy[r * ld + j];
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float s = 0.0f;
    for (int k = 0; k < kSumRowThreads; ++k) s += tile[k][threadIdx.x];
    partial[blockIdx.y * cols + j] = s;
  }
}

__global__ void ColumnFinishKernel(const float* __restrict__ partial, int64_t splits, int64_t cols,
                                   float* __restrict__ db, float beta, ColumnMap map) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < cols;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int64_t k = 0; k < splits; ++k) s += partial[k * cols + j];
    float& out = db[map(j)];
    out = beta == 0.0f ? s : s + beta * out;
  }
}

__global__ void AddChannelBiasKernel(float* __restrict__ y, int64_t ld, int64_t rows, int64_t channels, int64_t spatial,
                                     const float* __restrict__ bias) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float b = bias[r % channels];
    float* row = y + r * ld;
    for (int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; s < spatial;
         s += static_cast<int64_t>(gridDim.x) * blockDim.x)
      row[s] += b;
  }
}

// row_sum[r] = sum_s dy[r, s], one block per row.
__global__ void RowSumKernel(const float* __restrict__ dy, int64_t ld, int64_t rows, int64_t spatial,
                             float* __restrict__ row_sum) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = dy + r * ld;
    float acc = 0.0f;
    for (int64_t s = threadIdx.x; s < spatial; s += blockDim.x) acc += row[s];
    acc = BlockSum(acc);
    if (threadIdx.x == 0) row_sum[r] = acc;
  }
}

__global__ void ChannelFinishKernel(const float* __restrict__ row_sum, int64_t batch, int64_t channels,
                                    float* __restrict__ db, float beta) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < channels;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int64_t n = 0; n < batch; ++n) s += row_sum[n * channels + c];
    db[c] = beta == 0.0f ? s : s + beta * db[c];
  }
}

Tensor Workspace(int64_t floats) {
  const int device = CurrentCudaDevice();
  return Tensor::Empty({std::max<int64_t>(floats, 1)}, DType::kFloat32, Device::CUDA(device));
}

unsigned Blocks(int64_t work, int threads) {
  return static_cast<unsigned>(std::clamp<int64_t>((work + threads - 1) / threads, 1, kMaxBlocks));
}

}  // namespace

void AddBias(float* y, int64_t ld_y, int64_t rows, int64_t cols, const float* bias, const IndexPattern* pattern) {
  if (rows == 0 || cols == 0) return;
  const StagedColumns staged = StageColumns(cols, pattern);
  const int threads = RowThreads(cols);
  AddBiasKernel<<<Grid2D(rows, cols, threads), threads, 0, CudaStream()>>>(y, ld_y, rows, cols, bias, staged.map);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void BiasBackward(const float* dy, int64_t ld_dy, int64_t rows, int64_t cols, float* db, float beta,
                  const IndexPattern* pattern) {
  if (cols == 0) return;
  const StagedColumns staged = StageColumns(cols, pattern);
  const int64_t rows_per_split = std::max(kRowsPerSplit, (rows + kMaxSplits - 1) / kMaxSplits);
  const int64_t splits = (rows + rows_per_split - 1) / rows_per_split;
  Tensor partial = Workspace(splits * cols);
  if (splits > 0) {
    const dim3 grid(static_cast<unsigned>((cols + kSumCols - 1) / kSumCols), static_cast<unsigned>(splits));
    ColumnPartialKernel<<<grid, dim3(kSumCols, kSumRowThreads), 0, CudaStream()>>>(
        dy, ld_dy, rows, cols, rows_per_split, partial.data<float>());
    SIEVE_CUDA_CHECK_LAUNCH();
  }
  ColumnFinishKernel<<<Blocks(cols, kThreads), kThreads, 0, CudaStream()>>>(partial.data<float>(), splits, cols, db,
                                                                            beta, staged.map);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void AddChannelBias(float* y, int64_t ld_y, int64_t batch, int64_t channels, int64_t spatial, const float* bias) {
  const int64_t rows = batch * channels;
  if (rows == 0 || spatial == 0) return;
  const int threads = RowThreads(spatial);
  AddChannelBiasKernel<<<Grid2D(rows, spatial, threads), threads, 0, CudaStream()>>>(y, ld_y, rows, channels, spatial,
                                                                                     bias);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void ChannelBiasBackward(const float* dy, int64_t ld_dy, int64_t batch, int64_t channels, int64_t spatial, float* db,
                         float beta) {
  if (channels == 0) return;
  const int64_t rows = batch * channels;
  Tensor row_sum = Workspace(rows);
  if (rows > 0) {
    // Zero-width rows still need their (zero) sums written, so the launch does not depend on spatial.
    RowSumKernel<<<static_cast<unsigned>(std::min(rows, kMaxBlocks)), kThreads, 0, CudaStream()>>>(
        dy, ld_dy, rows, spatial, row_sum.data<float>());
    SIEVE_CUDA_CHECK_LAUNCH();
  }
  ChannelFinishKernel<<<Blocks(channels, kThreads), kThreads, 0, CudaStream()>>>(row_sum.data<float>(), batch, channels,
                                                                                 db, beta);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
