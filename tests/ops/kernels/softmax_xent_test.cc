// Softmax + cross-entropy: the CPU fast path against the double reference (strided, in place,
// ignore_label, batches across the OpenMP threshold), numerical stability, known values and ties,
// finite-difference gradients w.r.t. the logits, and the errors a caller can cause.
#include "ops/kernels/softmax_xent.h"
#include "tests/testing/random_tensors.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <optional>
#include <random>
#include <vector>

namespace sieve::ops {
namespace {

using testing::RandomTensor;
using testing::RandomValues;
using testing::CheckClose;

Tensor Labels(const std::vector<int32_t>& v) {
  Tensor t = Tensor::Empty({static_cast<int64_t>(v.size())}, DType::kInt32);
  for (size_t i = 0; i < v.size(); ++i) t.data<int32_t>()[i] = v[i];
  return t;
}

// Labels in [0, classes); about a quarter are ignore_label when one is given.
std::vector<int32_t> RandomLabels(int64_t rows, int64_t classes, std::mt19937& rng, std::optional<int32_t> ignore) {
  std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(classes - 1));
  std::uniform_int_distribution<int> quarter(0, 3);
  std::vector<int32_t> v(static_cast<size_t>(rows));
  for (int32_t& l : v) l = ignore && quarter(rng) == 0 ? *ignore : label(rng);
  return v;
}

// Relative error of a float softmax against the double reference: x - max rounds to half an ulp of
// the logits' spread (20 here), which exp turns into a relative error, and the float sum of the
// row's exponentials grows with the row length.
double ProbRtol(int64_t classes) { return 1e-6 + 6e-8 * 20.0 + 2e-7 * std::log2(static_cast<double>(classes) + 1.0); }

TEST_CASE("Softmax cross-entropy on the CPU matches the reference", "[ops][kernels][softmax_xent]") {
  std::mt19937 rng(41);
  struct Case {
    int64_t rows, classes, pad;
    std::optional<int32_t> ignore;
    bool in_place;
  };
  // 300 x 200 and 40 x 1000 cross the OpenMP threshold.
  const std::vector<Case> cases = {{1, 1, 0, std::nullopt, false},
                                   {1, 5, 0, std::nullopt, false},
                                   {7, 3, 2, 1, false},
                                   {33, 129, 7, std::nullopt, true},
                                   {300, 200, 0, -1, false},
                                   {40, 1000, 3, 0, true},
                                   {5, 10, 0, 3, true}};
  for (const Case& c : cases) {
    INFO(c.rows << " x " << c.classes << " pad " << c.pad << (c.ignore ? " ignore" : "")
                << (c.in_place ? " in place" : ""));
    const SoftmaxXentOptions options{c.ignore};
    const Tensor labels = Labels(RandomLabels(c.rows, c.classes, rng, c.ignore));
    const Tensor base = RandomTensor({c.rows, c.classes + c.pad}, rng, -10.0f, 10.0f);
    const Tensor want_base = base.Clone(), got_base = base.Clone();
    const Tensor want_logits = want_base.Slice(1, 0, c.classes), got_logits = got_base.Slice(1, 0, c.classes);
    const Tensor want_prob = c.in_place ? want_logits : Tensor::Zeros({c.rows, c.classes});
    const Tensor got_prob = c.in_place ? got_logits : Tensor::Zeros({c.rows, c.classes});
    const SoftmaxXentStats want = ref::SoftmaxXentForward(want_logits, labels, want_prob, options);
    auto got = SoftmaxXentForward(got_logits, labels, got_prob, options);
    REQUIRE(got.ok());
    CheckClose(got_prob.ToVector(), want_prob.ToVector(), ProbRtol(c.classes), 1e-12);
    CheckClose(got_base.ToVector(), want_base.ToVector(), ProbRtol(c.classes), 1e-12);  // padding untouched
    CHECK(got->counted == want.counted);
    CHECK(got->correct == want.correct);
    CHECK(got->loss_sum == Approx(want.loss_sum).epsilon(1e-6).margin(1e-6 * static_cast<double>(c.rows)));

    for (float weight : {1.0f, 0.7f}) {
      const Tensor d_want = RandomTensor({c.rows, c.classes + c.pad}, rng, -10.0f, 10.0f), d_got = d_want.Clone();
      ref::SoftmaxXentBackward(want_prob, labels, d_want.Slice(1, 0, c.classes), weight, options);
      REQUIRE(SoftmaxXentBackward(want_prob, labels, d_got.Slice(1, 0, c.classes), weight, options).ok());
      CheckClose(d_got.ToVector(), d_want.ToVector(), 1e-6, 1e-12);
    }
    // In place: dlogits overwrites prob.
    const Tensor d_ref = Tensor::Zeros({c.rows, c.classes});
    ref::SoftmaxXentBackward(want_prob, labels, d_ref, 0.5f, options);
    const Tensor prob_copy = want_prob.Clone();
    REQUIRE(SoftmaxXentBackward(prob_copy, labels, prob_copy, 0.5f, options).ok());
    CheckClose(prob_copy.ToVector(), d_ref.ToVector(), 1e-6, 1e-12);
  }
}

TEST_CASE("Softmax cross-entropy gives known values and counts ties as correct", "[ops][kernels][softmax_xent]") {
  const Tensor logits = Tensor::Zeros({2, 4}), prob = Tensor::Zeros({2, 4});
  auto stats = SoftmaxXentForward(logits, Labels({1, 3}), prob);
  REQUIRE(stats.ok());
  for (float p : prob.ToVector()) CHECK(p == Approx(0.25f));
  CHECK(stats->loss() == Approx(std::log(4.0)));
  CHECK(stats->counted == 2);
  CHECK(stats->correct == 2);  // every class ties for the top score
  CHECK(stats->accuracy() == 1.0);

  const Tensor scores = Tensor::FromVector({3, 3}, {1, 1, 0, 2, 5, 5, 0, 0, 9});
  stats = SoftmaxXentForward(scores, Labels({1, 0, 2}), Tensor::Zeros({3, 3}));
  REQUIRE(stats.ok());
  CHECK(stats->correct == 2);
  CHECK(stats->accuracy() == Approx(2.0 / 3.0));

  stats = SoftmaxXentForward(scores, Labels({-1, -1, -1}), Tensor::Zeros({3, 3}), {-1});
  REQUIRE(stats.ok());
  CHECK(stats->counted == 0);
  CHECK(stats->loss() == 0.0);
  const Tensor d = Tensor::FromVector({3, 3}, std::vector<float>(9, 7.0f));
  REQUIRE(SoftmaxXentBackward(scores, Labels({-1, -1, -1}), d, 1.0f, {-1}).ok());
  for (float v : d.ToVector()) CHECK(v == 0.0f);
}

TEST_CASE("Softmax cross-entropy is stable for huge logits", "[ops][kernels][softmax_xent]") {
  const Tensor logits = Tensor::FromVector({3, 3}, {1000.0f, 0.0f, -1000.0f, 88.0f, 89.0f, 90.0f, -1e30f, 0.0f, 1e30f});
  const Tensor labels = Labels({0, 1, 0});
  const Tensor prob = Tensor::Zeros({3, 3}), want_prob = Tensor::Zeros({3, 3});
  auto stats = SoftmaxXentForward(logits, labels, prob);
  REQUIRE(stats.ok());
  const SoftmaxXentStats want = ref::SoftmaxXentForward(logits, labels, want_prob, {});
  for (float p : prob.ToVector()) CHECK(std::isfinite(p));
  CheckClose(prob.ToVector(), want_prob.ToVector(), 1e-6, 1e-30);
  // Row 0 costs nearly nothing and row 2 about 2e30: finite, and as the double reference says.
  CHECK(std::isfinite(stats->loss_sum));
  CHECK(stats->loss_sum == Approx(want.loss_sum).epsilon(1e-6));
  CHECK(stats->correct == 1);
}

// L(logits) = loss_weight * mean loss, in double through the reference; the backward of the CPU
// forward's prob must be its gradient, zero on the ignored row.
TEST_CASE("Softmax cross-entropy gradient matches central finite differences", "[ops][kernels][softmax_xent]") {
  std::mt19937 rng(43);
  const int64_t rows = 4, classes = 5;
  const float weight = 0.7f, h = 1e-3f;
  const SoftmaxXentOptions options{2};
  const Tensor labels = Labels({0, 2, 4, 1});  // row 1 is ignored
  const std::vector<float> x0 = RandomValues(rows * classes, rng, -3.0f, 3.0f);
  auto loss = [&](const std::vector<float>& x) {
    const Tensor prob = Tensor::Zeros({rows, classes});
    return weight * ref::SoftmaxXentForward(Tensor::FromVector({rows, classes}, x), labels, prob, options).loss();
  };
  const Tensor prob = Tensor::Zeros({rows, classes}), dlogits = Tensor::Zeros({rows, classes});
  REQUIRE(SoftmaxXentForward(Tensor::FromVector({rows, classes}, x0), labels, prob, options).ok());
  REQUIRE(SoftmaxXentBackward(prob, labels, dlogits, weight, options).ok());
  const std::vector<float> analytic = dlogits.ToVector();
  for (size_t k = 0; k < x0.size(); ++k) {
    std::vector<float> plus = x0, minus = x0;
    plus[k] += h;
    minus[k] -= h;
    const double numeric = (loss(plus) - loss(minus)) / (static_cast<double>(plus[k]) - minus[k]);
    INFO("logit " << k);
    CHECK(analytic[k] == Approx(numeric).margin(1e-5).epsilon(1e-3));
  }
}

TEST_CASE("Softmax cross-entropy rejects bad labels and shapes, naming them", "[ops][kernels][softmax_xent]") {
  const Tensor logits = Tensor::Zeros({3, 5}), prob = Tensor::Zeros({3, 5});
  auto stats = SoftmaxXentForward(logits, Labels({0, 4, 7}), prob);
  REQUIRE_FALSE(stats.ok());
  CHECK(stats.status().code() == StatusCode::kOutOfRange);
  CHECK_THAT(stats.status().message(),
             Catch::Contains("row 2") && Catch::Contains("label 7") && Catch::Contains("[0, 5)"));

  stats = SoftmaxXentForward(logits, Labels({0, -1, 1}), prob);
  REQUIRE_FALSE(stats.ok());
  CHECK_THAT(stats.status().message(), Catch::Contains("row 1") && Catch::Contains("label -1"));
  CHECK(SoftmaxXentForward(logits, Labels({0, -1, 1}), prob, {-1}).ok());  // unless it is the ignore_label

  Status s = SoftmaxXentBackward(prob, Labels({5, 0, 0}), Tensor::Zeros({3, 5}), 1.0f);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("row 0") && Catch::Contains("label 5"));

  stats = SoftmaxXentForward(logits, Labels({0, 1}), prob);
  REQUIRE_FALSE(stats.ok());
  CHECK_THAT(stats.status().message(), Catch::Contains("[3, 5]"));

  stats = SoftmaxXentForward(logits, Labels({0, 1, 2}), Tensor::Zeros({3, 4}));
  REQUIRE_FALSE(stats.ok());
  CHECK_THAT(stats.status().message(), Catch::Contains("[3, 5]") && Catch::Contains("[3, 4]"));

  stats = SoftmaxXentForward(logits, Tensor::Zeros({3}), prob);  // float labels
  REQUIRE_FALSE(stats.ok());
  CHECK_THAT(stats.status().message(), Catch::Contains("int32"));

  const Tensor storage = Tensor::Zeros({3, 8});
  stats = SoftmaxXentForward(storage.Slice(1, 0, 5), Labels({0, 1, 2}), storage.Slice(1, 2, 7));
  REQUIRE_FALSE(stats.ok());
  CHECK_THAT(stats.status().message(), Catch::Contains("overlaps"));
}

}  // namespace
}  // namespace sieve::ops
