// The Trainer: trains and evaluates a Network on one device, in a few lines.
//
//   auto trainer = Trainer::Create(network, {.batch_size = 128, .solver = solver});
//   (*trainer)->Fit(train_set, {.epochs = 20, .eval = &test_set});
//   (*trainer)->SaveWeights("mlp.weights");
//
// Create lowers the network twice (graph/lower.h): a training graph with dropout and the backward
// appended (graph/autodiff.h), and an evaluation graph without dropout (SPEC 1: evaluation runs
// dense). Both run on executors (executor.h) that share one ParamArena: weights, gradients and
// optimizer state. Each training iteration runs the per-iteration pass pipeline (pattern sampling
// for the row and tile dropout sites, graph/pattern_pass.h, then the resolution passes), the
// training graph, then the solver step. On the CPU the step can defer the updates of weight rows and
// tiles the iteration's patterns dropped (runtime/solver/deferred_update.h, SPEC 2.8) and catch them
// up before they are read again, giving the weights of the eager update. Fit shuffles
// the units of the row sites that ask for it after their epochs (runtime/unit_shuffle.h).
//
// Batches (runtime/data/batch_source.h: a classification Dataset through a BatchLoader, or a token
// stream) feed the single data input and the label input of the network; each batch's features are
// copied into the input buffer whose per-sample shape they fill ([B, 784] becomes [B, 1, 28, 28] for
// a CNN or [B, 28, 28] for a row-sequence LSTM).
//
// Full checkpoints (runtime/checkpoint.h) store the ParamArena and what ExportState returns: named,
// versioned sections of the rest of the training state (the iteration, seeds, epochs finished, the
// carried recurrent state, the pattern-search tables).
//
// Not here: solver files and the CLI (issue 6), the snapshot file format (runtime/checkpoint.h), and
// the dropout passes themselves.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/device.h"
#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/layers.h"
#include "graph/lower.h"
#include "graph/pass.h"
#include "graph/pattern_pass.h"
#include "graph/pattern_search.h"
#include "graph/sensitivity_pass.h"
#include "runtime/data/batch_source.h"
#include "runtime/data/dataset.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"
#include "runtime/solver/deferred_update.h"
#include "runtime/solver/solver.h"

namespace sieve::runtime {

struct TrainerOptions {
  int64_t batch_size = 128;
  /// Evaluation batch size; 0 takes batch_size. The last partial batch is padded with ignored rows.
  int64_t eval_batch_size = 0;
  SolverConfig solver;
  Device device = Device::CPU();
  /// Seeds the initial weights, the data order and every dropout draw.
  uint64_t seed = 1;
  /// Carry recurrent state (LSTM h and c) from one batch to the next, as stateful language models
  /// do; otherwise every batch starts from zero state.
  bool carry_state = false;
  /// Verification, dumps and timing of the per-iteration passes.
  graph::PassOptions passes;
  /// The pattern-distribution search of the row and tile dropout sites (SPEC 2.5).
  graph::SearchOptions search;
  /// Deferred updates of the weight rows and tiles a pattern drops (SPEC 2.8, exact: the weights of the
  /// eager update); CPU only, a CUDA trainer updates every weight each step. Off by default because it
  /// measured slower on the CPU here: one flat update streams every weight at full memory bandwidth,
  /// while updating a strided subset of rows costs nearly as much (docs/benchmarks/mlp_ard.md).
  DeferMode defer_updates = DeferMode::kOff;
};

/// What one training iteration measured.
struct StepResult {
  double loss = 0.0;           ///< the mean loss of the batch (the sum over loss layers)
  double accuracy = 0.0;       ///< of the first metric (or loss) layer
  float lr = 0.0f;             ///< the learning rate the solver used
  int64_t executed_flops = 0;  ///< MatMul FLOPs of forward and backward under this iteration's patterns
  int64_t dense_flops = 0;     ///< what the same MatMuls cost dense
  /// Host wall time of the step's parts, in milliseconds: the pass pipeline (pattern sampling and
  /// resolution), catching up deferred updates, the training graph (forward and backward, waited
  /// for) and the solver's update (on a GPU queued, not waited for).
  double passes_ms = 0.0, catch_up_ms = 0.0, graph_ms = 0.0, update_ms = 0.0;
};

/// Loss and accuracy over a dataset, with the examples counted.
struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;
  int64_t examples = 0;
};

/// One epoch of Fit.
struct EpochReport {
  int64_t epoch = 0;           ///< 1-based
  int64_t iterations = 0;      ///< the trainer's iteration count at the end of the epoch
  double train_loss = 0.0;     ///< mean over the epoch's batches
  double train_accuracy = 0.0;
  std::optional<EvalResult> eval;
  double seconds = 0.0;        ///< training time of the epoch (evaluation excluded)
};

/// One named, versioned part of the training state beyond the ParamArena (Trainer::ExportState).
struct StateSection {
  std::string name;
  uint32_t version = 1;
  std::string bytes;  ///< the encoding of `version` (framework/file_io.h byte order)
};

struct FitOptions {
  int64_t epochs = 1;
  /// Evaluated after every epoch when set.
  const Dataset* eval = nullptr;
  /// Log a progress line every this many iterations (0: only per epoch).
  int64_t display = 100;
  /// Called after every epoch; returning false stops training.
  std::function<bool(const EpochReport&)> on_epoch;
};

class Trainer {
 public:
  /// Lowers `network` for training and evaluation, registers and initialises its parameters and
  /// plans both executors. Errors: those of Lower and AppendBackward (naming the layer), a network
  /// without a loss layer or with other than one data input and one label input, a solver that
  /// fails Solver::Create, a device without support.
  static StatusOr<std::unique_ptr<Trainer>> Create(const graph::Network& network, TrainerOptions options);

  /// One training iteration on a batch of host tensors: features [B, ...] of the input's dtype
  /// (float32, or int32 token ids) whose per-example size is the input's, and int32 labels [B, ...],
  /// B = batch_size.
  StatusOr<StepResult> Step(const Tensor& features, const Tensor& labels);
  /// Trains for options.epochs epochs of batches from `train`, evaluating on options.eval after each. A source
  /// that stands mid-epoch (a restored snapshot) first finishes that epoch, which counts as the first.
  StatusOr<std::vector<EpochReport>> Fit(BatchSource& train, const FitOptions& options);
  /// The same over a Dataset: shuffled with the seed, the last partial batch of an epoch dropped.
  StatusOr<std::vector<EpochReport>> Fit(const Dataset& train, const FitOptions& options);
  /// Dense evaluation (no dropout) of batches_per_epoch() batches from `source`, starting where it
  /// stands; a batch with fewer rows than eval_batch_size is padded with rows that count nothing.
  StatusOr<EvalResult> Evaluate(BatchSource& source);
  /// Dense evaluation over every example of `data`, in order.
  StatusOr<EvalResult> Evaluate(const Dataset& data);

  /// The first bytes of a file SaveWeights writes.
  static constexpr char kWeightsMagic[8] = {'S', 'I', 'E', 'V', 'E', 'W', 'T', '1'};
  /// Writes every parameter (name, shape, values) to `path` through a temporary file renamed into
  /// place, so an interrupted save never replaces a good file; deferred updates are caught up first.
  /// Errors name the path.
  Status SaveWeights(const std::string& path);
  /// Reads weights written by SaveWeights. Every parameter of the network must be in the file with
  /// its shape; errors name the path and the parameter (and both shapes). Nothing is changed on error.
  Status LoadWeights(const std::string& path);

  /// Applies every deferred update (SPEC 2.8), so that params() holds the weights and optimizer state
  /// of the eager update. Evaluate and SaveWeights do it themselves.
  Status SyncWeights();

  /// What follows the last batch of a training epoch: shuffles the units of the row sites whose schedule
  /// falls on this epoch (runtime/unit_shuffle.h) and counts the epoch. Fit calls it; a loop that drives Step
  /// itself calls it after the batch whose position is the last of its epoch.
  Status FinishEpoch();
  /// Epochs finished (FinishEpoch calls) since the start of the run, restored snapshots included.
  int64_t epochs_finished() const { return epochs_finished_; }

  /// The training state beyond params() as named sections, every one present for every network: "progress"
  /// (the iteration, the seed of every random stream, epochs finished), "carried_state" (the recurrent state
  /// carried into the next batch; empty without carry_state), "pattern_search" (each row and tile site's pattern
  /// distribution). With params() (after SyncWeights) it is all a run needs to continue exactly.
  StatusOr<std::vector<StateSection>> ExportState();
  /// Restores sections written by ExportState of a trainer built from the same network and options (the seed
  /// is taken from the sections). Every section this trainer exports must be there, no other, in a version it
  /// reads, and fit the network (the carried states' names and shapes, equal pattern distributions); all are
  /// checked before any is applied, so nothing changes on error. Deferred blocks are then current: restore
  /// params() with it.
  Status ImportState(const std::vector<StateSection>& sections);

  int64_t iteration() const { return iteration_; }
  /// The feature-map choice of the channel dropout sites (SPEC 3) with its running importance and
  /// sensitivity estimates per input map (Estimates, RestoreEstimates; EncodeEstimates for bytes).
  graph::SensitivityDropPass& channel_dropout() { return *channel_drop_; }
  const graph::SensitivityDropPass& channel_dropout() const { return *channel_drop_; }
  /// The weights, gradients and optimizer state. Rows and tiles whose updates are deferred are
  /// behind until SyncWeights.
  ParamArena& params() { return arena_; }
  const ParamArena& params() const { return arena_; }
  const graph::Graph& train_graph() const { return train_.graph; }
  const graph::Graph& eval_graph() const { return eval_.graph; }
  const Executor& train_executor() const { return *train_exec_; }
  const Solver& solver() const { return solver_; }
  const TrainerOptions& options() const { return options_; }

 private:
  // The input, label and state buffers one executor reads.
  struct Feeds {
    graph::ValueId data{}, label{};
    Tensor data_buffer, label_buffer;
    std::vector<std::pair<graph::ValueId, Tensor>> states;  // initial-state inputs, zero unless carried
  };

  Trainer(TrainerOptions options, Solver solver) : options_(std::move(options)), solver_(std::move(solver)) {}
  Status BindAll(const graph::LoweredNet& net, Executor& exec, Feeds& feeds, bool training);
  Status LoadBatch(Feeds& feeds, const Tensor& features, const Tensor& labels, int32_t pad_label) const;
  Status CarryState();
  // The sections of ExportState: how each is written and checked (trainer.cc).
  struct StatePart;
  std::vector<StatePart> StateParts();

  TrainerOptions options_;
  Solver solver_;
  graph::LoweredNet train_;
  graph::LoweredNet eval_;
  std::vector<std::pair<graph::ValueId, graph::ValueId>> grads_;  // train param value -> its gradient
  ParamArena arena_;
  std::unique_ptr<Executor> train_exec_;
  std::unique_ptr<Executor> eval_exec_;
  Feeds train_feeds_;
  Feeds eval_feeds_;
  graph::PassManager pipeline_;
  const graph::PatternSamplingPass* sampling_ = nullptr;  // in pipeline_
  graph::SensitivityDropPass* channel_drop_ = nullptr;     // in pipeline_
  std::optional<DeferredUpdates> deferred_;  // set when updates are deferred
  int64_t iteration_ = 0;
  int64_t epochs_finished_ = 0;
};

}  // namespace sieve::runtime
