// The solver-file-driven training loop of `sieve train`, with Caffe's semantics (Solver::Step): test
// every test_interval iterations on test_iter batches, log every display iterations, snapshot every
// snapshot iterations and at the end, stop at max_iter — and stop or snapshot when asked from outside
// (the CLI's SIGINT and SIGHUP handlers set a LoopControl; the loop acts between iterations).
//
// The loop drives Trainer::Step with batches from a BatchSource, so a snapshot (runtime/checkpoint.h)
// holds the source's position and a resumed loop trains on exactly the batches the uninterrupted one
// would have: its losses are bit-identical on the CPU. At each epoch boundary of the training source it
// shuffles the units of the row dropout sites that ask for it, as Trainer::Fit does.
//
// A language model (a loss per time step, HasPerTokenLoss) also gets its perplexity, exp(loss), logged: beside
// the test pass's loss ("Test net output #2: perplexity = ...") and in the metrics of every training iteration
// and test pass.
//
// Beside the log's metrics file (when it has one) the loop writes a TensorBoard event file with the same
// numbers (runtime/tensorboard_writer.h; tags "<phase>/<metric>", "train/drop_rate/<site>") and, with every
// display line, a histogram of each sensitivity site's running sensitivity estimates ("sensitivity/<site>").
//
// Also here: the batch sources a net file's data source gives (Fashion-MNIST, a text corpus).
// Not here: the log format (train_log.h), the checkpoint format (checkpoint.h), argument parsing and
// signal handlers (tools/sieve/).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "framework/status.h"
#include "graph/layers.h"
#include "runtime/config/net_config.h"
#include "runtime/config/solver_config.h"
#include "runtime/data/batch_source.h"
#include "runtime/train_log.h"
#include "runtime/trainer.h"

namespace sieve::runtime {

/// Requests from outside the loop, read between iterations. Signal handlers may set them: the flags
/// are lock-free atomics.
struct LoopControl {
  std::atomic<bool> snapshot{false};  ///< write a snapshot at the next iteration boundary, then continue
  std::atomic<bool> stop{false};      ///< write a snapshot at the next iteration boundary, then stop
};
static_assert(std::atomic<bool>::is_always_lock_free, "LoopControl is set from signal handlers");

/// What the loop needs besides the trainer and the data.
struct TrainLoopOptions {
  /// max_iter, test_iter, test_interval, test_initialization, display, snapshot, snapshot_prefix,
  /// snapshot_after_train (the rest of the file configures the Trainer).
  SolverFile solver;
  /// Polled between iterations; may be null.
  LoopControl* control = nullptr;
  /// Called after every training iteration with the trainer's new iteration count (tests).
  std::function<void(int64_t iteration, const StepResult& step)> on_iteration;
};

/// How a loop ended.
struct TrainLoopResult {
  int64_t iteration = 0;           ///< the trainer's iteration count at the end
  bool stopped = false;            ///< a stop request ended it before max_iter
  std::optional<EvalResult> test;  ///< the last test pass, when one ran
  std::string last_snapshot;       ///< the last snapshot written, "" when none
  std::string tensorboard_events;  ///< the TensorBoard event file written, "" when the log has no metrics file
};

/// `<prefix>_iter_<iteration>.sievestate`.
std::string SnapshotPath(const std::string& prefix, int64_t iteration);

/// Trains from trainer.iteration() to solver.max_iter on batches from `train` (positioned where the
/// trainer's state expects: a fresh source for a fresh trainer, the snapshot's position after
/// RestoreSnapshot), testing on `test` (may be null when test_interval is 0; each pass is its first
/// test_iter batches, from its start). Logs Caffe-style lines and metrics to `log`, and the same metrics
/// to a new TensorBoard event file in the metrics file's folder; snapshots create the prefix's folder when
/// missing. Errors: the trainer's, a snapshot or event file that cannot be written (naming the path), a
/// trainer already at or past max_iter (naming both).
StatusOr<TrainLoopResult> RunTrainLoop(Trainer& trainer, BatchSource& train, BatchSource* test,
                                       const TrainLoopOptions& options, TrainLog& log);

/// Seeks `source` to its start and returns its first min(`batches`, batches per epoch) batches as a
/// source whose epoch they are (it reads through `source`, which must outlive it): the test pass of
/// test_iter batches, and `sieve test --iterations`. INVALID_ARGUMENT for batches < 1.
StatusOr<std::unique_ptr<BatchSource>> FirstBatches(BatchSource& source, int64_t batches);

/// The batches of a net file's data source for `phase`: Fashion-MNIST (the training split shuffled by
/// `seed` with the last partial batch of each epoch left out, or the test split in order with a
/// partial last batch), viewed flat, as 28 rows or as 1x28x28 by the Input's per-sample shape, which
/// must hold 784 values; or a text corpus's training or test split as a TokenStream of `batch_size`
/// rows of the Input's length. A net without a source reads Fashion-MNIST when its Input holds 784
/// float values. Errors: the loaders' (NOT_FOUND names the Debian package or data-prep script that
/// provides the data), an Input whose shape or dtype the source cannot fill (naming both).
StatusOr<std::unique_ptr<BatchSource>> OpenNetSource(const NetConfig& net, NetPhase phase, int64_t batch_size,
                                                     uint64_t seed);

/// Whether exp(loss) of the network is its perplexity per token: its labels have a time axis (a leaf label of
/// shape [batch, steps, ...], a language model's next tokens) and it has one loss, a softmax cross-entropy of
/// weight 1, so that its loss is the mean cross-entropy per token. The loop then logs the perplexity.
bool HasPerTokenLoss(const graph::Graph& graph);

/// Whether a net's data source is a text corpus, whose language models carry their recurrent state
/// from one batch to the next (TrainerOptions::carry_state).
bool IsStatefulSource(const NetConfig& net);

}  // namespace sieve::runtime
