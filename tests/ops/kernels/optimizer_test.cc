// Tests for the optimizer updates (ops/kernels/optimizer.h): fused CPU kernels against the
// Caffe-transcribed references on random arrays, three hand-computed steps of each solver, the
// Tensor API and its errors, and global-norm gradient clipping.
#include "ops/kernels/optimizer.h"

#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cfloat>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::CheckUlps;
using testing::SymmetricValues;

const int64_t kSizes[] = {1, 3, 8, 31, 1000, 40000};

TEST_CASE("Fused CPU updates match the Caffe references over three steps", "[ops][kernels][optimizer]") {
  for (const int64_t n : kSizes) {
    for (const float weight_decay : {0.0f, 5e-4f}) {
      INFO("n " << n << ", weight_decay " << weight_decay);
      const std::vector<float> w0 = SymmetricValues(n, 1, 1.0f);
      std::vector<float> w_ref = w0, w_cpu = w0;
      std::vector<float> h_ref(w0.size(), 0.0f), h_cpu(w0.size(), 0.0f);
      std::vector<float> w_nref = w0, w_ncpu = w0, hn_ref(w0.size(), 0.0f), hn_cpu(w0.size(), 0.0f);
      std::vector<float> w_aref = w0, w_acpu = w0;
      std::vector<float> m_ref(w0.size(), 0.0f), m_cpu(w0.size(), 0.0f), v_ref(w0.size(), 0.0f), v_cpu(w0.size(), 0.0f);
      for (int64_t step = 1; step <= 3; ++step) {
        const std::vector<float> g = SymmetricValues(n, static_cast<uint32_t>(10 + step), 0.5f);
        ref::SgdUpdate(w_ref.data(), g.data(), h_ref.data(), n, 0.05f, 0.9f, weight_decay);
        cpu::SgdUpdate(w_cpu.data(), g.data(), h_cpu.data(), n, 0.05f, 0.9f, weight_decay);
        ref::NesterovUpdate(w_nref.data(), g.data(), hn_ref.data(), n, 0.05f, 0.9f, weight_decay);
        cpu::NesterovUpdate(w_ncpu.data(), g.data(), hn_cpu.data(), n, 0.05f, 0.9f, weight_decay);
        ref::AdamUpdate(w_aref.data(), g.data(), m_ref.data(), v_ref.data(), n, 1e-3f, 0.9f, 0.999f, 1e-8f,
                        weight_decay, step);
        cpu::AdamUpdate(w_acpu.data(), g.data(), m_cpu.data(), v_cpu.data(), n, 1e-3f, 0.9f, 0.999f, 1e-8f,
                        weight_decay, step);
      }
      CheckUlps(w_cpu, w_ref, 4, 0.05, "SGD w");
      CheckUlps(h_cpu, h_ref, 4, 0.0, "SGD history");
      CheckUlps(w_ncpu, w_nref, 4, 0.05, "Nesterov w");
      CheckUlps(hn_cpu, hn_ref, 4, 0.0, "Nesterov history");
      CheckUlps(w_acpu, w_aref, 4, 1e-3, "Adam w");
      CheckUlps(m_cpu, m_ref, 4, 0.0, "Adam m");
      CheckUlps(v_cpu, v_ref, 4, 0.0, "Adam v");
    }
  }
}

// Three steps of one weight, w0 = 1, gradients 0.5, -0.2, 0.3, lr 0.1, momentum 0.9, L2 decay 0.01.
// The expected values were worked out by hand (and re-checked in double precision):
const std::vector<float> kGrads = {0.5f, -0.2f, 0.3f};

std::vector<float> RunSteps(SolverType type) {
  Tensor w = Tensor::FromVector({1}, {1.0f});
  std::vector<Tensor> state;
  for (int s = 0; s < SolverStateSlots(type); ++s) state.push_back(Tensor::Zeros({1}));
  UpdateHyper hyper;
  hyper.lr = 0.1f;
  hyper.momentum = 0.9f;
  hyper.weight_decay = 0.01f;
  hyper.momentum2 = 0.999f;
  hyper.delta = 1e-8f;
  std::vector<float> trajectory;
  for (int step = 1; step <= 3; ++step) {
    hyper.step = step;
    SIEVE_CHECK_OK(ApplyUpdate(type, w, Tensor::FromVector({1}, {kGrads[step - 1]}), state, hyper));
    trajectory.push_back(w.ToVector()[0]);
  }
  return trajectory;
}

TEST_CASE("SGD with momentum: three hand-computed steps", "[ops][kernels][optimizer]") {
  // 1: g' = 0.5 + 0.01 * 1 = 0.51;            h = 0.1 * 0.51 = 0.051;                  w = 0.949
  // 2: g' = -0.2 + 0.00949 = -0.19051;        h = 0.0459 - 0.019051 = 0.026849;         w = 0.922151
  // 3: g' = 0.3 + 0.00922151 = 0.30922151;    h = 0.0241641 + 0.030922151 = 0.055086251; w = 0.867064749
  const std::vector<float> w = RunSteps(SolverType::kSGD);
  CHECK(w[0] == Approx(0.949).epsilon(1e-6));
  CHECK(w[1] == Approx(0.922151).epsilon(1e-6));
  CHECK(w[2] == Approx(0.867064749).epsilon(1e-6));
}

TEST_CASE("Nesterov (Caffe's formulation): three hand-computed steps", "[ops][kernels][optimizer]") {
  // update = (1 + m) h_new - m h_old
  // 1: g' = 0.51;          h = 0.051;        update = 1.9 * 0.051 = 0.0969;                    w = 0.9031
  // 2: g' = -0.190969;     h = 0.0268031;    update = 0.05092589 - 0.0459 = 0.00502589;         w = 0.89807411
  // 3: g' = 0.3089807411;  h = 0.05502086411; update = 0.104539641809 - 0.02412279 = 0.080416851809;
  //    w = 0.817657258191
  const std::vector<float> w = RunSteps(SolverType::kNesterov);
  CHECK(w[0] == Approx(0.9031).epsilon(1e-6));
  CHECK(w[1] == Approx(0.89807411).epsilon(1e-6));
  CHECK(w[2] == Approx(0.817657258191).epsilon(1e-6));
}

TEST_CASE("Adam (Caffe's, bias-corrected): three hand-computed steps", "[ops][kernels][optimizer]") {
  // beta1 0.9, beta2 0.999, delta 1e-8; correction(t) = sqrt(1 - 0.999^t) / (1 - 0.9^t).
  // 1: g' = 0.51; m = 0.051; v = 0.0002601; correction = 0.316227766;
  //    update = 0.1 * 0.316227766 * 0.051 / (0.0161276 + 1e-8) = 0.0999999380;  w = 0.900000062
  // 2: g' = -0.2 + 0.00900000062 = -0.19099999938; m = 0.0459 - 0.0190999999 = 0.0268000001;
  //    v = 0.0002598399 + 0.0000364809998 = 0.0002963209; correction = 0.235316725;
  //    update = 0.0366358437;  w = 0.863364218
  // 3: g' = 0.3 + 0.00863364218 = 0.308633642; m = 0.0241200001 + 0.0308633642 = 0.0549833643;
  //    v = 0.0002960246 + 0.0000952547 = 0.0003912793; correction = 0.202010597;
  //    update = 0.0561515572;  w = 0.807212661
  const std::vector<float> w = RunSteps(SolverType::kAdam);
  CHECK(w[0] == Approx(0.900000062).epsilon(1e-6));
  CHECK(w[1] == Approx(0.863364218).epsilon(1e-6));
  CHECK(w[2] == Approx(0.807212661).epsilon(1e-6));
  // Exactly representable hyper-parameters: 0.5 * sqrt(1 - 0.75^2) / (1 - 0.5^2) = 0.4409585518...
  CHECK(AdamStepSize(0.5f, 0.5f, 0.75f, 2) == static_cast<float>(0.5 * std::sqrt(0.4375) / 0.75));
}

TEST_CASE("ApplyUpdate checks shapes, slots and hyper-parameters", "[ops][kernels][optimizer]") {
  Tensor w = Tensor::Zeros({4, 3}), g = Tensor::Zeros({4, 3}), h = Tensor::Zeros({4, 3});
  UpdateHyper hyper;
  CHECK(ApplyUpdate(SolverType::kSGD, w, g, {h}, hyper).ok());
  CHECK(ApplyUpdate(SolverType::kSGD, Tensor::Zeros({0}), Tensor::Zeros({0}), {Tensor::Zeros({0})}, hyper).ok());

  const Status grad_shape = ApplyUpdate(SolverType::kSGD, w, Tensor::Zeros({3, 4}), {h}, hyper);
  CHECK(grad_shape.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(grad_shape.message(), Catch::Contains("[3, 4]") && Catch::Contains("[4, 3]") && Catch::Contains("grad"));
  const Status state_shape = ApplyUpdate(SolverType::kNesterov, w, g, {Tensor::Zeros({12})}, hyper);
  CHECK_THAT(state_shape.message(), Catch::Contains("[12]") && Catch::Contains("[4, 3]"));
  const Status slots = ApplyUpdate(SolverType::kAdam, w, g, {h}, hyper);
  CHECK(slots.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(slots.message(), Catch::Contains("needs 2 state"));
  const Status strided = ApplyUpdate(SolverType::kSGD, Tensor::Zeros({4, 6}).Slice(1, 0, 6, 2), g, {h}, hyper);
  CHECK(strided.code() == StatusCode::kFailedPrecondition);
  const Status dtype = ApplyUpdate(SolverType::kSGD, w, Tensor::Zeros({4, 3}, DType::kInt32), {h}, hyper);
  CHECK(dtype.code() == StatusCode::kInvalidArgument);

  UpdateHyper bad = hyper;
  bad.step = 0;
  CHECK_FALSE(ApplyUpdate(SolverType::kAdam, w, g, {h, Tensor::Zeros({4, 3})}, bad).ok());
  bad = hyper;
  bad.momentum = 1.0f;
  const Status beta = ApplyUpdate(SolverType::kAdam, w, g, {h, Tensor::Zeros({4, 3})}, bad);
  CHECK_THAT(beta.message(), Catch::Contains("beta1"));
  CHECK(ApplyUpdate(SolverType::kSGD, w, g, {h}, bad).ok());  // momentum 1 is legal for SGD

  CHECK(std::string(SolverTypeName(SolverType::kNesterov)) == "Nesterov");
  CHECK(SolverStateSlots(SolverType::kAdam) == 2);
}

TEST_CASE("ApplyUpdate runs the fused CPU kernel", "[ops][kernels][optimizer]") {
  const int64_t n = 50;
  const std::vector<float> w0 = SymmetricValues(n, 3, 1.0f), g = SymmetricValues(n, 4, 1.0f);
  Tensor w = Tensor::FromVector({5, 10}, w0), m = Tensor::Zeros({5, 10}), v = Tensor::Zeros({5, 10});
  UpdateHyper hyper;
  hyper.lr = 0.01f;
  hyper.weight_decay = 0.1f;
  hyper.step = 4;
  REQUIRE(ApplyUpdate(SolverType::kAdam, w, Tensor::FromVector({5, 10}, g), {m, v}, hyper).ok());
  std::vector<float> w_direct = w0, m_direct(n, 0.0f), v_direct(n, 0.0f);
  cpu::AdamUpdate(w_direct.data(), g.data(), m_direct.data(), v_direct.data(), n, hyper.lr, hyper.momentum,
                  hyper.momentum2, hyper.delta, hyper.weight_decay, hyper.step);
  CHECK(w.ToVector() == w_direct);
  CHECK(m.ToVector() == m_direct);
  CHECK(v.ToVector() == v_direct);
}

TEST_CASE("ClipGradients scales by clip / global norm only above the threshold", "[ops][kernels][optimizer]") {
  auto grads = [] {
    return std::vector<Tensor>{Tensor::FromVector({2}, {3.0f, 4.0f}), Tensor::FromVector({1}, {12.0f})};
  };
  // Global norm sqrt(9 + 16 + 144) = 13.
  std::vector<Tensor> g = grads();
  auto clipped = ClipGradients(g, 6.5f);
  REQUIRE(clipped.ok());
  CHECK(clipped->norm == Approx(13.0));
  CHECK(clipped->clipped);
  CHECK(clipped->scale == 0.5f);
  CHECK(g[0].ToVector() == std::vector<float>{1.5f, 2.0f});
  CHECK(g[1].ToVector() == std::vector<float>{6.0f});

  for (const float clip : {13.0f, 20.0f}) {  // norm > clip is required, as in Caffe
    g = grads();
    auto kept = ClipGradients(g, clip);
    REQUIRE(kept.ok());
    CHECK_FALSE(kept->clipped);
    CHECK(kept->norm == Approx(13.0));
    CHECK(g[1].ToVector() == std::vector<float>{12.0f});
  }
  g = grads();
  auto disabled = ClipGradients(g, -1.0f);
  REQUIRE(disabled.ok());
  CHECK_FALSE(disabled->clipped);
  CHECK(disabled->norm == 0.0);
  CHECK(g[0].ToVector() == std::vector<float>{3.0f, 4.0f});

  g = grads();
  g.push_back(Tensor::Zeros({2, 2}, DType::kInt32));
  CHECK(ClipGradients(g, 1.0f).status().code() == StatusCode::kInvalidArgument);
  CHECK(g[0].ToVector() == std::vector<float>{3.0f, 4.0f});  // nothing scaled before the error
}

TEST_CASE("SumOfSquares matches the reference and does not depend on the thread count", "[ops][kernels][optimizer]") {
  for (const int64_t n : {int64_t{1}, int64_t{17}, int64_t{16384}, int64_t{16385}, int64_t{200003}}) {
    const std::vector<float> x = SymmetricValues(n, static_cast<uint32_t>(n), 3.0f);
    const double expected = ref::SumOfSquares(x.data(), n);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const double one_thread = cpu::SumOfSquares(x.data(), n);
    omp_set_num_threads(std::max(2, threads));
    const double many_threads = cpu::SumOfSquares(x.data(), n);
    omp_set_num_threads(threads);
    INFO("n " << n);
    CHECK(one_thread == many_threads);
    CHECK(one_thread == Approx(expected).epsilon(1e-12));
  }
}

}  // namespace
}  // namespace sieve::ops
