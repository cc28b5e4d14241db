// Argument checks shared by the Tensor-level entry points of the MatMul primitive and the helper
// kernels: matrix layout, and whether two views touch the same memory (tensors planned into one
// arena share storage, so aliasing is judged by address ranges, not by storage identity).
#pragma once

#include <string_view>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// True for a 2-D view with unit column stride and a leading dimension of at least its columns
/// (what BLAS and Sieve's kernels call a matrix).
bool IsMatrixView(const Tensor& t);

/// OK when `t` is a float32 matrix view; otherwise an error naming `op`, the operand `name`, the
/// expected axes (e.g. "[batch, features]") and the actual shape and strides.
Status CheckMatrix(std::string_view op, std::string_view name, const Tensor& t, std::string_view axes);

/// The bytes [begin, end) a view addresses, from its first to one past its last element
/// (empty for a tensor without elements). Strides are non-negative in Sieve.
struct ByteRange {
  const char* begin = nullptr;
  const char* end = nullptr;
};
ByteRange AddressRange(const Tensor& t);

/// Do two views address a common byte?
bool Overlaps(const Tensor& a, const Tensor& b);

/// Do two views share an element? Exact for two matrix views (IsMatrixView) with the same leading
/// dimension, e.g. the interleaved time steps of one [B, T, X] sequence, which share a byte range
/// but no element; otherwise the same as Overlaps (conservative).
bool ElementsOverlap(const Tensor& a, const Tensor& b);

/// Are two views the same elements in the same layout (the in-place case kernels allow)?
bool IsSameView(const Tensor& a, const Tensor& b);

}  // namespace sieve::ops
