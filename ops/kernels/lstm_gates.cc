// Validation and device dispatch of the Tensor-level LSTM gate kernels.
#include "ops/kernels/lstm_gates.h"

#include <string>
#include <vector>

#include "ops/check.h"

namespace sieve::ops {

namespace {

struct Operand {
  const char* name;
  const Tensor* t;  // nullptr: an absent optional gradient
  int64_t blocks;   // columns in units of H: 4 for the gate matrices, 1 otherwise
  bool output;
};

// Checks layouts, dtypes, devices and shapes against [B, blocks * H], with B and H taken from the
// first operand (a gate matrix), and that outputs share no element with any other operand except
// the in-place pairs `same_view_ok` (each the indices of two operands). Returns H.
StatusOr<int64_t> CheckOperands(const char* op, const std::vector<Operand>& operands,
                                const std::vector<std::pair<int, int>>& same_view_ok) {
  const Tensor& first = *operands.front().t;
  for (const Operand& o : operands) {
    if (o.t == nullptr) continue;
    SIEVE_RETURN_IF_ERROR(CheckMatrix(op, o.name, *o.t, o.blocks == 4 ? "[batch, 4 * hidden]" : "[batch, hidden]"));
    SIEVE_ENSURE(o.t->device() == first.device(), StatusCode::kInvalidArgument,
                 op << ": operands on different devices: " << operands.front().name << " " << first.ToString()
                    << " and " << o.name << " " << o.t->ToString());
  }
  SIEVE_ENSURE(first.dim(1) % 4 == 0, StatusCode::kInvalidArgument,
               op << ": " << operands.front().name << " " << ShapeToString(first.shape())
                  << " must have 4 * hidden columns (gates i, f, g, o)");
  const int64_t batch = first.dim(0), hidden = first.dim(1) / 4;
  for (const Operand& o : operands) {
    if (o.t == nullptr) continue;
    SIEVE_ENSURE(o.t->dim(0) == batch && o.t->dim(1) == o.blocks * hidden, StatusCode::kInvalidArgument,
                 op << ": " << o.name << " " << ShapeToString(o.t->shape()) << " should be [" << batch << ", "
                    << o.blocks * hidden << "] to match " << operands.front().name << " "
                    << ShapeToString(first.shape()));
  }
  for (size_t i = 0; i < operands.size(); ++i)
    for (size_t j = 0; j < operands.size(); ++j) {
      const Operand &out = operands[i], &other = operands[j];
      if (i == j || !out.output || out.t == nullptr || other.t == nullptr) continue;
      if (other.output && j < i) continue;  // output pairs are checked once
      bool in_place = false;
      for (auto [a, b] : same_view_ok)
        in_place = in_place || ((a == static_cast<int>(i) && b == static_cast<int>(j)) ||
                                (b == static_cast<int>(i) && a == static_cast<int>(j)));
      if (in_place && IsSameView(*out.t, *other.t)) continue;
      SIEVE_ENSURE(!ElementsOverlap(*out.t, *other.t), StatusCode::kInvalidArgument,
                   op << ": " << out.name << " shares elements with " << other.name
                      << (in_place ? " without being the same view" : ""));
    }
  return hidden;
}

LstmIn In(const Tensor* t) { return t == nullptr ? LstmIn{} : LstmIn{t->data<float>(), t->stride(0)}; }
LstmIn In(const Tensor& t) { return In(&t); }
LstmOut Out(const Tensor& t) { return LstmOut{t.data<float>(), t.stride(0)}; }

#ifndef SIEVE_WITH_CUDA
Status NoCuda(const char* op, const Tensor& t) {
  return SIEVE_ERROR(StatusCode::kUnimplemented, op << ": no kernel for " << t.ToString() << " in this build");
}
#endif

}  // namespace

Status LstmGatesForward(const Tensor& preact, const Tensor& c_prev, const Tensor& h, const Tensor& c,
                        const Tensor& gates) {
  constexpr const char* kOp = "LstmGatesForward";
  SIEVE_ASSIGN_OR_RETURN(const int64_t hidden, CheckOperands(kOp,
                                                             {{"preact", &preact, 4, false},
                                                              {"c_prev", &c_prev, 1, false},
                                                              {"h", &h, 1, true},
                                                              {"c", &c, 1, true},
                                                              {"gates", &gates, 4, true}},
                                                             {{0, 4}, {1, 3}}));
  const int64_t batch = preact.dim(0);
  if (batch == 0 || hidden == 0) return Status::Ok();
  if (preact.device().is_cpu()) {
    cpu::LstmGatesForward(In(preact), In(c_prev), Out(h), Out(c), Out(gates), batch, hidden);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::LstmGatesForward(In(preact), In(c_prev), Out(h), Out(c), Out(gates), batch, hidden);
  return Status::Ok();
#else
  return NoCuda(kOp, preact);
#endif
}

Status LstmGatesBackward(const Tensor& gates, const Tensor& c_prev, const Tensor& c, const Tensor* dh,
                         const Tensor* dc_next, const Tensor& dpreact, const Tensor& dc_prev) {
  constexpr const char* kOp = "LstmGatesBackward";
  SIEVE_ASSIGN_OR_RETURN(const int64_t hidden, CheckOperands(kOp,
                                                             {{"gates", &gates, 4, false},
                                                              {"c_prev", &c_prev, 1, false},
                                                              {"c", &c, 1, false},
                                                              {"dh", dh, 1, false},
                                                              {"dc_next", dc_next, 1, false},
                                                              {"dpreact", &dpreact, 4, true},
                                                              {"dc_prev", &dc_prev, 1, true}},
                                                             {{0, 5}, {4, 6}}));
  const int64_t batch = gates.dim(0);
  if (batch == 0 || hidden == 0) return Status::Ok();
  if (gates.device().is_cpu()) {
    cpu::LstmGatesBackward(In(gates), In(c_prev), In(c), In(dh), In(dc_next), Out(dpreact), Out(dc_prev), batch,
                           hidden);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::LstmGatesBackward(In(gates), In(c_prev), In(c), In(dh), In(dc_next), Out(dpreact), Out(dc_prev), batch, hidden);
  return Status::Ok();
#else
  return NoCuda(kOp, gates);
#endif
}

}  // namespace sieve::ops
