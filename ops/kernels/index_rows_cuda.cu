// CUDA index-row kernels. Gather: blockIdx.y walks positions, threads walk a row's columns.
// Scatter-add, deterministic and atomic-free: (index, position) pairs are sorted by index with
// CUB's stable radix sort (so equal indices keep position order), then the block that meets the
// first position of a run of equal indices adds the whole run into that destination row, in order.
// Out-of-range indices become a sentinel key that sorts last and is skipped.
#include <algorithm>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/index_rows.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
constexpr int64_t kMaxGridY = 65535;
constexpr size_t kAlign = 256;  // CUB's temporary storage wants 256-byte alignment

int RowThreads(int64_t cols) { return static_cast<int>(std::min<int64_t>(kThreads, (cols + 31) / 32 * 32)); }

__global__ void GatherKernel(const float* __restrict__ table, int64_t ld_table, int64_t table_rows,
                             const int32_t* __restrict__ indices, int64_t n, int64_t cols, float* __restrict__ out,
                             int64_t ld_out) {
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const int64_t index = indices[i];
    const bool valid = index >= 0 && index < table_rows;
    const float* row = table + (valid ? index : 0) * ld_table;
    float* o = out + i * ld_out;
    for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x)
      o[c] = valid ? row[c] : 0.0f;
  }
}

// keys[i] = indices[i], or the sentinel dst_rows when out of range; positions[i] = i.
__global__ void KeysKernel(const int32_t* __restrict__ indices, int64_t n, int64_t dst_rows,
                           uint32_t* __restrict__ keys, int32_t* __restrict__ positions) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t index = indices[i];
    keys[i] = static_cast<uint32_t>(index >= 0 && index < dst_rows ? index : dst_rows);
    positions[i] = static_cast<int32_t>(i);
  }
}

// The block at the first entry k of each run of equal sorted keys adds the run's source rows, in
// position order, into the destination row. The skip test depends on k only, so it is uniform
// over the block.
__global__ void RunsKernel(const uint32_t* __restrict__ keys, const int32_t* __restrict__ positions, int64_t n,
                           int64_t dst_rows, const float* __restrict__ src, int64_t ld_src, int64_t cols,
                           float* __restrict__ dst, int64_t ld_dst) {
  for (int64_t k = blockIdx.x; k < n; k += gridDim.x) {
    const uint32_t key = keys[k];
    if (key >= dst_rows || (k > 0 && keys[k - 1] == key)) continue;
    float* d = dst + static_cast<int64_t>(key) * ld_dst;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float acc = d[c];
      for (int64_t j = k; j < n && keys[j] == key; ++j) acc += src[static_cast<int64_t>(positions[j]) * ld_src + c];
      d[c] = acc;
    }
  }
}

size_t AlignUp(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

void GatherRows(const float* table, int64_t ld_table, int64_t table_rows, const int32_t* indices, int64_t n,
                int64_t cols, float* out, int64_t ld_out) {
  if (n == 0 || cols == 0) return;
  const int threads = RowThreads(cols);
  const int64_t gx = std::min<int64_t>((cols + threads - 1) / threads, kMaxBlocks);
  const int64_t gy = std::min<int64_t>({n, kMaxGridY, std::max<int64_t>(1, kMaxBlocks / gx)});
  GatherKernel<<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), threads, 0, CudaStream()>>>(
      table, ld_table, table_rows, indices, n, cols, out, ld_out);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void ScatterAddRows(const float* src, int64_t ld_src, const int32_t* indices, int64_t n, int64_t cols, float* dst,
                    int64_t ld_dst, int64_t dst_rows) {
  if (n == 0 || cols == 0) return;
  SIEVE_CHECK(n <= INT32_MAX && dst_rows <= INT32_MAX,
              "ScatterAddRows: " << n << " positions into " << dst_rows << " rows exceed the int32 sort keys");
  // Keys are at most dst_rows (the sentinel): sort only the bits that can differ.
  int end_bit = 1;
  while (end_bit < 32 && (int64_t{1} << end_bit) <= dst_rows) ++end_bit;
  const int items = static_cast<int>(n);

  uint32_t* no_keys = nullptr;
  int32_t* no_positions = nullptr;
  size_t temp_bytes = 0;
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, no_keys, no_keys, no_positions, no_positions,
                                                   items, 0, end_bit, CudaStream()));
  const size_t array_bytes = AlignUp(static_cast<size_t>(n) * sizeof(uint32_t));
  const size_t total = 4 * array_bytes + AlignUp(temp_bytes);
  const int device = CurrentCudaDevice();
  // Returned to the caching allocator at the end of the call; later users of the block queue on the
  // same default stream, after these kernels.
  Tensor workspace =
      Tensor::Empty({static_cast<int64_t>(total / sizeof(float))}, DType::kFloat32, Device::CUDA(device));
  char* base = static_cast<char*>(workspace.raw_data());
  auto* keys_in = reinterpret_cast<uint32_t*>(base);
  auto* keys_out = reinterpret_cast<uint32_t*>(base + array_bytes);
  auto* positions_in = reinterpret_cast<int32_t*>(base + 2 * array_bytes);
  auto* positions_out = reinterpret_cast<int32_t*>(base + 3 * array_bytes);
  void* temp = base + 4 * array_bytes;

  const unsigned key_blocks = static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
  KeysKernel<<<key_blocks, kThreads, 0, CudaStream()>>>(indices, n, dst_rows, keys_in, positions_in);
  SIEVE_CUDA_CHECK_LAUNCH();
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, positions_in, positions_out,
                                                   items, 0, end_bit, CudaStream()));
  RunsKernel<<<static_cast<unsigned>(std::min(n, kMaxBlocks)), RowThreads(cols), 0, CudaStream()>>>(
      keys_out, positions_out, n, dst_rows, src, ld_src, cols, dst, ld_dst);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
