// Validation and device dispatch of the Tensor-level pooling kernels.
#include "ops/kernels/pooling.h"

#include "ops/check.h"

#include <limits>
#include <string>

namespace sieve::ops {

namespace {

// A contiguous [B, C, rows, cols] tensor of `dtype` whose batch matches `batch` (any batch when
// batch < 0).
Status CheckPlanes(const char* op, const char* name, const Tensor& t, DType dtype, int64_t batch, const ConvGeometry& g,
                   int64_t rows, int64_t cols) {
  SIEVE_ENSURE(t.rank() == 4 && (batch < 0 || t.dim(0) == batch) && t.dim(1) == g.channels && t.dim(2) == rows &&
                   t.dim(3) == cols,
               StatusCode::kInvalidArgument,
               op << ": " << name << " must be [" << (batch < 0 ? std::string("B") : std::to_string(batch)) << ", "
                  << g.channels << ", " << rows << ", " << cols << "] for geometry " << g.ToString() << "; got "
                  << ShapeToString(t.shape()));
  SIEVE_ENSURE(t.dtype() == dtype, StatusCode::kInvalidArgument,
               op << ": " << name << " must be " << DTypeName(dtype) << "; got " << t.ToString());
  SIEVE_ENSURE(t.is_contiguous(), StatusCode::kInvalidArgument,
               op << ": " << name << " must be contiguous; got strides " << ShapeToString(t.strides()));
  return Status::Ok();
}

Status CheckSameDevice(const char* op, const Tensor& a, const Tensor& b) {
  SIEVE_ENSURE(a.device() == b.device(), StatusCode::kInvalidArgument,
               op << ": operands on different devices: " << a.ToString() << ", " << b.ToString());
  return Status::Ok();
}

// Checks the input-shaped tensor `in` and the output-shaped `out` (and `argmax` when given).
Status CheckPooling(const char* op, const ConvGeometry& g, const char* in_name, const Tensor& in, const char* out_name,
                    const Tensor& out, const Tensor* argmax) {
  SIEVE_RETURN_IF_ERROR(ValidatePoolingGeometry(g));
  SIEVE_RETURN_IF_ERROR(CheckPlanes(op, in_name, in, DType::kFloat32, -1, g, g.height, g.width));
  SIEVE_RETURN_IF_ERROR(CheckPlanes(op, out_name, out, DType::kFloat32, in.dim(0), g, g.out_h(), g.out_w()));
  SIEVE_RETURN_IF_ERROR(CheckSameDevice(op, in, out));
  SIEVE_ENSURE(!Overlaps(in, out), StatusCode::kInvalidArgument,
               op << ": " << in_name << " and " << out_name << " overlap in memory");
  if (argmax != nullptr) {
    SIEVE_RETURN_IF_ERROR(CheckPlanes(op, "argmax", *argmax, DType::kInt32, in.dim(0), g, g.out_h(), g.out_w()));
    SIEVE_RETURN_IF_ERROR(CheckSameDevice(op, in, *argmax));
    SIEVE_ENSURE(!Overlaps(in, *argmax) && !Overlaps(out, *argmax), StatusCode::kInvalidArgument,
                 op << ": argmax overlaps " << in_name << " or " << out_name << " in memory");
  }
  return Status::Ok();
}

int64_t Planes(const Tensor& t) { return t.dim(0) * t.dim(1); }

}  // namespace

Status ValidatePoolingGeometry(const ConvGeometry& g) {
  SIEVE_RETURN_IF_ERROR(g.Validate());
  SIEVE_ENSURE(g.dilation_h == 1 && g.dilation_w == 1, StatusCode::kInvalidArgument,
               "pooling has no dilation; got " << g.ToString());
  SIEVE_ENSURE(g.pad_h < g.kernel_h && g.pad_w < g.kernel_w, StatusCode::kInvalidArgument,
               "pooling padding must be smaller than the kernel ("
                   << g.pad_h << "x" << g.pad_w << " vs " << g.kernel_h << "x" << g.kernel_w
                   << "), else a window sees only padding; " << g.ToString());
  SIEVE_ENSURE(
      g.in_plane() <= std::numeric_limits<int32_t>::max(), StatusCode::kInvalidArgument,
      "pooling stores argmax as int32, so an input plane of " << g.height << "x" << g.width << " cells is too large");
  return Status::Ok();
}

Status MaxPoolForward(const Tensor& x, const ConvGeometry& g, const Tensor& y, const Tensor& argmax) {
  SIEVE_RETURN_IF_ERROR(CheckPooling("MaxPoolForward", g, "x", x, "y", y, &argmax));
  if (x.numel() == 0) return Status::Ok();
#ifdef SIEVE_WITH_CUDA
  if (x.device().is_cuda()) {
    cuda::MaxPoolForward(x.data<float>(), Planes(x), g, y.data<float>(), argmax.data<int32_t>());
    return Status::Ok();
  }
#endif
  cpu::MaxPoolForward(x.data<float>(), Planes(x), g, y.data<float>(), argmax.data<int32_t>());
  return Status::Ok();
}

Status MaxPoolBackward(const Tensor& dy, const Tensor& argmax, const ConvGeometry& g, const Tensor& dx, float beta) {
  SIEVE_RETURN_IF_ERROR(CheckPooling("MaxPoolBackward", g, "dx", dx, "dy", dy, &argmax));
  if (dx.numel() == 0) return Status::Ok();
#ifdef SIEVE_WITH_CUDA
  if (dx.device().is_cuda()) {
    cuda::MaxPoolBackward(dy.data<float>(), argmax.data<int32_t>(), Planes(dx), g, dx.data<float>(), beta);
    return Status::Ok();
  }
#endif
  cpu::MaxPoolBackward(dy.data<float>(), argmax.data<int32_t>(), Planes(dx), g, dx.data<float>(), beta);
  return Status::Ok();
}

Status AvgPoolForward(const Tensor& x, const ConvGeometry& g, const Tensor& y) {
  SIEVE_RETURN_IF_ERROR(CheckPooling("AvgPoolForward", g, "x", x, "y", y, nullptr));
  if (x.numel() == 0) return Status::Ok();
#ifdef SIEVE_WITH_CUDA
  if (x.device().is_cuda()) {
    cuda::AvgPoolForward(x.data<float>(), Planes(x), g, y.data<float>());
    return Status::Ok();
  }
#endif
  cpu::AvgPoolForward(x.data<float>(), Planes(x), g, y.data<float>());
  return Status::Ok();
}

Status AvgPoolBackward(const Tensor& dy, const ConvGeometry& g, const Tensor& dx, float beta) {
  SIEVE_RETURN_IF_ERROR(CheckPooling("AvgPoolBackward", g, "dx", dx, "dy", dy, nullptr));
  if (dx.numel() == 0) return Status::Ok();
#ifdef SIEVE_WITH_CUDA
  if (dx.device().is_cuda()) {
    cuda::AvgPoolBackward(dy.data<float>(), Planes(dx), g, dx.data<float>(), beta);
    return Status::Ok();
  }
#endif
  cpu::AvgPoolBackward(dy.data<float>(), Planes(dx), g, dx.data<float>(), beta);
  return Status::Ok();
}

}  // namespace sieve::ops
