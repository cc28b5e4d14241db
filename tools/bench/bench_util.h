// Shared machinery of `sieve-bench`: the verb registry, common options, interleaved timing,
// result rows, the printed table and the JSON report of SPEC section 5.
//
// Adding a verb is one function and one registration line in its own file:
//
//   int RunMlp(const sieve::bench::Options& options) { ... return 0; }
//   SIEVE_BENCH_VERB(mlp, "whole MLP training step, dense vs row ARD", RunMlp);
//
// plus the file in tools/bench/CMakeLists.txt.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/device.h"

namespace sieve::runtime {
struct StepResult;
}  // namespace sieve::runtime

namespace sieve::bench {

/// Options every verb understands; verb-specific flags stay in `args`.
struct Options {
  std::string json_path;          ///< --json PATH: also write the JSON report here
  bool quick = false;             ///< --quick: a reduced matrix that runs in about a minute
  int reps = 0;                   ///< --reps N: timed repetitions (0: the verb's default)
  int threads = 0;                ///< --threads N: OpenMP/OpenBLAS threads (0: one per core)
  Device device = Device::CPU();  ///< --device cpu|cuda
  std::vector<std::string> args;  ///< anything else, for the verb
  std::string command_line;       ///< the whole invocation, for the report

  /// `reps` if given, else `quick_default` or `full_default`.
  int Reps(int full_default, int quick_default) const { return reps > 0 ? reps : quick ? quick_default : full_default; }
};

using VerbFn = int (*)(const Options&);

struct Verb {
  std::string name;
  std::string help;
  VerbFn run;
};

/// Adds a verb to the registry (called from static initialisers via SIEVE_BENCH_VERB).
bool RegisterVerb(const char* name, const char* help, VerbFn run);
/// The registered verbs, sorted by name.
std::vector<Verb> Verbs();

#define SIEVE_BENCH_VERB(name, help, fn) \
  [[maybe_unused]] static const bool sieve_bench_verb_##name = ::sieve::bench::RegisterVerb(#name, help, fn)

/// One thing to time: a name and a closure that runs it once (asynchronously on a GPU is fine).
struct Variant {
  std::string name;
  std::function<void()> run;
};

/// Per-repetition wall times of one variant, in milliseconds, and their summary.
struct Timing {
  std::vector<double> ms;
  double median = 0, min = 0, max = 0;

  static Timing FromSamples(std::vector<double> samples);
  /// Rep-by-rep sum of several timings taken in the same interleaved run (e.g. the three GEMMs
  /// of one layer), so the summary describes the sum, not a sum of medians.
  static Timing Sum(const std::vector<const Timing*>& parts);
};

/// Runs each variant `warmup` times, then `reps` rounds in which every variant runs once in turn
/// (round-robin, so machine noise hits all variants alike). Each sample is the steady_clock time
/// of one run followed by Synchronize(device).
std::vector<Timing> TimeInterleaved(const std::vector<Variant>& variants, int reps, int warmup, Device device);

/// One result row; unset optional fields are omitted from the JSON.
struct Row {
  std::string name;
  Timing timing;
  std::optional<double> speedup;                          ///< reference variant's time / this one's
  std::optional<double> ideal;                            ///< analytic ratio (dense FLOPs / executed FLOPs)
  std::optional<double> efficiency;                       ///< speedup / ideal
  std::optional<double> target;                           ///< the efficiency (or ratio) this row is meant to reach
  std::optional<double> vs_pytorch;                       ///< PyTorch's time for the same model / this one's
  std::vector<std::pair<std::string, std::string>> text;  ///< extra string fields
  std::vector<std::pair<std::string, double>> numbers;    ///< extra numeric fields

  /// Sets speedup against `reference_ms` and, with `ideal_ratio`, ideal and efficiency.
  void Compare(double reference_ms, std::optional<double> ideal_ratio);
};

/// Sets OpenMP and OpenBLAS threads (0: one per core) and prints the setting.
void ConfigureThreads(int threads);

/// Prints rows as an aligned table under `title` (with a vs_pt column when any row has vs_pytorch).
void PrintTable(const std::string& title, const std::vector<Row>& rows);

/// Writes {"machine": {...}, "verb": ..., "rows": [...]} to `path`; false with a message on failure.
bool WriteJson(const std::string& path, const std::string& verb, const Options& options, const std::vector<Row>& rows,
               std::string* error);

/// A verb's last step: with --json, writes `rows` there (WriteJson) and says where. Returns the verb's exit
/// code: 0, or 1 after printing why the report could not be written.
int FinishReport(const std::string& verb, const Options& options, const std::vector<Row>& rows);

/// The CPU's model name from /proc/cpuinfo ("unknown" when it is not there), as the JSON's machine reports it.
std::string CpuModel();
/// The name of a CUDA device (as the JSON's machine.gpu); "" for the CPU or in a build without CUDA.
std::string GpuName(Device device);
/// The current UTC time as "YYYY-MM-DDTHH:MM:SSZ", as the JSON's date.
std::string UtcNow();

/// Escapes a string for a JSON string literal (quotes, backslashes, control characters).
std::string JsonEscape(const std::string& s);

/// Milliseconds from `start` until now, on the steady clock.
inline double Millis(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

/// The arithmetic mean of `values` (0 for none): what a run of steps costs on average.
inline double Mean(const std::vector<double>& values) {
  double sum = 0;
  for (const double x : values) sum += x;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

/// What the timed training steps of one configuration measured (the lstm, cnn and zoo verbs): each step's
/// wall time and the parts runtime::StepResult times, and the MatMul FLOPs summed over the steps.
struct StepLog {
  std::vector<double> step_ms, passes_ms, graph_ms, update_ms;
  double executed_flops = 0, dense_flops = 0;
  double last_loss = 0;

  /// Appends one step that took `wall_ms` and returned `result`.
  void Record(double wall_ms, const runtime::StepResult& result);
  double steps() const { return static_cast<double>(step_ms.size()); }
  /// Dense / executed MatMul FLOPs of the recorded steps: the speedup the FLOP count promises.
  double FlopRatio() const { return dense_flops / executed_flops; }
};

}  // namespace sieve::bench
