// Validation and device dispatch of the Tensor-level softmax + cross-entropy.
#include "ops/kernels/softmax_xent.h"

#include "ops/check.h"

#include <string>
#include <utility>

namespace sieve::ops {

namespace {

// Checks `in` ([B, C] input), `out` (its result: the same view or disjoint) and the labels, whose
// values are checked on the host (copied there first when they live on the GPU).
Status CheckOperands(const char* op, const char* in_name, const Tensor& in, const char* out_name, const Tensor& out,
                     const Tensor& labels, const SoftmaxXentOptions& options) {
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, in_name, in, "[batch, classes]"));
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, out_name, out, "[batch, classes]"));
  SIEVE_ENSURE(in.shape() == out.shape(), StatusCode::kInvalidArgument,
               op << ": " << out_name << " " << ShapeToString(out.shape()) << " must have the shape of " << in_name
                  << " " << ShapeToString(in.shape()));
  SIEVE_ENSURE(labels.dtype() == DType::kInt32 && labels.is_contiguous() && labels.numel() == in.dim(0),
               StatusCode::kInvalidArgument,
               op << ": labels must be a contiguous int32 tensor with one entry per row of " << in_name << " "
                  << ShapeToString(in.shape()) << "; got " << labels.ToString());
  SIEVE_ENSURE(out.device() == in.device() && labels.device() == in.device(), StatusCode::kInvalidArgument,
               op << ": operands on different devices: " << in.ToString() << ", " << out.ToString() << ", labels "
                  << labels.ToString());
  SIEVE_ENSURE(IsSameView(in, out) || !Overlaps(in, out), StatusCode::kInvalidArgument,
               op << ": " << out_name << " overlaps " << in_name << " without being the same view");
  const Tensor host = labels.device().is_cpu() ? labels : labels.Clone(Device::CPU());
  const int32_t* label = host.data<int32_t>();
  const int64_t classes = in.dim(1);
  for (int64_t b = 0; b < in.dim(0); ++b) {
    const bool ignored = options.ignore_label && label[b] == *options.ignore_label;
    SIEVE_ENSURE(ignored || (label[b] >= 0 && label[b] < classes), StatusCode::kOutOfRange,
                 op << ": row " << b << " has label " << label[b] << ", outside [0, " << classes << ") for " << in_name
                    << " " << ShapeToString(in.shape())
                    << (options.ignore_label ? " and not the ignore_label " + std::to_string(*options.ignore_label)
                                             : std::string()));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<SoftmaxXentStats> SoftmaxXentForward(const Tensor& logits, const Tensor& labels, const Tensor& prob,
                                              const SoftmaxXentOptions& options) {
  SIEVE_RETURN_IF_ERROR(CheckOperands("SoftmaxXentForward", "logits", logits, "prob", prob, labels, options));
  const int64_t rows = logits.dim(0), classes = logits.dim(1);
  if (rows == 0 || classes == 0) return SoftmaxXentStats{};  // with no classes every row was ignored
  if (logits.device().is_cpu()) {
    return cpu::SoftmaxXentForward(logits.data<float>(), logits.stride(0), labels.data<int32_t>(), rows, classes,
                                   options.ignore_label, prob.data<float>(), prob.stride(0));
  }
#ifdef SIEVE_WITH_CUDA
  // The statistics travel back through a small device buffer (3 x 8 bytes, as float storage).
  Tensor stats =
      Tensor::Empty({static_cast<int64_t>(sizeof(SoftmaxXentStats) / sizeof(float))}, DType::kFloat32, logits.device());
  cuda::SoftmaxXentForward(logits.data<float>(), logits.stride(0), labels.data<int32_t>(), rows, classes,
                           options.ignore_label, prob.data<float>(), prob.stride(0),
                           static_cast<SoftmaxXentStats*>(stats.raw_data()));
  SoftmaxXentStats host;
  CopyBytes(&host, Device::CPU(), stats.raw_data(), stats.device(), sizeof(host));
  return host;
#else
  return SIEVE_ERROR(StatusCode::kUnimplemented,
                     "SoftmaxXentForward: no kernel for " << logits.ToString() << " in this build");
#endif
}

Status SoftmaxXentBackward(const Tensor& prob, const Tensor& labels, const Tensor& dlogits, float loss_weight,
                           const SoftmaxXentOptions& options) {
  SIEVE_RETURN_IF_ERROR(CheckOperands("SoftmaxXentBackward", "prob", prob, "dlogits", dlogits, labels, options));
  const int64_t rows = prob.dim(0), classes = prob.dim(1);
  if (rows == 0 || classes == 0) return Status::Ok();
  if (prob.device().is_cpu()) {
    cpu::SoftmaxXentBackward(prob.data<float>(), prob.stride(0), labels.data<int32_t>(), rows, classes,
                             options.ignore_label, loss_weight, dlogits.data<float>(), dlogits.stride(0));
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::SoftmaxXentBackward(prob.data<float>(), prob.stride(0), labels.data<int32_t>(), rows, classes,
                            options.ignore_label, loss_weight, dlogits.data<float>(), dlogits.stride(0));
  return Status::Ok();
#else
  return SIEVE_ERROR(StatusCode::kUnimplemented,
                     "SoftmaxXentBackward: no kernel for " << prob.ToString() << " in this build");
#endif
}

}  // namespace sieve::ops
