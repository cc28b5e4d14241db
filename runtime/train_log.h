// The training log of `sieve train` (runtime/train_loop.h): Caffe-style log lines
//
//   I1126 20:31:02.123 train_loop.cc:88] Iteration 100, loss = 0.4213, lr = 0.01, 12.3 iter/s, ETA 1m20s
//
// written to the console and to the run's log file, a progress line that redraws itself in place
// (carriage return) when the console is a terminal and is left out when it is not (piped output stays
// one plain line per event), and the run's metrics file: one JSON object per line (docs/cli.md gives
// the fields). While a TrainLog captures the library log (framework/logging.h), the lines the library
// logs (the Trainer's, the loaders') go through it too, in the same format.
//
// Not here: what to log and when (the loop), where a run's files go (the CLI chooses the folder).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/status.h"

namespace spdlog::sinks {
class sink;
}  // namespace spdlog::sinks

namespace sieve::runtime {

/// glog's line prefix, as Caffe prints it (without the thread id): severity letter ('I', 'W', 'E'),
/// month and day, local time to the millisecond, the source file's base name and line:
/// "I1126 20:31:02.123 train_loop.cc:88] ".
std::string LogLinePrefix(char severity, std::chrono::system_clock::time_point when, std::string_view file, int line);

/// A duration for humans, rounded down to whole seconds: "45s", "1m20s", "2h03m", "3d04h".
std::string FormatDuration(double seconds);

/// One line of the metrics file. `phase` "train" lines come from one training iteration, "test"
/// lines from one test pass; the optional fields are written only when set.
struct MetricsRecord {
  int64_t iteration = 0;  ///< training iterations done (a test pass at N ran after N iterations)
  std::string phase;      ///< "train" or "test"
  double loss = 0.0;
  double accuracy = 0.0;
  /// Language models (a loss per time step): exp(loss), the perplexity per token of the batch or the test pass
  std::optional<double> perplexity;
  std::optional<double> lr;              ///< train: the rate the solver used
  std::optional<double> step_ms;         ///< train: the iteration's host wall time; test: the pass's
  std::optional<double> flop_ratio;      ///< train: executed / dense MatMul FLOPs of forward and backward
  std::optional<double> examples_per_s;  ///< train: the batch's examples over the iteration's wall time
  /// train: each patterned dropout site's achieved drop rate this iteration, by site name ("drop_rate": {...})
  std::vector<std::pair<std::string, double>> drop_rates;
  double wall_s = 0.0;  ///< seconds since the log was opened
};

/// The record as one JSON object without a newline; numbers with up to 9 significant digits (17 for
/// loss and accuracy, so a file compares bit for bit).
std::string MetricsJson(const MetricsRecord& record);

struct TrainLogOptions {
  /// Where lines go for the user (stderr in the CLI); not owned, may be null.
  std::FILE* console = stderr;
  /// Draw the progress line (the CLI: when the console is a terminal).
  bool progress = false;
  /// The log file, appended to; "" for none.
  std::string log_path;
  /// The metrics file, appended to; "" for none.
  std::string metrics_path;
  /// Route the library's log (framework/logging.h) through this log while it lives, then restore it.
  bool capture_library_log = false;
};

class TrainLog {
 public:
  /// Opens the files (their folders must exist). UNAVAILABLE names a file that cannot be opened.
  static StatusOr<std::unique_ptr<TrainLog>> Open(TrainLogOptions options);
  ~TrainLog();
  TrainLog(const TrainLog&) = delete;
  TrainLog& operator=(const TrainLog&) = delete;

  /// A log line of severity 'I', 'W' or 'E' with the caller's file and line, to the console and the
  /// log file; a progress line on the console is cleared first.
  void Line(char severity, std::string_view message, std::source_location where = std::source_location::current());
  void Info(std::string_view message, std::source_location where = std::source_location::current()) {
    Line('I', message, where);
  }
  void Warn(std::string_view message, std::source_location where = std::source_location::current()) {
    Line('W', message, where);
  }
  /// Redraws the progress line (options.progress only; never written to the files).
  void Progress(std::string_view text);
  /// Appends one line to the metrics file (nothing without one) and flushes it.
  Status Metrics(MetricsRecord record);
  /// Seconds since Open.
  double seconds() const;

  const TrainLogOptions& options() const { return options_; }

 private:
  explicit TrainLog(TrainLogOptions options);
  friend class LibraryLogSink;
  // Writes an already formatted line (no newline) under the lock.
  void WriteLine(const std::string& line);

  TrainLogOptions options_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::FILE* log_file_ = nullptr;
  std::FILE* metrics_file_ = nullptr;
  bool progress_shown_ = false;
  std::chrono::steady_clock::time_point last_progress_{};
  std::vector<std::shared_ptr<spdlog::sinks::sink>> saved_sinks_;  // the library's, while captured
};

}  // namespace sieve::runtime
