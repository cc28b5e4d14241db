// Bernoulli dropout: argument validation and dispatch to the CPU or CUDA kernel.
#include "ops/kernels/dropout.h"

#include "ops/check.h"

#include <cstddef>

namespace sieve::ops {

namespace {

// Checks one (input, output) pair of a dropout call; `in_name`/`out_name` label the messages.
Status ValidateDropout(const Tensor& in, const Tensor& out, const DropoutAttr& attr, const char* in_name,
                       const char* out_name) {
  SIEVE_ENSURE(attr.p >= 0.0f && attr.p < 1.0f, StatusCode::kInvalidArgument,
               "dropout rate p = " << attr.p << " must be in [0, 1)");
  SIEVE_ENSURE(in.shape() == out.shape(), StatusCode::kInvalidArgument,
               "dropout " << in_name << " " << ShapeToString(in.shape()) << " and " << out_name << " "
                          << ShapeToString(out.shape()) << " must have the same shape");
  SIEVE_ENSURE(in.dtype() == DType::kFloat32 && out.dtype() == DType::kFloat32, StatusCode::kInvalidArgument,
               "dropout needs float32 tensors, got " << in_name << " " << in.ToString() << " and " << out_name << " "
                                                     << out.ToString());
  SIEVE_ENSURE(in.device() == out.device(), StatusCode::kInvalidArgument,
               "dropout " << in_name << " " << in.ToString() << " and " << out_name << " " << out.ToString()
                          << " must be on the same device");
  SIEVE_ENSURE(in.is_contiguous() && out.is_contiguous(), StatusCode::kFailedPrecondition,
               "dropout needs contiguous tensors (the mask follows the row-major element index), got "
                   << in_name << " " << ShapeToString(in.shape()) << " strides " << ShapeToString(in.strides())
                   << " and " << out_name << " " << ShapeToString(out.shape()) << " strides "
                   << ShapeToString(out.strides()));
  SIEVE_ENSURE(IsSameView(in, out) || !Overlaps(in, out), StatusCode::kInvalidArgument,
               "dropout " << out_name << " " << ShapeToString(out.shape()) << " partly overlaps " << in_name << " "
                          << ShapeToString(in.shape()) << "; use the same tensor for in-place dropout");
  return Status::Ok();
}

void Dispatch(const Tensor& in, const Tensor& out, const DropoutAttr& attr) {
  const int64_t n = in.numel();
  if (n == 0) return;
#ifdef SIEVE_WITH_CUDA
  if (in.device().is_cuda()) {
    cuda::ApplyDropout(in.data<float>(), out.data<float>(), n, attr.p, attr.stream, 0);
    return;
  }
#endif
  cpu::ApplyDropout(in.data<float>(), out.data<float>(), n, attr.p, attr.stream, 0);
}

}  // namespace

Status DropoutForward(const Tensor& x, const Tensor& y, const DropoutAttr& attr) {
  SIEVE_RETURN_IF_ERROR(ValidateDropout(x, y, attr, "x", "y"));
  Dispatch(x, y, attr);
  return Status::Ok();
}

Status DropoutBackward(const Tensor& dy, const Tensor& dx, const DropoutAttr& attr) {
  SIEVE_RETURN_IF_ERROR(ValidateDropout(dy, dx, attr, "dy", "dx"));
  Dispatch(dy, dx, attr);
  return Status::Ok();
}

}  // namespace sieve::ops
