// CPU index-row kernels. Gather copies whole rows in parallel over positions. Scatter-add gives each
// thread a slab of columns (whole 64-byte lines of floats) and lets it walk every position in
// order: no two threads ever write the same element, so duplicate indices need neither atomics nor
// a sort, and each element sees its additions in position order, exactly like the reference.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "ops/kernels/index_rows.h"

namespace sieve::ops::cpu {

namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;  // elements; below this one thread is faster
constexpr int64_t kSlab = 16;                       // columns: one cache line of floats
}  // namespace

void GatherRows(const float* table, int64_t ld_table, int64_t table_rows, const int32_t* indices, int64_t n,
                int64_t cols, float* out, int64_t ld_out) {
#pragma omp parallel for schedule(static) if (n * cols >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = indices[i];
    float* row = out + i * ld_out;
    if (index >= 0 && index < table_rows) {
      std::memcpy(row, table + index * ld_table, static_cast<size_t>(cols) * sizeof(float));
    } else {
      std::fill(row, row + cols, 0.0f);
    }
  }
}

void ScatterAddRows(const float* src, int64_t ld_src, const int32_t* indices, int64_t n, int64_t cols, float* dst,
                    int64_t ld_dst, int64_t dst_rows) {
  const int64_t slabs = (cols + kSlab - 1) / kSlab;
#pragma omp parallel if (n * cols >= kParallelMin && slabs > 1)
  {
    const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    const int64_t c0 = std::min(cols, slabs * t / threads * kSlab);
    const int64_t width = std::min(cols, slabs * (t + 1) / threads * kSlab) - c0;
    for (int64_t i = 0; width > 0 && i < n; ++i) {
      const int64_t index = indices[i];
      if (index < 0 || index >= dst_rows) continue;
      float* d = dst + index * ld_dst + c0;
      const float* s = src + i * ld_src + c0;
#pragma omp simd
      for (int64_t c = 0; c < width; ++c) d[c] += s[c];
    }
  }
}

}  // namespace sieve::ops::cpu
