// `sieve train`: trains the net of a solver file with the solver-driven loop (runtime/train_loop.h),
// from scratch, from a snapshot (--snapshot: exact resume) or from weights (--weights). SIGINT (and
// SIGTERM) snapshot and stop, SIGHUP snapshots and continues; the run's log and metrics go to
// <snapshot_prefix>_logs/<run id>/ (docs/cli.md).
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>

#include "runtime/checkpoint.h"
#include "runtime/train_log.h"
#include "runtime/train_loop.h"
#include "tools/sieve/cli.h"
#include "tools/sieve/verbs.h"

namespace sieve::cli {
namespace {

// What the signal handlers set; the loop polls it between iterations.
runtime::LoopControl g_control;
std::atomic<int> g_stop_signals{0};

extern "C" void OnStopSignal(int) {
  if (g_stop_signals.fetch_add(1) > 0) {
    // Only async-signal-safe calls here. The snapshot is written to a temporary file and renamed, so
    // nothing a second signal interrupts can leave a broken snapshot behind.
    static const char kMessage[] = "sieve train: stop already requested; finishing the snapshot, then stopping\n";
    [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  }
  g_control.stop.store(true);
}

extern "C" void OnSnapshotSignal(int) { g_control.snapshot.store(true); }

// Installs the handlers for the loop's lifetime (SA_RESTART: a signal never makes a write fail).
class SignalScope {
 public:
  SignalScope() {
    Install(SIGINT, OnStopSignal, &old_int_);
    Install(SIGTERM, OnStopSignal, &old_term_);
    Install(SIGHUP, OnSnapshotSignal, &old_hup_);
  }
  // Once a stop was requested the stop handlers stay: a second SIGINT arriving after the loop, while the
  // command reports and exits, must not kill it halfway through.
  ~SignalScope() {
    if (g_stop_signals.load() == 0) {
      sigaction(SIGINT, &old_int_, nullptr);
      sigaction(SIGTERM, &old_term_, nullptr);
    }
    sigaction(SIGHUP, &old_hup_, nullptr);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  static void Install(int signal, void (*handler)(int), struct sigaction* old) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(signal, &action, old);
  }
  struct sigaction old_int_ {
  }, old_term_{}, old_hup_{};
};

// A new folder <prefix>_logs/<YYYYMMDD-HHMMSS>[-k] for this run.
StatusOr<std::string> MakeRunFolder(const std::string& snapshot_prefix) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &local);
  const std::filesystem::path base = snapshot_prefix + "_logs";
  for (int k = 0; k < 1000; ++k) {
    const std::filesystem::path run = base / (std::string(stamp) + (k ? "-" + std::to_string(k) : ""));
    std::error_code error;
    std::filesystem::create_directories(base, error);
    SIEVE_ENSURE(!error, StatusCode::kUnavailable,
                 "cannot create the log folder '" << base.string() << "': " << error.message());
    if (std::filesystem::create_directory(run, error)) return run.string();
    SIEVE_ENSURE(!error, StatusCode::kUnavailable,
                 "cannot create the run folder '" << run.string() << "': " << error.message());
  }
  return SIEVE_ERROR(StatusCode::kUnavailable, "too many runs started at " << stamp << " in '" << base.string() << "'");
}

int RunTrain(const Verb& verb, const Args& args) {
  if (args.Has("snapshot") && args.Has("weights")) {
    return UsageError(verb,
                      "--snapshot and --weights exclude each other: --snapshot resumes a run (weights, solver "
                      "state, iteration, data position), --weights only initialises the weights");
  }
  if (args.Has("snapshot") && args.Has("seed")) {
    return UsageError(verb,
                      "--snapshot and --seed exclude each other: a resumed run continues its snapshot's random "
                      "streams, which the seed of the original run started");
  }
  const std::string solver_path = args.Get("solver");
  StatusOr<runtime::SolverFile> solver = runtime::LoadSolverFile(solver_path);
  if (!solver.ok()) return Fail(verb, solver.status());
  // The overrides come before anything the seed or the prefix decides (weights, data order, folders).
  if (args.Has("seed")) {
    StatusOr<int64_t> seed = args.GetInt("seed", 0, std::numeric_limits<int64_t>::max());
    if (!seed.ok()) return UsageError(verb, UserMessage(seed.status()));
    solver->random_seed = static_cast<uint64_t>(*seed);
  }
  if (args.Has("snapshot-prefix")) {
    if (args.Get("snapshot-prefix").empty()) return UsageError(verb, "--snapshot-prefix must not be empty");
    solver->snapshot_prefix = args.Get("snapshot-prefix");
  }
  StatusOr<Device> device = DeviceFromArgs(args, solver->device);
  if (!device.ok()) return UsageError(verb, UserMessage(device.status()));
  StatusOr<Model> model = ReadModel(solver->net, *solver, *device);
  if (!model.ok()) return Fail(verb, model.status());

  std::optional<runtime::SnapshotInfo> resume;
  if (args.Has("snapshot")) {
    const std::string& path = args.Get("snapshot");
    StatusOr<runtime::SnapshotInfo> info = runtime::ReadSnapshotInfo(path);
    if (!info.ok()) return Fail(verb, info.status());
    if (info->iteration >= solver->max_iter) {
      return Fail(verb, Status(StatusCode::kFailedPrecondition,
                               "snapshot '" + path + "' was taken after iteration " + std::to_string(info->iteration) +
                                   ", which is not below max_iter = " + std::to_string(solver->max_iter) + " of '" +
                                   solver_path + "': there is nothing left to train; raise max_iter to train on"));
    }
    resume = *info;
  }

  // The data first: a missing dataset is reported before anything is built or created.
  StatusOr<std::unique_ptr<runtime::BatchSource>> train = runtime::OpenNetSource(
      model->train_net, runtime::NetPhase::kTrain, model->options.batch_size, solver->random_seed);
  if (!train.ok()) return Fail(verb, train.status());
  StatusOr<std::unique_ptr<runtime::BatchSource>> test = runtime::OpenNetSource(
      model->test_net, runtime::NetPhase::kTest, model->options.eval_batch_size, solver->random_seed);
  if (!test.ok()) return Fail(verb, test.status());

  StatusOr<std::string> run_folder = MakeRunFolder(solver->snapshot_prefix);
  if (!run_folder.ok()) return Fail(verb, run_folder.status());
  runtime::TrainLogOptions log_options;
  log_options.console = stderr;
  log_options.progress = isatty(STDERR_FILENO) == 1;
  log_options.log_path = *run_folder + "/train.log";
  log_options.metrics_path = *run_folder + "/metrics.jsonl";
  log_options.capture_library_log = true;
  StatusOr<std::unique_ptr<runtime::TrainLog>> log = runtime::TrainLog::Open(log_options);
  if (!log.ok()) return Fail(verb, log.status());
  const auto fail = [&](const Status& status) {
    (*log)->Line('E', UserMessage(status));
    return kExitFailure;
  };
  (*log)->Info("Solver " + solver_path + ", net " + solver->net + ", " + device->ToString() + ", batch " +
               std::to_string(model->options.batch_size) + ", seed " + std::to_string(solver->random_seed));
  (*log)->Info("Run folder " + *run_folder);

  if (Status st = CreateTrainer(*model); !st.ok()) return fail(st);
  runtime::Trainer& trainer = *model->trainer;
  if (resume) {
    (*log)->Info("Resuming from " + args.Get("snapshot") + " (iteration " + std::to_string(resume->iteration) + ")");
    StatusOr<runtime::SnapshotInfo> restored = runtime::RestoreSnapshot(trainer, train->get(), args.Get("snapshot"));
    if (!restored.ok()) return fail(restored.status());
  } else if (args.Has("weights")) {
    (*log)->Info("Initialising the weights from " + args.Get("weights"));
    if (Status st = runtime::LoadWeightsFromAny(trainer, args.Get("weights")); !st.ok()) return fail(st);
  }

  runtime::TrainLoopOptions loop;
  loop.solver = *solver;
  loop.control = &g_control;
  auto signals = std::make_unique<SignalScope>();
  StatusOr<runtime::TrainLoopResult> result = runtime::RunTrainLoop(trainer, **train, test->get(), loop, **log);
  signals.reset();  // a signal during the summary below ends the process as usual
  if (!result.ok()) return fail(result.status());
  if (result->test) {
    // A language model's quality is its perplexity per token, exp(loss) (runtime/train_loop.h).
    char perplexity[48] = "";
    if (runtime::HasPerTokenLoss(trainer.eval_graph())) {
      std::snprintf(perplexity, sizeof(perplexity), ", perplexity = %.2f", std::exp(result->test->loss));
    }
    char line[200];
    std::snprintf(line, sizeof(line),
                  "Final test accuracy = %.4f, loss = %.4f%s (after iteration %lld, %lld test examples)",
                  result->test->accuracy, result->test->loss, perplexity, static_cast<long long>(result->iteration),
                  static_cast<long long>(result->test->examples));
    (*log)->Info(line);
  }
  (*log)->Info("Log: " + log_options.log_path);
  (*log)->Info("Metrics: " + log_options.metrics_path);
  if (!result->last_snapshot.empty()) (*log)->Info("Last snapshot: " + result->last_snapshot);
  return kExitOk;
}

}  // namespace

const Verb kTrainVerb{
    .name = "train",
    .summary = "train the net of a solver file (Caffe's solver semantics)",
    .usage = "sieve train --solver FILE [--snapshot FILE | --weights FILE] [--seed N] [--snapshot-prefix PREFIX] "
             "[--gpu N]",
    .description =
        "Trains from scratch, resumes exactly from a snapshot (--snapshot), or starts from the weights of a\n"
        "snapshot or weights file (--weights). Snapshots go to <snapshot_prefix>_iter_<N>.sievestate; the log\n"
        "(train.log) and the metrics (metrics.jsonl, one JSON object per line) to <snapshot_prefix>_logs/<run>/.\n"
        "SIGINT or SIGTERM: snapshot and stop (exit 0); SIGHUP: snapshot and continue. --seed and\n"
        "--snapshot-prefix override the solver file's random_seed and snapshot_prefix (relative to the working\n"
        "folder), so one solver file trains several seeds side by side.",
    .flags = {{"solver", "FILE", "the solver file (protobuf text; docs/model_files.md)"},
              {"snapshot", "FILE", "resume from this snapshot (.sievestate)"},
              {"weights", "FILE", "initialise the weights from this snapshot or weights file"},
              {"seed", "N", "use this random_seed instead of the solver file's (not with --snapshot)"},
              {"snapshot-prefix", "PREFIX", "write snapshots and run folders under PREFIX instead of snapshot_prefix"},
              {"gpu", "N", "train on CUDA device N (overrides solver_mode and device_id)"}},
    .required = {"solver"},
    .run = RunTrain};

}  // namespace sieve::cli
