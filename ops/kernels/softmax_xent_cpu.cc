// CPU softmax + cross-entropy. Each row: max, exp (Eigen's vectorised exp) and sum in float, the
// row's loss in double from the float sum; rows run in parallel for large batches and their losses
// are combined in row order afterwards, so the result never depends on the thread count.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/kernels/softmax_xent.h"

namespace sieve::ops::cpu {

namespace {

constexpr int64_t kParallelMin = int64_t{1} << 15;  // elements; below this one thread is faster

using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
using Array = Eigen::Map<Eigen::ArrayXf>;

bool Counted(int32_t label, int64_t classes, const std::optional<int32_t>& ignore_label) {
  return label >= 0 && label < classes && !(ignore_label && label == *ignore_label);
}

constexpr uint8_t kCountedBit = 1, kCorrectBit = 2;

}  // namespace

SoftmaxXentStats SoftmaxXentForward(const float* logits, int64_t ld_logits, const int32_t* labels, int64_t rows,
                                    int64_t classes, std::optional<int32_t> ignore_label, float* prob,
                                    int64_t ld_prob) {
  SoftmaxXentStats stats;
  if (rows == 0 || classes == 0) return stats;
  std::vector<double> row_loss(static_cast<size_t>(rows));
  std::vector<uint8_t> row_flags(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * classes >= kParallelMin)
  for (int64_t b = 0; b < rows; ++b) {
    const float* x = logits + b * ld_logits;
    float* p = prob + b * ld_prob;
    const bool counted = Counted(labels[b], classes, ignore_label);
    const float target = counted ? x[labels[b]] : 0.0f;  // read before p, which may be x, is written
    const float max = ConstArray(x, classes).maxCoeff();
    Array(p, classes) = (ConstArray(x, classes) - max).exp();
    const float sum = Array(p, classes).sum();
    Array(p, classes) *= 1.0f / sum;
    row_loss[static_cast<size_t>(b)] =
        counted ? std::log(static_cast<double>(sum)) - (static_cast<double>(target) - static_cast<double>(max)) : 0.0;
    row_flags[static_cast<size_t>(b)] = counted ? (kCountedBit | (target >= max ? kCorrectBit : 0)) : 0;
  }
  for (int64_t b = 0; b < rows; ++b) {
    const uint8_t flags = row_flags[static_cast<size_t>(b)];
    if ((flags & kCountedBit) == 0) continue;
    stats.loss_sum += row_loss[static_cast<size_t>(b)];
    ++stats.counted;
    stats.correct += (flags & kCorrectBit) != 0 ? 1 : 0;
  }
  return stats;
}

void SoftmaxXentBackward(const float* prob, int64_t ld_prob, const int32_t* labels, int64_t rows, int64_t classes,
                         std::optional<int32_t> ignore_label, float loss_weight, float* dlogits, int64_t ld_dlogits) {
  int64_t counted = 0;
  for (int64_t b = 0; b < rows; ++b) counted += Counted(labels[b], classes, ignore_label) ? 1 : 0;
  const float scale = counted > 0 ? loss_weight / static_cast<float>(counted) : 0.0f;
#pragma omp parallel for schedule(static) if (rows * classes >= kParallelMin)
  for (int64_t b = 0; b < rows; ++b) {
    const float* p = prob + b * ld_prob;
    float* d = dlogits + b * ld_dlogits;
    const int32_t label = labels[b];
    if (!Counted(label, classes, ignore_label)) {
      std::fill(d, d + classes, 0.0f);
      continue;
    }
    const float p_label = p[label];  // d may be p
#pragma omp simd
    for (int64_t c = 0; c < classes; ++c) d[c] = p[c] * scale;
    d[label] = (p_label - 1.0f) * scale;
  }
}

}  // namespace sieve::ops::cpu
