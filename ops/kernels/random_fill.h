// Random fills for parameter initialisers (uniform, Gaussian) and raw random bits, drawn from a
// Philox stream (framework/rng.h) so that a fill is a pure function of (seed, stream id): the same
// on every run, on CPU and on CUDA, and independent of thread counts. Element i of a tensor (its
// row-major index) is element i of the stream. Initialiser policies (Xavier, MSRA, ...) are the
// callers' business; they pick low/high or mean/stddev and call these.
#pragma once

#include <cmath>
#include <cstdint>

#include "framework/host_device.h"
#include "framework/rng.h"
#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// The uniform fill value of random bits: low + range * u with u = UniformFromBits(bits), evaluated
/// in double and rounded once to float. The product of two floats is exact in double, so the
/// result is the same whether or not a compiler fuses the multiply-add: CPU and CUDA agree bit for
/// bit, and the host loop still vectorises. Values lie in [low, low + range]; the upper end is
/// reached only where low + range * (1 - 2^-24) rounds onto it.
SIEVE_HOST_DEVICE inline float UniformFillValue(float low, float range, uint32_t bits) {
  return static_cast<float>(static_cast<double>(low) +
                            static_cast<double>(range) * static_cast<double>(UniformFromBits(bits)));
}

/// The Gaussian fill value of a standard normal z: mean + stddev * z as one fused multiply-add in
/// float (std::fma / __fmaf_rn), so CPU and CUDA round identically given the same z. Not evaluated
/// in double like UniformFillValue: z is itself a double rounded to float, and GCC 12 at -O3 was
/// seen to drop that rounding when z is converted straight back to double (its C++ front end
/// implements only "fast" excess precision), which broke CPU-vs-reference equality.
SIEVE_HOST_DEVICE inline float NormalFillValue(float mean, float stddev, float z) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(stddev, z, mean);
#else
  return std::fma(stddev, z, mean);
#endif
}

/// t[i] = UniformFillValue(low, high - low, stream.Bits(i)). t: contiguous float32. Errors: low or
/// high not finite, low > high, wrong dtype, non-contiguous t.
Status FillUniform(const Tensor& t, float low, float high, const RandomStream& stream);
/// t[i] = NormalFillValue(mean, stddev, stream.Normal(i)). CPU and CUDA agree except for rare
/// one-ulp differences where their double-precision log/sin/cos round differently (rng.h).
/// Errors: mean or stddev not finite, stddev < 0, wrong dtype, non-contiguous t.
Status FillNormal(const Tensor& t, float mean, float stddev, const RandomStream& stream);
/// t[i] = stream.Bits(i), reinterpreted as int32. t: contiguous int32.
Status FillRandomBits(const Tensor& t, const RandomStream& stream);

namespace ref {
// Naive CPU reference, the test oracle: element k of `out` is element first + k of the stream,
// drawn one at a time through RandomStream. No validation.
void FillUniform(float* out, int64_t n, float low, float high, const RandomStream& stream, uint64_t first);
void FillNormal(float* out, int64_t n, float mean, float stddev, const RandomStream& stream, uint64_t first);
void FillBits(uint32_t* out, int64_t n, const RandomStream& stream, uint64_t first);
}  // namespace ref

namespace cpu {
// Multi-threaded, vectorised CPU versions; same contract as ref::.
void FillUniform(float* out, int64_t n, float low, float high, const RandomStream& stream, uint64_t first);
void FillNormal(float* out, int64_t n, float mean, float stddev, const RandomStream& stream, uint64_t first);
void FillBits(uint32_t* out, int64_t n, const RandomStream& stream, uint64_t first);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// Device versions (out in device memory) on the current device and stream; same contract as ref::.
void FillUniform(float* out, int64_t n, float low, float high, const RandomStream& stream, uint64_t first);
void FillNormal(float* out, int64_t n, float mean, float stddev, const RandomStream& stream, uint64_t first);
void FillBits(uint32_t* out, int64_t n, const RandomStream& stream, uint64_t first);
}  // namespace cuda
#endif

}  // namespace sieve::ops
