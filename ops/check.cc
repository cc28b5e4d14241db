// Shared argument checks of the ops entry points.
#include "ops/check.h"

namespace sieve::ops {

bool IsMatrixView(const Tensor& t) {
  return t.rank() == 2 && (t.stride(1) == 1 || t.dim(1) <= 1) && (t.stride(0) >= t.dim(1) || t.dim(0) <= 1);
}

Status CheckMatrix(std::string_view op, std::string_view name, const Tensor& t, std::string_view axes) {
  SIEVE_ENSURE(t.rank() == 2, StatusCode::kInvalidArgument,
               op << ": " << name << " must be 2-D " << axes << "; got " << ShapeToString(t.shape()));
  SIEVE_ENSURE(t.dtype() == DType::kFloat32, StatusCode::kUnimplemented,
               op << " supports float32; " << name << " is " << t.ToString());
  SIEVE_ENSURE(IsMatrixView(t), StatusCode::kInvalidArgument,
               op << ": " << name << " needs unit column stride and leading dimension >= columns; got strides "
                  << ShapeToString(t.strides()) << " for " << ShapeToString(t.shape()));
  return Status::Ok();
}

ByteRange AddressRange(const Tensor& t) {
  const char* p = static_cast<const char*>(t.raw_data());
  if (t.numel() == 0) return {p, p};
  int64_t last = 0;
  for (int i = 0; i < t.rank(); ++i) last += (t.dim(i) - 1) * t.stride(i);
  return {p, p + (last + 1) * static_cast<int64_t>(DTypeSize(t.dtype()))};
}

bool Overlaps(const Tensor& a, const Tensor& b) {
  const ByteRange x = AddressRange(a), y = AddressRange(b);
  return x.begin < y.end && y.begin < x.end;
}

bool IsSameView(const Tensor& a, const Tensor& b) {
  return a.raw_data() == b.raw_data() && a.shape() == b.shape() && a.strides() == b.strides() &&
         a.dtype() == b.dtype();
}

}  // namespace sieve::ops
