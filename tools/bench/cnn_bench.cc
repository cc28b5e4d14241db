// `sieve-bench cnn`: the training step (forward, backward, SGD momentum update) of a LeNet-style and a
// small VGG-style CNN on 28x28 single-channel images, batch 64, dense against sensitivity-aware
// feature-map dropout (SPEC 3) before every conv but the first at p = 0.3 and 0.5, and random channel
// dropout at 0.5 (same GEMM shapes; the difference is the estimates' cost), with the same dense models in
// PyTorch (a child process, pytorch_peer.h) at the same thread count, in one invocation.
//
// Each configuration runs in alternating blocks of steps with the others, so machine noise hits all
// alike; rows report mean step times. Per dropout row: ideal = the MatMul FLOP ratio of the timed steps
// (dense / executed, as the executor counts them: every GEMM of the step, FC included), the analytic
// ratio of the conv GEMMs alone, the speedup over Sieve's dense step and efficiency = speedup / ideal;
// vs_pytorch = PyTorch's dense step / the row's step. Where a step's time goes (pass pipeline, forward +
// backward, update) is printed beside the rows. What it is not: a GPU benchmark, or an accuracy study.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "framework/device.h"
#include "framework/memory.h"
#include "framework/tensor.h"
#include "graph/layers.h"
#include "graph/sequential.h"
#include "runtime/trainer.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/pytorch_peer.h"

namespace sieve::bench {
namespace {

using Clock = std::chrono::steady_clock;
using DropoutKind = graph::DropoutSpec::Kind;

constexpr int64_t kBatch = 64;
constexpr int64_t kImage = 28;
constexpr int32_t kClasses = 10;
constexpr double kLearningRate = 0.01;
constexpr double kMomentum = 0.9;
constexpr int kDefaultThreads = 2;
constexpr int kBlock = 5;   // steps per configuration before switching to the next
constexpr int kWarmup = 3;  // untimed steps per configuration first
// The target: the step's speedup at least 0.9x the FLOP ratio.
constexpr double kTargetEfficiency = 0.9;
constexpr auto kSettle = std::chrono::milliseconds(100);

// One layer of a chain CNN, as both Sieve and peer.py's build_cnn read it.
struct LayerDesc {
  enum class Kind { kConv, kRelu, kMaxPool, kFlatten, kFc } kind;
  int64_t size = 0;  // conv filters, fc units
  int64_t kernel = 0, stride = 1, pad = 0;
};

LayerDesc Conv(int64_t filters, int64_t kernel, int64_t pad) {
  return {LayerDesc::Kind::kConv, filters, kernel, 1, pad};
}
LayerDesc Relu() { return {LayerDesc::Kind::kRelu}; }
LayerDesc Pool() { return {LayerDesc::Kind::kMaxPool, 0, 2, 2, 0}; }
LayerDesc Flat() { return {LayerDesc::Kind::kFlatten}; }
LayerDesc Fc(int64_t units) { return {LayerDesc::Kind::kFc, units}; }

struct CnnModel {
  std::string name;
  std::string label;
  std::vector<LayerDesc> layers;
};

// Caffe's LeNet (20 and 50 maps of 5x5, FC 500) and a small VGG (two blocks of two 3x3 convs, 64 and
// 128 maps, FC 256).
const std::vector<CnnModel> kModels = {
    {"lenet",
     "LeNet conv20k5-pool-conv50k5-pool-fc500-fc10",
     {Conv(20, 5, 0), Relu(), Pool(), Conv(50, 5, 0), Relu(), Pool(), Flat(), Fc(500), Relu(), Fc(kClasses)}},
    {"vgg",
     "VGG-small 2x conv64k3-pool-2x conv128k3-pool-fc256-fc10",
     {Conv(64, 3, 1), Relu(), Conv(64, 3, 1), Relu(), Pool(), Conv(128, 3, 1), Relu(), Conv(128, 3, 1), Relu(), Pool(),
      Flat(), Fc(256), Relu(), Fc(kClasses)}},
};

// The Sieve network: the layers in order, with a Dropout of `kind` at rate p before every conv but the
// first (p = 0: dense).
graph::Network ToNetwork(const CnnModel& model, double p, DropoutKind kind) {
  graph::Sequential net({1, kImage, kImage});
  bool first_conv = true;
  for (const LayerDesc& l : model.layers) {
    switch (l.kind) {
      case LayerDesc::Kind::kConv:
        if (!first_conv && p > 0)
          net.Add(kind == DropoutKind::kSensitivity ? graph::SensitivityDropout(p) : graph::RandomChannelDropout(p));
        first_conv = false;
        net.Add(graph::Conv2d(l.size, l.kernel, l.stride, l.pad));
        break;
      case LayerDesc::Kind::kRelu:
        net.Add(graph::ReLU());
        break;
      case LayerDesc::Kind::kMaxPool:
        net.Add(graph::MaxPool(l.kernel, l.stride));
        break;
      case LayerDesc::Kind::kFlatten:
        net.Add(graph::Flatten());
        break;
      case LayerDesc::Kind::kFc:
        net.Add(graph::FullyConnected(l.size));
        break;
    }
  }
  StatusOr<graph::Network> built = net.Build();
  SIEVE_CHECK(built.ok(), built.status().ToString());
  return *built;
}

// peer.py's "cnn" model description of the same layers.
std::string ToJson(const CnnModel& model) {
  std::string json = "{\"kind\": \"cnn\", \"input\": [1, " + std::to_string(kImage) + ", " + std::to_string(kImage) +
                     "], \"layers\": [";
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const LayerDesc& l = model.layers[i];
    json += i ? ", " : "";
    switch (l.kind) {
      case LayerDesc::Kind::kConv:
        json += "{\"type\": \"conv\", \"filters\": " + std::to_string(l.size) +
                ", \"kernel\": " + std::to_string(l.kernel) + ", \"stride\": " + std::to_string(l.stride) +
                ", \"pad\": " + std::to_string(l.pad) + "}";
        break;
      case LayerDesc::Kind::kRelu:
        json += "{\"type\": \"relu\"}";
        break;
      case LayerDesc::Kind::kMaxPool:
        json += "{\"type\": \"maxpool\", \"kernel\": " + std::to_string(l.kernel) +
                ", \"stride\": " + std::to_string(l.stride) + "}";
        break;
      case LayerDesc::Kind::kFlatten:
        json += "{\"type\": \"flatten\"}";
        break;
      case LayerDesc::Kind::kFc:
        json += "{\"type\": \"fc\", \"units\": " + std::to_string(l.size) + "}";
        break;
    }
  }
  return json + "]}";
}

// The GEMM FLOPs of the convolutions of one step when every site drops ceil(p * Cin) maps: forward and
// grad-weight for every conv, grad-input for every conv but the first (its input is the data).
double ConvGemmFlops(const CnnModel& model, double p) {
  double flops = 0;
  int64_t channels = 1, size = kImage;
  bool first_conv = true;
  for (const LayerDesc& l : model.layers) {
    if (l.kind == LayerDesc::Kind::kMaxPool) size = (size - l.kernel) / l.stride + 1;
    if (l.kind != LayerDesc::Kind::kConv) continue;
    const int64_t out = (size + 2 * l.pad - l.kernel) / l.stride + 1;
    const int64_t kept = first_conv ? channels : channels - graph::ChannelsDropped(p, channels);
    const double gemm = 2.0 * static_cast<double>(l.size * kept * l.kernel * l.kernel * kBatch * out * out);
    flops += (first_conv ? 2 : 3) * gemm;
    first_conv = false;
    channels = l.size;
    size = out;
  }
  return flops;
}

// One Sieve configuration: a trainer on one fixed random batch and the times of its timed steps.
struct Side {
  std::string label;
  double p = 0;
  DropoutKind kind = DropoutKind::kBernoulli;  // kBernoulli here means dense (no dropout layer)
  std::unique_ptr<runtime::Trainer> trainer;
  Tensor features, labels;
  StepLog log;

  Status Step(bool timed) {
    const auto start = Clock::now();
    SIEVE_ASSIGN_OR_RETURN(const runtime::StepResult r, trainer->Step(features, labels));
    Synchronize(trainer->options().device);
    if (!timed) return Status::Ok();
    log.Record(Millis(start), r);
    return Status::Ok();
  }
};

StatusOr<Side> MakeSide(const CnnModel& model, double p, DropoutKind kind, Device device) {
  runtime::TrainerOptions options;
  options.batch_size = kBatch;
  options.device = device;
  options.solver.type = ops::SolverType::kSGD;
  options.solver.lr.base_lr = static_cast<float>(kLearningRate);
  options.solver.momentum = static_cast<float>(kMomentum);
  Side side;
  side.p = p;
  side.kind = kind;
  char label[64];
  if (p == 0) {
    std::snprintf(label, sizeof(label), "dense");
  } else {
    std::snprintf(label, sizeof(label), "%s p=%.1f", graph::DropoutKindName(kind), p);
  }
  side.label = label;
  SIEVE_ASSIGN_OR_RETURN(side.trainer, runtime::Trainer::Create(ToNetwork(model, p, kind), options));
  std::mt19937 rng(11);
  std::normal_distribution<float> value(0.0f, 1.0f);
  std::uniform_int_distribution<int32_t> label_of(0, kClasses - 1);
  side.features = Tensor::Empty({kBatch, kImage * kImage});
  side.labels = Tensor::Empty({kBatch}, DType::kInt32);
  for (int64_t i = 0; i < side.features.numel(); ++i) side.features.data<float>()[i] = value(rng);
  for (int64_t i = 0; i < kBatch; ++i) side.labels.data<int32_t>()[i] = label_of(rng);
  return side;
}

int RunCnn(const Options& options) {
  std::vector<std::string> args = options.args;
  StatusOr<PeerLaunch> launch = ParsePeerFlags(args);
  if (!launch.ok() || !args.empty()) {
    std::fprintf(stderr, "sieve-bench cnn: %s\n",
                 launch.ok() ? ("unknown argument '" + args.front() + "'").c_str() : launch.status().message().c_str());
    return 2;
  }
  const int threads = options.threads > 0 ? options.threads : kDefaultThreads;
  ConfigureThreads(threads);
  const int reps = options.Reps(40, 15);
  const int rounds = (reps + kBlock - 1) / kBlock;
  struct Config {
    double p;
    DropoutKind kind;
  };
  const std::vector<Config> configs =
      options.quick ? std::vector<Config>{{0, DropoutKind::kBernoulli}, {0.5, DropoutKind::kSensitivity}}
                    : std::vector<Config>{{0, DropoutKind::kBernoulli},
                                          {0.3, DropoutKind::kSensitivity},
                                          {0.5, DropoutKind::kSensitivity},
                                          {0.5, DropoutKind::kRandomChannel}};
  std::printf(
      "cnn: training step (SGD momentum %.1f) of CNNs on %lldx%lld images, batch %lld, %d threads, device %s; "
      "dense vs feature-map dropout before every conv but the first\n"
      "%d timed steps per configuration in alternating blocks of %d (%d warm-up), times in ms\n",
      kMomentum, static_cast<long long>(kImage), static_cast<long long>(kImage), static_cast<long long>(kBatch),
      threads, options.device.ToString().c_str(), rounds * kBlock, kBlock, kWarmup);

  std::unique_ptr<PyTorchPeer> peer;
  if (StatusOr<std::unique_ptr<PyTorchPeer>> started = PyTorchPeer::Start(*launch); started.ok()) {
    peer = std::move(started).value();
    const PeerInfo& info = peer->info();
    std::printf("pytorch: torch %s, %s, %d threads (as Sieve), BLAS %s\n", info.torch_version.c_str(),
                info.python.c_str(), threads, info.blas.c_str());
  } else {
    std::printf("%s\n", started.status().message().c_str());
  }

  std::vector<Row> rows;
  for (const CnnModel& model : kModels) {
    std::vector<Side> sides;
    for (const Config& c : configs) {
      StatusOr<Side> side = MakeSide(model, c.p, c.kind, options.device);
      if (!side.ok()) {
        std::fprintf(stderr, "sieve-bench cnn: cannot build %s at p = %g: %s\n", model.name.c_str(), c.p,
                     side.status().ToString().c_str());
        return 1;
      }
      sides.push_back(std::move(side).value());
    }
    std::vector<double> torch_ms;
    auto drop_peer = [&](const Status& status) {
      std::printf("PyTorch peer failed, continuing without it: %s\n", status.message().c_str());
      peer.reset();
      torch_ms.clear();
    };
    if (peer != nullptr) {
      PeerBuild build;
      build.model_json = ToJson(model);
      build.batch = kBatch;
      build.lr = kLearningRate;
      build.momentum = kMomentum;
      build.threads = threads;
      StatusOr<PeerModel> built = peer->Build(build);
      StatusOr<PeerSteps> warm = built.ok() ? peer->Step(kWarmup) : StatusOr<PeerSteps>(built.status());
      if (!warm.ok()) drop_peer(warm.status());
    }
    for (Side& s : sides)
      for (int w = 0; w < kWarmup; ++w) SIEVE_CHECK_OK(s.Step(false));
    std::this_thread::sleep_for(kSettle);
    for (int r = 0; r < rounds; ++r) {
      for (Side& s : sides) {
        for (int i = 0; i < kBlock; ++i) SIEVE_CHECK_OK(s.Step(true));
        std::this_thread::sleep_for(kSettle);
      }
      if (peer != nullptr) {
        StatusOr<PeerSteps> steps = peer->Step(kBlock);
        if (!steps.ok()) {
          drop_peer(steps.status());
        } else {
          torch_ms.insert(torch_ms.end(), steps->ms.begin(), steps->ms.end());
        }
        std::this_thread::sleep_for(kSettle);
      }
    }

    const double dense_mean = Mean(sides.front().log.step_ms);
    const double torch_mean = Mean(torch_ms);
    const double conv_dense = ConvGemmFlops(model, 0.0);
    std::vector<Row> model_rows;
    for (Side& s : sides) {
      Row row;
      row.name = "sieve " + model.name + " " + s.label + " step";
      row.timing = Timing::FromSamples(s.log.step_ms);
      const double mean = Mean(s.log.step_ms);
      row.speedup = dense_mean / mean;
      row.text = {{"framework", "sieve"},
                  {"model", model.name},
                  {"dropout_kind", s.p > 0 ? graph::DropoutKindName(s.kind) : "none"}};
      row.numbers = {{"batch", static_cast<double>(kBatch)},
                     {"threads", static_cast<double>(threads)},
                     {"dropout", s.p},
                     {"mean_ms", mean},
                     {"passes_mean_ms", Mean(s.log.passes_ms)},
                     {"graph_mean_ms", Mean(s.log.graph_ms)},
                     {"update_mean_ms", Mean(s.log.update_ms)},
                     {"step_gflop_executed", s.log.executed_flops / s.log.steps() * 1e-9},
                     {"step_gflop_dense", s.log.dense_flops / s.log.steps() * 1e-9}};
      if (s.p > 0) {
        row.ideal = s.log.FlopRatio();
        row.efficiency = *row.speedup / *row.ideal;
        row.target = kTargetEfficiency;
        row.numbers.push_back({"conv_gemm_flop_ratio", conv_dense / ConvGemmFlops(model, s.p)});
      }
      if (!torch_ms.empty()) row.vs_pytorch = torch_mean / mean;
      model_rows.push_back(std::move(row));
    }
    if (!torch_ms.empty()) {
      Row torch;
      torch.name = "pytorch " + model.name + " dense step";
      torch.timing = Timing::FromSamples(torch_ms);
      torch.speedup = dense_mean / torch_mean;
      torch.vs_pytorch = 1.0;
      torch.text = {{"framework", "pytorch"}, {"model", model.name}, {"dropout_kind", "none"}};
      torch.numbers = {
          {"batch", static_cast<double>(kBatch)}, {"threads", static_cast<double>(threads)}, {"mean_ms", torch_mean}};
      model_rows.push_back(std::move(torch));
    }
    PrintTable(model.label + ", batch " + std::to_string(kBatch) +
                   " (speedup and vs_pt from mean step times; ideal = MatMul FLOP ratio of the timed steps; eff = "
                   "speedup / ideal)",
               model_rows);
    std::printf(
        "where the mean step goes (ms): step = passes + forward/backward (+ estimates) + update (+ batch copy)\n");
    for (const Side& s : sides)
      std::printf("  %-24s %7.2f = %5.2f + %7.2f + %5.2f   conv GEMM FLOP ratio %.2f\n", s.label.c_str(),
                  Mean(s.log.step_ms), Mean(s.log.passes_ms), Mean(s.log.graph_ms), Mean(s.log.update_ms),
                  conv_dense / ConvGemmFlops(model, s.p));
    rows.insert(rows.end(), model_rows.begin(), model_rows.end());
  }

  return FinishReport("cnn", options, rows);
}

}  // namespace

SIEVE_BENCH_VERB(cnn,
                 "LeNet- and VGG-style CNN training steps: dense vs sensitivity-aware feature-map dropout at p = 0.3, "
                 "0.5 (and random channel at 0.5) vs PyTorch dense, in a child process",
                 RunCnn);

}  // namespace sieve::bench
