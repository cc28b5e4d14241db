// LSTM gates: the reference against the formulas in double (forward) and against central finite
// differences of a double-precision step (backward, with and without each incoming gradient); the
// CPU path against the reference on contiguous and strided operands (the time steps of [B, T, X]
// sequences), across the span length and the OpenMP threshold, in place; absent gradients as
// zeros; the errors. Also ops::ElementsOverlap, which tells interleaved steps from overlap.
#include "ops/kernels/lstm_gates.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "ops/check.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::BitwiseEqual;
using testing::CheckClose;
using testing::RandomTensor;
using testing::RandomValues;

// The fast path's activations are a few ulps off; c and h combine several of them.
constexpr double kRtol = 1e-5;
constexpr double kAtol = 1e-6;

// One LSTM step in double from the definition: h and c for preact [B, 4H] and c_prev [B, H].
struct DoubleStep {
  std::vector<double> h, c;
};
DoubleStep StepInDouble(const std::vector<double>& preact, const std::vector<double>& c_prev, int64_t batch,
                        int64_t hidden) {
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  DoubleStep out{std::vector<double>(batch * hidden), std::vector<double>(batch * hidden)};
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const double* p = &preact[b * 4 * hidden + j];
      const double cell = sigmoid(p[hidden]) * c_prev[b * hidden + j] + sigmoid(p[0]) * std::tanh(p[2 * hidden]);
      out.c[b * hidden + j] = cell;
      out.h[b * hidden + j] = sigmoid(p[3 * hidden]) * std::tanh(cell);
    }
  return out;
}

std::vector<double> ToDouble(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<float> ToFloat(const std::vector<double>& v) {
  std::vector<float> f(v.size());
  for (size_t k = 0; k < v.size(); ++k) f[k] = static_cast<float>(v[k]);
  return f;
}

TEST_CASE("LstmGates reference forward follows the formulas", "[ops][kernels][lstm]") {
  std::mt19937 rng(71);
  const int64_t batch = 3, hidden = 5;
  const Tensor preact = RandomTensor({batch, 4 * hidden}, rng, -4.0f, 4.0f);
  const Tensor c_prev = RandomTensor({batch, hidden}, rng, -2.0f, 2.0f);
  const Tensor h = Tensor::Zeros({batch, hidden}), c = Tensor::Zeros({batch, hidden});
  const Tensor gates = Tensor::Zeros({batch, 4 * hidden});
  ref::LstmGatesForward(preact, c_prev, h, c, gates);
  const DoubleStep want = StepInDouble(ToDouble(preact.ToVector()), ToDouble(c_prev.ToVector()), batch, hidden);
  CHECK(BitwiseEqual(h.ToVector(), ToFloat(want.h)));
  CHECK(BitwiseEqual(c.ToVector(), ToFloat(want.c)));
  const std::vector<float> p = preact.ToVector(), g = gates.ToVector();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t k = b * 4 * hidden + j;
      CHECK(g[k] == static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(p[k])))));
      CHECK(g[k + 2 * hidden] == static_cast<float>(std::tanh(static_cast<double>(p[k + 2 * hidden]))));
    }
}

// L = sum rh * h + sum rc * c over one step in double; the reference backward with dh = rh and
// dc_next = rc (each possibly absent, i.e. zero) must be dL/dpreact and dL/dc_prev.
TEST_CASE("LstmGates reference backward matches central finite differences", "[ops][kernels][lstm]") {
  std::mt19937 rng(73);
  const int64_t batch = 2, hidden = 3;
  const std::vector<double> preact0 = ToDouble(RandomValues(batch * 4 * hidden, rng, -3.0f, 3.0f));
  const std::vector<double> c_prev0 = ToDouble(RandomValues(batch * hidden, rng, -2.0f, 2.0f));
  const std::vector<float> rh = RandomValues(batch * hidden, rng), rc = RandomValues(batch * hidden, rng);
  const double step = 1e-6;
  for (const bool with_dh : {true, false})
    for (const bool with_dc : {true, false}) {
      INFO("dh " << (with_dh ? "present" : "absent") << ", dc_next " << (with_dc ? "present" : "absent"));
      auto loss = [&](const std::vector<double>& preact, const std::vector<double>& c_prev) {
        const DoubleStep s = StepInDouble(preact, c_prev, batch, hidden);
        double l = 0.0;
        for (int64_t k = 0; k < batch * hidden; ++k)
          l += (with_dh ? rh[k] * s.h[k] : 0.0) + (with_dc ? rc[k] * s.c[k] : 0.0);
        return l;
      };
      // The backward's inputs from the forward at the expansion point.
      const Tensor preact = Tensor::FromVector({batch, 4 * hidden}, ToFloat(preact0));
      const Tensor c_prev = Tensor::FromVector({batch, hidden}, ToFloat(c_prev0));
      const Tensor h = Tensor::Zeros({batch, hidden}), c = Tensor::Zeros({batch, hidden});
      const Tensor gates = Tensor::Zeros({batch, 4 * hidden});
      ref::LstmGatesForward(preact, c_prev, h, c, gates);
      const Tensor dh = Tensor::FromVector({batch, hidden}, rh), dc_next = Tensor::FromVector({batch, hidden}, rc);
      const Tensor dpreact = Tensor::Zeros({batch, 4 * hidden}), dc_prev = Tensor::Zeros({batch, hidden});
      ref::LstmGatesBackward(gates, c_prev, c, with_dh ? &dh : nullptr, with_dc ? &dc_next : nullptr, dpreact, dc_prev);
      const std::vector<float> analytic_preact = dpreact.ToVector(), analytic_c = dc_prev.ToVector();
      // The expansion point is the float-rounded one the backward saw.
      const std::vector<double> p0 = ToDouble(preact.ToVector()), cp0 = ToDouble(c_prev.ToVector());
      for (size_t k = 0; k < p0.size(); ++k) {
        std::vector<double> plus = p0, minus = p0;
        plus[k] += step;
        minus[k] -= step;
        const double numeric = (loss(plus, cp0) - loss(minus, cp0)) / (2 * step);
        INFO("preact[" << k << "]");
        CHECK(analytic_preact[k] == Approx(numeric).margin(1e-6).epsilon(1e-5));
      }
      for (size_t k = 0; k < cp0.size(); ++k) {
        std::vector<double> plus = cp0, minus = cp0;
        plus[k] += step;
        minus[k] -= step;
        const double numeric = (loss(p0, plus) - loss(p0, minus)) / (2 * step);
        INFO("c_prev[" << k << "]");
        CHECK(analytic_c[k] == Approx(numeric).margin(1e-6).epsilon(1e-5));
      }
    }
}

// The operands of one step as views of [B, T, blocks * H] sequences at step t (ld = T * blocks * H),
// or contiguous [B, blocks * H] tensors when steps == 1.
struct Sequences {
  int64_t batch, steps, hidden;
  Tensor preact, c_prev, h, c, gates, dh, dc_next, dpreact, dc_prev;

  Sequences(int64_t b, int64_t t, int64_t hid, std::mt19937& rng) : batch(b), steps(t), hidden(hid) {
    preact = RandomTensor({b, t * 4 * hid}, rng, -5.0f, 5.0f);
    c_prev = RandomTensor({b, t * hid}, rng, -3.0f, 3.0f);
    h = RandomTensor({b, t * hid}, rng);
    c = RandomTensor({b, t * hid}, rng);
    gates = RandomTensor({b, t * 4 * hid}, rng);
    dh = RandomTensor({b, t * hid}, rng);
    dc_next = RandomTensor({b, t * hid}, rng);
    dpreact = RandomTensor({b, t * 4 * hid}, rng);
    dc_prev = RandomTensor({b, t * hid}, rng);
  }
  Tensor Step(const Tensor& seq, int64_t blocks, int64_t t) const {
    return seq.MatrixView(t * blocks * hidden, batch, blocks * hidden, steps * blocks * hidden);
  }
  Sequences Clone() const {
    Sequences s = *this;
    for (Tensor* t : {&s.preact, &s.c_prev, &s.h, &s.c, &s.gates, &s.dh, &s.dc_next, &s.dpreact, &s.dc_prev})
      *t = t->Clone();
    return s;
  }
};

TEST_CASE("LstmGates on the CPU match the reference", "[ops][kernels][lstm]") {
  std::mt19937 rng(79);
  struct Case {
    int64_t batch, steps, hidden;
  };
  // hidden 300 spans two column spans; 40 x 300 crosses the OpenMP threshold.
  const std::vector<Case> cases = {{1, 1, 1}, {3, 1, 5}, {4, 3, 7}, {2, 2, 300}, {40, 1, 300}, {16, 4, 33}};
  for (const Case& k : cases) {
    INFO("batch " << k.batch << ", steps " << k.steps << ", hidden " << k.hidden);
    const Sequences want(k.batch, k.steps, k.hidden, rng);
    const Sequences got = want.Clone();
    const int64_t t = k.steps - 1;  // the last step of each sequence
    ref::LstmGatesForward(want.Step(want.preact, 4, t), want.Step(want.c_prev, 1, t), want.Step(want.h, 1, t),
                          want.Step(want.c, 1, t), want.Step(want.gates, 4, t));
    REQUIRE(LstmGatesForward(got.Step(got.preact, 4, t), got.Step(got.c_prev, 1, t), got.Step(got.h, 1, t),
                             got.Step(got.c, 1, t), got.Step(got.gates, 4, t))
                .ok());
    CheckClose(got.h.ToVector(), want.h.ToVector(), kRtol, kAtol);  // other steps untouched too
    CheckClose(got.c.ToVector(), want.c.ToVector(), kRtol, kAtol);
    CheckClose(got.gates.ToVector(), want.gates.ToVector(), kRtol, kAtol);

    // The backward from the reference forward's results.
    const Tensor gates = want.Step(want.gates, 4, t), c = want.Step(want.c, 1, t);
    const Tensor c_prev = want.Step(want.c_prev, 1, t);
    const Tensor want_dh = want.Step(want.dh, 1, t), want_dc_next = want.Step(want.dc_next, 1, t);
    ref::LstmGatesBackward(gates, c_prev, c, &want_dh, &want_dc_next, want.Step(want.dpreact, 4, t),
                           want.Step(want.dc_prev, 1, t));
    const Tensor dh = got.Step(got.dh, 1, t), dc_next = got.Step(got.dc_next, 1, t);
    REQUIRE(LstmGatesBackward(gates, c_prev, c, &dh, &dc_next, got.Step(got.dpreact, 4, t), got.Step(got.dc_prev, 1, t))
                .ok());
    CheckClose(got.dpreact.ToVector(), want.dpreact.ToVector(), kRtol, kAtol);
    CheckClose(got.dc_prev.ToVector(), want.dc_prev.ToVector(), kRtol, kAtol);
  }
}

TEST_CASE("LstmGates read steps of one sequence and write the next", "[ops][kernels][lstm]") {
  // c_prev and c are interleaved views of one [B, T, H] cell sequence, as in the LSTM lowering.
  std::mt19937 rng(83);
  const Sequences s(5, 3, 6, rng);
  const Sequences want = s.Clone();
  for (int64_t t = 1; t < 3; ++t) {
    ref::LstmGatesForward(want.Step(want.preact, 4, t), want.Step(want.c, 1, t - 1), want.Step(want.h, 1, t),
                          want.Step(want.c, 1, t), want.Step(want.gates, 4, t));
    REQUIRE(LstmGatesForward(s.Step(s.preact, 4, t), s.Step(s.c, 1, t - 1), s.Step(s.h, 1, t), s.Step(s.c, 1, t),
                             s.Step(s.gates, 4, t))
                .ok());
  }
  CheckClose(s.c.ToVector(), want.c.ToVector(), kRtol, kAtol);
  CheckClose(s.h.ToVector(), want.h.ToVector(), kRtol, kAtol);
  for (int64_t t = 2; t >= 1; --t) {
    // dc_next is the dc_prev that step t + 1 wrote; none reaches the last step.
    const Tensor dh = s.Step(s.dh, 1, t), dc_next = s.Step(s.dc_prev, 1, t);
    REQUIRE(LstmGatesBackward(s.Step(s.gates, 4, t), s.Step(s.c, 1, t - 1), s.Step(s.c, 1, t), &dh,
                              t == 2 ? nullptr : &dc_next, s.Step(s.dpreact, 4, t), s.Step(s.dc_prev, 1, t - 1))
                .ok());
    const Tensor want_dh = want.Step(want.dh, 1, t), want_dc_next = want.Step(want.dc_prev, 1, t);
    ref::LstmGatesBackward(want.Step(want.gates, 4, t), want.Step(want.c, 1, t - 1), want.Step(want.c, 1, t), &want_dh,
                           t == 2 ? nullptr : &want_dc_next, want.Step(want.dpreact, 4, t),
                           want.Step(want.dc_prev, 1, t - 1));
  }
  CheckClose(s.dpreact.ToVector(), want.dpreact.ToVector(), kRtol, kAtol);
  CheckClose(s.dc_prev.ToVector(), want.dc_prev.ToVector(), kRtol, kAtol);
}

TEST_CASE("LstmGates treat an absent gradient as zero", "[ops][kernels][lstm]") {
  std::mt19937 rng(89);
  const int64_t batch = 6, hidden = 9;
  const Tensor gates = Tensor::Zeros({batch, 4 * hidden}), c = Tensor::Zeros({batch, hidden});
  const Tensor c_prev = RandomTensor({batch, hidden}, rng, -2.0f, 2.0f);
  REQUIRE(LstmGatesForward(RandomTensor({batch, 4 * hidden}, rng, -4.0f, 4.0f), c_prev, Tensor::Zeros({batch, hidden}),
                           c, gates)
              .ok());
  const Tensor grad = RandomTensor({batch, hidden}, rng), zeros = Tensor::Zeros({batch, hidden});
  for (const bool drop_dh : {true, false}) {
    INFO((drop_dh ? "dh" : "dc_next") << " absent");
    const Tensor dpreact_null = Tensor::Zeros({batch, 4 * hidden}), dc_null = Tensor::Zeros({batch, hidden});
    const Tensor dpreact_zero = Tensor::Zeros({batch, 4 * hidden}), dc_zero = Tensor::Zeros({batch, hidden});
    REQUIRE(
        LstmGatesBackward(gates, c_prev, c, drop_dh ? nullptr : &grad, drop_dh ? &grad : nullptr, dpreact_null, dc_null)
            .ok());
    REQUIRE(
        LstmGatesBackward(gates, c_prev, c, drop_dh ? &zeros : &grad, drop_dh ? &grad : &zeros, dpreact_zero, dc_zero)
            .ok());
    CHECK(BitwiseEqual(dpreact_null.ToVector(), dpreact_zero.ToVector()));
    CHECK(BitwiseEqual(dc_null.ToVector(), dc_zero.ToVector()));
    const Tensor dpreact_ref = Tensor::Zeros({batch, 4 * hidden}), dc_ref = Tensor::Zeros({batch, hidden});
    ref::LstmGatesBackward(gates, c_prev, c, drop_dh ? nullptr : &grad, drop_dh ? &grad : nullptr, dpreact_ref, dc_ref);
    CheckClose(dpreact_null.ToVector(), dpreact_ref.ToVector(), kRtol, kAtol);
    CheckClose(dc_null.ToVector(), dc_ref.ToVector(), kRtol, kAtol);
  }
  // Neither: every gradient is zero.
  const Tensor dpreact = RandomTensor({batch, 4 * hidden}, rng), dc_prev = RandomTensor({batch, hidden}, rng);
  REQUIRE(LstmGatesBackward(gates, c_prev, c, nullptr, nullptr, dpreact, dc_prev).ok());
  for (float v : dpreact.ToVector()) CHECK(v == 0.0f);
  for (float v : dc_prev.ToVector()) CHECK(v == 0.0f);
}

TEST_CASE("LstmGates run in place", "[ops][kernels][lstm]") {
  std::mt19937 rng(97);
  const int64_t batch = 7, hidden = 300;
  const Tensor preact = RandomTensor({batch, 4 * hidden}, rng, -4.0f, 4.0f);
  const Tensor c_prev = RandomTensor({batch, hidden}, rng, -2.0f, 2.0f);
  const Tensor h = Tensor::Zeros({batch, hidden}), c = Tensor::Zeros({batch, hidden});
  const Tensor gates = Tensor::Zeros({batch, 4 * hidden});
  REQUIRE(LstmGatesForward(preact, c_prev, h, c, gates).ok());
  // gates over preact, c over c_prev.
  const Tensor in_place_gates = preact.Clone(), in_place_c = c_prev.Clone(), h2 = Tensor::Zeros({batch, hidden});
  REQUIRE(LstmGatesForward(in_place_gates, in_place_c, h2, in_place_c, in_place_gates).ok());
  CHECK(BitwiseEqual(in_place_gates.ToVector(), gates.ToVector()));
  CHECK(BitwiseEqual(in_place_c.ToVector(), c.ToVector()));
  CHECK(BitwiseEqual(h2.ToVector(), h.ToVector()));

  const Tensor dh = RandomTensor({batch, hidden}, rng), dc_next = RandomTensor({batch, hidden}, rng);
  const Tensor dpreact = Tensor::Zeros({batch, 4 * hidden}), dc_prev = Tensor::Zeros({batch, hidden});
  REQUIRE(LstmGatesBackward(gates, c_prev, c, &dh, &dc_next, dpreact, dc_prev).ok());
  // dpreact over gates, dc_prev over dc_next.
  const Tensor grads = gates.Clone(), dc = dc_next.Clone();
  REQUIRE(LstmGatesBackward(grads, c_prev, c, &dh, &dc, grads, dc).ok());
  CHECK(BitwiseEqual(grads.ToVector(), dpreact.ToVector()));
  CHECK(BitwiseEqual(dc.ToVector(), dc_prev.ToVector()));
}

TEST_CASE("LstmGates reject bad shapes, layouts and shared elements", "[ops][kernels][lstm]") {
  const Tensor c_prev = Tensor::Zeros({2, 3}), h = Tensor::Zeros({2, 3}), c = Tensor::Zeros({2, 3});
  Status s = LstmGatesForward(Tensor::Zeros({2, 10}), c_prev, h, c, Tensor::Zeros({2, 10}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[2, 10]") && Catch::Contains("4 * hidden"));

  s = LstmGatesForward(Tensor::Zeros({2, 12}), Tensor::Zeros({3, 3}), h, c, Tensor::Zeros({2, 12}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("c_prev [3, 3]") && Catch::Contains("[2, 3]"));

  s = LstmGatesForward(Tensor::Zeros({2, 24}).Slice(1, 0, 24, 2), c_prev, h, c, Tensor::Zeros({2, 12}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("preact") && Catch::Contains("unit column stride"));

  // h and c overlapping; gates over preact shifted by one (not the same view).
  const Tensor buffer = Tensor::Zeros({2, 5});
  s = LstmGatesForward(Tensor::Zeros({2, 12}), c_prev, buffer.Slice(1, 0, 3), buffer.Slice(1, 2, 5),
                       Tensor::Zeros({2, 12}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("h shares elements with c"));
  const Tensor wide = Tensor::Zeros({2, 13});
  s = LstmGatesForward(wide.Slice(1, 0, 12), c_prev, h, c, wide.Slice(1, 1, 13));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("without being the same view"));

  // dc_prev over dh is not an allowed in-place pair.
  const Tensor dh = Tensor::Zeros({2, 3});
  s = LstmGatesBackward(Tensor::Zeros({2, 12}), c_prev, c, &dh, nullptr, Tensor::Zeros({2, 12}), dh);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("dc_prev shares elements with dh"));

  s = LstmGatesBackward(Tensor::Zeros({2, 12}), c_prev, c, &dh, nullptr, Tensor::Zeros({2, 8}), Tensor::Zeros({2, 3}));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("dpreact [2, 8]"));
}

TEST_CASE("ElementsOverlap tells interleaved time steps from overlapping views", "[ops][kernels][lstm]") {
  // A [B=3, T=4, X=5] sequence as [3, 20]; step t is columns [5t, 5t + 5) of every row.
  const Tensor seq = Tensor::Zeros({3, 20});
  auto view = [&](int64_t offset, int64_t rows, int64_t cols) { return seq.MatrixView(offset, rows, cols, 20); };
  CHECK_FALSE(ElementsOverlap(view(0, 3, 5), view(5, 3, 5)));   // adjacent steps
  CHECK_FALSE(ElementsOverlap(view(15, 3, 5), view(0, 3, 5)));  // first and last step, either order
  CHECK(ElementsOverlap(view(0, 3, 5), view(4, 3, 5)));         // shifted by less than a step
  CHECK(ElementsOverlap(view(0, 3, 5), view(0, 3, 5)));
  CHECK(ElementsOverlap(view(15, 2, 8), view(20, 2, 5)));       // wraps into the next row's start
  CHECK_FALSE(ElementsOverlap(view(15, 2, 8), view(5, 2, 5)));  // wraps, and misses
  CHECK(ElementsOverlap(view(40, 1, 5), view(20, 2, 5)));       // one row inside the other's second
  // Different row strides: judged by address range.
  CHECK(ElementsOverlap(view(0, 3, 5), seq.MatrixView(5, 2, 5, 30)));
  CHECK_FALSE(ElementsOverlap(view(0, 1, 5), seq.MatrixView(5, 1, 5, 30)));
}

}  // namespace
}  // namespace sieve::ops
