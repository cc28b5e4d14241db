// im2col / col2im restricted to the kept input channels of a convolution (SPEC 3), and the
// ConvGeometry that convolution and pooling share.
//
// A convolution over NCHW input lowers to one GEMM per image (or one for the whole batch):
//
//   Y (Cout x HoWo) = W (Cout x kept*kh*kw) * col(X) (kept*kh*kw x HoWo)
//
// Sensitivity-aware dropout drops whole input feature maps, so col is built for the kept maps
// only and the GEMM's K dimension shrinks by dropped*kh*kw. For kept channel c of rank r (its
// position in the ascending kept list) and output pixel (oh, ow) of image n:
//
//   col[r*kh*kw + ki*kw + kj, col_offset + n*HoWo + oh*out_w + ow]
//       = x[n, c, oh*stride_h - pad_h + ki*dilation_h, ow*stride_w - pad_w + kj*dilation_w]
//
// with zeros where the index falls outside the image (zero padding). col2im is the exact adjoint:
// it accumulates every column-matrix entry back into the image cell it was read from.
//
// The dropout scale Cin/(Cin - dropped) is NOT applied here: Y = W * (s col) = s (W col), and
// likewise for both backward GEMMs, so the lowering folds s into the MatMul alpha (as SPEC 2.4
// does for the row patterns) and the column matrix holds the raw activations, which is also what
// the sensitivity estimate reads.
//
// This file is not the convolution layer: that lives in graph/lowering and emits the MatMuls.
#pragma once

#include <cstdint>
#include <string>

#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/matmul/pattern.h"

namespace sieve::ops {

/// The window geometry of a convolution or pooling over one image of `channels` x `height` x
/// `width`. Output sizes round down as convolutions do (Caffe, PyTorch); with `ceil_mode` they
/// round up as Caffe's pooling does, dropping a last window that would start in the right/bottom
/// padding or beyond (Caffe drops it only when some padding is set, so without padding its ceil
/// mode can produce a window outside the image; Sieve always drops it, as PyTorch does). Cells a
/// window reads outside the image are zero padding (im2col) or excluded (pooling; see pooling.h
/// for how average pooling counts them).
struct ConvGeometry {
  int64_t channels = 1;
  int64_t height = 1;
  int64_t width = 1;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_h = 0;
  int64_t pad_w = 0;
  int64_t dilation_h = 1;
  int64_t dilation_w = 1;
  bool ceil_mode = false;

  /// Square kernel, stride and padding on a channels x height x width image.
  static ConvGeometry Square(int64_t channels, int64_t height, int64_t width, int64_t kernel, int64_t stride = 1,
                             int64_t pad = 0);

  int64_t out_h() const;
  int64_t out_w() const;
  int64_t out_plane() const { return out_h() * out_w(); }
  int64_t in_plane() const { return height * width; }
  int64_t kernel_area() const { return kernel_h * kernel_w; }

  /// OK when every extent is positive, padding non-negative and the output non-empty; otherwise
  /// a message naming the numbers (e.g. the padded height and the dilated kernel that exceeds it).
  Status Validate() const;
  /// "C=3 H=28 W=28 k=5x5 s=1x1 p=2x2 d=1x1 -> 28x28"
  std::string ToString() const;
};

/// The output positions [begin, end) of one axis whose input coordinate o*stride + shift lies
/// inside [0, in), clipped to [0, out); the fast kernels use it to split a row into padding and
/// interior without a branch per element.
struct OutputRange {
  int64_t begin = 0;
  int64_t end = 0;
};
inline OutputRange InsideOutputs(int64_t out, int64_t in, int64_t stride, int64_t shift) {
  OutputRange r;
  r.begin = shift >= 0 ? 0 : (-shift + stride - 1) / stride;
  r.end = in - 1 - shift < 0 ? 0 : (in - 1 - shift) / stride + 1;
  r.begin = r.begin < out ? r.begin : out;
  r.end = r.end < r.begin ? r.begin : r.end > out ? out : r.end;
  return r;
}

/// im2col of image `n` of the NCHW batch `x` (shape [B, channels, height, width], contiguous)
/// into the 2-D matrix `col` (unit column stride, any leading dimension): rows
/// kept*kh*kw, the image's out_h*out_w columns starting at column `col_offset`. `channels`
/// selects the kept input channels (nullptr: all). Columns outside that block are untouched.
Status Im2Col(const Tensor& x, int64_t n, const ConvGeometry& g, const ChannelSet* channels, const Tensor& col,
              int64_t col_offset);

/// im2col of all B images side by side: image n fills columns [n*HoWo, (n+1)*HoWo) of `col`
/// (kept*kh*kw x B*HoWo, or wider), so one GEMM covers the batch.
Status Im2ColBatch(const Tensor& x, const ConvGeometry& g, const ChannelSet* channels, const Tensor& col);

/// The adjoint of Im2Col for image `n`: for each kept channel c,
///   dx[n, c] = col2im(col block) + beta * dx[n, c]
/// (beta = 0 overwrites, so garbage or NaN in dx does not propagate). Dropped channels of dx and
/// other images are untouched.
Status Col2Im(const Tensor& col, int64_t col_offset, const ConvGeometry& g, const ChannelSet* channels,
              const Tensor& dx, int64_t n, float beta);

/// The adjoint of Im2ColBatch: Col2Im for every image n from columns [n*HoWo, (n+1)*HoWo).
Status Col2ImBatch(const Tensor& col, const ConvGeometry& g, const ChannelSet* channels, const Tensor& dx, float beta);

// Raw-pointer entry points shared by ref, cpu and cuda, without validation. `x` points at the
// first of `batch` consecutive images (channels*height*width floats each); image b's columns
// start at col_offset + b*out_plane in the row-major `col` with leading dimension ld_col.
// `channels` must be valid for g.channels (sorted, unique, in range) or nullptr for all.

namespace ref {
// The naive reference, one element at a time straight from the formula above; the test oracle.
void Im2Col(const float* x, int64_t batch, const ConvGeometry& g, const ChannelSet* channels, float* col,
            int64_t ld_col, int64_t col_offset);
void Col2Im(const float* col, int64_t ld_col, int64_t col_offset, int64_t batch, const ConvGeometry& g,
            const ChannelSet* channels, float* dx, float beta);
}  // namespace ref

namespace cpu {
// OpenMP across column-matrix rows (im2col) or (image, kept channel) planes (col2im); contiguous
// inner loops over the output width with the padding split off by range computation, memcpy for
// unit-stride spans. Same results as ref:: (im2col bit for bit, col2im up to float rounding).
void Im2Col(const float* x, int64_t batch, const ConvGeometry& g, const ChannelSet* channels, float* col,
            int64_t ld_col, int64_t col_offset);
void Col2Im(const float* col, int64_t ld_col, int64_t col_offset, int64_t batch, const ConvGeometry& g,
            const ChannelSet* channels, float* dx, float beta);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions on the default stream; pointers are device pointers, `channels` is a host
// object (its indices travel as kernel parameters, so no staging copy and no host sync).
// Col2Im gathers per image cell instead of scattering, so it needs no atomics and is
// deterministic.
void Im2Col(const float* x, int64_t batch, const ConvGeometry& g, const ChannelSet* channels, float* col,
            int64_t ld_col, int64_t col_offset);
void Col2Im(const float* col, int64_t ld_col, int64_t col_offset, int64_t batch, const ConvGeometry& g,
            const ChannelSet* channels, float* dx, float beta);
}  // namespace cuda
#endif

}  // namespace sieve::ops
