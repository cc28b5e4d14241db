// Numeric tests of Lower: small lowered networks run forward on the CPU executor and their blobs
// are compared with naive reference computations written here (fully connected layers and
// activations, convolutions with stride 1 and 2 and padding 0 and 1, max and average pooling,
// embedding, flatten and reshape, softmax cross-entropy and accuracy, Bernoulli dropout).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/lower.h"
#include "runtime/executor.h"
#include "tests/testing/random_tensors.h"

namespace sieve::graph {
namespace {

using sieve::testing::CheckClose;
using sieve::testing::RandomTensor;

Layer MakeLayer(std::string name, LayerSpec spec, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  return Layer{
      .name = std::move(name), .spec = std::move(spec), .inputs = std::move(inputs), .outputs = std::move(outputs)};
}

Tensor IntTensor(Shape shape, const std::vector<int32_t>& values) {
  Tensor t = Tensor::Empty(std::move(shape), DType::kInt32);
  REQUIRE(static_cast<int64_t>(values.size()) == t.numel());
  std::copy(values.begin(), values.end(), t.data<int32_t>());
  return t;
}

// A lowered network run forward once on the CPU: random parameters in [-0.5, 0.5], the given
// feeds bound to the input and label blobs, every blob kept alive for reading.
class ForwardRun {
 public:
  ForwardRun(const Network& network, int64_t batch, const std::map<std::string, Tensor>& feeds, bool training = true) {
    StatusOr<LoweredNet> lowered = Lower(network, LowerOptions{.batch = batch, .training = training});
    INFO(lowered.status().ToString());
    REQUIRE(lowered.ok());
    net_ = std::move(lowered).value();
    MemoryPlanOptions plan;
    for (const auto& [blob, value] : net_.blobs) plan.keep_alive.push_back(value);
    StatusOr<std::unique_ptr<runtime::Executor>> executor = runtime::Executor::Create(net_.graph, Device::CPU(), plan);
    INFO(executor.status().ToString());
    REQUIRE(executor.ok());
    executor_ = std::move(executor).value();
    std::mt19937 rng(7);
    for (const ParamDecl& p : net_.params) {
      params_[p.name] = RandomTensor(p.shape, rng, -0.5f, 0.5f);
      REQUIRE(executor_->Bind(p.value, params_[p.name]).ok());
    }
    for (const auto& [blob, tensor] : feeds) {
      const Status st = executor_->Bind(net_.blobs.at(blob), tensor);
      INFO(st.ToString());
      REQUIRE(st.ok());
    }
    const Status st = executor_->RunPhase(Phase::kForward, runtime::RunOptions{.iteration = 3, .seed = 11});
    INFO(st.ToString());
    REQUIRE(st.ok());
  }

  const LoweredNet& net() const { return net_; }
  std::vector<float> Param(const std::string& name) const { return params_.at(name).ToVector(); }
  Shape BlobShape(const std::string& blob) const { return net_.graph.value(net_.blobs.at(blob)).planned; }
  std::vector<float> Blob(const std::string& blob) const {
    StatusOr<Tensor> t = executor_->Get(net_.blobs.at(blob));
    REQUIRE(t.ok());
    return t->ToVector();
  }
  const ops::SoftmaxXentStats& Stats(NodeId node) const { return executor_->Stats(node); }

 private:
  LoweredNet net_;
  std::unique_ptr<runtime::Executor> executor_;
  std::map<std::string, Tensor> params_;
};

// ---------------------------------------------------------------------------------------------
// Naive references, in double.

// y[b, n] = sum_k x[b, k] w[n, k] (+ bias[n]).
std::vector<float> RefFullyConnected(const std::vector<float>& x, const std::vector<float>& w,
                                     const std::vector<float>* bias, int64_t batch, int64_t k, int64_t n) {
  std::vector<float> y(batch * n);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < n; ++j) {
      double sum = bias ? (*bias)[j] : 0.0;
      for (int64_t i = 0; i < k; ++i) sum += static_cast<double>(x[b * k + i]) * w[j * k + i];
      y[b * n + j] = static_cast<float>(sum);
    }
  return y;
}

struct Image {
  int64_t batch, channels, height, width;
  int64_t at(int64_t b, int64_t c, int64_t h, int64_t w) const { return ((b * channels + c) * height + h) * width + w; }
};

// NCHW convolution with weight [F, C*k*k] in (c, ki, kj) order, zero padding.
std::vector<float> RefConv(const std::vector<float>& x, const Image& in, const std::vector<float>& w,
                           const std::vector<float>* bias, int64_t filters, int64_t k, int64_t stride, int64_t pad,
                           Image* out) {
  *out = Image{in.batch, filters, (in.height + 2 * pad - k) / stride + 1, (in.width + 2 * pad - k) / stride + 1};
  std::vector<float> y(out->batch * filters * out->height * out->width);
  for (int64_t b = 0; b < in.batch; ++b)
    for (int64_t f = 0; f < filters; ++f)
      for (int64_t oh = 0; oh < out->height; ++oh)
        for (int64_t ow = 0; ow < out->width; ++ow) {
          double sum = bias ? (*bias)[f] : 0.0;
          for (int64_t c = 0; c < in.channels; ++c)
            for (int64_t ki = 0; ki < k; ++ki)
              for (int64_t kj = 0; kj < k; ++kj) {
                const int64_t ih = oh * stride - pad + ki;
                const int64_t iw = ow * stride - pad + kj;
                if (ih < 0 || ih >= in.height || iw < 0 || iw >= in.width) continue;
                sum += static_cast<double>(x[in.at(b, c, ih, iw)]) * w[(f * in.channels + c) * k * k + ki * k + kj];
              }
          y[out->at(b, f, oh, ow)] = static_cast<float>(sum);
        }
  return y;
}

// Output extent of pooling; ceil mode drops a last window that starts in the padding (PyTorch).
int64_t PoolExtent(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  const int64_t span = in + 2 * pad - k;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Max pooling over image cells, or Caffe's average: the sum of the image cells over the area of
// the window clipped to the padded input.
std::vector<float> RefPool(const std::vector<float>& x, const Image& in, bool max, int64_t k, int64_t stride,
                           int64_t pad, bool ceil_mode, Image* out) {
  *out = Image{in.batch, in.channels, PoolExtent(in.height, k, stride, pad, ceil_mode),
               PoolExtent(in.width, k, stride, pad, ceil_mode)};
  std::vector<float> y(out->batch * out->channels * out->height * out->width);
  for (int64_t b = 0; b < in.batch; ++b)
    for (int64_t c = 0; c < in.channels; ++c)
      for (int64_t oh = 0; oh < out->height; ++oh)
        for (int64_t ow = 0; ow < out->width; ++ow) {
          const int64_t h0 = oh * stride - pad;
          const int64_t w0 = ow * stride - pad;
          const int64_t h1 = std::min(h0 + k, in.height + pad);
          const int64_t w1 = std::min(w0 + k, in.width + pad);
          double best = -INFINITY;
          double sum = 0.0;
          for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h1, in.height); ++ih)
            for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w1, in.width); ++iw) {
              best = std::max<double>(best, x[in.at(b, c, ih, iw)]);
              sum += x[in.at(b, c, ih, iw)];
            }
          y[out->at(b, c, oh, ow)] = static_cast<float>(max ? best : sum / static_cast<double>((h1 - h0) * (w1 - w0)));
        }
  return y;
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("Lowered fully connected layers and activations compute their reference", "[lower]") {
  constexpr int64_t kBatch = 3;
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {2, 3}}, {}, {"data"}))
      .Add(MakeLayer("fc1", FullyConnectedSpec{.units = 5}, {"data"}, {"fc1"}))
      .Add(MakeLayer("relu", ActivationSpec{}, {"fc1"}, {"relu"}))
      .Add(MakeLayer("fc2", FullyConnectedSpec{.units = 4, .bias = false}, {"relu"}, {"fc2"}))
      .Add(MakeLayer("sigmoid", ActivationSpec{.kind = ops::Activation::kSigmoid}, {"fc2"}, {"sigmoid"}));
  std::mt19937 rng(1);
  const Tensor x = RandomTensor({kBatch, 2, 3}, rng);
  const ForwardRun run(net, kBatch, {{"data", x}});

  const std::vector<float> b1 = run.Param("fc1.b");
  const std::vector<float> fc1 = RefFullyConnected(x.ToVector(), run.Param("fc1.w"), &b1, kBatch, 6, 5);
  CheckClose(run.Blob("fc1"), fc1, 1e-5, 1e-6);
  std::vector<float> relu = fc1;
  for (float& v : relu) v = std::max(v, 0.0f);
  CheckClose(run.Blob("relu"), relu, 1e-5, 1e-6);
  std::vector<float> sigmoid = RefFullyConnected(relu, run.Param("fc2.w"), nullptr, kBatch, 5, 4);
  for (float& v : sigmoid) v = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(v))));
  CheckClose(run.Blob("sigmoid"), sigmoid, 1e-5, 1e-6);
}

TEST_CASE("Lowered convolutions and pools compute their reference", "[lower]") {
  struct Case {
    int64_t stride, pad;
    bool bias;
  };
  const Case c = GENERATE(Case{1, 0, true}, Case{2, 1, true}, Case{1, 1, false}, Case{2, 0, false});
  INFO("stride " << c.stride << " pad " << c.pad << " bias " << c.bias);
  const Image in{2, 3, 7, 6};  // H != W, so a transposed axis shows
  constexpr int64_t kFilters = 4;
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {in.channels, in.height, in.width}}, {}, {"data"}))
      .Add(MakeLayer("conv",
                     Conv2dSpec{.filters = kFilters, .kernel = 3, .stride = c.stride, .pad = c.pad, .bias = c.bias},
                     {"data"}, {"conv"}))
      .Add(MakeLayer("maxpool", PoolSpec{.kernel = 2, .stride = 2, .ceil_mode = true}, {"conv"}, {"maxpool"}))
      .Add(MakeLayer("avgpool", PoolSpec{.kind = PoolSpec::Kind::kAvg, .kernel = 3, .stride = 2, .pad = 1}, {"conv"},
                     {"avgpool"}))
      .Add(MakeLayer("flat", FlattenSpec{}, {"avgpool"}, {"flat"}));
  std::mt19937 rng(2);
  const Tensor x = RandomTensor({in.batch, in.channels, in.height, in.width}, rng);
  const ForwardRun run(net, in.batch, {{"data", x}});

  Image conv_shape{};
  const std::vector<float> bias = c.bias ? run.Param("conv.b") : std::vector<float>{};
  const std::vector<float> conv = RefConv(x.ToVector(), in, run.Param("conv.w"), c.bias ? &bias : nullptr, kFilters, 3,
                                          c.stride, c.pad, &conv_shape);
  CHECK(run.BlobShape("conv") == Shape{in.batch, kFilters, conv_shape.height, conv_shape.width});
  CheckClose(run.Blob("conv"), conv, 1e-5, 1e-6);

  // The pools read the lowered convolution's output, so max pooling must match exactly.
  const std::vector<float> conv_out = run.Blob("conv");
  Image max_shape{};
  const std::vector<float> max = RefPool(conv_out, conv_shape, true, 2, 2, 0, true, &max_shape);
  CHECK(run.BlobShape("maxpool") == Shape{in.batch, kFilters, max_shape.height, max_shape.width});
  CheckClose(run.Blob("maxpool"), max, 0, 0);

  Image avg_shape{};
  const std::vector<float> avg = RefPool(conv_out, conv_shape, false, 3, 2, 1, false, &avg_shape);
  CHECK(run.BlobShape("avgpool") == Shape{in.batch, kFilters, avg_shape.height, avg_shape.width});
  CheckClose(run.Blob("avgpool"), avg, 1e-5, 1e-6);
  CHECK(run.Blob("flat") == run.Blob("avgpool"));
}

TEST_CASE("Lowered embeddings, reshapes and flattens read the reference elements", "[lower]") {
  constexpr int64_t kBatch = 2, kSteps = 4, kVocab = 7, kDim = 3;
  Network net;
  net.Add(MakeLayer("tokens", InputSpec{.shape = {kSteps}, .dtype = DType::kInt32}, {}, {"tokens"}))
      .Add(MakeLayer("embed", EmbeddingSpec{.vocab = kVocab, .dim = kDim}, {"tokens"}, {"embed"}))
      .Add(MakeLayer("steps", ReshapeSpec{.shape = {2, -1, kDim}}, {"embed"}, {"steps"}))
      .Add(MakeLayer("flat", FlattenSpec{}, {"steps"}, {"flat"}))
      .Add(MakeLayer("fc", FullyConnectedSpec{.units = 2}, {"embed"}, {"fc"}));
  const std::vector<int32_t> ids = {6, 0, 3, 3, 1, 5, 2, 6};
  const ForwardRun run(net, kBatch, {{"tokens", IntTensor({kBatch, kSteps}, ids)}});

  const std::vector<float> table = run.Param("embed.w");
  std::vector<float> embedded;
  for (int32_t id : ids) embedded.insert(embedded.end(), table.begin() + id * kDim, table.begin() + (id + 1) * kDim);
  CHECK(run.BlobShape("embed") == Shape{kBatch, kSteps, kDim});
  CHECK(run.Blob("embed") == embedded);
  CHECK(run.BlobShape("steps") == Shape{kBatch, 2, 2, kDim});
  CHECK(run.Blob("steps") == embedded);
  CHECK(run.BlobShape("flat") == Shape{kBatch, kSteps * kDim});
  CHECK(run.Blob("flat") == embedded);
  const std::vector<float> b = run.Param("fc.b");
  CheckClose(run.Blob("fc"), RefFullyConnected(embedded, run.Param("fc.w"), &b, kBatch, kSteps * kDim, 2), 1e-5, 1e-6);
}

TEST_CASE("Lowered softmax cross-entropy and accuracy compute the reference loss and accuracy", "[lower]") {
  constexpr int64_t kBatch = 2, kSteps = 3, kClasses = 5;
  constexpr int32_t kIgnore = 4;
  Network net;
  net.Add(MakeLayer("logits", InputSpec{.shape = {kSteps, kClasses}}, {}, {"logits"}))
      .Add(MakeLayer("labels", LabelSpec{.shape = {kSteps}}, {}, {"labels"}))
      .Add(MakeLayer("loss", SoftmaxCrossEntropySpec{.ignore_label = kIgnore}, {"logits", "labels"}, {"prob"}))
      .Add(MakeLayer("accuracy", AccuracySpec{}, {"logits", "labels"}, {}));
  std::mt19937 rng(3);
  const Tensor logits = RandomTensor({kBatch, kSteps, kClasses}, rng, -2.0f, 2.0f);
  const std::vector<int32_t> labels = {0, 4, 2, 1, 3, 4};
  const ForwardRun run(net, kBatch, {{"logits", logits}, {"labels", IntTensor({kBatch, kSteps}, labels)}});

  const std::vector<float> z = logits.ToVector();
  std::vector<float> prob(z.size());
  double loss_sum = 0.0;
  int64_t counted = 0, correct_counted = 0, correct_all = 0;
  for (int64_t r = 0; r < kBatch * kSteps; ++r) {
    const float* row = &z[r * kClasses];
    const double top = *std::max_element(row, row + kClasses);
    double norm = 0.0;
    for (int64_t c = 0; c < kClasses; ++c) norm += std::exp(row[c] - top);
    for (int64_t c = 0; c < kClasses; ++c) prob[r * kClasses + c] = static_cast<float>(std::exp(row[c] - top) / norm);
    const bool correct = std::max_element(row, row + kClasses) - row == labels[r];
    correct_all += correct;
    if (labels[r] == kIgnore) continue;
    ++counted;
    correct_counted += correct;
    loss_sum -= std::log(std::exp(row[labels[r]] - top) / norm);
  }
  CheckClose(run.Blob("prob"), prob, 1e-5, 1e-7);
  REQUIRE(run.net().losses.size() == 1);
  const ops::SoftmaxXentStats& loss = run.Stats(run.net().losses[0].node);
  CHECK(loss.counted == counted);
  CHECK(loss.correct == correct_counted);
  CHECK(loss.loss_sum == Approx(loss_sum).epsilon(1e-5));
  // The loss ignores a label the accuracy counts: the metric is its own node over every row.
  REQUIRE(run.net().metrics.size() == 1);
  const ops::SoftmaxXentStats& accuracy = run.Stats(run.net().metrics[0].node);
  CHECK(accuracy.counted == kBatch * kSteps);
  CHECK(accuracy.correct == correct_all);
}

TEST_CASE("Lowered dropout zeroes or scales each element in training and passes through in evaluation", "[lower]") {
  constexpr int64_t kBatch = 4;
  constexpr double kRate = 0.5;
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {64}}, {}, {"data"}))
      .Add(MakeLayer("drop", DropoutSpec{.rate = kRate}, {"data"}, {"drop"}));
  std::mt19937 rng(4);
  const Tensor x = RandomTensor({kBatch, 64}, rng, 0.5f, 1.5f);
  const std::vector<float> in = x.ToVector();

  const ForwardRun train(net, kBatch, {{"data", x}}, /*training=*/true);
  const std::vector<float> out = train.Blob("drop");
  int64_t kept = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (out[i] == 0.0f) continue;
    ++kept;
    CHECK(out[i] == Approx(in[i] / (1.0 - kRate)).epsilon(1e-6));
  }
  CHECK(kept > 64);  // about half of 256 elements: both outcomes occur
  CHECK(kept < 192);

  const ForwardRun eval(net, kBatch, {{"data", x}}, /*training=*/false);
  CHECK(eval.Blob("drop") == in);
}

}  // namespace
}  // namespace sieve::graph
