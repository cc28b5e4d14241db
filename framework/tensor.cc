// Tensor construction, views, copies.
#include "framework/tensor.h"

#include <cstring>
#include <sstream>

namespace sieve {

std::string ShapeToString(const Shape& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

int64_t ShapeNumel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape ContiguousStrides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

Tensor Tensor::Empty(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape) SIEVE_CHECK(d >= 0, "negative extent in shape " << ShapeToString(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.strides_ = ContiguousStrides(shape);
  t.shape_ = std::move(shape);
  t.storage_ = std::make_shared<Storage>(device, t.nbytes());
  return t;
}

Tensor Tensor::Zeros(Shape shape, DType dtype, Device device) {
  Tensor t = Empty(std::move(shape), dtype, device);
  ZeroBytes(t.raw_data(), device, t.nbytes());
  return t;
}

Tensor Tensor::FromVector(Shape shape, const std::vector<float>& values) {
  SIEVE_CHECK(ShapeNumel(shape) == static_cast<int64_t>(values.size()),
              "shape " << ShapeToString(shape) << " needs " << ShapeNumel(shape) << " values, got "
                       << values.size());
  Tensor t = Empty(std::move(shape));
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(float));
  return t;
}

bool Tensor::is_contiguous() const { return strides_ == ContiguousStrides(shape_) || numel() <= 1; }

void* Tensor::raw_data() const {
  if (!storage_) return nullptr;
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(DTypeSize(dtype_));
}

Tensor Tensor::Slice(int axis, int64_t start, int64_t end, int64_t step) const {
  if (axis < 0) axis += rank();
  SIEVE_CHECK(axis >= 0 && axis < rank(), "slice axis " << axis << " of " << ToString());
  SIEVE_CHECK(step >= 1 && 0 <= start && start <= end && end <= shape_[axis],
              "slice [" << start << ", " << end << ") step " << step << " on axis " << axis << " of "
                        << ToString());
  Tensor t = *this;
  t.offset_ += start * strides_[axis];
  t.shape_[axis] = (end - start + step - 1) / step;
  t.strides_[axis] *= step;
  return t;
}

StatusOr<Tensor> Tensor::Reshape(Shape shape) const {
  SIEVE_ENSURE(ShapeNumel(shape) == numel(), StatusCode::kInvalidArgument,
               "cannot reshape " << ShapeToString(shape_) << " to " << ShapeToString(shape)
                                 << ": element counts differ");
  SIEVE_ENSURE(is_contiguous(), StatusCode::kFailedPrecondition,
               "cannot reshape non-contiguous " << ToString() << " without a copy");
  Tensor t = *this;
  t.strides_ = ContiguousStrides(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::View(int64_t byte_offset, DType dtype, Shape shape, Shape strides) const {
  SIEVE_CHECK(shape.size() == strides.size(), "view of rank " << shape.size() << " with " << strides.size()
                                                                 << " strides");
  const int64_t start = offset_ * static_cast<int64_t>(DTypeSize(dtype_)) + byte_offset;
  const auto size = static_cast<int64_t>(DTypeSize(dtype));
  SIEVE_CHECK(start >= 0 && start % size == 0,
              "view at byte " << start << " is not aligned to " << DTypeName(dtype) << " in " << ToString());
  int64_t last = 0;  // the last element addressed, relative to the view's first
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    SIEVE_CHECK(shape[i] >= 0 && strides[i] >= 0, "view shape " << ShapeToString(shape) << " strides "
                                                                  << ShapeToString(strides));
    empty = empty || shape[i] == 0;
    last += (shape[i] - 1) * strides[i];
  }
  SIEVE_CHECK(storage_ == nullptr || empty || start + (last + 1) * size <= static_cast<int64_t>(storage_->nbytes()),
              "view " << DTypeName(dtype) << ShapeToString(shape) << " strides " << ShapeToString(strides)
                      << " at byte " << start << " overruns the storage of " << ToString());
  Tensor t = *this;
  t.dtype_ = dtype;
  t.offset_ = start / size;
  t.shape_ = std::move(shape);
  t.strides_ = std::move(strides);
  return t;
}

Tensor Tensor::MatrixView(int64_t offset, int64_t rows, int64_t cols, int64_t ld) const {
  SIEVE_CHECK(rows >= 0 && cols >= 0 && ld >= cols && offset >= 0, "bad matrix view");
  // An empty view addresses nothing, so it cannot overrun (its offset may sit past an empty storage).
  const bool empty = rows == 0 || cols == 0;
  const int64_t last = empty ? 0 : offset + (rows - 1) * ld + cols;
  SIEVE_CHECK(storage_ == nullptr || empty ||
                  (offset_ + last) * static_cast<int64_t>(DTypeSize(dtype_)) <=
                      static_cast<int64_t>(storage_->nbytes()),
              "matrix view " << rows << "x" << cols << " ld " << ld << " at +" << offset
                             << " overruns the storage of " << ToString());
  Tensor t = *this;
  t.offset_ += offset;
  t.shape_ = {rows, cols};
  t.strides_ = {ld, 1};
  return t;
}

Tensor Tensor::Clone(Device device) const {
  Tensor out = Empty(shape_, dtype_, device);
  if (is_contiguous()) {
    CopyBytes(out.raw_data(), device, raw_data(), this->device(), nbytes());
  } else {
    SIEVE_CHECK(dtype_ == DType::kFloat32, "strided clone supports float32 only");
    std::vector<float> host = ToVector();
    CopyBytes(out.raw_data(), device, host.data(), Device::CPU(), nbytes());
  }
  return out;
}

Status Tensor::CopyFrom(const Tensor& src) const {
  SIEVE_ENSURE(src.shape_ == shape_ && src.dtype_ == dtype_, StatusCode::kInvalidArgument,
               "copy from " << src.ToString() << " into " << ToString());
  SIEVE_ENSURE(is_contiguous() && src.is_contiguous(), StatusCode::kFailedPrecondition,
               "CopyFrom needs contiguous tensors, got " << src.ToString() << " -> " << ToString());
  CopyBytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
  return Status::Ok();
}

void Tensor::Fill(float value) const {
  SIEVE_CHECK(device().is_cpu() && dtype_ == DType::kFloat32, "Fill supports CPU float32, got " << ToString());
  std::vector<int64_t> index(shape_.size(), 0);
  float* base = data<float>();
  const int64_t n = numel();
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t off = 0;
    for (size_t d = 0; d < shape_.size(); ++d) off += index[d] * strides_[d];
    base[off] = value;
    for (size_t d = shape_.size(); d-- > 0;) {
      if (++index[d] < shape_[d]) break;
      index[d] = 0;
    }
  }
}

std::vector<float> Tensor::ToVector() const {
  SIEVE_CHECK(dtype_ == DType::kFloat32, "ToVector supports float32, got " << ToString());
  const int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (n == 0) return out;
  // Bring the whole addressed span to the host, then walk it with the strides.
  int64_t span = 1;
  for (size_t d = 0; d < shape_.size(); ++d) span += (shape_[d] - 1) * strides_[d];
  std::vector<float> host(static_cast<size_t>(span));
  CopyBytes(host.data(), Device::CPU(), raw_data(), device(), static_cast<size_t>(span) * sizeof(float));
  std::vector<int64_t> index(shape_.size(), 0);
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t off = 0;
    for (size_t d = 0; d < shape_.size(); ++d) off += index[d] * strides_[d];
    out[static_cast<size_t>(flat)] = host[static_cast<size_t>(off)];
    for (size_t d = shape_.size(); d-- > 0;) {
      if (++index[d] < shape_[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

std::string Tensor::ToString() const {
  return std::string(DTypeName(dtype_)) + ShapeToString(shape_) + " on " + device().ToString();
}

}  // namespace sieve
