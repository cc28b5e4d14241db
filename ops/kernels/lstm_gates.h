// The pointwise part of one LSTM time step (SPEC 2.7), forward and backward. The GEMMs of the step
// (input projection, recurrent h_{t-1} U^T) are MatMul nodes; these kernels take their sum with the
// biases already added, the pre-activations `preact` [B, 4H], whose four column blocks of H are the
// gates in the order i (input), f (forget), g (cell candidate), o (output):
//
//   i = sigmoid(preact_i)   f = sigmoid(preact_f)   g = tanh(preact_g)   o = sigmoid(preact_o)
//   c = f * c_prev + i * g
//   h = o * tanh(c)
//
// The forward stores the activated gates (i, f, g, o) [B, 4H] for the backward, which, given the
// gradients dh of h and dc_next of c from later (either may be absent: none flows back), computes
//
//   dc      = dc_next + dh * o * (1 - tanh(c)^2)
//   dpreact = (dc * g * i (1 - i),  dc * c_prev * f (1 - f),  dc * i * (1 - g^2),  dh * tanh(c) * o (1 - o))
//   dc_prev = dc * f
//
// exactly (tanh(c) is recomputed from c). Every operand is a 2-D float32 view with unit column
// stride and any leading dimension: the steps of an LSTM are strided views of its [B, T, X]
// sequence tensors (row stride T * X). This file is not the LSTM layer (graph/lower/lstm.cc).
#pragma once

#include <cstdint>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::ops {

/// One LSTM step forward. preact [B, 4H] and c_prev [B, H] in; h [B, H], c [B, H] and gates
/// [B, 4H] out; all float32 matrix views (unit column stride, any leading dimension) on one device.
/// gates may be preact itself and c may be c_prev itself (in place); otherwise no output shares an
/// element with another operand.
Status LstmGatesForward(const Tensor& preact, const Tensor& c_prev, const Tensor& h, const Tensor& c,
                        const Tensor& gates);

/// One LSTM step backward: from the forward's gates [B, 4H], c_prev and c [B, H] and the incoming
/// gradients dh and dc_next [B, H] (nullptr: no gradient, i.e. zero), writes dpreact [B, 4H] and
/// dc_prev [B, H]. Layouts as LstmGatesForward; dpreact may be gates itself and dc_prev may be
/// dc_next itself (in place); otherwise no output shares an element with another operand.
Status LstmGatesBackward(const Tensor& gates, const Tensor& c_prev, const Tensor& c, const Tensor* dh,
                         const Tensor* dc_next, const Tensor& dpreact, const Tensor& dc_prev);

namespace ref {
// Naive reference versions (CPU; each output computed in double from the float operands and
// rounded once), the oracle for the fast paths; same contracts, no validation.
void LstmGatesForward(const Tensor& preact, const Tensor& c_prev, const Tensor& h, const Tensor& c,
                      const Tensor& gates);
void LstmGatesBackward(const Tensor& gates, const Tensor& c_prev, const Tensor& c, const Tensor* dh,
                       const Tensor* dc_next, const Tensor& dpreact, const Tensor& dc_prev);
}  // namespace ref

/// An operand of the raw-pointer entry points: row b of the matrix starts at data + b * ld.
/// An absent optional gradient has data == nullptr.
struct LstmIn {
  const float* data = nullptr;
  int64_t ld = 0;
};
struct LstmOut {
  float* data = nullptr;
  int64_t ld = 0;
};

// Raw-pointer entry points over `batch` rows and `hidden` units; no validation.

namespace cpu {
// OpenMP over rows; within a row, spans of columns go through the SIMD activations of
// activation.h (the same bits as ActivationForward) and `omp simd` loops.
void LstmGatesForward(LstmIn preact, LstmIn c_prev, LstmOut h, LstmOut c, LstmOut gates, int64_t batch, int64_t hidden);
void LstmGatesBackward(LstmIn gates, LstmIn c_prev, LstmIn c, LstmIn dh, LstmIn dc_next, LstmOut dpreact,
                       LstmOut dc_prev, int64_t batch, int64_t hidden);
}  // namespace cpu

#ifdef SIEVE_WITH_CUDA
namespace cuda {
// One thread per (row, unit), on the default stream (expf, tanhf).
void LstmGatesForward(LstmIn preact, LstmIn c_prev, LstmOut h, LstmOut c, LstmOut gates, int64_t batch, int64_t hidden);
void LstmGatesBackward(LstmIn gates, LstmIn c_prev, LstmIn c, LstmIn dh, LstmIn dc_next, LstmOut dpreact,
                       LstmOut dc_prev, int64_t batch, int64_t hidden);
}  // namespace cuda
#endif

}  // namespace sieve::ops
