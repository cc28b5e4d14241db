// CUDA softmax + cross-entropy against the CPU: the warp-per-row and block-per-row paths, strided
// and in place, ignore_label, the backward, and label errors from device-resident labels.
#include <catch2/catch.hpp>
#include <cmath>
#include <optional>
#include <random>
#include <vector>

#include "ops/kernels/softmax_xent.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::RandomTensor;
using testing::CheckClose;

Tensor Labels(const std::vector<int32_t>& v) {
  Tensor t = Tensor::Empty({static_cast<int64_t>(v.size())}, DType::kInt32);
  for (size_t i = 0; i < v.size(); ++i) t.data<int32_t>()[i] = v[i];
  return t;
}

TEST_CASE("CUDA softmax cross-entropy matches the CPU", "[cuda][ops][kernels][softmax_xent]") {
  std::mt19937 rng(81);
  const Device gpu = Device::CUDA();
  struct Case {
    int64_t rows, classes, pad;
    std::optional<int32_t> ignore;
    bool in_place;
  };
  // Up to 1024 classes a warp owns a row; 1025 and 3000 take the block-per-row path.
  const std::vector<Case> cases = {
      {1, 1, 0, std::nullopt, false}, {7, 10, 2, 3, false},  {300, 129, 0, std::nullopt, true},
      {65, 1024, 1, -1, false},       {9, 1025, 0, 0, true}, {33, 3000, 4, std::nullopt, false}};
  for (const Case& c : cases) {
    INFO(c.rows << " x " << c.classes << " pad " << c.pad);
    const SoftmaxXentOptions options{c.ignore};
    std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(c.classes - 1));
    std::vector<int32_t> lv(static_cast<size_t>(c.rows));
    for (size_t i = 0; i < lv.size(); ++i) lv[i] = c.ignore && i % 4 == 1 ? *c.ignore : label(rng);
    const Tensor labels = Labels(lv), labels_gpu = labels.Clone(gpu);

    const Tensor base = RandomTensor({c.rows, c.classes + c.pad}, rng, -10.0f, 10.0f), base_gpu = base.Clone(gpu);
    const Tensor logits = base.Slice(1, 0, c.classes), logits_gpu = base_gpu.Slice(1, 0, c.classes);
    const Tensor prob = Tensor::Zeros({c.rows, c.classes});
    const Tensor prob_gpu = c.in_place ? logits_gpu : Tensor::Zeros({c.rows, c.classes}, DType::kFloat32, gpu);
    auto want = SoftmaxXentForward(logits, labels, prob, options);
    auto got = SoftmaxXentForward(logits_gpu, labels_gpu, prob_gpu, options);
    REQUIRE(want.ok());
    REQUIRE(got.ok());
    // Both sides round x - max (spread 20) and sum the row in float, in different orders.
    const double rtol = 2e-6 + 2 * 6e-8 * 20.0 + 4e-7 * std::log2(static_cast<double>(c.classes) + 1.0);
    CheckClose(prob_gpu.ToVector(), prob.ToVector(), rtol, 1e-12);
    CHECK(got->counted == want->counted);
    CHECK(got->correct == want->correct);
    CHECK(got->loss_sum == Approx(want->loss_sum).epsilon(1e-6).margin(1e-6 * static_cast<double>(c.rows)));

    // Same probabilities on both sides, so the gradients agree to rounding.
    const Tensor d = Tensor::Zeros({c.rows, c.classes});
    const Tensor prob_copy = prob.Clone(gpu);
    REQUIRE(SoftmaxXentBackward(prob, labels, d, 0.7f, options).ok());
    REQUIRE(SoftmaxXentBackward(prob_copy, labels_gpu, prob_copy, 0.7f, options).ok());
    CheckClose(prob_copy.ToVector(), d.ToVector(), 1e-6, 1e-12);
  }
}

TEST_CASE("CUDA softmax cross-entropy reports bad labels", "[cuda][ops][kernels][softmax_xent]") {
  const Device gpu = Device::CUDA();
  const Tensor logits = Tensor::Zeros({3, 5}, DType::kFloat32, gpu), prob = Tensor::Zeros({3, 5}, DType::kFloat32, gpu);
  auto stats = SoftmaxXentForward(logits, Labels({0, 4, 7}).Clone(gpu), prob);
  REQUIRE_FALSE(stats.ok());
  CHECK_THAT(stats.status().message(), Catch::Contains("row 2") && Catch::Contains("label 7"));
  Status s = SoftmaxXentBackward(prob, Labels({-3, 0, 0}).Clone(gpu), prob, 1.0f);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("row 0") && Catch::Contains("label -3"));
}

}  // namespace
}  // namespace sieve::ops
