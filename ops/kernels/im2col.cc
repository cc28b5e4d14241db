// ConvGeometry arithmetic, and validation + device dispatch of the Tensor-level im2col/col2im.
#include "ops/kernels/im2col.h"

#include "ops/check.h"

#include <sstream>

namespace sieve::ops {

namespace {

// Output extent along one axis; 0 when the (dilated) kernel does not fit the padded input.
int64_t OutExtent(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  if (kernel < 1 || stride < 1 || dilation < 1) return 0;
  const int64_t span = in + 2 * pad - (dilation * (kernel - 1) + 1);
  if (span < 0) return 0;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // Rounding up may add a window that starts past the image and its left padding, i.e. in the
  // right padding only; Caffe and PyTorch both drop it.
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// The image tensor (x or dx) must be a contiguous float32 [B, C, H, W] batch matching g.
Status CheckImage(const char* op, const char* name, const Tensor& t, const ConvGeometry& g) {
  SIEVE_ENSURE(t.rank() == 4 && t.dim(1) == g.channels && t.dim(2) == g.height && t.dim(3) == g.width,
               StatusCode::kInvalidArgument,
               op << ": " << name << " must be [B, " << g.channels << ", " << g.height << ", " << g.width
                  << "] for geometry " << g.ToString() << "; got " << ShapeToString(t.shape()));
  SIEVE_ENSURE(t.dtype() == DType::kFloat32, StatusCode::kUnimplemented,
               op << " supports float32; " << name << " is " << t.ToString());
  SIEVE_ENSURE(t.is_contiguous(), StatusCode::kInvalidArgument,
               op << ": " << name << " must be contiguous; got strides " << ShapeToString(t.strides()) << " for "
                  << ShapeToString(t.shape()));
  return Status::Ok();
}

Status CheckChannels(const char* op, const ChannelSet* channels, const ConvGeometry& g) {
  if (channels == nullptr) return Status::Ok();
  const std::string why = ValidatePattern(IndexPattern(*channels), g.channels);
  SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument,
               op << ": kept input channels of a " << g.channels << "-channel image: " << why);
  return Status::Ok();
}

// The column matrix: 2-D float32 with unit column stride, kept*kh*kw rows and at least
// col_offset + cols columns.
Status CheckCol(const char* op, const Tensor& col, int64_t rows, int64_t col_offset, int64_t cols,
                const ConvGeometry& g, const ChannelSet* channels) {
  SIEVE_ENSURE(col.rank() == 2 && col.dtype() == DType::kFloat32, StatusCode::kInvalidArgument,
               op << ": the column matrix must be a 2-D float32 tensor; got " << col.ToString());
  SIEVE_ENSURE((col.stride(1) == 1 || col.dim(1) <= 1) && (col.stride(0) >= col.dim(1) || col.dim(0) <= 1),
               StatusCode::kInvalidArgument,
               op << ": the column matrix needs unit column stride and leading dimension >= columns; got strides "
                  << ShapeToString(col.strides()) << " for " << ShapeToString(col.shape()));
  SIEVE_ENSURE(col_offset >= 0 && col.dim(0) == rows && col.dim(1) >= col_offset + cols, StatusCode::kInvalidArgument,
               op << ": the column matrix must have " << rows << " rows ("
                  << (channels ? static_cast<int64_t>(channels->kept.size()) : g.channels) << " kept channels x "
                  << g.kernel_h << "x" << g.kernel_w << " kernel) and at least " << col_offset << " + " << cols
                  << " columns for geometry " << g.ToString() << "; got " << ShapeToString(col.shape())
                  << " with column offset " << col_offset);
  return Status::Ok();
}

int64_t KeptChannels(const ChannelSet* channels, const ConvGeometry& g) {
  return channels ? static_cast<int64_t>(channels->kept.size()) : g.channels;
}

// Validates one im2col/col2im call over images [first, first + count) of `image` and the column
// block starting at `col_offset`.
Status CheckCall(const char* op, const Tensor& image, const char* image_name, const Tensor& col, int64_t col_offset,
                 int64_t count, const ConvGeometry& g, const ChannelSet* channels) {
  SIEVE_RETURN_IF_ERROR(g.Validate());
  SIEVE_RETURN_IF_ERROR(CheckImage(op, image_name, image, g));
  SIEVE_RETURN_IF_ERROR(CheckChannels(op, channels, g));
  SIEVE_RETURN_IF_ERROR(
      CheckCol(op, col, KeptChannels(channels, g) * g.kernel_area(), col_offset, count * g.out_plane(), g, channels));
  SIEVE_ENSURE(image.device() == col.device(), StatusCode::kInvalidArgument,
               op << ": " << image_name << " and the column matrix are on different devices: " << image.ToString()
                  << ", " << col.ToString());
  SIEVE_ENSURE(!Overlaps(image, col), StatusCode::kInvalidArgument,
               op << ": the column matrix overlaps " << image_name);
  return Status::Ok();
}

void RunIm2Col(const Tensor& x, int64_t first, int64_t count, const ConvGeometry& g, const ChannelSet* channels,
               const Tensor& col, int64_t col_offset) {
  const float* images = x.data<float>() + first * g.channels * g.in_plane();
#ifdef SIEVE_WITH_CUDA
  if (x.device().is_cuda()) {
    cuda::Im2Col(images, count, g, channels, col.data<float>(), col.stride(0), col_offset);
    return;
  }
#endif
  cpu::Im2Col(images, count, g, channels, col.data<float>(), col.stride(0), col_offset);
}

void RunCol2Im(const Tensor& col, int64_t col_offset, int64_t first, int64_t count, const ConvGeometry& g,
               const ChannelSet* channels, const Tensor& dx, float beta) {
  float* images = dx.data<float>() + first * g.channels * g.in_plane();
#ifdef SIEVE_WITH_CUDA
  if (dx.device().is_cuda()) {
    cuda::Col2Im(col.data<float>(), col.stride(0), col_offset, count, g, channels, images, beta);
    return;
  }
#endif
  cpu::Col2Im(col.data<float>(), col.stride(0), col_offset, count, g, channels, images, beta);
}

}  // namespace

ConvGeometry ConvGeometry::Square(int64_t channels, int64_t height, int64_t width, int64_t kernel, int64_t stride,
                                  int64_t pad) {
  ConvGeometry g;
  g.channels = channels;
  g.height = height;
  g.width = width;
  g.kernel_h = g.kernel_w = kernel;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = pad;
  return g;
}

int64_t ConvGeometry::out_h() const { return OutExtent(height, kernel_h, stride_h, pad_h, dilation_h, ceil_mode); }
int64_t ConvGeometry::out_w() const { return OutExtent(width, kernel_w, stride_w, pad_w, dilation_w, ceil_mode); }

Status ConvGeometry::Validate() const {
  SIEVE_ENSURE(channels >= 1 && height >= 1 && width >= 1, StatusCode::kInvalidArgument,
               "conv geometry needs at least one channel, row and column; got " << ToString());
  SIEVE_ENSURE(kernel_h >= 1 && kernel_w >= 1 && stride_h >= 1 && stride_w >= 1 && dilation_h >= 1 && dilation_w >= 1,
               StatusCode::kInvalidArgument, "kernel, stride and dilation must be >= 1; got " << ToString());
  SIEVE_ENSURE(pad_h >= 0 && pad_w >= 0, StatusCode::kInvalidArgument, "padding must be >= 0; got " << ToString());
  const int64_t extent_h = dilation_h * (kernel_h - 1) + 1, extent_w = dilation_w * (kernel_w - 1) + 1;
  SIEVE_ENSURE(height + 2 * pad_h >= extent_h, StatusCode::kInvalidArgument,
               "output would be empty: padded height " << height << " + 2*" << pad_h << " = " << height + 2 * pad_h
                                                       << " is smaller than the kernel height " << extent_h
                                                       << (dilation_h > 1 ? " (dilated)" : "") << "; " << ToString());
  SIEVE_ENSURE(width + 2 * pad_w >= extent_w, StatusCode::kInvalidArgument,
               "output would be empty: padded width " << width << " + 2*" << pad_w << " = " << width + 2 * pad_w
                                                      << " is smaller than the kernel width " << extent_w
                                                      << (dilation_w > 1 ? " (dilated)" : "") << "; " << ToString());
  return Status::Ok();
}

std::string ConvGeometry::ToString() const {
  std::ostringstream os;
  os << "C=" << channels << " H=" << height << " W=" << width << " k=" << kernel_h << "x" << kernel_w
     << " s=" << stride_h << "x" << stride_w << " p=" << pad_h << "x" << pad_w << " d=" << dilation_h << "x"
     << dilation_w << (ceil_mode ? " ceil" : "") << " -> " << out_h() << "x" << out_w();
  return os.str();
}

Status Im2Col(const Tensor& x, int64_t n, const ConvGeometry& g, const ChannelSet* channels, const Tensor& col,
              int64_t col_offset) {
  SIEVE_RETURN_IF_ERROR(CheckCall("Im2Col", x, "x", col, col_offset, 1, g, channels));
  SIEVE_ENSURE(n >= 0 && n < x.dim(0), StatusCode::kOutOfRange,
               "Im2Col: image " << n << " of a batch " << ShapeToString(x.shape()));
  RunIm2Col(x, n, 1, g, channels, col, col_offset);
  return Status::Ok();
}

Status Im2ColBatch(const Tensor& x, const ConvGeometry& g, const ChannelSet* channels, const Tensor& col) {
  SIEVE_RETURN_IF_ERROR(CheckCall("Im2ColBatch", x, "x", col, 0, x.rank() == 4 ? x.dim(0) : 0, g, channels));
  RunIm2Col(x, 0, x.dim(0), g, channels, col, 0);
  return Status::Ok();
}

Status Col2Im(const Tensor& col, int64_t col_offset, const ConvGeometry& g, const ChannelSet* channels,
              const Tensor& dx, int64_t n, float beta) {
  SIEVE_RETURN_IF_ERROR(CheckCall("Col2Im", dx, "dx", col, col_offset, 1, g, channels));
  SIEVE_ENSURE(n >= 0 && n < dx.dim(0), StatusCode::kOutOfRange,
               "Col2Im: image " << n << " of a batch " << ShapeToString(dx.shape()));
  RunCol2Im(col, col_offset, n, 1, g, channels, dx, beta);
  return Status::Ok();
}

Status Col2ImBatch(const Tensor& col, const ConvGeometry& g, const ChannelSet* channels, const Tensor& dx, float beta) {
  SIEVE_RETURN_IF_ERROR(CheckCall("Col2ImBatch", dx, "dx", col, 0, dx.rank() == 4 ? dx.dim(0) : 0, g, channels));
  RunCol2Im(col, 0, 0, dx.dim(0), g, channels, dx, beta);
  return Status::Ok();
}

}  // namespace sieve::ops
