// Activation names, validation and device dispatch of the Tensor-level activation kernels.
#include "ops/kernels/activation.h"

#include "ops/check.h"

#include <iterator>
#include <vector>

namespace sieve::ops {

namespace {

constexpr const char* kActivationNames[] = {"relu", "tanh", "sigmoid"};
static_assert(std::size(kActivationNames) == static_cast<size_t>(Activation::kCount));

struct Operand {
  const char* name;
  const Tensor* t;
};

// The operands as rows x cols matrices with per-operand leading dimensions: one flat row when all
// are contiguous, else each must be a 2-D view with unit column stride.
struct Matrices {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> ld;
};

StatusOr<Matrices> AsMatrices(const char* op, Activation kind, const std::vector<Operand>& operands) {
  const Tensor& first = *operands.front().t;
  bool all_contiguous = true;
  for (const Operand& o : operands) {
    SIEVE_ENSURE(o.t->dtype() == DType::kFloat32, StatusCode::kUnimplemented,
                 op << "(" << ActivationName(kind) << ") supports float32; " << o.name << " is " << o.t->ToString());
    SIEVE_ENSURE(o.t->shape() == first.shape(), StatusCode::kInvalidArgument,
                 op << "(" << ActivationName(kind) << "): " << o.name << " " << ShapeToString(o.t->shape())
                    << " must have the shape of " << operands.front().name << " " << ShapeToString(first.shape()));
    SIEVE_ENSURE(o.t->device() == first.device(), StatusCode::kInvalidArgument,
                 op << "(" << ActivationName(kind) << "): operands on different devices: " << first.ToString()
                    << " and " << o.name << " " << o.t->ToString());
    all_contiguous = all_contiguous && o.t->is_contiguous();
  }
  Matrices m;
  if (all_contiguous) {
    m.rows = 1;
    m.cols = first.numel();
    m.ld.assign(operands.size(), m.cols);
    return m;
  }
  for (const Operand& o : operands) {
    const Tensor& t = *o.t;
    SIEVE_ENSURE(IsMatrixView(t),
                 StatusCode::kInvalidArgument,
                 op << "(" << ActivationName(kind) << "): " << o.name << " must be contiguous or a 2-D view with "
                    << "unit column stride; got strides " << ShapeToString(t.strides()) << " for "
                    << ShapeToString(t.shape()));
    m.ld.push_back(t.stride(0));
  }
  m.rows = first.dim(0);
  m.cols = first.dim(1);
  return m;
}

// Operands a and b (same shape) are the same view or disjoint.
Status CheckAlias(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) {
  SIEVE_ENSURE(IsSameView(a, b) || !Overlaps(a, b), StatusCode::kInvalidArgument,
               op << ": " << a_name << " and " << b_name << " overlap without being the same view");
  return Status::Ok();
}

// The answer for a GPU tensor in a CPU-only build (where none can be created, so only as a guard).
#ifndef SIEVE_WITH_CUDA
Status NoCuda(const char* op, const Tensor& t) {
  return SIEVE_ERROR(StatusCode::kUnimplemented, op << ": no kernel for " << t.ToString() << " in this build");
}
#endif

}  // namespace

const char* ActivationName(Activation kind) { return kActivationNames[static_cast<int>(kind)]; }

Status ActivationForward(Activation kind, const Tensor& x, const Tensor& y) {
  SIEVE_ASSIGN_OR_RETURN(const Matrices m, AsMatrices("ActivationForward", kind, {{"x", &x}, {"y", &y}}));
  SIEVE_RETURN_IF_ERROR(CheckAlias("ActivationForward", "x", x, "y", y));
  if (m.rows == 0 || m.cols == 0) return Status::Ok();
  if (x.device().is_cpu()) {
    cpu::ActivationForward(kind, x.data<float>(), m.ld[0], y.data<float>(), m.ld[1], m.rows, m.cols);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::ActivationForward(kind, x.data<float>(), m.ld[0], y.data<float>(), m.ld[1], m.rows, m.cols);
  return Status::Ok();
#else
  return NoCuda("ActivationForward", x);
#endif
}

Status ActivationBackward(Activation kind, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  SIEVE_ASSIGN_OR_RETURN(const Matrices m,
                         AsMatrices("ActivationBackward", kind, {{"y", &y}, {"dy", &dy}, {"dx", &dx}}));
  SIEVE_RETURN_IF_ERROR(CheckAlias("ActivationBackward", "dy", dy, "dx", dx));
  SIEVE_RETURN_IF_ERROR(CheckAlias("ActivationBackward", "y", y, "dx", dx));
  if (m.rows == 0 || m.cols == 0) return Status::Ok();
  if (y.device().is_cpu()) {
    cpu::ActivationBackward(kind, y.data<float>(), m.ld[0], dy.data<float>(), m.ld[1], dx.data<float>(), m.ld[2],
                            m.rows, m.cols);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::ActivationBackward(kind, y.data<float>(), m.ld[0], dy.data<float>(), m.ld[1], dx.data<float>(), m.ld[2], m.rows,
                           m.cols);
  return Status::Ok();
#else
  return NoCuda("ActivationBackward", y);
#endif
}

}  // namespace sieve::ops
