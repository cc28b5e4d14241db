// CPU Add: work cut into spans of at most kChunk elements of one row (contiguous operands are one
// long row), an `omp simd` loop per span (which also vectorises the in-place case), spread over the
// OpenMP team when there is enough of it.
#include <algorithm>

#include "ops/kernels/add.h"

namespace sieve::ops::cpu {

namespace {

constexpr int64_t kChunk = int64_t{1} << 14;        // elements per task: 64 KB of floats
constexpr int64_t kParallelMin = int64_t{1} << 17;  // elements; below this one thread is faster

}  // namespace

void Add(const float* a, int64_t ld_a, const float* b, int64_t ld_b, float* y, int64_t ld_y, int64_t rows,
         int64_t cols) {
  if (ld_a == cols && ld_b == cols && ld_y == cols) {  // all contiguous: one long row balances best
    cols *= rows;
    rows = 1;
  }
  const int64_t per_row = (cols + kChunk - 1) / kChunk;
  const int64_t tasks = rows * per_row;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t r = t / per_row, c0 = (t % per_row) * kChunk;
    const int64_t n = std::min(kChunk, cols - c0);
    const float* ar = a + r * ld_a + c0;
    const float* br = b + r * ld_b + c0;
    float* yr = y + r * ld_y + c0;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) yr[i] = ar[i] + br[i];
  }
}

}  // namespace sieve::ops::cpu
