// Shared argument checks of the ops entry points.
#include "ops/check.h"

#include <cstdlib>

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

bool ElementsOverlap(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  if (!Overlaps(a, b)) return false;
  if (!IsMatrixView(a) || !IsMatrixView(b) || a.dtype() != b.dtype()) return true;
  // A one-row view's row stride is arbitrary: take the other's.
  const int64_t ld = a.dim(0) > 1 ? a.stride(0) : b.stride(0);
  if ((a.dim(0) > 1 && a.stride(0) != ld) || (b.dim(0) > 1 && b.stride(0) != ld)) return true;
  if (ld <= 0 || a.dim(1) > ld || b.dim(1) > ld) return true;
  const char* pa = static_cast<const char*>(a.raw_data());
  const char* pb = static_cast<const char*>(b.raw_data());
  const Tensor& lo = pa <= pb ? a : b;
  const Tensor& hi = pa <= pb ? b : a;
  const int64_t bytes = std::abs(pb - pa), size = static_cast<int64_t>(DTypeSize(a.dtype()));
  if (bytes % size != 0) return true;
  // hi's row i starts at lo's row i + q, column s; its columns wrap into the next row of lo's grid
  // when s + cols > ld (at most once, since cols <= ld).
  const int64_t q = bytes / size / ld, s = bytes / size % ld;
  // lo's columns [0, cols) meet hi's [s, s + cols) or, wrapped, [0, s + cols - ld).
  const bool first_part = q < lo.dim(0) && s < lo.dim(1);
  const bool wrapped_part = q + 1 < lo.dim(0) && s + hi.dim(1) > ld;
  return first_part || wrapped_part;
}

bool IsSameView(const Tensor& a, const Tensor& b) {
  return a.raw_data() == b.raw_data() && a.shape() == b.shape() && a.strides() == b.strides() &&
         a.dtype() == b.dtype();
}

}  // namespace sieve::ops
