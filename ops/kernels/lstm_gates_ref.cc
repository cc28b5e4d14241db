// The naive reference LSTM gates: every output from the formulas of lstm_gates.h in double, from
// the float operands, rounded once. Slow on purpose; the test oracle.
#include <cmath>

#include "ops/kernels/lstm_gates.h"

namespace sieve::ops::ref {

namespace {

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Element (b, j) of a 2-D view.
float& At(const Tensor& t, int64_t b, int64_t j) { return t.data<float>()[b * t.stride(0) + j]; }

}  // namespace

void LstmGatesForward(const Tensor& preact, const Tensor& c_prev, const Tensor& h, const Tensor& c,
                      const Tensor& gates) {
  const int64_t hidden = preact.dim(1) / 4;
  for (int64_t b = 0; b < preact.dim(0); ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const double i = Sigmoid(At(preact, b, j));
      const double f = Sigmoid(At(preact, b, hidden + j));
      const double g = std::tanh(static_cast<double>(At(preact, b, 2 * hidden + j)));
      const double o = Sigmoid(At(preact, b, 3 * hidden + j));
      const double cell = f * At(c_prev, b, j) + i * g;
      At(gates, b, j) = static_cast<float>(i);
      At(gates, b, hidden + j) = static_cast<float>(f);
      At(gates, b, 2 * hidden + j) = static_cast<float>(g);
      At(gates, b, 3 * hidden + j) = static_cast<float>(o);
      At(c, b, j) = static_cast<float>(cell);
      At(h, b, j) = static_cast<float>(o * std::tanh(cell));
    }
}

void LstmGatesBackward(const Tensor& gates, const Tensor& c_prev, const Tensor& c, const Tensor* dh,
                       const Tensor* dc_next, const Tensor& dpreact, const Tensor& dc_prev) {
  const int64_t hidden = gates.dim(1) / 4;
  for (int64_t b = 0; b < gates.dim(0); ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const double i = At(gates, b, j), f = At(gates, b, hidden + j), g = At(gates, b, 2 * hidden + j),
                   o = At(gates, b, 3 * hidden + j);
      const double tanh_c = std::tanh(static_cast<double>(At(c, b, j)));
      const double dh_bj = dh ? At(*dh, b, j) : 0.0;
      const double dc = (dc_next ? At(*dc_next, b, j) : 0.0) + dh_bj * o * (1.0 - tanh_c * tanh_c);
      At(dpreact, b, j) = static_cast<float>(dc * g * i * (1.0 - i));
      At(dpreact, b, hidden + j) = static_cast<float>(dc * At(c_prev, b, j) * f * (1.0 - f));
      At(dpreact, b, 2 * hidden + j) = static_cast<float>(dc * i * (1.0 - g * g));
      At(dpreact, b, 3 * hidden + j) = static_cast<float>(dh_bj * tanh_c * o * (1.0 - o));
      At(dc_prev, b, j) = static_cast<float>(dc * f);
    }
}

}  // namespace sieve::ops::ref
