// `sieve-bench lstm`: approximate random dropout in whole LSTM training steps (SPEC 2.7, issue 4), on the
// CPU. Two models, each with dropout on its non-recurrent paths only (the recurrent h -> h path never):
//
//   lm      the word-level language model of Zaremba et al. (medium): embedding 10,000 x 650 -> dropout
//           -> LSTM 650 -> dropout -> LSTM 650 -> dropout -> FullyConnected 10,000 on every step ->
//           softmax cross-entropy over every step; windows of 35 steps, batch 32, stateful (the final
//           states carry over), SGD at rate 1 with the global gradient norm clipped to 5. The token ids
//           are synthetic (uniform over the vocabulary, through a TokenStream): the step's cost does not
//           depend on which words they are.
//   fmnist  the Fashion-MNIST row-sequence classifier: 28 steps of 28 inputs (the image's pixel rows)
//           -> dropout -> LSTM 512 (last step) -> dropout -> FullyConnected 10 -> softmax cross-entropy,
//           batch 128, SGD momentum 0.9; one fixed batch of synthetic pixels and labels.
//
// At p = 0.3, 0.5, 0.7 (or --rates) each model trains with Bernoulli dropout and with row ARD (searched
// pattern distributions, the Trainer's default eager update) in alternating blocks of steps in one
// process. Per row ARD configuration: the mean step time (every step draws new patterns whose cost
// varies several-fold, so means, what an epoch costs), the speedup over the Bernoulli step, the FLOP
// ratio of the timed steps (StepResult::dense_flops / executed_flops), the efficiency (speedup / FLOP
// ratio), the nominal FLOP ratio (every site keeping exactly 1 - p) and the share of the dense step's
// MatMul FLOPs that no site touches (the recurrent GEMMs), and where the mean step goes. `--model`
// picks one model, `--only bernoulli|row` runs one configuration alone (for a profiler).
// What it is not: a GPU benchmark, a PyTorch comparison, or a measure of accuracy or perplexity.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "framework/device.h"
#include "framework/tensor.h"
#include "graph/layers.h"
#include "runtime/data/token_stream.h"
#include "runtime/trainer.h"
#include "tools/bench/bench_util.h"

namespace sieve::bench {
namespace {

using Clock = std::chrono::steady_clock;
using DropoutKind = graph::DropoutSpec::Kind;

const std::vector<double> kRates = {0.3, 0.5, 0.7};
// Issue 4's target: the row-ARD step's speedup over the Bernoulli step at least 0.8x the step's FLOP ratio.
constexpr double kRowTarget = 0.8;
constexpr int kWarmup = 2;  // untimed steps per side before the first timed block (the first runs the search)
// After a block the side that ran it may leave OpenMP/OpenBLAS threads spinning; the pause keeps that out
// of the next block.
constexpr auto kSettle = std::chrono::milliseconds(150);

// The CPU time of the whole process (every thread), in milliseconds. Single-threaded (--threads 1) it is
// the step's own work even when other processes share the cores, which wall time is not.
double ProcessCpuMillis() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

// --- The models ---------------------------------------------------------------------------------------

struct LstmModel {
  const char* key;    // --model
  const char* title;  // for the printed header
  bool language_model;
  int64_t batch, steps;
  int64_t inputs;   // the LM's vocabulary, the classifier's features per step
  int64_t hidden;   // units of every LSTM layer (and the LM's embedding width)
  int lstm_layers;  // separate Lstm layers, a dropout site before each
  int64_t classes;  // the head's outputs
  int block;        // steps per side before switching to the other
  int full_reps, quick_reps;
};

const LstmModel kModels[] = {
    {"lm", "word-level LM (Zaremba medium): 2 x 650 LSTM, vocabulary 10,000, 35 steps, batch 32", true, 32, 35, 10000,
     650, 2, 10000, 2, 10, 4},
    {"fmnist", "Fashion-MNIST row-sequence classifier: 28 steps x 28 inputs, LSTM 512, batch 128", false, 128, 28, 28,
     512, 1, 10, 5, 20, 10},
};

// The network: dropout (of `kind`, rate p) before every LSTM layer and before the head.
graph::Network ModelNetwork(const LstmModel& m, double p, DropoutKind kind) {
  using namespace sieve::graph;
  Network net;
  std::string blob = "data";
  if (m.language_model) {
    net.Add({"data", InputSpec{.shape = {m.steps}, .dtype = DType::kInt32}, {}, {"data"}});
    net.Add({"label", LabelSpec{.shape = {m.steps}}, {}, {"label"}});
    net.Add({"embed", EmbeddingSpec{.vocab = m.inputs, .dim = m.hidden}, {blob}, {"embed"}});
    blob = "embed";
  } else {
    net.Add({"data", InputSpec{.shape = {m.steps, m.inputs}}, {}, {"data"}});
    net.Add({"label", LabelSpec{}, {}, {"label"}});
  }
  auto dropout = [&](const std::string& name) {
    net.Add({name, DropoutSpec{.rate = p, .kind = kind}, {blob}, {name}});
    blob = name;
  };
  for (int l = 0; l < m.lstm_layers; ++l) {
    dropout("drop" + std::to_string(l));
    const std::string lstm = "lstm" + std::to_string(l);
    // The LM reads every step of every layer; the classifier only the last step of its one layer.
    net.Add({lstm, LstmSpec{.units = m.hidden, .layers = 1, .return_sequences = m.language_model}, {blob}, {lstm}});
    blob = lstm;
  }
  dropout("drop" + std::to_string(m.lstm_layers));
  // The LM's head projects every step: axis 2 of [B, T, H].
  net.Add({"fc", FullyConnectedSpec{.units = m.classes, .axis = m.language_model ? 2 : 1}, {blob}, {"fc"}});
  net.Add({"loss", SoftmaxCrossEntropySpec{}, {"fc", "label"}, {}});
  return net;
}

// The MatMul FLOPs of one dense step of the model by what a row site does to them, as the lowering
// emits them (graph/lower/lstm.cc, fully_connected.cc): per LSTM layer the input projection of all steps
// (forward, weight gradient, and the input gradient where the input needs one: the LM's embedding and
// every layer above the first) and the recurrent GEMMs (T forward h_{t-1} U^T, T - 1 backward dh, T dU
// links); the head's forward, weight and input gradient. A row site before a layer shrinks K of its input
// projection's three GEMMs, and of the head's, by the kept fraction; the recurrent GEMMs stay dense.
struct StepFlops {
  double input_projections = 0, recurrent = 0, head = 0;

  explicit StepFlops(const LstmModel& m) {
    const double rows = static_cast<double>(m.batch * m.steps);
    const double b = static_cast<double>(m.batch), t = static_cast<double>(m.steps);
    const double h = static_cast<double>(m.hidden), gates = 4.0 * h;
    for (int l = 0; l < m.lstm_layers; ++l) {
      const double in = l == 0 && !m.language_model ? static_cast<double>(m.inputs) : h;
      const bool input_grad = l > 0 || m.language_model;
      input_projections += (input_grad ? 3 : 2) * 2.0 * rows * in * gates;
      recurrent += (3 * t - 1) * 2.0 * b * h * gates;
    }
    const double head_rows = m.language_model ? rows : b;
    head = 3 * 2.0 * head_rows * h * static_cast<double>(m.classes);
  }
  double Dense() const { return input_projections + recurrent + head; }
  // Every site keeping exactly `keep` of its units.
  double Nominal(double keep) const { return keep * (input_projections + head) + recurrent; }
};

// --- One trainer --------------------------------------------------------------------------------------

// A trainer of one model and dropout configuration, its data and what its timed steps measured.
struct Side {
  std::string label;  // "bernoulli", "row-ARD"
  DropoutKind kind;
  std::unique_ptr<runtime::Trainer> trainer;
  std::unique_ptr<runtime::TokenStream> tokens;  // the LM's batches
  Tensor features, labels;                       // the classifier's one batch
  StepLog log;
  std::vector<double> cpu_ms;  // process CPU time of each timed step

  static StatusOr<Side> Create(const LstmModel& m, double p, DropoutKind kind, const char* label,
                               const Tensor& corpus) {
    runtime::TrainerOptions options;
    options.batch_size = m.batch;
    options.solver.type = ops::SolverType::kSGD;
    if (m.language_model) {
      // Zaremba et al.: plain SGD at rate 1, gradient norm clipped to 5, state carried along the text.
      options.solver.lr.base_lr = 1.0f;
      options.solver.momentum = 0.0f;
      options.solver.clip_gradients = 5.0f;
      options.carry_state = true;
    } else {
      options.solver.lr.base_lr = 0.01f;
      options.solver.momentum = 0.9f;
    }
    Side side{.label = label, .kind = kind};
    SIEVE_ASSIGN_OR_RETURN(side.trainer, runtime::Trainer::Create(ModelNetwork(m, p, kind), options));
    if (m.language_model) {
      SIEVE_ASSIGN_OR_RETURN(side.tokens, runtime::TokenStream::Create(corpus, {.batch = m.batch, .steps = m.steps}));
    } else {
      std::mt19937 rng(11);
      std::normal_distribution<float> value(0.0f, 1.0f);
      std::uniform_int_distribution<int32_t> label_of(0, static_cast<int32_t>(m.classes) - 1);
      side.features = Tensor::Empty({m.batch, m.steps, m.inputs});
      side.labels = Tensor::Empty({m.batch}, DType::kInt32);
      float* f = side.features.data<float>();
      for (int64_t i = 0; i < side.features.numel(); ++i) f[i] = value(rng);
      int32_t* y = side.labels.data<int32_t>();
      for (int64_t i = 0; i < m.batch; ++i) y[i] = label_of(rng);
    }
    return side;
  }

  StatusOr<runtime::StepResult> Step() {
    if (tokens != nullptr) {
      const runtime::Batch batch = tokens->Next();
      return trainer->Step(batch.features, batch.labels);
    }
    return trainer->Step(features, labels);
  }

  Status TimedStep() {
    const double cpu_start = ProcessCpuMillis();
    const auto start = Clock::now();
    SIEVE_ASSIGN_OR_RETURN(runtime::StepResult r, Step());
    log.Record(Millis(start), r);
    cpu_ms.push_back(ProcessCpuMillis() - cpu_start);
    return Status::Ok();
  }
};

// Synthetic token ids for the LM: enough for every window the run takes without wrapping an epoch.
Tensor SyntheticCorpus(const LstmModel& m, int windows) {
  const int64_t n = m.batch * (m.steps * (windows + 1) + 1);
  Tensor tokens = Tensor::Empty({n}, DType::kInt32);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(m.inputs) - 1);
  int32_t* t = tokens.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) t[i] = id(rng);
  return tokens;
}

// --- The verb -----------------------------------------------------------------------------------------

struct Selection {
  std::vector<std::string> models = {"lm", "fmnist"};
  std::vector<double> rates = kRates;
  std::string only;  // "bernoulli" or "row": that configuration alone
};

struct Config {
  const char* key;
  const char* label;
  DropoutKind kind;
};
const Config kConfigs[] = {{"bernoulli", "bernoulli", DropoutKind::kBernoulli}, {"row", "row-ARD", DropoutKind::kRow}};

// Runs one model at every selected rate; appends its rows. Returns false after printing why it failed.
bool RunModel(const LstmModel& m, const Options& options, const Selection& selection, std::vector<Row>* rows) {
  const int reps = options.Reps(m.full_reps, m.quick_reps);
  const int rounds = (reps + m.block - 1) / m.block;
  const std::vector<double> rates =
      options.quick && selection.rates == kRates ? std::vector<double>{0.5} : selection.rates;
  const StepFlops flops(m);
  std::printf("\n== %s ==\n", m.title);
  std::printf(
      "%d timed steps per side in alternating blocks of %d (%d warm-up); dense step %.2f GFLOP of MatMuls: input "
      "projections %.1f%%, recurrent %.1f%% (never dropped), head %.1f%%\n",
      rounds * m.block, m.block, kWarmup, flops.Dense() * 1e-9, 100 * flops.input_projections / flops.Dense(),
      100 * flops.recurrent / flops.Dense(), 100 * flops.head / flops.Dense());
  // Every side of the LM takes (warm-up + timed) windows from its own stream of the same tokens.
  const Tensor corpus = m.language_model ? SyntheticCorpus(m, kWarmup + rounds * m.block) : Tensor();

  for (const double p : rates) {
    std::vector<Side> sides;
    for (const Config& config : kConfigs) {
      if (!selection.only.empty() && selection.only != config.key) continue;
      StatusOr<Side> side = Side::Create(m, p, config.kind, config.label, corpus);
      if (!side.ok()) {
        std::fprintf(stderr, "sieve-bench lstm: cannot build the %s %s trainer at p = %g: %s\n", m.key, config.label, p,
                     side.status().ToString().c_str());
        return false;
      }
      sides.push_back(std::move(side).value());
    }
    for (Side& s : sides)
      for (int w = 0; w < kWarmup; ++w) SIEVE_CHECK_OK(s.Step().status());
    std::this_thread::sleep_for(kSettle);
    for (int r = 0; r < rounds; ++r) {
      for (Side& s : sides) {
        for (int i = 0; i < m.block; ++i) SIEVE_CHECK_OK(s.TimedStep());
        std::this_thread::sleep_for(kSettle);
      }
    }

    char rate[32];
    std::snprintf(rate, sizeof(rate), "p=%.1f", p);
    const bool have_bernoulli = sides.front().kind == DropoutKind::kBernoulli;
    const double bernoulli_mean = Mean(sides.front().log.step_ms);
    std::vector<Row> p_rows;
    for (const Side& s : sides) {
      const double mean = Mean(s.log.step_ms);
      Row row;
      row.name = std::string("sieve ") + m.key + " " + s.label + " " + rate + " step";
      row.timing = Timing::FromSamples(s.log.step_ms);
      const double steps = s.log.steps();
      if (s.kind == DropoutKind::kRow) {
        row.ideal = s.log.FlopRatio();
        row.target = kRowTarget;
      }
      if (have_bernoulli) row.speedup = bernoulli_mean / mean;
      if (row.speedup && row.ideal) row.efficiency = *row.speedup / *row.ideal;
      row.text = {{"framework", "sieve"}, {"role", "step"}, {"model", m.key}, {"dropout_kind", s.label}};
      row.numbers = {{"batch", static_cast<double>(m.batch)},
                     {"steps", static_cast<double>(m.steps)},
                     {"hidden", static_cast<double>(m.hidden)},
                     {"dropout", p},
                     {"mean_ms", mean},
                     {"cpu_mean_ms", Mean(s.cpu_ms)},
                     {"gflop_executed_mean", s.log.executed_flops / steps * 1e-9},
                     {"gflop_dense", s.log.dense_flops / steps * 1e-9},
                     {"flop_ratio_nominal", s.kind == DropoutKind::kRow ? flops.Dense() / flops.Nominal(1 - p) : 1.0},
                     {"recurrent_flop_share", flops.recurrent / flops.Dense()},
                     {"passes_mean_ms", Mean(s.log.passes_ms)},
                     {"graph_mean_ms", Mean(s.log.graph_ms)},
                     {"update_mean_ms", Mean(s.log.update_ms)},
                     {"last_loss", s.log.last_loss}};
      // The same from process CPU time: the robust reading single-threaded on a shared machine.
      if (have_bernoulli) {
        const double cpu_speedup = Mean(sides.front().cpu_ms) / Mean(s.cpu_ms);
        row.numbers.push_back({"cpu_speedup", cpu_speedup});
        if (row.ideal) row.numbers.push_back({"cpu_efficiency", cpu_speedup / *row.ideal});
      }
      p_rows.push_back(std::move(row));
    }
    PrintTable(std::string(m.key) + " dropout " + rate +
                   " (median/min/max of the steps; speedup from mean step times, Bernoulli's / the row's; ideal = "
                   "FLOP ratio of the timed steps; eff = speedup / ideal; target: eff)",
               p_rows);
    std::printf(
        "mean step (ms) = passes + forward/backward + update (+ batch copy); process CPU ms per step; GFLOP executed "
        "/ dense per step\n");
    for (const Side& s : sides) {
      const double steps = s.log.steps();
      std::printf("  %-10s %8.2f = %5.2f + %8.2f + %6.2f   cpu %8.2f   %7.2f / %7.2f GFLOP  (nominal ratio %.2f)\n",
                  s.label.c_str(), Mean(s.log.step_ms), Mean(s.log.passes_ms), Mean(s.log.graph_ms),
                  Mean(s.log.update_ms), Mean(s.cpu_ms), s.log.executed_flops / steps * 1e-9,
                  s.log.dense_flops / steps * 1e-9,
                  s.kind == DropoutKind::kRow ? flops.Dense() / flops.Nominal(1 - p) : 1.0);
    }
    std::fflush(stdout);
    rows->insert(rows->end(), p_rows.begin(), p_rows.end());
  }
  return true;
}

// Parses a comma-separated list of rates in (0, 1); false on anything else.
bool ParseRates(const std::string& list, std::vector<double>* rates) {
  rates->clear();
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    char* end = nullptr;
    const double rate = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(rate > 0.0 && rate < 1.0)) return false;
    rates->push_back(rate);
    at = comma + 1;
  }
  return true;
}

int RunLstm(const Options& options) {
  Selection selection;
  const std::vector<std::string>& args = options.args;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--model" && i + 1 < args.size()) {
      const std::string model = args[++i];
      if (model != "lm" && model != "fmnist") {
        std::fprintf(stderr, "sieve-bench lstm: --model takes lm or fmnist, got '%s'\n", model.c_str());
        return 2;
      }
      selection.models = {model};
    } else if (args[i] == "--rates" && i + 1 < args.size()) {
      if (!ParseRates(args[++i], &selection.rates)) {
        std::fprintf(stderr, "sieve-bench lstm: --rates needs rates in (0, 1) separated by commas, got '%s'\n",
                     args[i].c_str());
        return 2;
      }
    } else if (args[i] == "--only" && i + 1 < args.size()) {
      selection.only = args[++i];
      if (selection.only != "bernoulli" && selection.only != "row") {
        std::fprintf(stderr, "sieve-bench lstm: --only takes bernoulli or row, got '%s'\n", selection.only.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "sieve-bench lstm: unknown argument '%s' (verb options: --model lm|fmnist, --rates P,P,..., "
                   "--only bernoulli|row)\n",
                   args[i].c_str());
      return 2;
    }
  }
  if (!options.device.is_cpu()) {
    std::fprintf(stderr, "sieve-bench lstm: only --device cpu for now\n");
    return 2;
  }
  std::printf(
      "lstm: training step (forward, backward, update) with Bernoulli dropout vs row ARD (searched pattern "
      "distributions, eager update) on the non-recurrent paths, device %s; times in ms\n",
      options.device.ToString().c_str());
  std::vector<Row> rows;
  for (const LstmModel& m : kModels) {
    if (std::find(selection.models.begin(), selection.models.end(), m.key) == selection.models.end()) continue;
    if (!RunModel(m, options, selection, &rows)) return 1;
  }
  return FinishReport("lstm", options, rows);
}

}  // namespace

SIEVE_BENCH_VERB(lstm,
                 "LSTM training steps (word-level LM 2x650, Fashion-MNIST row classifier 512): Bernoulli dropout vs "
                 "row ARD at p = 0.3, 0.5, 0.7, with the FLOP ratio of the step",
                 RunLstm);

}  // namespace sieve::bench
