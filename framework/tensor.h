// Tensor: a strided view (shape, strides in elements, offset) over shared device Storage.
// Views (Slice, Reshape of contiguous tensors, matrix views with a leading dimension) never copy.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "framework/device.h"
#include "framework/memory.h"
#include "framework/status.h"

namespace sieve {

using Shape = std::vector<int64_t>;
std::string ShapeToString(const Shape& shape);  // "[128, 784]"
int64_t ShapeNumel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;

  /// Uninitialised contiguous tensor.
  static Tensor Empty(Shape shape, DType dtype = DType::kFloat32, Device device = Device::CPU());
  static Tensor Zeros(Shape shape, DType dtype = DType::kFloat32, Device device = Device::CPU());
  /// Contiguous CPU float32 tensor holding `values` (size must equal the shape's element count).
  static Tensor FromVector(Shape shape, const std::vector<float>& values);

  /// False for a default-constructed tensor (which has no storage, only the empty shape).
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int64_t stride(int i) const { return strides_[i < 0 ? i + rank() : i]; }
  int64_t numel() const { return ShapeNumel(shape_); }
  int64_t offset() const { return offset_; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::CPU(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }
  bool is_contiguous() const;
  /// Same storage? (Used to detect aliasing.)
  bool SharesStorageWith(const Tensor& other) const { return storage_ && storage_ == other.storage_; }

  void* raw_data() const;
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw_data());
  }

  /// Elements [start, end) with step along `axis`; a view.
  Tensor Slice(int axis, int64_t start, int64_t end, int64_t step = 1) const;
  /// A view with a new shape; the tensor must be contiguous.
  StatusOr<Tensor> Reshape(Shape shape) const;
  /// A 2-D view of `rows` x `cols` elements starting `offset` elements after this tensor's first
  /// element, consecutive rows `ld` elements apart (the BLAS leading dimension).
  Tensor MatrixView(int64_t offset, int64_t rows, int64_t cols, int64_t ld) const;

  /// A view of `shape` with `strides` (elements of `dtype`) whose first element lies `byte_offset`
  /// bytes after this tensor's first element: how one arena hands out tensors of several dtypes.
  /// The byte position must be a multiple of the dtype's size and the view must stay inside the
  /// storage (an empty view addresses nothing).
  Tensor View(int64_t byte_offset, DType dtype, Shape shape, Shape strides) const;
  /// Deep copy, optionally onto another device; the result is contiguous.
  Tensor Clone(Device device) const;
  Tensor Clone() const { return Clone(device()); }
  /// Copies the elements of `src` (same shape, any devices, both contiguous) into this tensor's
  /// storage. Const like every write through a handle: the handle is unchanged, the elements are not.
  Status CopyFrom(const Tensor& src) const;
  void Fill(float value) const;  // CPU float32 only
  /// Host copy of a float32 tensor's elements in row-major order (handles strides and devices).
  std::vector<float> ToVector() const;

  std::string ToString() const;  // "float32[128, 784] on cpu"

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;  // in elements
  DType dtype_ = DType::kFloat32;
};

/// Row-major contiguous strides for `shape`.
Shape ContiguousStrides(const Shape& shape);

}  // namespace sieve
