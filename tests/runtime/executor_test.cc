// Tests of the executor: a hand-built graph runs to the naive result; external buffers must be
// bound with the right dtype and size; a CUDA device without a GPU is refused with the reason; a
// graph whose patterns changed is not run until the pipeline resolved them; nothing is
// allocated per run.
#include "runtime/executor.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "graph/attrs.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

using graph::Graph;
using graph::OpKind;
using graph::ValueId;
using graph::ValueRole;
using testing::RandomTensor;

// y = relu(x W^T + b), then softmax cross-entropy against labels; 3 rows, 4 inputs, 5 classes.
struct SmallNet {
  Graph g;
  ValueId x, w, b, labels, mm, biased, act, prob;
  graph::NodeId loss{};
  SmallNet() {
    x = g.AddValue("x", ValueRole::kInput, {3, 4});
    w = g.AddParam("w", {5, 4});
    b = g.AddParam("b", {5});
    labels = g.AddValue("labels", ValueRole::kLabel, {3}, DType::kInt32);
    mm = g.AddValue("mm", ValueRole::kActivation, {3, 5});
    biased = g.AddValue("biased", ValueRole::kActivation, {3, 5});
    act = g.AddValue("act", ValueRole::kActivation, {3, 5});
    prob = g.AddValue("prob", ValueRole::kActivation, {3, 5});
    ops::MatMulAttr mm_attr;
    mm_attr.trans_b = true;
    g.AddNode(OpKind::kMatMul, "fc", {x, w}, {mm}, mm_attr);
    g.AddNode(OpKind::kBiasAdd, "bias", {mm, b}, {biased}, graph::BiasAttr{});
    g.AddNode(OpKind::kActivation, "relu", {biased}, {act}, graph::ActivationAttr{ops::Activation::kReLU});
    loss = g.AddNode(OpKind::kSoftmaxXent, "loss", {act, labels}, {prob}, graph::SoftmaxXentAttr{});
  }
};

TEST_CASE("Executor runs a small graph to the naive result and reports the loss", "[runtime][executor]") {
  SmallNet net;
  auto executor = Executor::Create(net.g, Device::CPU(), {.keep_alive = {net.prob}});
  REQUIRE(executor.ok());
  Executor& ex = **executor;
  std::mt19937 rng(5);
  Tensor x = RandomTensor({3, 4}, rng), w = RandomTensor({5, 4}, rng), b = RandomTensor({5}, rng);
  Tensor labels = Tensor::Empty({3}, DType::kInt32);
  for (int i = 0; i < 3; ++i) labels.data<int32_t>()[i] = (2 * i + 1) % 5;
  REQUIRE(ex.Bind(net.x, x).ok());
  REQUIRE(ex.Bind(net.w, w).ok());
  REQUIRE(ex.Bind(net.b, b).ok());
  REQUIRE(ex.Bind(net.labels, labels).ok());
  REQUIRE(ex.Run({}).ok());

  const std::vector<float> xv = x.ToVector(), wv = w.ToVector(), bv = b.ToVector();
  double loss = 0.0;
  std::vector<float> want_prob;
  for (int r = 0; r < 3; ++r) {
    std::vector<double> logit(5);
    double max = -1e30, sum = 0.0;
    for (int c = 0; c < 5; ++c) {
      double acc = bv[c];
      for (int k = 0; k < 4; ++k) acc += static_cast<double>(xv[r * 4 + k]) * wv[c * 4 + k];
      logit[c] = std::max(acc, 0.0);
      max = std::max(max, logit[c]);
    }
    for (int c = 0; c < 5; ++c) sum += std::exp(logit[c] - max);
    for (int c = 0; c < 5; ++c) want_prob.push_back(static_cast<float>(std::exp(logit[c] - max) / sum));
    loss -= std::log(want_prob[r * 5 + labels.data<int32_t>()[r]]);
  }
  testing::CheckClose(ex.Get(net.prob)->ToVector(), want_prob, 1e-5, 1e-6);
  CHECK(ex.Stats(net.loss).counted == 3);
  CHECK(ex.Stats(net.loss).loss() == Approx(loss / 3).epsilon(1e-5));
  // The intermediate values share the arena: it is smaller than the four of them side by side.
  CHECK(ex.plan().arena_bytes <= ex.plan().unshared_bytes);
}

TEST_CASE("Executor refuses wrong bindings and runs only when every external buffer is bound",
          "[runtime][executor]") {
  SmallNet net;
  auto executor = Executor::Create(net.g, Device::CPU());
  REQUIRE(executor.ok());
  Executor& ex = **executor;
  CHECK_THAT(ex.Run({}).message(), Catch::Contains("external buffer") && Catch::Contains("not bound"));
  CHECK_THAT(ex.Bind(net.w, Tensor::Zeros({4, 4})).message(),
             Catch::Contains("'w'") && Catch::Contains("needs 20 elements"));
  CHECK_THAT(ex.Bind(net.labels, Tensor::Zeros({3})).message(), Catch::Contains("needs int32"));
  CHECK_THAT(ex.Bind(net.mm, Tensor::Zeros({3, 5})).message(), Catch::Contains("arena"));
  CHECK_THAT(ex.Bind(net.x, Tensor::Zeros({8}).Slice(0, 0, 8, 2)).message(), Catch::Contains("contiguous"));
}

TEST_CASE("Executor on a CUDA device without a usable GPU says why", "[runtime][executor]") {
  if (CudaAvailable()) return;  // with a GPU the [cuda] tests run the executor instead
  SmallNet net;
  auto executor = Executor::Create(net.g, Device::CUDA());
  REQUIRE_FALSE(executor.ok());
  CHECK_THAT(executor.status().message(), Catch::Contains("cuda:0") && (Catch::Contains("has no CUDA") ||
                                                                         Catch::Contains("no usable CUDA GPU")));
}

TEST_CASE("Executor waits for the iteration pipeline after patterns change", "[runtime][executor]") {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 6});
  const ValueId y = g.AddValue("y", ValueRole::kActivation, {2, 6});
  graph::DropoutSite site;
  site.name = "drop";
  site.kind = graph::SiteKind::kRow;
  site.width = 6;
  site.rate = 0.5;
  const graph::SiteId s = g.AddSite(site);
  g.AddNode(OpKind::kCopy, "copy", {x}, {y});
  auto executor = Executor::Create(g, Device::CPU());
  REQUIRE(executor.ok());
  REQUIRE((*executor)->Bind(x, Tensor::Zeros({2, 6})).ok());
  REQUIRE((*executor)->Run({}).ok());
  g.SetSitePattern(s, ops::RowPattern{1, 2, 0});
  CHECK_THAT((*executor)->Run({}).message(), Catch::Contains("iteration pipeline"));
}

}  // namespace
}  // namespace sieve::runtime
