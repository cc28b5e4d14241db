// Verifier rules of the kinds the kernels helper added or completed: one LSTM step forward and
// backward and Add in a small hand-built graph that passes, and a broken operand
// shape (or packing) per rule, with the message naming the node and both shapes.
#include <catch2/catch.hpp>
#include <initializer_list>

#include "graph/verify.h"

namespace sieve::graph {
namespace {

void ExpectInvalid(const Graph& g, std::initializer_list<const char*> fragments) {
  const Status st = Verify(g);
  INFO(st.ToString());
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == StatusCode::kInvalidArgument);
  for (const char* fragment : fragments) CHECK_THAT(st.message(), Catch::Contains(fragment));
}

constexpr int64_t kBatch = 2, kHidden = 3;
constexpr Phase kBwd = Phase::kBackward;

// One LSTM step (B = 2, H = 3) with its backward; the step's outputs are summed by an Add (the
// way autodiff sums two gradient contributions).
struct LstmStep {
  Graph g;
  ValueId preact, c0, h, c, gates, dh, dc_zero, dpreact, dc_prev, sum;
};

LstmStep MakeLstmStep() {
  LstmStep s;
  Graph& g = s.g;
  const Shape narrow = {kBatch, kHidden}, wide = {kBatch, 4 * kHidden};
  s.preact = g.AddValue("lstm.preact", ValueRole::kInput, wide);
  s.c0 = g.AddValue("lstm.c0", ValueRole::kInput, narrow);
  s.h = g.AddValue("lstm.h", ValueRole::kActivation, narrow);
  s.c = g.AddValue("lstm.c", ValueRole::kActivation, narrow);
  s.gates = g.AddValue("lstm.gates", ValueRole::kActivation, wide);
  g.AddNode(OpKind::kLstmGates, "lstm.gates.t0", {s.preact, s.c0}, {s.h, s.c, s.gates});
  s.sum = g.AddValue("lstm.h_plus_c", ValueRole::kActivation, narrow);
  g.AddNode(OpKind::kAdd, "lstm.sum", {s.h, s.c}, {s.sum});
  s.dh = g.AddValue("lstm.h.grad", ValueRole::kInput, narrow);
  s.dc_zero = g.AddValue("lstm.c.grad.zero", ValueRole::kActivationGrad, narrow);
  g.AddNode(OpKind::kFill, "lstm.c.grad.fill", {}, {s.dc_zero}, FillAttr{0.0f}, kBwd);
  s.dpreact = g.AddValue("lstm.preact.grad", ValueRole::kActivationGrad, wide);
  s.dc_prev = g.AddValue("lstm.c0.grad", ValueRole::kActivationGrad, narrow);
  g.AddNode(OpKind::kLstmGatesBackward, "lstm.gates.t0.grad", {s.gates, s.c0, s.c, s.dh, s.dc_zero},
            {s.dpreact, s.dc_prev}, {}, kBwd);
  return s;
}

TEST_CASE("Verify accepts an LSTM step with its backward and an Add", "[graph][kernels][lstm]") {
  const Status st = Verify(MakeLstmStep().g);
  INFO(st.ToString());
  CHECK(st.ok());
}

TEST_CASE("Verify checks the operand shapes of the LSTM gate kinds", "[graph][kernels][lstm]") {
  LstmStep s = MakeLstmStep();
  SECTION("preact not a multiple of four gates") {
    s.g.mutable_value(s.preact).planned = s.g.mutable_value(s.preact).live = {kBatch, 10};
    ExpectInvalid(s.g, {"lstm.gates.t0", "input 0 'lstm.preact'", "[2, 10]", "4 * hidden"});
  }
  SECTION("c_prev of another batch") {
    s.g.mutable_value(s.c0).planned = s.g.mutable_value(s.c0).live = {3, kHidden};
    ExpectInvalid(s.g, {"lstm.gates.t0", "'lstm.c0'", "[3, 3]", "[2, 3]"});
  }
  SECTION("gates not [B, 4H]") {
    s.g.mutable_value(s.gates).planned = s.g.mutable_value(s.gates).live = {kBatch, 4 * kHidden + 4};
    ExpectInvalid(s.g, {"lstm.gates.t0", "output 2 'lstm.gates'", "[2, 16]", "expected [2, 12]"});
  }
  SECTION("backward dc not [B, H]") {
    s.g.mutable_value(s.dc_zero).planned = s.g.mutable_value(s.dc_zero).live = {kBatch, 4};
    ExpectInvalid(s.g, {"lstm.gates.t0.grad", "input 4 'lstm.c.grad.zero'", "[2, 4]", "expected [2, 3]"});
  }
  SECTION("backward dpreact not like gates") {
    s.g.mutable_value(s.dpreact).planned = s.g.mutable_value(s.dpreact).live = {kBatch, 8};
    ExpectInvalid(s.g, {"lstm.gates.t0.grad", "'lstm.gates'", "'lstm.preact.grad'"});
  }
  SECTION("Add operands of different shapes") {
    s.g.mutable_value(s.sum).planned = s.g.mutable_value(s.sum).live = {kBatch, 4};
    ExpectInvalid(s.g, {"lstm.sum", "'lstm.h'", "planned shape of", "'lstm.h_plus_c'"});
  }
}

}  // namespace
}  // namespace sieve::graph
