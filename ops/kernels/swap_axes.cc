// Validation and device dispatch of SwapLeadingAxes.
#include "ops/kernels/swap_axes.h"

#include <initializer_list>
#include <utility>

#include "ops/check.h"

namespace sieve::ops {

Status SwapLeadingAxes(const Tensor& x, const Tensor& y) {
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"x", &x}, {"y", &y}}) {
    SIEVE_ENSURE(t->dtype() == DType::kFloat32, StatusCode::kUnimplemented,
                 "SwapLeadingAxes supports float32; " << name << " is " << t->ToString());
    SIEVE_ENSURE(t->rank() == 3 && t->is_contiguous(), StatusCode::kInvalidArgument,
                 "SwapLeadingAxes: " << name << " must be a contiguous 3-D tensor; got " << ShapeToString(t->shape())
                                     << " with strides " << ShapeToString(t->strides()));
  }
  SIEVE_ENSURE(y.dim(0) == x.dim(1) && y.dim(1) == x.dim(0) && y.dim(2) == x.dim(2), StatusCode::kInvalidArgument,
               "SwapLeadingAxes: x " << ShapeToString(x.shape()) << " needs y [" << x.dim(1) << ", " << x.dim(0) << ", "
                                     << x.dim(2) << "]; got " << ShapeToString(y.shape()));
  SIEVE_ENSURE(x.device() == y.device(), StatusCode::kInvalidArgument,
               "SwapLeadingAxes: operands on different devices: x " << x.ToString() << " and y " << y.ToString());
  SIEVE_ENSURE(!Overlaps(x, y), StatusCode::kInvalidArgument,
               "SwapLeadingAxes: x " << ShapeToString(x.shape()) << " and y " << ShapeToString(y.shape())
                                     << " overlap in memory; the op cannot run in place");
  if (x.numel() == 0) return Status::Ok();
  if (x.device().is_cpu()) {
    cpu::SwapLeadingAxes(x.data<float>(), y.data<float>(), x.dim(0), x.dim(1), x.dim(2));
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::SwapLeadingAxes(x.data<float>(), y.data<float>(), x.dim(0), x.dim(1), x.dim(2));
  return Status::Ok();
#else
  return SIEVE_ERROR(StatusCode::kUnimplemented, "SwapLeadingAxes: no kernel for " << x.ToString() << " in this build");
#endif
}

}  // namespace sieve::ops
