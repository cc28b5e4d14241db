// Random fills: argument validation and dispatch to the CPU or CUDA kernels.
#include "ops/kernels/random_fill.h"

#include <cmath>

namespace sieve::ops {

namespace {

Status ValidateFillTarget(const Tensor& t, DType dtype, const char* fill) {
  SIEVE_ENSURE(t.dtype() == dtype, StatusCode::kInvalidArgument,
               fill << " fills " << DTypeName(dtype) << " tensors, got " << t.ToString());
  SIEVE_ENSURE(t.is_contiguous(), StatusCode::kFailedPrecondition,
               fill << " needs a contiguous tensor (element i takes stream element i), got " << ShapeToString(t.shape())
                    << " with strides " << ShapeToString(t.strides()));
  return Status::Ok();
}

}  // namespace

Status FillUniform(const Tensor& t, float low, float high, const RandomStream& stream) {
  SIEVE_RETURN_IF_ERROR(ValidateFillTarget(t, DType::kFloat32, "FillUniform"));
  SIEVE_ENSURE(std::isfinite(low) && std::isfinite(high) && std::isfinite(high - low) && low <= high,
               StatusCode::kInvalidArgument,
               "FillUniform of " << t.ToString() << " needs finite low <= high, got [" << low << ", " << high << ")");
  if (t.numel() == 0) return Status::Ok();
#ifdef SIEVE_WITH_CUDA
  if (t.device().is_cuda()) {
    cuda::FillUniform(t.data<float>(), t.numel(), low, high, stream, 0);
    return Status::Ok();
  }
#endif
  cpu::FillUniform(t.data<float>(), t.numel(), low, high, stream, 0);
  return Status::Ok();
}

Status FillNormal(const Tensor& t, float mean, float stddev, const RandomStream& stream) {
  SIEVE_RETURN_IF_ERROR(ValidateFillTarget(t, DType::kFloat32, "FillNormal"));
  SIEVE_ENSURE(std::isfinite(mean) && std::isfinite(stddev) && stddev >= 0.0f, StatusCode::kInvalidArgument,
               "FillNormal of " << t.ToString() << " needs a finite mean and a finite stddev >= 0, got mean " << mean
                                << ", stddev " << stddev);
  if (t.numel() == 0) return Status::Ok();
#ifdef SIEVE_WITH_CUDA
  if (t.device().is_cuda()) {
    cuda::FillNormal(t.data<float>(), t.numel(), mean, stddev, stream, 0);
    return Status::Ok();
  }
#endif
  cpu::FillNormal(t.data<float>(), t.numel(), mean, stddev, stream, 0);
  return Status::Ok();
}

Status FillRandomBits(const Tensor& t, const RandomStream& stream) {
  SIEVE_RETURN_IF_ERROR(ValidateFillTarget(t, DType::kInt32, "FillRandomBits"));
  if (t.numel() == 0) return Status::Ok();
  auto* out = static_cast<uint32_t*>(t.raw_data());
#ifdef SIEVE_WITH_CUDA
  if (t.device().is_cuda()) {
    cuda::FillBits(out, t.numel(), stream, 0);
    return Status::Ok();
  }
#endif
  cpu::FillBits(out, t.numel(), stream, 0);
  return Status::Ok();
}

}  // namespace sieve::ops
