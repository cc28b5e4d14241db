// Softmax + cross-entropy, the classification loss head, fused so it is numerically stable:
//
//   prob[b, :]  = softmax(logits[b, :])                  (row max subtracted first)
//   loss        = (1 / counted) * sum_{counted b} -log prob[b, label[b]]
//   dlogits     = (prob - onehot(label)) * (loss_weight / counted)   on counted rows, 0 elsewhere
//
// A row is counted unless its label equals the optional ignore_label (Caffe's option, normalised
// as Caffe's default VALID: by the number of counted rows); with no counted row the loss is 0. A
// counted row is also correct when no class scores strictly above its label (Caffe's Accuracy with
// top_k = 1: ties count as correct), which feeds an accuracy readout without a second pass.
#pragma once

#include <cstdint>
#include <optional>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

struct SoftmaxXentOptions {
  /// Rows with this label add no loss and no gradient and are not counted.
  std::optional<int32_t> ignore_label;
};

/// What a forward measured over the batch.
struct SoftmaxXentStats {
  double loss_sum = 0.0;  ///< sum of -log prob[b, label[b]] over counted rows, accumulated in double
  int64_t counted = 0;    ///< rows whose label is not ignore_label
  int64_t correct = 0;    ///< counted rows whose label has the top score

  /// The mean loss over counted rows (0 when none).
  double loss() const { return counted > 0 ? loss_sum / static_cast<double>(counted) : 0.0; }
  /// correct / counted (0 when none).
  double accuracy() const { return counted > 0 ? static_cast<double>(correct) / static_cast<double>(counted) : 0.0; }
};

/// Computes prob from logits and returns the loss statistics. logits and prob are 2-D float32
/// [B, C] with unit column stride (strided views are fine; prob may be logits itself, in place);
/// labels is a contiguous int32 tensor of B elements, each in [0, C) or equal to ignore_label,
/// else the error names the row, the label and C. Same device. On CUDA the call copies the labels
/// to the host to check them and waits for the statistics.
StatusOr<SoftmaxXentStats> SoftmaxXentForward(const Tensor& logits, const Tensor& labels, const Tensor& prob,
                                              const SoftmaxXentOptions& options = {});

/// dlogits = (prob - onehot(label)) * (loss_weight / counted) on counted rows, 0 on ignored rows;
/// shapes as in the forward, dlogits may be prob itself. Labels are checked as in the forward.
Status SoftmaxXentBackward(const Tensor& prob, const Tensor& labels, const Tensor& dlogits, float loss_weight,
                           const SoftmaxXentOptions& options = {});

namespace ref {
// Naive reference versions (CPU, everything in double), the oracle for the fast paths; same
// contracts, no validation.
SoftmaxXentStats SoftmaxXentForward(const Tensor& logits, const Tensor& labels, const Tensor& prob,
                                    const SoftmaxXentOptions& options);
void SoftmaxXentBackward(const Tensor& prob, const Tensor& labels, const Tensor& dlogits, float loss_weight,
                         const SoftmaxXentOptions& options);
}  // namespace ref

// Raw-pointer entry points over rows x classes matrices with leading dimensions; no validation.
// A label outside [0, classes) is treated like ignore_label (never used as an address); the
// Tensor-level API reports it instead.

namespace cpu {
// Rows in parallel (OpenMP for large batches), each row vectorised with Eigen; per-row losses are
// summed in row order, so the result does not depend on the thread count.
SoftmaxXentStats SoftmaxXentForward(const float* logits, int64_t ld_logits, const int32_t* labels, int64_t rows,
                                    int64_t classes, std::optional<int32_t> ignore_label, float* prob, int64_t ld_prob);
void SoftmaxXentBackward(const float* prob, int64_t ld_prob, const int32_t* labels, int64_t rows, int64_t classes,
                         std::optional<int32_t> ignore_label, float loss_weight, float* dlogits, int64_t ld_dlogits);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions on the default stream; nothing waits for the device. The forward writes its
// statistics to `stats`, a SoftmaxXentStats in device memory, reduced in a fixed order (same input,
// same bits); the backward counts the rows on the device.
void SoftmaxXentForward(const float* logits, int64_t ld_logits, const int32_t* labels, int64_t rows, int64_t classes,
                        std::optional<int32_t> ignore_label, float* prob, int64_t ld_prob, SoftmaxXentStats* stats);
void SoftmaxXentBackward(const float* prob, int64_t ld_prob, const int32_t* labels, int64_t rows, int64_t classes,
                         std::optional<int32_t> ignore_label, float loss_weight, float* dlogits, int64_t ld_dlogits);
}  // namespace cuda
#endif

}  // namespace sieve::ops
