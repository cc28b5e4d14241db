// CPU SwapLeadingAxes: the (a, b) grid of R-float rows is cut into blocks of kBlock x kBlock rows
// (short rows, e.g. R = 1 or a small feature map, would otherwise stride through memory on one
// side), each block a row-by-row copy; OpenMP over the blocks when there is enough to copy.
#include <algorithm>
#include <cstring>

#include "ops/kernels/swap_axes.h"

namespace sieve::ops::cpu {

namespace {

constexpr int64_t kBlock = 32;                      // rows per block side
constexpr int64_t kParallelMin = int64_t{1} << 16;  // elements; below this one thread is faster

}  // namespace

void SwapLeadingAxes(const float* x, float* y, int64_t a, int64_t b, int64_t r) {
  const int64_t a_blocks = (a + kBlock - 1) / kBlock, b_blocks = (b + kBlock - 1) / kBlock;
  const size_t row_bytes = static_cast<size_t>(r) * sizeof(float);
#pragma omp parallel for collapse(2) schedule(static) if (a * b * r >= kParallelMin)
  for (int64_t bb = 0; bb < b_blocks; ++bb)
    for (int64_t ab = 0; ab < a_blocks; ++ab) {
      const int64_t b_end = std::min(b, (bb + 1) * kBlock), a_end = std::min(a, (ab + 1) * kBlock);
      for (int64_t j = bb * kBlock; j < b_end; ++j)
        for (int64_t i = ab * kBlock; i < a_end; ++i) std::memcpy(y + (j * a + i) * r, x + (i * b + j) * r, row_bytes);
    }
}

}  // namespace sieve::ops::cpu
