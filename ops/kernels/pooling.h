// Max and average pooling over NCHW tensors, forward and backward, with Caffe's conventions.
//
// Windows come from a ConvGeometry (im2col.h): kernel, stride and padding per axis, output size
// rounded down, or up with `ceil_mode` as Caffe's pooling layer does. Dilation must be 1 and the
// padding smaller than the kernel, so every window overlaps the image. Global average pooling is
// kernel = height x width.
//
// Max pooling: y = the largest value of the window's cells inside the image (padding never wins);
// argmax = that cell's index ih*width + iw within its input plane (int32, as Caffe stores it), the
// first in row-major window order on ties; a NaN in the window wins (the first NaN), so
// divergence shows up instead of being pooled away. Backward adds dy to dx at argmax; windows that
// overlap accumulate.
//
// Average pooling, Caffe's divisor: the window is clipped to the PADDED input, not to the image,
// and its area is the divisor; the sum runs over the cells inside the image (padding reads zero).
// So with floor rounding every window divides by kernel_h*kernel_w (PyTorch's
// count_include_pad=True), and only a ceil-mode window that hangs past the padded input divides
// by less. Backward spreads dy / divisor over the window's image cells.
//
// Backward passes write dx = grad + beta * dx (beta = 0 overwrites; garbage or NaN in dx does
// not propagate).
#pragma once

#include <cstdint>

#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/kernels/im2col.h"

namespace sieve::ops {

/// OK when `g` is a valid pooling geometry: Validate() holds, dilation 1, padding < kernel.
Status ValidatePoolingGeometry(const ConvGeometry& g);

/// x: [B, C, H, W] float32; y: [B, C, Ho, Wo] float32; argmax: [B, C, Ho, Wo] int32. All
/// contiguous, on one device.
Status MaxPoolForward(const Tensor& x, const ConvGeometry& g, const Tensor& y, const Tensor& argmax);
/// dy, argmax: [B, C, Ho, Wo]; dx: [B, C, H, W].
Status MaxPoolBackward(const Tensor& dy, const Tensor& argmax, const ConvGeometry& g, const Tensor& dx, float beta);
Status AvgPoolForward(const Tensor& x, const ConvGeometry& g, const Tensor& y);
Status AvgPoolBackward(const Tensor& dy, const ConvGeometry& g, const Tensor& dx, float beta);

// Raw-pointer versions without validation: `planes` = B*C consecutive planes of height x width
// (input) and out_h x out_w (output); g.channels is not read.

namespace ref {
// The naive reference, one window at a time, sums in double; the test oracle.
void MaxPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y, int32_t* argmax);
void MaxPoolBackward(const float* dy, const int32_t* argmax, int64_t planes, const ConvGeometry& g, float* dx,
                     float beta);
void AvgPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y);
void AvgPoolBackward(const float* dy, int64_t planes, const ConvGeometry& g, float* dx, float beta);
}  // namespace ref

namespace cpu {
// OpenMP across planes; inside a plane the loops run over the output width (max: once per window
// cell; average: separably, rows then columns) with the borders split off by range computation,
// so the inner loops are branch-free. Max pooling gives ref::'s values and argmax bit for bit.
void MaxPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y, int32_t* argmax);
void MaxPoolBackward(const float* dy, const int32_t* argmax, int64_t planes, const ConvGeometry& g, float* dx,
                     float beta);
void AvgPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y);
void AvgPoolBackward(const float* dy, int64_t planes, const ConvGeometry& g, float* dx, float beta);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions on the default stream. Backward passes gather per input cell over the windows
// that contain it (no atomics, deterministic).
void MaxPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y, int32_t* argmax);
void MaxPoolBackward(const float* dy, const int32_t* argmax, int64_t planes, const ConvGeometry& g, float* dx,
                     float beta);
void AvgPoolForward(const float* x, int64_t planes, const ConvGeometry& g, float* y);
void AvgPoolBackward(const float* dy, int64_t planes, const ConvGeometry& g, float* dx, float beta);
}  // namespace cuda
#endif

}  // namespace sieve::ops
