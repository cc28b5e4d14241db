// CPU LSTM gates. OpenMP over rows (batch entries); each row in spans of kSpan units. The sigmoid
// and tanh of a span go through cpu::ActivationForward (Eigen packets, the same bits as the
// Activation kernels), the rest through `omp simd` loops, with tanh(c) in a stack buffer. A span's
// loop reads all of an element's operands before writing its outputs, which is what makes the
// in-place pairs of lstm_gates.h safe.
#include <algorithm>

#include "ops/kernels/activation.h"
#include "ops/kernels/lstm_gates.h"

namespace sieve::ops::cpu {

namespace {

constexpr int64_t kSpan = 256;                      // units per span: the stack buffer's length
constexpr int64_t kParallelMin = int64_t{1} << 13;  // batch * hidden; below this one thread is faster

// The activation of each gate block, in the order i, f, g, o.
constexpr Activation kGateActivation[4] = {Activation::kSigmoid, Activation::kSigmoid, Activation::kTanh,
                                           Activation::kSigmoid};

// Element-wise activation of n contiguous floats (one row for cpu::ActivationForward; the row is
// short, so its own OpenMP threshold keeps it on this thread).
void Activate(Activation kind, const float* x, float* y, int64_t n) { ActivationForward(kind, x, n, y, n, 1, n); }

}  // namespace

void LstmGatesForward(LstmIn preact, LstmIn c_prev, LstmOut h, LstmOut c, LstmOut gates, int64_t batch,
                      int64_t hidden) {
#pragma omp parallel for schedule(static) if (batch * hidden >= kParallelMin)
  for (int64_t b = 0; b < batch; ++b) {
    const float* pre = preact.data + b * preact.ld;
    const float* cp = c_prev.data + b * c_prev.ld;
    float* hr = h.data + b * h.ld;
    float* cr = c.data + b * c.ld;
    float* gr = gates.data + b * gates.ld;
    float tanh_c[kSpan];
    for (int64_t j0 = 0; j0 < hidden; j0 += kSpan) {
      const int64_t n = std::min(kSpan, hidden - j0);
      for (int k = 0; k < 4; ++k) Activate(kGateActivation[k], pre + k * hidden + j0, gr + k * hidden + j0, n);
      const float* i = gr + j0;
      const float* f = gr + hidden + j0;
      const float* g = gr + 2 * hidden + j0;
      const float* o = gr + 3 * hidden + j0;
      float* cell = cr + j0;
      const float* cell_prev = cp + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) cell[j] = f[j] * cell_prev[j] + i[j] * g[j];
      Activate(Activation::kTanh, cell, tanh_c, n);
      float* out = hr + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) out[j] = o[j] * tanh_c[j];
    }
  }
}

void LstmGatesBackward(LstmIn gates, LstmIn c_prev, LstmIn c, LstmIn dh, LstmIn dc_next, LstmOut dpreact,
                       LstmOut dc_prev, int64_t batch, int64_t hidden) {
  // An absent gradient reads as zeros, so one branch-free loop serves every case.
  static const float kZeros[kSpan] = {};
#pragma omp parallel for schedule(static) if (batch * hidden >= kParallelMin)
  for (int64_t b = 0; b < batch; ++b) {
    const float* gr = gates.data + b * gates.ld;
    float* dpr = dpreact.data + b * dpreact.ld;
    float tanh_c[kSpan];
    for (int64_t j0 = 0; j0 < hidden; j0 += kSpan) {
      const int64_t n = std::min(kSpan, hidden - j0);
      Activate(Activation::kTanh, c.data + b * c.ld + j0, tanh_c, n);
      const float* i = gr + j0;
      const float* f = gr + hidden + j0;
      const float* g = gr + 2 * hidden + j0;
      const float* o = gr + 3 * hidden + j0;
      const float* cell_prev = c_prev.data + b * c_prev.ld + j0;
      const float* dh_span = dh.data ? dh.data + b * dh.ld + j0 : kZeros;
      const float* dc_span = dc_next.data ? dc_next.data + b * dc_next.ld + j0 : kZeros;
      float* di = dpr + j0;
      float* df = dpr + hidden + j0;
      float* dg = dpr + 2 * hidden + j0;
      float* dout = dpr + 3 * hidden + j0;
      float* dcp = dc_prev.data + b * dc_prev.ld + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const float ij = i[j], fj = f[j], gj = g[j], oj = o[j], tc = tanh_c[j], dhj = dh_span[j];
        // (1 - t)(1 + t), not 1 - t*t, which cancels near |t| = 1.
        const float dc = dc_span[j] + dhj * oj * ((1.0f - tc) * (1.0f + tc));
        const float cpj = cell_prev[j];
        di[j] = dc * gj * (ij * (1.0f - ij));
        df[j] = dc * cpj * (fj * (1.0f - fj));
        dg[j] = dc * ij * ((1.0f - gj) * (1.0f + gj));
        dout[j] = dhj * tc * (oj * (1.0f - oj));
        dcp[j] = dc * fj;
      }
    }
  }
}

}  // namespace sieve::ops::cpu
