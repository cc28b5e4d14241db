// `sieve-bench mlp`: one dense training step (forward, backward, SGD momentum update) of the zoo MLP
// 784-2048-2048-10 at batch 128, Sieve against PyTorch on the same machine in one invocation (SPEC
// section 5), plus the GEMM floor: the step's eight sgemm calls alone through raw cblas, the least
// time any framework on this BLAS can take.
//
// PyTorch runs in a child process (pytorch_peer.h). Its thread setting is probed first (torch threads 1,
// 2, the core count and its default, in alternating blocks) and the best one is kept, so the ratio is
// against PyTorch at its best, not a handicapped PyTorch. Then Sieve, PyTorch and the GEMM floor run in
// alternating blocks of steps, so machine noise hits all three alike. `--dropout P` puts Bernoulli
// dropout after each hidden layer on both sides (the floor stays the dense GEMMs).
// `--ard` runs the approximate-random-dropout comparison instead (SPEC 2, issue 4): at p = 0.3, 0.5, 0.7
// (or `--rates P,P,...`) the step with Bernoulli dropout, with row ARD and with tile ARD (each with the
// eager update of every weight, the Trainer's default, and with the deferred update of dropped rows and
// tiles, SPEC 2.8), and PyTorch's step with nn.Dropout(p); per ARD row the FLOP ratio, the speedup over
// the Bernoulli step and the efficiency (speedup / FLOP ratio), and where the step's time goes (pattern
// passes, catch-up of deferred rows, forward and backward, update). `--only CONFIG` runs one of its
// configurations alone, for a profiler.
// What it is not: a GPU benchmark.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "framework/device.h"
#include "framework/tensor.h"
#include "graph/layers.h"
#include "runtime/trainer.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/pytorch_peer.h"

namespace sieve::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kBatch = 128;
const std::vector<int64_t> kSizes = {784, 2048, 2048, 10};
constexpr double kLearningRate = 0.01;
constexpr double kMomentum = 0.9;
constexpr int kBlock = 5;   // steps per side before switching to the other
constexpr int kWarmup = 3;  // untimed steps per side before the first timed block
// Issue 3's aim: Sieve's step at most 0.7x PyTorch's best, i.e. vs_pytorch >= 1 / 0.7.
constexpr double kTargetVsPyTorch = 1.0 / 0.7;
// After a block, the side that ran it may keep worker threads spinning for a while (OpenBLAS's
// pthread server spins ~2^28 cycles before sleeping); the pause keeps that out of the next block.
constexpr auto kSettle = std::chrono::milliseconds(150);

// --- The GEMM floor --------------------------------------------------------------------------------

// One sgemm of the step, row-major C[m, n] = op(A) op(B), with its FLOPs.
struct Sgemm {
  const char* what;
  bool trans_a, trans_b;
  int m, n, k;
  const float *a, *b;
  float* c;

  void Run() const {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                a, trans_a ? m : k, b, trans_b ? k : n, 0.0f, c, n);
  }
  double Flops() const { return 2.0 * m * n * k; }
};

// The buffers and the GEMMs of one dense step of an MLP with widths `sizes`: per layer l (X_l: B x K,
// W_l: N x K) the forward Y = X W^T, the weight gradient dW = dY^T X, and the input gradient dX = dY W
// for every layer but the first (the network's input needs no gradient; PyTorch and Sieve skip it).
class GemmFloor {
 public:
  explicit GemmFloor(const std::vector<int64_t>& sizes) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    // Sieve tensors, for the 64-byte alignment every framework's buffers have.
    auto buffer = [&](int64_t rows, int64_t cols) {
      buffers_.push_back(Tensor::Empty({rows, cols}));
      float* p = buffers_.back().data<float>();
      for (int64_t i = 0; i < rows * cols; ++i) p[i] = value(rng);
      return p;
    };
    const int b = static_cast<int>(kBatch);
    const size_t layers = sizes.size() - 1;
    std::vector<float*> act(layers + 1), grad(layers + 1);
    for (size_t l = 0; l <= layers; ++l) {
      act[l] = buffer(kBatch, sizes[l]);
      grad[l] = l > 0 ? buffer(kBatch, sizes[l]) : nullptr;
    }
    std::vector<Sgemm> backward;
    for (size_t l = 0; l < layers; ++l) {
      const int k = static_cast<int>(sizes[l]), n = static_cast<int>(sizes[l + 1]);
      float* w = buffer(n, k);
      float* dw = buffer(n, k);
      gemms_.push_back({"fwd", false, true, b, n, k, act[l], w, act[l + 1]});
      backward.push_back({"grad-w", true, false, n, k, b, grad[l + 1], act[l], dw});
      if (l > 0) backward.push_back({"grad-in", false, false, b, k, n, grad[l + 1], w, grad[l]});
    }
    // Backward runs from the last layer to the first.
    for (auto it = backward.rbegin(); it != backward.rend(); ++it) gemms_.push_back(*it);
  }

  void Run() const {
    for (const Sgemm& g : gemms_) g.Run();
  }
  double Flops() const {
    double f = 0;
    for (const Sgemm& g : gemms_) f += g.Flops();
    return f;
  }
  size_t count() const { return gemms_.size(); }

 private:
  std::vector<Tensor> buffers_;
  std::vector<Sgemm> gemms_;
};

// --- Sieve ---------------------------------------------------------------------------------------------

// The MLP as a Sieve network: FC + ReLU (+ Dropout(p) when p > 0) per hidden layer, the output FC and
// softmax cross-entropy, as peer.py's build_mlp.
graph::Network MlpNetwork(const std::vector<int64_t>& sizes, double dropout,
                          graph::DropoutSpec::Kind kind = graph::DropoutSpec::Kind::kBernoulli) {
  using namespace sieve::graph;
  Network net;
  net.Add({"data", InputSpec{.shape = {sizes.front()}}, {}, {"data"}});
  net.Add({"label", LabelSpec{}, {}, {"label"}});
  std::string blob = "data";
  for (size_t l = 1; l < sizes.size(); ++l) {
    const std::string fc = "fc" + std::to_string(l);
    net.Add({fc, FullyConnectedSpec{.units = sizes[l]}, {blob}, {fc}});
    blob = fc;
    if (l + 1 < sizes.size()) {
      const std::string relu = "relu" + std::to_string(l);
      net.Add({relu, ActivationSpec{.kind = ops::Activation::kReLU}, {blob}, {relu}});
      blob = relu;
      if (dropout > 0) {
        const std::string drop = "drop" + std::to_string(l);
        net.Add({drop, DropoutSpec{.rate = dropout, .kind = kind}, {blob}, {drop}});
        blob = drop;
      }
    }
  }
  net.Add({"loss", SoftmaxCrossEntropySpec{}, {blob, "label"}, {}});
  return net;
}

// A Sieve trainer of the MLP with one fixed random batch, as the peer has.
struct SieveSide {
  std::unique_ptr<runtime::Trainer> trainer;
  Tensor features, labels;
  double last_loss = 0;
  runtime::StepResult last;  // of the last Step

  static StatusOr<SieveSide> Create(const std::vector<int64_t>& sizes, double dropout, Device device,
                                    graph::DropoutSpec::Kind kind = graph::DropoutSpec::Kind::kBernoulli,
                                    runtime::DeferMode defer = runtime::DeferMode::kReplay) {
    runtime::TrainerOptions options;
    options.defer_updates = defer;
    options.batch_size = kBatch;
    options.device = device;
    options.solver.type = ops::SolverType::kSGD;
    options.solver.lr.base_lr = static_cast<float>(kLearningRate);
    options.solver.momentum = static_cast<float>(kMomentum);
    SieveSide side;
    SIEVE_ASSIGN_OR_RETURN(side.trainer, runtime::Trainer::Create(MlpNetwork(sizes, dropout, kind), options));
    std::mt19937 rng(11);
    std::normal_distribution<float> value(0.0f, 1.0f);
    std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(sizes.back()) - 1);
    side.features = Tensor::Empty({kBatch, sizes.front()});
    side.labels = Tensor::Empty({kBatch}, DType::kInt32);
    float* f = side.features.data<float>();
    for (int64_t i = 0; i < side.features.numel(); ++i) f[i] = value(rng);
    int32_t* y = side.labels.data<int32_t>();
    for (int64_t i = 0; i < kBatch; ++i) y[i] = label(rng);
    return side;
  }

  Status Step() {
    SIEVE_ASSIGN_OR_RETURN(last, trainer->Step(features, labels));
    last_loss = last.loss;
    return Status::Ok();
  }
  // The solver's update alone, on the gradients of the last step: the memory-bound part of a step
  // (weights, gradients and momentum of every parameter are read or written).
  Status Update() { return trainer->solver().Step(trainer->params(), trainer->iteration()).status(); }
};

// --- The verb ----------------------------------------------------------------------------------------

// A row; `step_flops` (for whole steps and the floor) adds the step's GFLOP and the achieved GFLOP/s.
Row MakeRow(const std::string& name, const std::string& framework, const std::string& role, Timing timing,
            std::optional<double> step_flops) {
  Row r;
  r.name = name;
  r.timing = std::move(timing);
  r.text = {{"framework", framework}, {"role", role}};
  r.numbers = {{"batch", static_cast<double>(kBatch)}};
  if (step_flops && r.timing.median > 0) {
    r.numbers.push_back({"gflop", *step_flops * 1e-9});
    r.numbers.push_back({"gflops", *step_flops / (r.timing.median * 1e6)});
  }
  return r;
}

std::string SizesLabel() {
  std::string s;
  for (size_t i = 0; i < kSizes.size(); ++i) s += (i ? "-" : "") + std::to_string(kSizes[i]);
  return s;
}

// Starts the peer, builds the model and probes its thread settings; returns the peer (null when it is
// unavailable or failed, after saying why) and appends the probe rows.
std::unique_ptr<PyTorchPeer> StartPeer(const PeerLaunch& launch, double dropout, int probe_rounds, double step_flops,
                                       std::optional<ThreadSetting>* best, std::vector<Row>* rows) {
  StatusOr<std::unique_ptr<PyTorchPeer>> started = PyTorchPeer::Start(launch);
  if (!started.ok()) {
    std::printf("%s\n", started.status().message().c_str());
    return nullptr;
  }
  std::unique_ptr<PyTorchPeer> peer = std::move(started).value();
  const PeerInfo& info = peer->info();
  std::printf("pytorch: torch %s, %s, default threads %d, BLAS %s\n", info.torch_version.c_str(), info.python.c_str(),
              info.default_threads, info.blas.c_str());
  PeerBuild build;
  build.model_json = MlpModelJson(kSizes, dropout);
  build.batch = kBatch;
  build.lr = kLearningRate;
  build.momentum = kMomentum;
  StatusOr<PeerModel> model = peer->Build(build);
  const std::vector<ThreadSetting> settings = ThreadSettings(info.default_threads);
  StatusOr<std::vector<Timing>> probe = model.ok() ? ProbeThreads(*peer, settings, probe_rounds, kBlock, kSettle)
                                                   : StatusOr<std::vector<Timing>>(model.status());
  if (!probe.ok()) {
    std::printf("PyTorch peer failed, continuing without it: %s\n", probe.status().message().c_str());
    return nullptr;
  }
  std::vector<Row> probe_rows;
  size_t best_index = 0;
  for (size_t i = 0; i < settings.size(); ++i) {
    probe_rows.push_back(
        MakeRow("pytorch probe " + settings[i].label, "pytorch", "thread_probe", (*probe)[i], step_flops));
    probe_rows.back().numbers.push_back({"torch_threads", static_cast<double>(settings[i].resolved)});
    if ((*probe)[i].median < (*probe)[best_index].median) best_index = i;
  }
  *best = settings[best_index];
  PrintTable("PyTorch thread probe (" + std::to_string(probe_rounds * kBlock) +
                 " steps each, alternating; best kept: " + (*best)->label + ")",
             probe_rows);
  rows->insert(rows->end(), probe_rows.begin(), probe_rows.end());
  return peer;
}

// --- Approximate random dropout (--ard) ----------------------------------------------------------------

using DropoutKind = graph::DropoutSpec::Kind;

// The rates of the comparison (issue 4) and its efficiency targets: row ARD's step speedup over the
// Bernoulli-dropout step at least 0.8x its FLOP ratio, tile ARD's at least 0.7x.
const std::vector<double> kArdRates = {0.3, 0.5, 0.7};
constexpr double kRowTarget = 0.8;
constexpr double kTileTarget = 0.7;

// GEMM FLOPs of a step of the MLP `sizes` when every dropout site keeps exactly 1 - p (the nominal
// count; a searched distribution keeps 1 - p on average): per layer the
// forward and weight-gradient GEMMs, and the input gradient for every layer but the first (GemmFloor's
// eight GEMMs). Row sites shrink a layer's GEMMs by the kept fraction of its output units and of its
// input units; a tile site shrinks the weight of the layer after it by its kept fraction of tiles.
// p = 0 or kBernoulli: the dense count.
double StepFlops(const std::vector<int64_t>& sizes, double p, DropoutKind kind) {
  const double keep = 1.0 - p;
  const size_t layers = sizes.size() - 1;
  double flops = 0;
  for (size_t l = 0; l < layers; ++l) {
    const bool site_before = l > 0, site_after = l + 1 < layers;
    double factor = 1;
    if (kind == DropoutKind::kRow) factor = (site_before ? keep : 1.0) * (site_after ? keep : 1.0);
    if (kind == DropoutKind::kTile && site_before) factor = keep;
    const double gemms = l == 0 ? 2 : 3;
    flops += factor * gemms * 2.0 * static_cast<double>(kBatch * sizes[l] * sizes[l + 1]);
  }
  return flops;
}

// One Sieve configuration of the comparison and what its timed steps measured.
struct ArdSide {
  std::string label;  // "row-ARD", "row-ARD eager update", ...
  DropoutKind kind;
  runtime::DeferMode defer;
  SieveSide side;
  std::vector<double> step_ms, passes_ms, catch_up_ms, graph_ms, update_ms;
  double executed_flops = 0, dense_flops = 0;

  Status TimedStep() {
    const auto start = Clock::now();
    SIEVE_RETURN_IF_ERROR(side.Step());
    step_ms.push_back(Millis(start));
    const runtime::StepResult& r = side.last;
    passes_ms.push_back(r.passes_ms);
    catch_up_ms.push_back(r.catch_up_ms);
    graph_ms.push_back(r.graph_ms);
    update_ms.push_back(r.update_ms);
    executed_flops += static_cast<double>(r.executed_flops);
    dense_flops += static_cast<double>(r.dense_flops);
    return Status::Ok();
  }
};

// A Sieve configuration of the comparison: its --only key, its row label, the dropout and the update.
struct ArdConfig {
  const char* key;
  const char* label;
  DropoutKind kind;
  runtime::DeferMode defer;
};
const ArdConfig kArdConfigs[] = {
    {"bernoulli", "bernoulli", DropoutKind::kBernoulli, runtime::DeferMode::kOff},
    {"row", "row-ARD", DropoutKind::kRow, runtime::DeferMode::kOff},
    {"row-deferred", "row-ARD deferred update", DropoutKind::kRow, runtime::DeferMode::kReplay},
    {"tile", "tile-ARD", DropoutKind::kTile, runtime::DeferMode::kOff},
    {"tile-deferred", "tile-ARD deferred update", DropoutKind::kTile, runtime::DeferMode::kReplay}};

// What --ard runs: the rates, and every configuration or only the one whose key is `only` (for profiling
// one configuration alone, e.g. under perf).
struct ArdSelection {
  std::vector<double> rates = kArdRates;
  std::string only;
};

int RunMlpArd(const Options& options, const PeerLaunch& launch, const ArdSelection& selection) {
  // Every ARD step draws new patterns whose cost varies several-fold, so the comparison takes more steps
  // than the dense one and compares mean step times (what an epoch costs) with the FLOPs of the same steps.
  const int reps = options.Reps(60, 20);
  const int rounds = (reps + kBlock - 1) / kBlock;
  const int probe_rounds = options.quick ? 2 : 3;
  const std::vector<double> rates =
      options.quick && selection.rates == kArdRates ? std::vector<double>{0.5} : selection.rates;
  const double dense_flops = StepFlops(kSizes, 0.0, DropoutKind::kBernoulli);
  std::printf(
      "mlp --ard: training step of the %s MLP, batch %lld, SGD momentum %.1f, device %s: Bernoulli dropout vs row "
      "and tile ARD (searched pattern distributions, 32x32 tiles) after each hidden layer\n",
      SizesLabel().c_str(), static_cast<long long>(kBatch), kMomentum, options.device.ToString().c_str());
  std::printf(
      "%d timed steps per side in alternating blocks of %d (%d warm-up), times in ms; %.3f GFLOP per dense step\n",
      rounds * kBlock, kBlock, kWarmup, dense_flops * 1e-9);

  std::vector<Row> rows;
  std::optional<ThreadSetting> best;
  const double probe_rate = rates[rates.size() / 2];
  std::unique_ptr<PyTorchPeer> peer = StartPeer(launch, probe_rate, probe_rounds, dense_flops, &best, &rows);
  for (const double p : rates) {
    std::vector<ArdSide> sides;
    for (const ArdConfig& config : kArdConfigs) {
      if (!selection.only.empty() && selection.only != config.key) continue;
      StatusOr<SieveSide> side = SieveSide::Create(kSizes, p, options.device, config.kind, config.defer);
      if (!side.ok()) {
        std::fprintf(stderr, "sieve-bench mlp: cannot build the %s trainer at p = %g: %s\n", config.label, p,
                     side.status().ToString().c_str());
        return 1;
      }
      sides.push_back({config.label, config.kind, config.defer, std::move(side).value()});
    }
    std::vector<double> torch_ms;
    auto drop_peer = [&](const Status& status) {
      std::printf("PyTorch peer failed, continuing without it: %s\n", status.message().c_str());
      peer.reset();
      torch_ms.clear();
    };
    if (peer != nullptr) {
      PeerBuild build;
      build.model_json = MlpModelJson(kSizes, p);
      build.batch = kBatch;
      build.lr = kLearningRate;
      build.momentum = kMomentum;
      StatusOr<PeerModel> model = peer->Build(build);
      StatusOr<PeerSteps> warm = model.ok() ? peer->Step(kWarmup, best->threads) : StatusOr<PeerSteps>(model.status());
      if (!warm.ok()) drop_peer(warm.status());
    }
    for (ArdSide& s : sides)
      for (int w = 0; w < kWarmup; ++w) SIEVE_CHECK_OK(s.side.Step());
    std::this_thread::sleep_for(kSettle);
    for (int r = 0; r < rounds; ++r) {
      for (ArdSide& s : sides) {
        for (int i = 0; i < kBlock; ++i) SIEVE_CHECK_OK(s.TimedStep());
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

    // Rows: speedup of the mean step over the Bernoulli step's; ideal is the FLOP ratio of the same timed
    // steps (their executed MatMul FLOPs, which equal the analytic count for the patterns they drew),
    // and the nominal ratio (every site keeping exactly 1 - p) is beside it.
    char rate[32];
    std::snprintf(rate, sizeof(rate), "p=%.1f", p);
    std::vector<Row> p_rows;
    // Without the Bernoulli side (--only), rows have no speedup.
    const bool have_bernoulli = sides.front().kind == DropoutKind::kBernoulli;
    const double bernoulli_mean = Mean(sides.front().step_ms);
    const bool have_torch = !torch_ms.empty();
    const double torch_mean = Mean(torch_ms);
    for (ArdSide& s : sides) {
      const double mean = Mean(s.step_ms);
      Row row = MakeRow("sieve " + s.label + " " + rate + " step", "sieve", "step", Timing::FromSamples(s.step_ms),
                        StepFlops(kSizes, p, s.kind));
      if (s.kind != DropoutKind::kBernoulli) row.ideal = s.dense_flops / s.executed_flops;
      if (have_bernoulli) row.speedup = bernoulli_mean / mean;
      if (row.speedup && row.ideal) row.efficiency = *row.speedup / *row.ideal;
      // The targets are for the Trainer's default, the eager update.
      if (s.defer == runtime::DeferMode::kOff && s.kind != DropoutKind::kBernoulli)
        row.target = s.kind == DropoutKind::kRow ? kRowTarget : kTileTarget;
      if (have_torch) row.vs_pytorch = torch_mean / mean;
      row.text.push_back({"dropout_kind", graph::DropoutKindName(s.kind)});
      row.text.push_back({"update", runtime::DeferModeName(s.defer)});
      row.numbers.push_back({"dropout", p});
      row.numbers.push_back({"mean_ms", mean});
      row.numbers.push_back({"flop_ratio_nominal", dense_flops / StepFlops(kSizes, p, s.kind)});
      row.numbers.push_back({"passes_mean_ms", Mean(s.passes_ms)});
      row.numbers.push_back({"catch_up_mean_ms", Mean(s.catch_up_ms)});
      row.numbers.push_back({"graph_mean_ms", Mean(s.graph_ms)});
      row.numbers.push_back({"update_mean_ms", Mean(s.update_ms)});
      p_rows.push_back(std::move(row));
    }
    if (have_torch) {
      Row torch = MakeRow(std::string("pytorch nn.Dropout ") + rate + " step (" + best->label + ")", "pytorch", "step",
                          Timing::FromSamples(torch_ms), dense_flops);
      if (have_bernoulli) torch.speedup = bernoulli_mean / torch_mean;
      torch.vs_pytorch = 1.0;
      torch.numbers.push_back({"dropout", p});
      torch.numbers.push_back({"mean_ms", torch_mean});
      torch.numbers.push_back({"torch_threads", static_cast<double>(best->resolved)});
      p_rows.push_back(std::move(torch));
    }
    PrintTable(std::string("dropout ") + rate + ", " + SizesLabel() + ", batch " + std::to_string(kBatch) +
                   " (speedup and vs_pt from mean step times: Sieve's Bernoulli step's / the row's, PyTorch's / the "
                   "row's; ideal = FLOP ratio of the timed steps; eff = speedup / ideal; target: eff)",
               p_rows);
    std::printf(
        "where the mean step goes (ms): mean step = passes + catch-up + forward/backward + update (+ batch copy)\n");
    for (const ArdSide& s : sides)
      std::printf("  %-25s %7.2f = %5.2f + %5.2f + %7.2f + %6.2f\n", s.label.c_str(), Mean(s.step_ms),
                  Mean(s.passes_ms), Mean(s.catch_up_ms), Mean(s.graph_ms), Mean(s.update_ms));
    rows.insert(rows.end(), p_rows.begin(), p_rows.end());
  }

  return FinishReport("mlp", options, rows);
}

int RunMlp(const Options& options) {
  std::vector<std::string> args = options.args;
  StatusOr<PeerLaunch> launch = ParsePeerFlags(args);
  if (!launch.ok()) {
    std::fprintf(stderr, "sieve-bench mlp: %s\n", launch.status().message().c_str());
    return 2;
  }
  double dropout = 0.0;
  bool ard = false;
  ArdSelection selection;
  bool selected = false;  // --rates or --only given
  for (size_t i = 0; i < args.size(); ++i) {
    char* end = nullptr;
    if (args[i] == "--ard") {
      ard = true;
    } else if (args[i] == "--rates" && i + 1 < args.size()) {
      selected = true;
      selection.rates.clear();
      const std::string list = args[++i];
      for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        const std::string item = list.substr(at, comma - at);
        const double rate = std::strtod(item.c_str(), &end);
        if (item.empty() || *end != '\0' || !(rate > 0.0 && rate < 1.0)) {
          std::fprintf(stderr, "sieve-bench mlp: --rates needs rates in (0, 1) separated by commas, got '%s'\n",
                       list.c_str());
          return 2;
        }
        selection.rates.push_back(rate);
        at = comma + 1;
      }
    } else if (args[i] == "--only" && i + 1 < args.size()) {
      selected = true;
      selection.only = args[++i];
      const bool known = std::any_of(std::begin(kArdConfigs), std::end(kArdConfigs),
                                     [&](const ArdConfig& c) { return selection.only == c.key; });
      if (!known) {
        std::fprintf(stderr,
                     "sieve-bench mlp: --only takes bernoulli, row, row-deferred, tile or tile-deferred, got '%s'\n",
                     selection.only.c_str());
        return 2;
      }
    } else if (args[i] == "--dropout" && i + 1 < args.size()) {
      dropout = std::strtod(args[++i].c_str(), &end);
      if (end == args[i].c_str() || *end != '\0' || !(dropout >= 0.0 && dropout < 1.0)) {
        std::fprintf(stderr, "sieve-bench mlp: --dropout needs a rate in [0, 1), got '%s'\n", args[i].c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "sieve-bench mlp: unknown argument '%s' (verb options: --dropout P, --ard [--rates P,P,...] "
                   "[--only CONFIG], --pytorch PEER.py, --python PATH, --no-pytorch)\n",
                   args[i].c_str());
      return 2;
    }
  }
  if (!options.device.is_cpu()) {
    std::fprintf(stderr, "sieve-bench mlp: only --device cpu for now (the PyTorch peer is a CPU build)\n");
    return 2;
  }
  if (ard) {
    if (dropout > 0) {
      std::fprintf(stderr, "sieve-bench mlp: --ard sets its own rates (0.3, 0.5, 0.7); drop --dropout\n");
      return 2;
    }
    return RunMlpArd(options, *launch, selection);
  }
  if (selected) {
    std::fprintf(stderr, "sieve-bench mlp: --rates and --only go with --ard\n");
    return 2;
  }
  const int reps = options.Reps(30, 20);
  const int rounds = (reps + kBlock - 1) / kBlock;
  const int probe_rounds = options.quick ? 2 : 3;
  char variant[64];
  if (dropout > 0) {
    std::snprintf(variant, sizeof(variant), "dropout p=%.2f", dropout);
  } else {
    std::snprintf(variant, sizeof(variant), "dense");
  }

  GemmFloor floor(kSizes);
  const double step_flops = floor.Flops();
  std::printf("mlp: %s training step of the %s MLP, batch %lld, SGD momentum %.1f, device %s\n", variant,
              SizesLabel().c_str(), static_cast<long long>(kBatch), kMomentum, options.device.ToString().c_str());
  std::printf(
      "%d timed steps per side in alternating blocks of %d (%d warm-up), times in ms; %.3f GFLOP per dense step "
      "(%zu GEMMs)\n",
      rounds * kBlock, kBlock, kWarmup, step_flops * 1e-9, floor.count());

  StatusOr<SieveSide> sieve = SieveSide::Create(kSizes, dropout, options.device);
  if (!sieve.ok()) {
    std::fprintf(stderr, "sieve-bench mlp: cannot build the Sieve trainer: %s\n", sieve.status().ToString().c_str());
    return 1;
  }
  std::vector<Row> rows;
  std::optional<ThreadSetting> best;
  std::unique_ptr<PyTorchPeer> peer = StartPeer(*launch, dropout, probe_rounds, step_flops, &best, &rows);

  // The interleaved run: blocks of Sieve steps, PyTorch steps and floor GEMMs in turn.
  std::vector<double> sieve_ms, update_ms, torch_ms, floor_ms;
  auto drop_peer = [&](const Status& status) {
    std::printf("PyTorch peer failed, continuing without it: %s\n", status.message().c_str());
    peer.reset();
    torch_ms.clear();
  };
  for (int w = 0; w < kWarmup; ++w) {
    SIEVE_CHECK_OK(sieve->Step());
    SIEVE_CHECK_OK(sieve->Update());
    floor.Run();
  }
  if (peer != nullptr) {
    StatusOr<PeerSteps> warm = peer->Step(kWarmup, best->threads);
    if (!warm.ok()) drop_peer(warm.status());
  }
  std::this_thread::sleep_for(kSettle);
  double torch_loss = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int s = 0; s < kBlock; ++s) {
      const auto start = Clock::now();
      SIEVE_CHECK_OK(sieve->Step());
      sieve_ms.push_back(Millis(start));
    }
    for (int s = 0; s < kBlock; ++s) {
      const auto start = Clock::now();
      SIEVE_CHECK_OK(sieve->Update());
      update_ms.push_back(Millis(start));
    }
    std::this_thread::sleep_for(kSettle);
    if (peer != nullptr) {
      StatusOr<PeerSteps> steps = peer->Step(kBlock);
      if (!steps.ok()) {
        drop_peer(steps.status());
      } else {
        torch_ms.insert(torch_ms.end(), steps->ms.begin(), steps->ms.end());
        torch_loss = steps->last_loss;
      }
      std::this_thread::sleep_for(kSettle);
    }
    for (int s = 0; s < kBlock; ++s) {
      const auto start = Clock::now();
      floor.Run();
      floor_ms.push_back(Millis(start));
    }
    std::this_thread::sleep_for(kSettle);
  }

  // Rows: Sieve, PyTorch, the floor; vs_pytorch is PyTorch's median over the row's.
  const Timing floor_timing = Timing::FromSamples(floor_ms);
  std::optional<double> torch_median;
  std::vector<Row> main_rows;
  Row sieve_row =
      MakeRow(std::string("sieve ") + variant + " step", "sieve", "step", Timing::FromSamples(sieve_ms), step_flops);
  sieve_row.target = kTargetVsPyTorch;
  main_rows.push_back(std::move(sieve_row));
  if (!torch_ms.empty()) {
    Row torch = MakeRow(std::string("pytorch ") + variant + " step (" + best->label + ")", "pytorch", "step",
                        Timing::FromSamples(torch_ms), step_flops);
    torch.numbers.push_back({"torch_threads", static_cast<double>(best->resolved)});
    torch_median = torch.timing.median;
    main_rows.push_back(std::move(torch));
  }
  main_rows.push_back(MakeRow("GEMM floor (" + std::to_string(floor.count()) + " raw sgemm)", "openblas", "gemm_floor",
                              floor_timing, step_flops));
  for (Row& r : main_rows) {
    if (torch_median) r.vs_pytorch = *torch_median / r.timing.median;
    r.numbers.push_back({"gemm_floor_share", floor_timing.median / r.timing.median});
  }
  // Not a step: one part of Sieve's, so no vs_pytorch and no FLOPs of its own.
  main_rows.push_back(
      MakeRow("sieve SGD update alone", "sieve", "update_alone", Timing::FromSamples(update_ms), std::nullopt));
  for (Row& r : main_rows) r.numbers.push_back({"dropout", dropout});
  PrintTable(std::string(variant) + " step, " + SizesLabel() + ", batch " + std::to_string(kBatch) +
                 " (vs_pt = PyTorch's median / the row's; target: Sieve's vs_pt)",
             main_rows);
  const double sieve_median = main_rows[0].timing.median;
  std::printf("Sieve's step: GEMM floor %.1f%%, SGD update %.1f%%, the rest (bias, ReLU, softmax, batch copy) %.1f%%",
              100 * floor_timing.median / sieve_median, 100 * main_rows.back().timing.median / sieve_median,
              100 * (sieve_median - floor_timing.median - main_rows.back().timing.median) / sieve_median);
  if (torch_median) std::printf("; PyTorch's step: GEMM floor %.1f%%", 100 * floor_timing.median / *torch_median);
  std::printf(
      "\nloss at the last step, both on one fixed random batch (Sieve's has the extra updates of the row above): sieve "
      "%.4f",
      sieve->last_loss);
  if (torch_median) std::printf(", pytorch %.4f", torch_loss);
  std::printf("\n");
  rows.insert(rows.end(), main_rows.begin(), main_rows.end());

  return FinishReport("mlp", options, rows);
}

}  // namespace

SIEVE_BENCH_VERB(mlp,
                 "MLP training step (dense, or --dropout P) vs PyTorch in a child process, and the GEMM floor; --ard: "
                 "Bernoulli dropout vs row and tile ARD at p = 0.3, 0.5, 0.7",
                 RunMlp);

}  // namespace sieve::bench
