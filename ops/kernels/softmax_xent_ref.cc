// The naive reference softmax + cross-entropy: the formulas of softmax_xent.h in double, one row
// at a time. Slow on purpose; the test oracle.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/kernels/softmax_xent.h"

namespace sieve::ops::ref {

namespace {
bool Counted(int32_t label, const SoftmaxXentOptions& options) {
  return !(options.ignore_label && label == *options.ignore_label);
}
}  // namespace

SoftmaxXentStats SoftmaxXentForward(const Tensor& logits, const Tensor& labels, const Tensor& prob,
                                    const SoftmaxXentOptions& options) {
  SoftmaxXentStats stats;
  const int64_t rows = logits.dim(0), classes = logits.dim(1);
  const int32_t* label = labels.data<int32_t>();
  std::vector<double> e(static_cast<size_t>(classes));
  for (int64_t b = 0; b < rows; ++b) {
    const float* x = logits.data<float>() + b * logits.stride(0);
    double max = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) max = std::max(max, static_cast<double>(x[c]));
    double sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) sum += e[static_cast<size_t>(c)] = std::exp(x[c] - max);
    if (Counted(label[b], options)) {
      const double target = x[label[b]];
      stats.loss_sum += std::log(sum) - (target - max);
      ++stats.counted;
      stats.correct += target >= max ? 1 : 0;
    }
    float* p = prob.data<float>() + b * prob.stride(0);
    for (int64_t c = 0; c < classes; ++c) p[c] = static_cast<float>(e[static_cast<size_t>(c)] / sum);
  }
  return stats;
}

void SoftmaxXentBackward(const Tensor& prob, const Tensor& labels, const Tensor& dlogits, float loss_weight,
                         const SoftmaxXentOptions& options) {
  const int64_t rows = prob.dim(0), classes = prob.dim(1);
  const int32_t* label = labels.data<int32_t>();
  int64_t counted = 0;
  for (int64_t b = 0; b < rows; ++b) counted += Counted(label[b], options) ? 1 : 0;
  const double scale = counted > 0 ? static_cast<double>(loss_weight) / static_cast<double>(counted) : 0.0;
  for (int64_t b = 0; b < rows; ++b) {
    const float* p = prob.data<float>() + b * prob.stride(0);
    float* d = dlogits.data<float>() + b * dlogits.stride(0);
    const bool counted_row = Counted(label[b], options);
    for (int64_t c = 0; c < classes; ++c) {
      const double onehot = c == label[b] ? 1.0 : 0.0;
      d[c] = counted_row ? static_cast<float>((p[c] - onehot) * scale) : 0.0f;
    }
  }
}

}  // namespace sieve::ops::ref
