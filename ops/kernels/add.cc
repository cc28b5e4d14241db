// Validation and device dispatch of the Tensor-level elementwise Add.
#include "ops/kernels/add.h"

#include "ops/check.h"

namespace sieve::ops {

namespace {

// The elementwise operand layouts Add accepts, as rows x cols with a leading dimension per operand:
// one flat row when all are contiguous, else each a 2-D view with unit column stride.
struct Matrices {
  int64_t rows = 0, cols = 0;
  int64_t ld[3] = {0, 0, 0};
};

StatusOr<Matrices> AsMatrices(const Tensor& a, const Tensor& b, const Tensor& y) {
  const Tensor* operands[] = {&a, &b, &y};
  const char* names[] = {"a", "b", "y"};
  bool all_contiguous = true;
  for (int i = 0; i < 3; ++i) {
    const Tensor& t = *operands[i];
    SIEVE_ENSURE(t.dtype() == DType::kFloat32, StatusCode::kUnimplemented,
                 "Add supports float32; " << names[i] << " is " << t.ToString());
    SIEVE_ENSURE(t.shape() == a.shape(), StatusCode::kInvalidArgument,
                 "Add: " << names[i] << " " << ShapeToString(t.shape()) << " must have the shape of a "
                         << ShapeToString(a.shape()));
    SIEVE_ENSURE(
        t.device() == a.device(), StatusCode::kInvalidArgument,
        "Add: operands on different devices: a " << a.ToString() << " and " << names[i] << " " << t.ToString());
    all_contiguous = all_contiguous && t.is_contiguous();
  }
  Matrices m;
  if (all_contiguous) {
    m.rows = 1;
    m.cols = a.numel();
    for (int64_t& ld : m.ld) ld = m.cols;
    return m;
  }
  for (int i = 0; i < 3; ++i) {
    const Tensor& t = *operands[i];
    SIEVE_ENSURE(IsMatrixView(t), StatusCode::kInvalidArgument,
                 "Add: " << names[i] << " must be contiguous or a 2-D view with unit column stride; got strides "
                         << ShapeToString(t.strides()) << " for " << ShapeToString(t.shape()));
    m.ld[i] = t.stride(0);
  }
  m.rows = a.dim(0);
  m.cols = a.dim(1);
  return m;
}

#ifndef SIEVE_WITH_CUDA
Status NoCuda(const Tensor& t) {
  return SIEVE_ERROR(StatusCode::kUnimplemented, "Add: no kernel for " << t.ToString() << " in this build");
}
#endif

}  // namespace

Status Add(const Tensor& a, const Tensor& b, const Tensor& y) {
  SIEVE_ASSIGN_OR_RETURN(const Matrices m, AsMatrices(a, b, y));
  SIEVE_ENSURE(IsSameView(a, y) || !ElementsOverlap(a, y), StatusCode::kInvalidArgument,
               "Add: y and a share elements without being the same view");
  SIEVE_ENSURE(IsSameView(b, y) || !ElementsOverlap(b, y), StatusCode::kInvalidArgument,
               "Add: y and b share elements without being the same view");
  if (m.rows == 0 || m.cols == 0) return Status::Ok();
  if (a.device().is_cpu()) {
    cpu::Add(a.data<float>(), m.ld[0], b.data<float>(), m.ld[1], y.data<float>(), m.ld[2], m.rows, m.cols);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::Add(a.data<float>(), m.ld[0], b.data<float>(), m.ld[1], y.data<float>(), m.ld[2], m.rows, m.cols);
  return Status::Ok();
#else
  return NoCuda(a);
#endif
}

}  // namespace sieve::ops
