// CPU bias kernels. The forward adds a (packed) bias row to every row, in parallel over rows; a
// pattern is resolved once into a packed copy of the bias so the inner loop is a plain vector add.
// The backward sums columns over fixed row x column blocks (double partial sums, combined in block
// order), so its rounding depends on the shape only and never on how many threads ran.
#include <algorithm>
#include <variant>
#include <vector>

#include "ops/kernels/bias.h"

namespace sieve::ops::cpu {

namespace {

constexpr int64_t kParallelMin = int64_t{1} << 15;  // elements; below this one thread beats waking the team
constexpr int64_t kRowBlock = 64;                   // rows per backward block (at least)
constexpr int64_t kMaxRowBlocks = 64;               // bounds the partial-sum buffer to 64 rows of doubles
constexpr int64_t kColBlock = 256;                  // columns per backward block: 2 KB of doubles

// col(j) for the `cols` stored columns under a (non-null) pattern.
std::vector<int64_t> ColumnMap(int64_t cols, const IndexPattern& pattern) {
  std::vector<int64_t> col(static_cast<size_t>(cols));
  if (const auto* row = std::get_if<RowPattern>(&pattern)) {
    const auto kept = internal::KeptIndexOfRow::From(*row);
    for (int64_t j = 0; j < cols; ++j) col[static_cast<size_t>(j)] = kept(j);
  } else {
    const auto& kept = std::get<ChannelSet>(pattern).kept;
    std::copy(kept.begin(), kept.begin() + cols, col.begin());
  }
  return col;
}

// Sum of n floats in double with eight independent accumulators, so the loop vectorises without
// reassociation flags; the order is fixed by n alone.
double SumRow(const float* x, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += x[i + k];
  for (int k = 0; i < n; ++i, ++k) acc[k] += x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

float Blend(double sum, float beta, float old) {
  return static_cast<float>(beta == 0.0f ? sum : sum + static_cast<double>(beta) * old);
}

}  // namespace

void AddBias(float* y, int64_t ld_y, int64_t rows, int64_t cols, const float* bias, const IndexPattern* pattern) {
  std::vector<float> packed;
  const float* b = bias;
  if (pattern != nullptr) {
    const std::vector<int64_t> col = ColumnMap(cols, *pattern);
    packed.resize(static_cast<size_t>(cols));
    for (int64_t j = 0; j < cols; ++j) packed[static_cast<size_t>(j)] = bias[col[static_cast<size_t>(j)]];
    b = packed.data();
  }
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    float* row = y + i * ld_y;
    for (int64_t j = 0; j < cols; ++j) row[j] += b[j];
  }
}

void BiasBackward(const float* dy, int64_t ld_dy, int64_t rows, int64_t cols, float* db, float beta,
                  const IndexPattern* pattern) {
  const int64_t block = std::max(kRowBlock, (rows + kMaxRowBlocks - 1) / kMaxRowBlocks);
  const int64_t row_blocks = (rows + block - 1) / block;
  const int64_t col_blocks = (cols + kColBlock - 1) / kColBlock;
  std::vector<double> partial(static_cast<size_t>(row_blocks * cols));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t task = 0; task < row_blocks * col_blocks; ++task) {
    const int64_t rb = task / col_blocks, cb = task % col_blocks;
    const int64_t r0 = rb * block, r1 = std::min(rows, r0 + block);
    const int64_t c0 = cb * kColBlock, n = std::min(cols, c0 + kColBlock) - c0;
    double* acc = partial.data() + rb * cols + c0;
    std::fill(acc, acc + n, 0.0);
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = dy + r * ld_dy + c0;
      for (int64_t j = 0; j < n; ++j) acc[j] += row[j];
    }
  }
  std::vector<double> sums(static_cast<size_t>(cols), 0.0);
  for (int64_t rb = 0; rb < row_blocks; ++rb) {
    const double* p = partial.data() + rb * cols;
    for (int64_t j = 0; j < cols; ++j) sums[static_cast<size_t>(j)] += p[j];
  }
  if (pattern == nullptr) {
    for (int64_t j = 0; j < cols; ++j) db[j] = Blend(sums[static_cast<size_t>(j)], beta, db[j]);
    return;
  }
  const std::vector<int64_t> col = ColumnMap(cols, *pattern);
  for (int64_t j = 0; j < cols; ++j) {
    float& out = db[col[static_cast<size_t>(j)]];
    out = Blend(sums[static_cast<size_t>(j)], beta, out);
  }
}

void AddChannelBias(float* y, int64_t ld_y, int64_t batch, int64_t channels, int64_t spatial, const float* bias) {
  const int64_t rows = batch * channels;
#pragma omp parallel for schedule(static) if (rows * spatial >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float b = bias[r % channels];
    float* row = y + r * ld_y;
    for (int64_t s = 0; s < spatial; ++s) row[s] += b;
  }
}

void ChannelBiasBackward(const float* dy, int64_t ld_dy, int64_t batch, int64_t channels, int64_t spatial, float* db,
                         float beta) {
  const int64_t rows = batch * channels;
  std::vector<double> row_sum(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * spatial >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) row_sum[static_cast<size_t>(r)] = SumRow(dy + r * ld_dy, spatial);
  for (int64_t c = 0; c < channels; ++c) {
    double sum = 0.0;
    for (int64_t n = 0; n < batch; ++n) sum += row_sum[static_cast<size_t>(n * channels + c)];
    db[c] = Blend(sum, beta, db[c]);
  }
}

}  // namespace sieve::ops::cpu
