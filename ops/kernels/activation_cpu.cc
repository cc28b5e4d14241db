// CPU activations. Work is cut into spans of at most kChunk elements of one row (a contiguous
// operand set is one long row), spread over the OpenMP team when there is enough of it.
//
// tanh and sigmoid run on Eigen packets (the widest SIMD registers the build targets) built from
// Eigen's packet exp: Eigen's own tanh is off by up to 1e-5 relative near zero, and evaluating
// Eigen expressions over unaligned maps peels some elements through std::exp and others through
// the packet exp, so results would depend on the buffers' alignment. Here the ragged tail of a
// span goes through the same packet code, so every element rounds the same way wherever it sits.
// GCC cannot if-convert these functions as plain loops (its trapping-math model keeps the
// clamping branches), which is why they are written with packets. The other loops are `omp simd`,
// which also vectorises the in-place case where GCC's runtime alias check would give up.
#include <Eigen/Core>
#include <algorithm>

#include "ops/kernels/activation.h"

namespace sieve::ops::cpu {

namespace {

constexpr int64_t kChunk = int64_t{1} << 14;        // elements per task: 64 KB of floats
constexpr int64_t kParallelMin = int64_t{1} << 16;  // elements; below this one thread is faster

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int64_t kLanes = Eigen::internal::packet_traits<float>::size;

// tanh: an odd polynomial below |x| = 0.625 (after Cephes' tanhf), 1 - 2 / (e^2|x| + 1) above,
// where that form has no cancellation. About 2e-7 relative; NaN takes the polynomial: NaN.
Packet TanhPacket(const Packet& x) {
  using namespace Eigen::internal;
  const Packet one = pset1<Packet>(1.0f);
  const Packet a = pabs(x);
  const Packet z = pmul(x, x);
  Packet p = pset1<Packet>(-5.70498872745e-3f);
  p = pmadd(p, z, pset1<Packet>(2.06390887954e-2f));
  p = pmadd(p, z, pset1<Packet>(-5.37397155531e-2f));
  p = pmadd(p, z, pset1<Packet>(1.33314422036e-1f));
  p = pmadd(p, z, pset1<Packet>(-3.33332819422e-1f));
  const Packet small = pmadd(pmul(p, z), x, x);
  const Packet large = psub(one, pdiv(pset1<Packet>(2.0f), padd(pexp(padd(a, a)), one)));
  const Packet signed_large = pselect(pcmp_lt(x, pzero(x)), pnegate(large), large);
  return pselect(pcmp_le(pset1<Packet>(0.625f), a), signed_large, small);
}

// 1 / (1 + e^-x), which keeps its relative accuracy for very negative x; NaN passes through.
Packet SigmoidPacket(const Packet& x) {
  using namespace Eigen::internal;
  const Packet one = pset1<Packet>(1.0f);
  const Packet y = pdiv(one, padd(one, pexp(pnegate(x))));
  return pselect(pcmp_eq(x, x), y, x);
}

// y[i] = op(x[i]) packet by packet; the tail is padded to a whole packet. y may be x.
template <typename Op>
void MapPackets(const float* x, float* y, int64_t n, Op op) {
  using Eigen::internal::ploadu;
  using Eigen::internal::pstoreu;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) pstoreu(y + i, op(ploadu<Packet>(x + i)));
  if (i < n) {
    float tail[kLanes] = {};
    std::copy(x + i, x + n, tail);
    pstoreu(tail, op(ploadu<Packet>(tail)));
    std::copy(tail, tail + (n - i), y + i);
  }
}

// Calls span(row, first column, length) over a rows x cols matrix in spans of at most kChunk.
template <typename Span>
void ForEachSpan(int64_t rows, int64_t cols, Span span) {
  const int64_t per_row = (cols + kChunk - 1) / kChunk;
  const int64_t tasks = rows * per_row;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t r = t / per_row, c0 = (t % per_row) * kChunk;
    span(r, c0, std::min(kChunk, cols - c0));
  }
}

void ForwardSpan(Activation kind, const float* x, float* y, int64_t n) {
  switch (kind) {
    case Activation::kReLU:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
      return;
    case Activation::kTanh:
      MapPackets(x, y, n, [](const Packet& v) { return TanhPacket(v); });
      return;
    case Activation::kSigmoid:
      MapPackets(x, y, n, [](const Packet& v) { return SigmoidPacket(v); });
      return;
    case Activation::kCount:
      break;
  }
  SIEVE_CHECK(false, "unknown activation " << static_cast<int>(kind));
}

void BackwardSpan(Activation kind, const float* y, const float* dy, float* dx, int64_t n) {
  switch (kind) {
    case Activation::kReLU:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const float g = dy[i];  // loaded unconditionally, so the select needs no branch
        dx[i] = y[i] > 0.0f ? g : 0.0f;
      }
      return;
    case Activation::kTanh:
      // (1 - y)(1 + y), not 1 - y*y: near |y| = 1 the product y*y rounds and 1 - y*y cancels.
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * ((1.0f - y[i]) * (1.0f + y[i]));
      return;
    case Activation::kSigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
      return;
    case Activation::kCount:
      break;
  }
  SIEVE_CHECK(false, "unknown activation " << static_cast<int>(kind));
}

}  // namespace

void ActivationForward(Activation kind, const float* x, int64_t ld_x, float* y, int64_t ld_y, int64_t rows,
                       int64_t cols) {
  if (ld_x == cols && ld_y == cols) {  // both contiguous: one long row balances best
    cols *= rows;
    rows = 1;
  }
  ForEachSpan(rows, cols,
              [&](int64_t r, int64_t c0, int64_t n) { ForwardSpan(kind, x + r * ld_x + c0, y + r * ld_y + c0, n); });
}

void ActivationBackward(Activation kind, const float* y, int64_t ld_y, const float* dy, int64_t ld_dy, float* dx,
                        int64_t ld_dx, int64_t rows, int64_t cols) {
  if (ld_y == cols && ld_dy == cols && ld_dx == cols) {
    cols *= rows;
    rows = 1;
  }
  ForEachSpan(rows, cols, [&](int64_t r, int64_t c0, int64_t n) {
    BackwardSpan(kind, y + r * ld_y + c0, dy + r * ld_dy + c0, dx + r * ld_dx + c0, n);
  });
}

}  // namespace sieve::ops::cpu
