// The README's default training job until the `sieve` CLI exists: a small dense MLP written
// directly against the MatMul primitive and the helper kernels (no graph, no autodiff), trained
// with SGD + momentum on a synthetic 10-class problem, printing the loss as it falls.
//
// Each layer is an explicit forward/backward pair over named buffers, llm.c-style, so this file is
// also the shortest complete picture of what the graph runtime automates.
//
// Usage: train_mlp_synthetic [--iters N] [--seed S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "framework/logging.h"
#include "framework/rng.h"
#include "framework/tensor.h"
#include "ops/kernels/activation.h"
#include "ops/kernels/bias.h"
#include "ops/kernels/optimizer.h"
#include "ops/kernels/random_fill.h"
#include "ops/kernels/softmax_xent.h"
#include "ops/matmul/matmul.h"

namespace sieve {
namespace {

constexpr int64_t kFeatures = 32;
constexpr int64_t kHidden = 128;
constexpr int64_t kClasses = 10;
constexpr int64_t kBatch = 64;
constexpr int64_t kTrainSize = 8192;
constexpr int64_t kTestSize = 2048;
constexpr float kNoise = 2.0f;  // class means are N(0, 1) per feature; samples add N(0, kNoise^2)

// A synthetic data set: each class is a Gaussian blob around its own random mean.
struct DataSet {
  Tensor x;       // [n, kFeatures]
  Tensor labels;  // [n] int32
};

DataSet MakeData(int64_t n, uint64_t seed, uint64_t split) {
  const RandomStream means_stream{seed, MakeStreamId(StreamKind::kData, 0, 0)};
  const RandomStream sample_stream{seed, MakeStreamId(StreamKind::kData, 1 + split, 0)};
  DataSet d{Tensor::Empty({n, kFeatures}), Tensor::Empty({n}, DType::kInt32)};
  float* x = d.x.data<float>();
  int32_t* y = d.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<int32_t>(sample_stream.Bits(static_cast<uint64_t>(i)) % kClasses);
    for (int64_t f = 0; f < kFeatures; ++f) {
      const float mean = means_stream.Normal(static_cast<uint64_t>(y[i] * kFeatures + f));
      x[i * kFeatures + f] = mean + kNoise * sample_stream.Normal(static_cast<uint64_t>(n + i * kFeatures + f));
    }
  }
  return d;
}

// A fully connected layer y = x W^T + b with its gradients and momentum history.
struct Linear {
  Tensor w, b, dw, db, w_history, b_history;

  Linear(int64_t in, int64_t out, uint64_t seed, uint64_t index)
      : w(Tensor::Empty({out, in})),
        b(Tensor::Zeros({out})),
        dw(Tensor::Empty({out, in})),
        db(Tensor::Empty({out})),
        w_history(Tensor::Zeros({out, in})),
        b_history(Tensor::Zeros({out})) {
    const float bound = std::sqrt(6.0f / static_cast<float>(in + out));  // Xavier/Glorot uniform
    SIEVE_CHECK_OK(ops::FillUniform(w, -bound, bound, {seed, MakeStreamId(StreamKind::kInit, index, 0)}));
  }

  void Forward(const Tensor& x, const Tensor& y) const {
    SIEVE_CHECK_OK(ops::MatMul(x, w, y, {.trans_b = true}));
    SIEVE_CHECK_OK(ops::AddBias(y, b));
  }

  // dW = dy^T x, db = column sums of dy, and dx = dy W when the caller needs it.
  void Backward(const Tensor& x, const Tensor& dy, const Tensor* dx) const {
    SIEVE_CHECK_OK(ops::MatMul(dy, x, dw, {.trans_a = true}));
    SIEVE_CHECK_OK(ops::BiasBackward(dy, db, 0.0f));
    if (dx != nullptr) SIEVE_CHECK_OK(ops::MatMul(dy, w, *dx, {}));
  }

  void Update(const ops::UpdateHyper& hyper) const {
    SIEVE_CHECK_OK(ops::ApplyUpdate(ops::SolverType::kSGD, w, dw, {w_history}, hyper));
    SIEVE_CHECK_OK(ops::ApplyUpdate(ops::SolverType::kSGD, b, db, {b_history}, hyper));
  }
};

// 32 -> 128 -> ReLU -> 128 -> ReLU -> 10, with every activation buffer allocated once.
struct Mlp {
  Linear fc1, fc2, fc3;
  Tensor h1, h2, logits, prob, dh1, dh2, dlogits;

  Mlp(int64_t batch, uint64_t seed)
      : fc1(kFeatures, kHidden, seed, 0),
        fc2(kHidden, kHidden, seed, 1),
        fc3(kHidden, kClasses, seed, 2),
        h1(Tensor::Empty({batch, kHidden})),
        h2(Tensor::Empty({batch, kHidden})),
        logits(Tensor::Empty({batch, kClasses})),
        prob(Tensor::Empty({batch, kClasses})),
        dh1(Tensor::Empty({batch, kHidden})),
        dh2(Tensor::Empty({batch, kHidden})),
        dlogits(Tensor::Empty({batch, kClasses})) {}

  ops::SoftmaxXentStats Forward(const Tensor& x, const Tensor& labels) {
    fc1.Forward(x, h1);
    SIEVE_CHECK_OK(ops::ActivationForward(ops::Activation::kReLU, h1, h1));
    fc2.Forward(h1, h2);
    SIEVE_CHECK_OK(ops::ActivationForward(ops::Activation::kReLU, h2, h2));
    fc3.Forward(h2, logits);
    auto stats = ops::SoftmaxXentForward(logits, labels, prob);
    SIEVE_CHECK_OK(stats.status());
    return *stats;
  }

  void Backward(const Tensor& x, const Tensor& labels) {
    SIEVE_CHECK_OK(ops::SoftmaxXentBackward(prob, labels, dlogits, 1.0f));
    fc3.Backward(h2, dlogits, &dh2);
    SIEVE_CHECK_OK(ops::ActivationBackward(ops::Activation::kReLU, h2, dh2, dh2));
    fc2.Backward(h1, dh2, &dh1);
    SIEVE_CHECK_OK(ops::ActivationBackward(ops::Activation::kReLU, h1, dh1, dh1));
    fc1.Backward(x, dh1, nullptr);
  }

  void Update(const ops::UpdateHyper& hyper) {
    for (Linear* fc : {&fc1, &fc2, &fc3}) fc->Update(hyper);
  }
};

double Evaluate(Mlp& mlp, const DataSet& test) {
  int64_t correct = 0;
  for (int64_t start = 0; start + kBatch <= test.x.dim(0); start += kBatch) {
    correct += mlp.Forward(test.x.Slice(0, start, start + kBatch), test.labels.Slice(0, start, start + kBatch)).correct;
  }
  return static_cast<double>(correct) / static_cast<double>(test.x.dim(0) / kBatch * kBatch);
}

int Run(int64_t iters, uint64_t seed) {
  const DataSet train = MakeData(kTrainSize, seed, 0);
  const DataSet test = MakeData(kTestSize, seed, 1);
  Mlp mlp(kBatch, seed);
  const ops::UpdateHyper hyper{.lr = 0.02f, .weight_decay = 5e-4f, .momentum = 0.9f};

  SIEVE_LOG_INFO("Synthetic MLP {}-{}-{}-{}, batch {}, SGD lr {} momentum {}, {} iterations, seed {}", kFeatures,
                 kHidden, kHidden, kClasses, kBatch, hyper.lr, hyper.momentum, iters, seed);
  SIEVE_LOG_INFO("Before training: test accuracy {:.4f}", Evaluate(mlp, test));
  const auto t0 = std::chrono::steady_clock::now();
  double window_loss = 0.0;
  int64_t window = 0;
  for (int64_t it = 1; it <= iters; ++it) {
    const int64_t start = ((it - 1) * kBatch) % (kTrainSize - kBatch + 1);
    const Tensor x = train.x.Slice(0, start, start + kBatch);
    const Tensor labels = train.labels.Slice(0, start, start + kBatch);
    window_loss += mlp.Forward(x, labels).loss();
    ++window;
    mlp.Backward(x, labels);
    mlp.Update(hyper);
    if (it % 25 == 0 || it == iters) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      SIEVE_LOG_INFO("Iteration {:4d}, loss = {:.4f} ({:.0f} iter/s)", it, window_loss / window, it / seconds);
      window_loss = 0.0;
      window = 0;
    }
  }
  const double accuracy = Evaluate(mlp, test);
  SIEVE_LOG_INFO("After training: test accuracy {:.4f}", accuracy);
  return accuracy > 0.5 ? EXIT_SUCCESS : EXIT_FAILURE;
}

}  // namespace
}  // namespace sieve

int main(int argc, char** argv) {
  int64_t iters = 400;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iters" && i + 1 < argc) {
      iters = std::strtoll(argv[++i], nullptr, 10);
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--iters N] [--seed S]\n", argv[0]);
      return EXIT_FAILURE;
    }
  }
  if (iters < 1) {
    std::fprintf(stderr, "--iters must be at least 1\n");
    return EXIT_FAILURE;
  }
  return sieve::Run(iters, seed);
}
