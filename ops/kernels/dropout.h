// Bernoulli (element-wise, "standard") dropout: the baseline that Sieve's patterned dropout is
// measured against. Inverted scaling (SPEC 2.4):
//
//   forward   y_i  = x_i  * keep_i / (1 - p)
//   backward  dx_i = dy_i * keep_i / (1 - p)
//   keep_i    = (stream.Uniform(first + i) >= p)        (framework/rng.h stream convention)
//
// where i is the row-major element index. The mask is a pure function of (seed, stream id, i), so
// backward regenerates it from the counter instead of storing it, and CPU and CUDA draw the same
// mask. Kept values are x_i * DropoutScale(p); dropped values are exactly +0 whatever x_i is (also
// NaN or Inf), as they are under patterned dropout where dropped units are not computed at all.
// This is not the patterned (approximate random) dropout; that lives in the MatMul annotation.
#pragma once

#include <cmath>
#include <cstdint>

#include "framework/host_device.h"
#include "framework/rng.h"
#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// One application of Bernoulli dropout: the drop probability and the random stream to draw from
/// (e.g. {seed, MakeStreamId(StreamKind::kDropout, site, iteration)}).
struct DropoutAttr {
  float p = 0.5f;  // 0 <= p < 1
  RandomStream stream;
};

/// The factor applied to kept values: 1 / (1 - p), rounded to float.
SIEVE_HOST_DEVICE inline float DropoutScale(float p) { return 1.0f / (1.0f - p); }

/// The keep rule in integers: element with random bits b is kept iff (b >> 8) >= threshold. Exactly
/// equivalent to UniformFromBits(b) >= p, since (b >> 8) * 2^-24 >= p  <=>  (b >> 8) >= ceil(p 2^24).
inline uint32_t DropoutKeepThreshold(float p) {
  return static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
}

/// y = dropout(x). x and y are contiguous float32 tensors of one shape on one device; y may be x
/// (in place) but may not partly overlap it. Errors: p outside [0, 1), mismatched shapes (both
/// named), dtypes or devices, non-contiguous operands.
Status DropoutForward(const Tensor& x, const Tensor& y, const DropoutAttr& attr);
/// dx = dy * keep / (1 - p) with the forward's mask (same attr). Same contract as DropoutForward.
Status DropoutBackward(const Tensor& dy, const Tensor& dx, const DropoutAttr& attr);

namespace ref {
// Naive CPU reference, the test oracle: one element at a time through RandomStream::Uniform.
// Element k of the arrays is element first + k of the stream. No validation.
void DropoutForward(const float* x, float* y, int64_t n, float p, const RandomStream& stream, uint64_t first);
void DropoutBackward(const float* dy, float* dx, int64_t n, float p, const RandomStream& stream, uint64_t first);
}  // namespace ref

namespace cpu {
// Multi-threaded, vectorised CPU version; forward and backward are the same operation
// (out = in * keep * scale). Element k is element first + k of the stream; out may equal in.
void ApplyDropout(const float* in, float* out, int64_t n, float p, const RandomStream& stream, uint64_t first);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device version on the current device and stream; same contract as cpu::ApplyDropout.
void ApplyDropout(const float* in, float* out, int64_t n, float p, const RandomStream& stream, uint64_t first);
}  // namespace cuda
#endif

}  // namespace sieve::ops
