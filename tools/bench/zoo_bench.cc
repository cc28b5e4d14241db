// `sieve-bench zoo`: the training step of every model of the zoo (models/, SPEC section 4, issue 7) in each of
// its dropout variants, Sieve against PyTorch, in one process run.
//
// Every folder's solver files (solver.prototxt, solver_<variant>.prototxt) are read with the runtime's loaders
// and each trainer is built as `sieve train` builds it (tools/sieve/cli.h ReadModel and CreateTrainer: the
// file's batch size, solver, seed and pattern search). A variant with dropout runs at p = 0.3, 0.5 and 0.7
// (the rate of every Dropout layer of the loaded net overridden; the file's own rate is one of them; a channel
// site's dense warm-up is skipped, so the steps time the dropout); a dense variant runs once. Every
// configuration trains on one batch of the model's data source (the first of its shuffled training split), or
// on a synthetic batch of the same shape and dtype when the data is absent (the output says which).
//
// The reference of a row's speedup is the folder's Bernoulli variant at the same p for the MLP and LSTM models
// (the dense GEMMs with dropout that approximate random dropout replaces), and its dense variant for the CNNs
// (a folder with channel dropout). ideal = dense / executed MatMul FLOPs of the row's timed steps (the
// trainer's StepResult), efficiency = speedup / ideal. PyTorch (a child process, pytorch_peer.h) trains the
// same model, built from a layer list derived from the loaded net (zoo_model.h PeerLayersJson; its parameter
// count is checked against the Sieve trainer's), with the solver's optimizer and nn.Dropout at p (nn.Dropout2d
// for channel dropout; no dropout for a dense variant), in its best thread setting (probed per model as `mlp`
// does); vs_pytorch = PyTorch's step for the same model and rate / the row's.
//
// Per model, after warm-up, rounds run a block of steps of every configuration in turn (Sieve's and
// PyTorch's), so machine noise hits all alike. Rows report median, min and max; speedup, efficiency and
// vs_pytorch are ratios of MEAN step times, as in docs/benchmarks/mlp_ard.md: an ARD step's cost varies with
// the patterns it draws, and the mean is what an epoch costs. The run starts by timing each model's reference
// step once, sizes the timed steps per model to fit (20-60 per configuration; --quick: p = 0.5 only and 10, or
// 5 for slow models) and prints its estimate. --markdown PATH writes the tables as Markdown.
// What it is not: an accuracy study (the folders' READMEs), or a kernel benchmark (`matmul`).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "framework/device.h"
#include "framework/memory.h"
#include "graph/layers.h"
#include "runtime/config/net_config.h"
#include "runtime/config/solver_config.h"
#include "runtime/train_loop.h"
#include "runtime/trainer.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/pytorch_peer.h"
#include "tools/bench/zoo_model.h"
#include "tools/sieve/cli.h"

#ifndef SIEVE_BUILD_TYPE
#define SIEVE_BUILD_TYPE "unknown"
#endif
#ifndef SIEVE_SOURCE_DIR
#define SIEVE_SOURCE_DIR ""
#endif

namespace sieve::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using DropoutKind = graph::DropoutSpec::Kind;

const std::vector<double> kRates = {0.3, 0.5, 0.7};
constexpr int kWarmup = 2;  // untimed steps per configuration (the first runs the pattern search)
// Timed steps per configuration: the full run fits kModelBudgetMs of timed steps per model between the bounds.
constexpr int kMinReps = 20, kMaxReps = 60;
constexpr double kModelBudgetMs = 150e3;
// --quick: 10 timed steps per configuration, 5 where the reference step takes longer than kSlowStepMs.
constexpr int kQuickReps = 10, kQuickSlowReps = 5;
constexpr double kSlowStepMs = 300;
// After a block the side that ran it may leave OpenMP/OpenBLAS threads spinning; the pause keeps that out of
// the next block.
constexpr auto kSettle = std::chrono::milliseconds(100);
// SPEC section 5: whole steps at least 0.8 of the FLOP ratio (row ARD, LSTM, CNN); tile ARD 0.7 (issue 4).
constexpr double kTarget = 0.8, kTileTarget = 0.7;

std::string RateLabel(double p) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "p=%.1f", p);
  return buf;
}

// --- The zoo on disk ----------------------------------------------------------------------------------

// One solver file of a folder and the net it trains, read as `sieve train` reads them.
struct ZooVariant {
  std::string solver_path;
  std::string net_file;  // the net's file name: "net.prototxt", "net_tile.prototxt"
  runtime::SolverFile solver;
  runtime::NetConfig train_net;
  NetDropout dropout;
  std::string label;  // the dropout kind ("dense", "row", ...), with the net file where two share a kind
};

// The trainer of one variant at one rate, built as `sieve train` builds it, and the network it trains.
struct BuiltTrainer {
  std::unique_ptr<runtime::Trainer> trainer;
  graph::Network network;
};

StatusOr<BuiltTrainer> BuildTrainer(const ZooVariant& variant, std::optional<double> rate, Device device) {
  SIEVE_ASSIGN_OR_RETURN(cli::Model model, cli::ReadModel(variant.solver.net, variant.solver, device));
  graph::Network& network = model.train_net.network;
  if (rate) network = WithDropoutRate(network, *rate);
  network = WithoutDropoutWarmup(network);
  BuiltTrainer built{.network = network};
  SIEVE_RETURN_IF_ERROR(cli::CreateTrainer(model));
  built.trainer = std::move(model.trainer);
  return built;
}

// A zoo folder: its variants, its reference and data, and how its run is sized.
struct ZooModel {
  std::string name;          // the folder's name
  std::string architecture;  // "lstm" (has an LSTM), "cnn" (a convolution), else "mlp": the papers' bands
  std::vector<ZooVariant> variants;
  bool channel = false;             // a CNN: channel dropout, dense reference, nn.Dropout2d
  std::optional<size_t> reference;  // index into variants
  std::vector<double> rates;        // of the dropout variants
  runtime::Batch batch;             // the one batch every configuration trains on
  std::string source;               // the data source's kind: "fashion_mnist", "text_corpus"
  std::string data;                 // where the batch comes from, in words
  bool real_data = false;
  double reference_ms = 0;    // one reference step, timed when the run is planned
  int block = 1, rounds = 1;  // rounds of `block` timed steps per configuration
  int probe_rounds = 1;

  std::string ReferenceName() const { return reference ? variants[*reference].label : "none"; }
  int SieveConfigs() const {
    int n = 0;
    for (const ZooVariant& v : variants) n += v.dropout.kind ? static_cast<int>(rates.size()) : 1;
    return n;
  }
  // One PyTorch configuration per rate, and a dense one where a variant is dense.
  int TorchConfigs() const {
    const bool dense =
        std::any_of(variants.begin(), variants.end(), [](const ZooVariant& v) { return !v.dropout.kind; });
    const bool dropout =
        std::any_of(variants.begin(), variants.end(), [](const ZooVariant& v) { return v.dropout.kind; });
    return (dense ? 1 : 0) + (dropout ? static_cast<int>(rates.size()) : 0);
  }
};

// The folder's solver files, solver.prototxt first, each with its net.
StatusOr<std::vector<ZooVariant>> ReadVariants(const fs::path& dir, Device device) {
  std::vector<std::string> solvers;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string file = entry.path().filename().string();
    if (entry.is_regular_file() && file.rfind("solver", 0) == 0 && file.size() > 9 &&
        file.compare(file.size() - 9, 9, ".prototxt") == 0)
      solvers.push_back(entry.path().string());
  }
  SIEVE_ENSURE(!error, StatusCode::kNotFound, "cannot list '" << dir.string() << "': " << error.message());
  SIEVE_ENSURE(!solvers.empty(), StatusCode::kNotFound, "'" << dir.string() << "' holds no solver*.prototxt");
  std::sort(solvers.begin(), solvers.end(), [](const std::string& a, const std::string& b) {
    const bool a_main = fs::path(a).filename() == "solver.prototxt",
               b_main = fs::path(b).filename() == "solver.prototxt";
    return a_main != b_main ? a_main : a < b;
  });
  std::vector<ZooVariant> variants;
  for (const std::string& path : solvers) {
    ZooVariant v;
    v.solver_path = path;
    SIEVE_ASSIGN_OR_RETURN(v.solver, runtime::LoadSolverFile(path));
    SIEVE_ASSIGN_OR_RETURN(cli::Model model, cli::ReadModel(v.solver.net, v.solver, device));
    v.train_net = std::move(model.train_net);
    v.net_file = fs::path(v.solver.net).filename().string();
    StatusOr<NetDropout> dropout = DescribeDropout(v.train_net.network);
    SIEVE_ENSURE(dropout.ok(), StatusCode::kInvalidArgument, v.solver.net << ": " << dropout.status().message());
    v.dropout = *dropout;
    v.label = v.dropout.KindName();
    variants.push_back(std::move(v));
  }
  // Two files of one kind are told apart by their net files.
  for (ZooVariant& v : variants) {
    const auto same = std::count_if(variants.begin(), variants.end(),
                                    [&](const ZooVariant& w) { return w.dropout.KindName() == v.dropout.KindName(); });
    if (same > 1) v.label += " [" + v.net_file + "]";
  }
  return variants;
}

// The batch every configuration of the model trains on: the first of the data source's training split, or a
// synthetic one when the data is absent (data and real_data say which, and why).
Status LoadBatch(ZooModel& model) {
  const ZooVariant& first = model.variants.front();
  const int64_t batch = first.train_net.batch_size > 0 ? first.train_net.batch_size : cli::kDefaultBatchSize;
  const runtime::DataSourceKind kind = first.train_net.source.kind == runtime::DataSourceKind::kNone
                                           ? runtime::DataSourceKind::kFashionMnist
                                           : first.train_net.source.kind;
  model.source = runtime::DataSourceKindName(kind);
  StatusOr<std::unique_ptr<runtime::BatchSource>> source =
      runtime::OpenNetSource(first.train_net, runtime::NetPhase::kTrain, batch, first.solver.random_seed);
  if (source.ok()) {
    model.batch = (*source)->Next();
    model.real_data = true;
    model.data = std::string("real: one batch of the ") + runtime::DataSourceKindName(kind) + " training split";
    return Status::Ok();
  }
  SIEVE_ASSIGN_OR_RETURN(model.batch, SyntheticBatch(first.train_net.network, batch, first.solver.random_seed));
  model.data = std::string("synthetic (") + runtime::DataSourceKindName(kind) +
               " unavailable: " + cli::UserMessage(source.status()) + ")";
  return Status::Ok();
}

// Reads a folder, picks its reference, loads its batch, times one reference step and sizes its run.
StatusOr<ZooModel> PlanModel(const fs::path& dir, const Options& options) {
  ZooModel model;
  model.name = dir.filename().string();
  SIEVE_ASSIGN_OR_RETURN(model.variants, ReadVariants(dir, options.device));
  model.architecture = "mlp";
  for (const graph::Layer& layer : model.variants.front().train_net.network.layers()) {
    if (std::holds_alternative<graph::LstmSpec>(layer.spec)) model.architecture = "lstm";
    if (std::holds_alternative<graph::Conv2dSpec>(layer.spec) && model.architecture == "mlp")
      model.architecture = "cnn";
  }
  model.channel = std::any_of(model.variants.begin(), model.variants.end(), [](const ZooVariant& v) {
    return v.dropout.kind && graph::IsChannelDropout(*v.dropout.kind);
  });
  for (size_t i = 0; i < model.variants.size(); ++i) {
    const std::optional<DropoutKind>& kind = model.variants[i].dropout.kind;
    const bool reference = model.channel ? !kind : kind == DropoutKind::kBernoulli;
    if (reference && !model.reference) model.reference = i;
  }
  model.rates = options.quick ? std::vector<double>{0.5} : kRates;
  SIEVE_RETURN_IF_ERROR(LoadBatch(model));

  // One step of the reference (else the first variant) at the middle rate, after one untimed step.
  const ZooVariant& timed = model.variants[model.reference.value_or(0)];
  std::optional<double> rate;
  if (timed.dropout.kind) rate = model.rates[model.rates.size() / 2];
  SIEVE_ASSIGN_OR_RETURN(BuiltTrainer built, BuildTrainer(timed, rate, options.device));
  SIEVE_RETURN_IF_ERROR(built.trainer->Step(model.batch.features, model.batch.labels).status());
  Synchronize(options.device);
  const auto start = Clock::now();
  SIEVE_RETURN_IF_ERROR(built.trainer->Step(model.batch.features, model.batch.labels).status());
  Synchronize(options.device);
  model.reference_ms = Millis(start);

  const int configs = model.SieveConfigs() + model.TorchConfigs();
  int reps = 0;
  if (options.reps > 0) {
    reps = options.reps;
  } else if (options.quick) {
    reps = model.reference_ms > kSlowStepMs ? kQuickSlowReps : kQuickReps;
  } else {
    reps = std::clamp(static_cast<int>(kModelBudgetMs / (configs * model.reference_ms)), kMinReps, kMaxReps);
  }
  model.block = std::min(reps, model.reference_ms < 40 ? 5 : model.reference_ms < 250 ? 2 : 1);
  model.rounds = (reps + model.block - 1) / model.block;
  model.probe_rounds = options.quick ? 1 : 2;
  return model;
}

// Seconds the model's run should take, from its reference step: every configuration (PyTorch's, when it runs,
// counted as Sieve's reference; approximate random dropout's are faster) for the warm-up and the timed steps,
// PyTorch's thread probe on the CPU and the pauses. The trainers' construction is not counted.
double EstimateSeconds(const ZooModel& model, bool torch, bool probe) {
  const int configs = model.SieveConfigs() + (torch ? model.TorchConfigs() : 0);
  const double steps =
      configs * (kWarmup + model.rounds * model.block) + (probe ? 3.0 * model.probe_rounds * (1 + model.block) : 0.0);
  const double pauses = configs * model.rounds * std::chrono::duration<double>(kSettle).count();
  return steps * model.reference_ms * 1e-3 + pauses;
}

// --- One model's run --------------------------------------------------------------------------------

// One Sieve configuration: a variant at a rate, its trainer and what its timed steps measured.
struct SieveConfig {
  const ZooVariant* variant = nullptr;
  std::optional<double> rate;  // nullopt: a dense variant
  std::string label;           // "row p=0.5", "dense"
  BuiltTrainer built;
  size_t torch = 0;  // index of its PyTorch configuration
  StepLog log;

  Status Step(const runtime::Batch& batch, Device device, bool timed) {
    const auto start = Clock::now();
    SIEVE_ASSIGN_OR_RETURN(const runtime::StepResult r, built.trainer->Step(batch.features, batch.labels));
    Synchronize(device);
    if (!timed) return Status::Ok();
    log.Record(Millis(start), r);
    return Status::Ok();
  }
};

// One PyTorch configuration: the model with nn.Dropout (or nn.Dropout2d) at a rate, or without dropout.
struct TorchConfig {
  std::optional<double> rate;
  std::string label;                    // "dense", "nn.Dropout p=0.5", "nn.Dropout2d p=0.5"
  const SieveConfig* source = nullptr;  // the configuration whose network it is built from
  std::vector<double> ms;
  int64_t parameters = 0;
  double last_loss = 0;
};

// What a model's run leaves for the report.
struct ModelReport {
  std::string name;
  std::vector<std::string> notes;  // lines above its table
  std::vector<Row> rows;
};

std::string Join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

class ModelRun {
 public:
  ModelRun(ZooModel& model, const Options& options, PyTorchPeer* peer)
      : model_(model), options_(options), peer_(peer) {}

  // Builds, warms up and times every configuration; the rows and notes go to `report`. A Sieve failure is an
  // error; a PyTorch failure leaves the model without PyTorch rows (`peer_dead` when the process is gone).
  Status Run(ModelReport* report, bool* peer_dead) {
    report->name = model_.name;
    SIEVE_RETURN_IF_ERROR(BuildSieve());
    Note(report, "variants: " + Describe() + "; reference of the speedups: " + model_.ReferenceName() +
                     (model_.channel ? "" : " at the same p"));
    Note(report, "batch " + std::to_string(model_.batch.features.shape()[0]) + ", data " + model_.data + "; " +
                     std::to_string(model_.rounds * model_.block) + " timed steps per configuration in rounds of " +
                     std::to_string(model_.block) + " (" + std::to_string(kWarmup) + " warm-up)");
    for (const ZooVariant& v : model_.variants) {
      if (v.dropout.warmup_iterations > 0)
        Note(report, v.net_file + ": the file's dense warm-up of " + std::to_string(v.dropout.warmup_iterations) +
                         " iterations is skipped, so the steps time its dropout");
      if (v.dropout.fixed_family)
        Note(report, v.net_file + ": family FIXED, so each rate draws the one pattern nearest it (ideal shows it)");
    }
    if (peer_ != nullptr) {
      const Status torch = BuildTorch(report);
      if (!torch.ok()) {
        Note(report, "PyTorch left out for this model: " + torch.message());
        torch_.clear();
      }
    } else {
      torch_.clear();
    }
    SIEVE_RETURN_IF_ERROR(TimeAll(report));
    *peer_dead = peer_failed_;
    Rows(report);
    return Status::Ok();
  }

 private:
  void Note(ModelReport* report, const std::string& line) {
    std::printf("%s\n", line.c_str());
    report->notes.push_back(line);
  }

  std::string Describe() const {
    std::vector<std::string> parts;
    for (const ZooVariant& v : model_.variants) parts.push_back(v.label + " (" + v.net_file + ")");
    return Join(parts, ", ");
  }

  Status BuildSieve() {
    for (const ZooVariant& v : model_.variants) {
      std::vector<std::optional<double>> rates;
      if (v.dropout.kind) {
        rates.assign(model_.rates.begin(), model_.rates.end());
      } else {
        rates.push_back(std::nullopt);
      }
      for (const std::optional<double>& rate : rates) {
        SieveConfig config;
        config.variant = &v;
        config.rate = rate;
        config.label = rate ? v.label + " " + RateLabel(*rate) : v.label;
        StatusOr<BuiltTrainer> built = BuildTrainer(v, rate, options_.device);
        SIEVE_ENSURE(built.ok(), built.status().code(),
                     "cannot build the " << config.label << " trainer of " << v.solver_path << ": "
                                         << cli::UserMessage(built.status()));
        config.built = std::move(built).value();
        configs_.push_back(std::move(config));
      }
    }
    // The PyTorch configurations, one per distinct (dropout, rate), built from the first Sieve configuration
    // that maps to each.
    for (SieveConfig& c : configs_) {
      std::string label = "dense";
      if (c.rate) label = std::string(model_.channel ? "nn.Dropout2d " : "nn.Dropout ") + RateLabel(*c.rate);
      auto it = std::find_if(torch_.begin(), torch_.end(), [&](const TorchConfig& t) { return t.label == label; });
      if (it == torch_.end()) {
        torch_.push_back({.rate = c.rate, .label = label, .source = &c});
        it = torch_.end() - 1;
      }
      c.torch = static_cast<size_t>(it - torch_.begin());
    }
    return Status::Ok();
  }

  // Builds every PyTorch configuration in its own slot of the peer, checks each against its Sieve trainer's
  // parameter count, and on the CPU probes PyTorch's thread settings; the best is kept for the model.
  Status BuildTorch(ModelReport* report) {
    for (TorchConfig& t : torch_) {
      const SieveConfig& source = *t.source;
      SIEVE_ASSIGN_OR_RETURN(const std::string layers,
                             PeerLayersJson(source.built.network, source.built.trainer->options().carry_state));
      PeerBuild build;
      build.model_json = layers;
      build.batch = model_.batch.features.shape()[0];
      build.optimizer_json = PeerOptimizerJson(source.variant->solver.solver);
      build.id = t.label;  // a slot per label: the next model's configuration of the label frees this one
      build.device = options_.device.is_cuda() ? options_.device.ToString() : "cpu";
      SIEVE_ASSIGN_OR_RETURN(const PeerModel built, peer_->Build(build));
      const int64_t sieve = source.built.trainer->params().param_elements();
      SIEVE_ENSURE(built.sieve_parameters == sieve, StatusCode::kInternal,
                   "PyTorch's " << t.label << " model has " << built.sieve_parameters.value_or(-1)
                                << " parameters counted as Sieve declares them, Sieve's trainer " << sieve
                                << ": the layer list does not describe the zoo's net");
      t.parameters = built.parameters;
    }
    if (!options_.device.is_cuda()) {
      // The probe runs on the reference's PyTorch configuration at the middle rate (else the first).
      const TorchConfig* probed = &torch_.front();
      for (const SieveConfig& c : configs_)
        if (model_.reference && c.variant == &model_.variants[*model_.reference] &&
            (!c.rate || *c.rate == model_.rates[model_.rates.size() / 2]))
          probed = &torch_[c.torch];
      const std::vector<ThreadSetting> settings = ThreadSettings(peer_->info().default_threads);
      const std::string& id = probed->label;
      SIEVE_ASSIGN_OR_RETURN(const std::vector<Timing> timings,
                             ProbeThreads(*peer_, settings, model_.probe_rounds, model_.block, kSettle, id));
      size_t best = 0;
      std::vector<Row> probe_rows;
      for (size_t i = 0; i < settings.size(); ++i) {
        Row row;
        row.name = "pytorch " + model_.name + " " + probed->label + " probe " + settings[i].label;
        row.timing = timings[i];
        row.text = {{"framework", "pytorch"}, {"role", "thread_probe"}, {"model", model_.name}};
        row.numbers = {{"torch_threads", static_cast<double>(settings[i].resolved)}};
        probe_rows.push_back(std::move(row));
        if (timings[i].median < timings[best].median) best = i;
      }
      threads_ = settings[best];
      PrintTable("PyTorch thread probe on " + probed->label + " (best kept: " + threads_->label + ")", probe_rows);
      report->rows.insert(report->rows.end(), probe_rows.begin(), probe_rows.end());
    }
    return Status::Ok();
  }

  // Warm-up, then rounds of a block of every configuration in turn. A PyTorch failure ends PyTorch's part
  // (and the peer: peer_failed_) and leaves Sieve's.
  Status TimeAll(ModelReport* report) {
    const Device device = options_.device;
    for (SieveConfig& c : configs_)
      for (int w = 0; w < kWarmup; ++w) SIEVE_RETURN_IF_ERROR(c.Step(model_.batch, device, false));
    // Threads as the probe chose them (on a GPU the peer's default).
    Status torch = TorchSteps(kWarmup, threads_ ? std::optional<int>(threads_->threads) : std::nullopt, false);
    std::this_thread::sleep_for(kSettle);
    for (int r = 0; r < model_.rounds; ++r) {
      for (SieveConfig& c : configs_) {
        for (int i = 0; i < model_.block; ++i) SIEVE_RETURN_IF_ERROR(c.Step(model_.batch, device, true));
        std::this_thread::sleep_for(kSettle);
      }
      if (torch.ok()) torch = TorchSteps(model_.block, std::nullopt, true);
    }
    if (!torch.ok()) {
      Note(report, "PyTorch failed, the model continues without it: " + torch.message());
      torch_.clear();
      peer_failed_ = true;
    }
    return Status::Ok();
  }

  // `n` steps of every PyTorch configuration in turn, each followed by the pause.
  Status TorchSteps(int n, std::optional<int> threads, bool timed) {
    for (TorchConfig& t : torch_) {
      SIEVE_ASSIGN_OR_RETURN(const PeerSteps steps, peer_->Step(n, threads, t.label));
      if (timed) {
        t.ms.insert(t.ms.end(), steps.ms.begin(), steps.ms.end());
        t.last_loss = steps.last_loss;
      }
      std::this_thread::sleep_for(kSettle);
    }
    return Status::Ok();
  }

  const SieveConfig* ReferenceOf(const SieveConfig& c) const {
    if (!model_.reference) return nullptr;
    const ZooVariant* reference = &model_.variants[*model_.reference];
    for (const SieveConfig& r : configs_)
      if (r.variant == reference && (model_.channel || r.rate == c.rate)) return &r;
    return nullptr;
  }

  void Rows(ModelReport* report) {
    std::vector<Row> rows;
    const std::string data = model_.real_data ? "real" : "synthetic";
    for (const SieveConfig& c : configs_) {
      const double mean = Mean(c.log.step_ms);
      const double steps = c.log.steps();
      const std::optional<DropoutKind>& kind = c.variant->dropout.kind;
      Row row;
      row.name = "sieve " + model_.name + " " + c.label;
      row.timing = Timing::FromSamples(c.log.step_ms);
      // A dense variant that is not the reference (the MLP's) has no reference at its rate.
      const SieveConfig* reference = ReferenceOf(c);
      if (reference != nullptr && (c.rate || &c == reference)) row.speedup = Mean(reference->log.step_ms) / mean;
      if (kind && *kind != DropoutKind::kBernoulli) {
        row.ideal = c.log.FlopRatio();
        row.target = *kind == DropoutKind::kTile ? kTileTarget : kTarget;
        if (row.speedup) row.efficiency = *row.speedup / *row.ideal;
      }
      if (c.torch < torch_.size() && !torch_[c.torch].ms.empty()) row.vs_pytorch = Mean(torch_[c.torch].ms) / mean;
      row.text = {{"framework", "sieve"},
                  {"model", model_.name},
                  {"architecture", model_.architecture},
                  {"variant", c.variant->label},
                  {"dropout_kind", c.variant->dropout.KindName()},
                  {"net", c.variant->net_file},
                  {"reference", model_.ReferenceName()},
                  {"data", data},
                  {"solver", ops::SolverTypeName(c.variant->solver.solver.type)}};
      if (kind == DropoutKind::kRow || kind == DropoutKind::kTile)
        row.text.push_back({"pattern_family", c.variant->dropout.fixed_family ? "fixed" : "searched"});
      row.numbers = {{"dropout", c.rate.value_or(0.0)},
                     {"batch", static_cast<double>(model_.batch.features.shape()[0])},
                     {"mean_ms", mean},
                     {"gflop_executed_mean", c.log.executed_flops / steps * 1e-9},
                     {"gflop_dense", c.log.dense_flops / steps * 1e-9},
                     {"passes_mean_ms", Mean(c.log.passes_ms)},
                     {"graph_mean_ms", Mean(c.log.graph_ms)},
                     {"update_mean_ms", Mean(c.log.update_ms)},
                     {"parameters", static_cast<double>(c.built.trainer->params().param_elements())},
                     {"last_loss", c.log.last_loss}};
      rows.push_back(std::move(row));
    }
    for (const TorchConfig& t : torch_) {
      if (t.ms.empty()) continue;
      Row row;
      row.name = "pytorch " + model_.name + " " + t.label;
      row.timing = Timing::FromSamples(t.ms);
      row.text = {{"framework", "pytorch"},
                  {"model", model_.name},
                  {"dropout_kind", !t.rate          ? "none"
                                   : model_.channel ? "nn.Dropout2d"
                                                    : "nn.Dropout"},
                  {"torch", peer_->info().torch_version},
                  {"data", "synthetic"}};
      row.numbers = {{"dropout", t.rate.value_or(0.0)},
                     {"batch", static_cast<double>(model_.batch.features.shape()[0])},
                     {"mean_ms", Mean(t.ms)},
                     {"parameters", static_cast<double>(t.parameters)},
                     {"last_loss", t.last_loss}};
      if (threads_) row.numbers.push_back({"torch_threads", static_cast<double>(threads_->resolved)});
      rows.push_back(std::move(row));
    }
    PrintTable(model_.name + " (speedup over " + model_.ReferenceName() +
                   ", vs_pt = PyTorch's step / the row's: ratios of mean step times; ideal = FLOP ratio of the timed "
                   "steps; eff = speedup / ideal; target: eff)",
               rows);
    std::printf(
        "mean step (ms) = passes + forward/backward + update (+ batch copy); GFLOP executed / dense per step\n");
    for (const SieveConfig& c : configs_) {
      const double steps = c.log.steps();
      std::printf("  %-28s %9.2f = %6.2f + %9.2f + %7.2f   %8.3f / %8.3f\n", c.label.c_str(), Mean(c.log.step_ms),
                  Mean(c.log.passes_ms), Mean(c.log.graph_ms), Mean(c.log.update_ms),
                  c.log.executed_flops / steps * 1e-9, c.log.dense_flops / steps * 1e-9);
    }
    std::fflush(stdout);
    report->rows.insert(report->rows.end(), rows.begin(), rows.end());
  }

 private:
  ZooModel& model_;
  const Options& options_;
  PyTorchPeer* peer_;                     // null: no PyTorch rows
  std::optional<ThreadSetting> threads_;  // PyTorch's best setting (the CPU probe's)
  bool peer_failed_ = false;
  std::vector<SieveConfig> configs_;
  std::vector<TorchConfig> torch_;
};

// --- The report ------------------------------------------------------------------------------------

std::string Cell(std::optional<double> v, const char* format) {
  if (!v) return "–";
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, *v);
  return buf;
}

std::optional<double> NumberOf(const Row& row, const std::string& key) {
  for (const auto& [k, v] : row.numbers)
    if (k == key) return v;
  return std::nullopt;
}

std::string TextOf(const Row& row, const std::string& key) {
  for (const auto& [k, v] : row.text)
    if (k == key) return v;
  return "";
}

Status WriteMarkdown(const std::string& path, const Options& options, const std::vector<ModelReport>& reports,
                     const std::string& torch) {
  std::ofstream out(path);
  SIEVE_ENSURE(out.good(), StatusCode::kUnavailable, "cannot open " << path << " for writing");
  out << "# `sieve-bench zoo`: the zoo's training steps, Sieve and PyTorch\n\n";
  out << "- Command: `" << options.command_line << "`\n";
  out << "- Date: " << UtcNow() << "\n";
  out << "- Machine: " << CpuModel() << ", " << std::thread::hardware_concurrency() << " cores; OpenMP threads "
      << omp_get_max_threads() << "; build " << SIEVE_BUILD_TYPE << "; device " << options.device.ToString();
  if (options.device.is_cuda()) out << " (" << GpuName(options.device) << ")";
  out << "\n- PyTorch: " << (torch.empty() ? "not run" : torch) << "\n";
  out << "- Speedup: the reference variant's mean step / the row's (the Bernoulli variant at the same p for MLP and "
         "LSTM models, the dense variant for CNNs); FLOP ratio: dense / executed MatMul FLOPs of the row's timed "
         "steps; efficiency = speedup / FLOP ratio; vs PyTorch: PyTorch's mean step for the same model and p / "
         "the row's. Ratios use mean step times (what an epoch costs; an ARD step's cost varies with its "
         "patterns), as docs/benchmarks/mlp_ard.md does; median and min–max are beside them.\n";
  for (const ModelReport& report : reports) {
    out << "\n## " << report.name << "\n\n";
    for (const std::string& note : report.notes) out << "- " << note << "\n";
    out << "\n| configuration | mean ms | median (min–max) ms | speedup | FLOP ratio | efficiency | vs PyTorch |\n";
    out << "|---|---:|---:|---:|---:|---:|---:|\n";
    for (const Row& row : report.rows) {
      if (TextOf(row, "role") == "thread_probe") continue;
      char timing[64];
      std::snprintf(timing, sizeof(timing), "%.2f (%.2f–%.2f)", row.timing.median, row.timing.min, row.timing.max);
      out << "| " << row.name << " | " << Cell(NumberOf(row, "mean_ms"), "%.2f") << " | " << timing << " | "
          << Cell(row.speedup, "%.2fx") << " | " << Cell(row.ideal, "%.2f") << " | " << Cell(row.efficiency, "%.2f")
          << " | " << Cell(row.vs_pytorch, "%.2fx") << " |\n";
    }
  }
  out.close();
  SIEVE_ENSURE(out.good(), StatusCode::kUnavailable, "failed writing " << path);
  return Status::Ok();
}

// --- The verb --------------------------------------------------------------------------------------

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> items;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    if (comma > at) items.push_back(list.substr(at, comma - at));
    at = comma + 1;
  }
  return items;
}

std::string DefaultZoo() {
  const fs::path source = fs::path(SIEVE_SOURCE_DIR) / "models";
  std::error_code error;
  return *SIEVE_SOURCE_DIR != '\0' && fs::is_directory(source, error) ? source.string() : "models";
}

int RunZoo(const Options& options) {
  std::vector<std::string> args = options.args;
  StatusOr<PeerLaunch> launch = ParsePeerFlags(args);
  if (!launch.ok()) {
    std::fprintf(stderr, "sieve-bench zoo: %s\n", launch.status().message().c_str());
    return 2;
  }
  std::string zoo = DefaultZoo(), markdown;
  std::vector<std::string> selected;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--zoo" && i + 1 < args.size()) {
      zoo = args[++i];
    } else if (args[i] == "--models" && i + 1 < args.size()) {
      selected = SplitList(args[++i]);
    } else if (args[i] == "--markdown" && i + 1 < args.size()) {
      markdown = args[++i];
    } else {
      std::fprintf(stderr,
                   "sieve-bench zoo: unknown argument '%s' (verb options: --zoo DIR, --models NAME,NAME,..., "
                   "--markdown PATH, --pytorch PEER.py, --python PATH, --no-pytorch)\n",
                   args[i].c_str());
      return 2;
    }
  }

  // The folders: every one under the zoo that holds a solver file, or the ones --models names.
  std::vector<fs::path> folders;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(zoo, error))
    if (entry.is_directory() && fs::exists(entry.path() / "solver.prototxt")) folders.push_back(entry.path());
  if (error) {
    std::fprintf(stderr, "sieve-bench zoo: cannot list the zoo '%s': %s (--zoo DIR names it)\n", zoo.c_str(),
                 error.message().c_str());
    return 1;
  }
  std::sort(folders.begin(), folders.end());
  if (!selected.empty()) {
    std::vector<fs::path> picked;
    for (const std::string& name : selected) {
      auto it = std::find_if(folders.begin(), folders.end(), [&](const fs::path& p) { return p.filename() == name; });
      if (it == folders.end()) {
        std::vector<std::string> known;
        for (const fs::path& p : folders) known.push_back(p.filename().string());
        std::fprintf(stderr, "sieve-bench zoo: --models: no folder '%s' with a solver.prototxt in %s (there: %s)\n",
                     name.c_str(), zoo.c_str(), Join(known, ", ").c_str());
        return 2;
      }
      picked.push_back(*it);
    }
    folders = picked;
  }
  if (folders.empty()) {
    std::fprintf(stderr, "sieve-bench zoo: no model folder (with a solver.prototxt) in %s\n", zoo.c_str());
    return 1;
  }

  const auto run_start = Clock::now();
  std::printf(
      "zoo: training steps (forward, backward, update) of the zoo's models in every variant, each dropout variant "
      "at p = %s, Sieve and PyTorch interleaved, device %s; times in ms\nzoo: %s\n",
      options.quick ? "0.5 (--quick)" : "0.3, 0.5, 0.7", options.device.ToString().c_str(), zoo.c_str());

  // The plan: each model read, its reference step timed once, its run sized; then the estimate.
  bool failed = false;
  std::vector<ZooModel> models;
  for (const fs::path& folder : folders) {
    StatusOr<ZooModel> model = PlanModel(folder, options);
    if (!model.ok()) {
      std::fprintf(stderr, "sieve-bench zoo: %s left out: %s\n", folder.filename().string().c_str(),
                   cli::UserMessage(model.status()).c_str());
      failed = true;
      continue;
    }
    models.push_back(std::move(model).value());
  }
  if (models.empty()) return 1;
  std::unique_ptr<PyTorchPeer> peer;
  std::string torch;
  if (StatusOr<std::unique_ptr<PyTorchPeer>> started = PyTorchPeer::Start(*launch); started.ok()) {
    peer = std::move(started).value();
    const PeerInfo& info = peer->info();
    torch = "torch " + info.torch_version + ", " + info.python + ", default threads " +
            std::to_string(info.default_threads) + ", BLAS " + info.blas;
    std::printf("pytorch: %s\n", torch.c_str());
    if (options.device.is_cuda() && !info.cuda) {
      std::printf("pytorch: torch %s sees no CUDA GPU; the run goes on without PyTorch\n", info.torch_version.c_str());
      peer.reset();
      torch.clear();
    }
  } else {
    std::printf("%s\n", started.status().message().c_str());
  }
  const bool probe = peer != nullptr && !options.device.is_cuda();
  std::printf("\n%-18s %-24s %9s %6s %6s %14s %9s\n", "model", "data", "ref ms", "sieve", "torch", "rounds x block",
              "estimate");
  double total = 0;
  for (const ZooModel& m : models) {
    const double seconds = EstimateSeconds(m, peer != nullptr, probe);
    total += seconds;
    const std::string data = (m.real_data ? "real " : "synthetic ") + m.source;
    std::printf("%-18s %-24s %9.1f %6d %6d %9d x %-2d %7.0f s\n", m.name.c_str(), data.c_str(), m.reference_ms,
                m.SieveConfigs(), peer != nullptr ? m.TorchConfigs() : 0, m.rounds, m.block, seconds);
  }
  std::printf(
      "estimate: about %.1f min after this plan (%.0f s so far), from each model's reference step timed just now "
      "(configurations x (warm-up + steps) x that step, PyTorch's counted alike, + pauses%s)\n",
      total / 60, Millis(run_start) * 1e-3, probe ? " + thread probes" : "");
  std::fflush(stdout);

  std::vector<ModelReport> reports;
  std::vector<Row> rows;
  for (ZooModel& m : models) {
    std::printf("\n== %s ==\n", m.name.c_str());
    ModelReport report;
    bool peer_dead = false;
    ModelRun run(m, options, peer.get());
    if (Status status = run.Run(&report, &peer_dead); !status.ok()) {
      std::fprintf(stderr, "sieve-bench zoo: %s failed: %s\n", m.name.c_str(), cli::UserMessage(status).c_str());
      failed = true;
      continue;
    }
    if (peer_dead) peer.reset();
    rows.insert(rows.end(), report.rows.begin(), report.rows.end());
    reports.push_back(std::move(report));
  }
  std::printf("\nzoo: %zu models in %.1f min\n", reports.size(), Millis(run_start) / 60e3);

  if (!markdown.empty()) {
    if (Status status = WriteMarkdown(markdown, options, reports, torch); !status.ok()) {
      std::fprintf(stderr, "sieve-bench zoo: %s\n", status.message().c_str());
      failed = true;
    } else {
      std::printf("wrote %s\n", markdown.c_str());
    }
  }
  const int written = FinishReport("zoo", options, rows);
  return failed ? 1 : written;
}

}  // namespace

SIEVE_BENCH_VERB(zoo,
                 "every zoo model's training step in each variant (dropout at p = 0.3, 0.5, 0.7) vs PyTorch in a child "
                 "process, with the FLOP ratio; --models A,B, --markdown PATH, --zoo DIR",
                 RunZoo);

}  // namespace sieve::bench
