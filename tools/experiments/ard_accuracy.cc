// The ARD accuracy study of issue 4: trains the Fashion-MNIST MLP 784-H-H-10 with one dropout
// method per run (none, Bernoulli, row ARD with the searched distribution, row ARD with one fixed dp,
// tile ARD; for the doc's ablation also searched row ARD with nominal scaling, "row-nominal", over
// the generalized (k, T) patterns, "row-kt", and with dp <= 4, "row-d4"; and the searches with the
// per-batch rate-spread term of docs/pattern_search.md, strided "row-v2", (k, T) "row-kt-v2" and "tile-v2") and
// appends one JSON line per epoch to a results file: the configuration, train loss and accuracy (means over the epoch's
// batches, under dropout), test loss and accuracy (dense, on the 10,000 Fashion-MNIST test images)
// and the epoch's training seconds. docs/accuracy/ard_mlp.md holds the study, its commands and its
// results; tools/plots/ard_accuracy.py turns the lines into tables and plots.
//
// Usage: ard_accuracy --out PATH [--methods M,M,...] [--rates P,P,...] [--seeds S,S,...]
//                     [--hidden H] [--epochs N] [--lr LR] [--data DIR]
// Every (method, rate, seed) of the lists is one run, trained in turn ("none" runs once per seed, at
// rate 0). A run whose final epoch is already in the file under the same configuration is skipped,
// so an interrupted study resumes by running the same command again; a run cut short is trained
// again from its start, and its new lines follow the old ones (readers keep the last line of each
// epoch). Each line is written with one append-mode write, so two processes can share the file.
//
// The schedule is the same for every method: SGD with momentum 0.9, weight decay 5e-4, batch 128,
// the learning rate multiplied by 0.1 after half and after three quarters of the epochs. What this
// is not: a tuning tool (nothing here looks at the test set to choose anything) or a benchmark (the
// seconds are measured on a shared machine, see the doc).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "graph/sequential.h"
#include "runtime/data/dataset.h"
#include "runtime/trainer.h"

namespace sieve {
namespace {

constexpr int64_t kBatch = 128;
constexpr float kMomentum = 0.9f;
constexpr float kWeightDecay = 5e-4f;

struct Args {
  std::string out;
  std::vector<std::string> methods = {"none", "bernoulli", "row", "row-fixed", "tile"};
  std::vector<double> rates = {0.3, 0.5, 0.7};
  std::vector<uint64_t> seeds = {1, 2, 3};
  int64_t hidden = 512;
  int64_t epochs = 12;
  float lr = 0.01f;
  std::string data;
};

/// One training run of the study.
struct RunConfig {
  std::string method;
  double rate = 0.0;
  uint64_t seed = 1;
};

/// The methods of the study, then three variants of searched row ARD for the ablation in the doc.
constexpr const char* kMethods[] = {"none",        "bernoulli", "row",    "row-fixed", "tile",
                                    "row-nominal", "row-kt",    "row-d4", "row-v2",    "row-kt-v2",
                                    "tile-v2"};

bool KnownMethod(const std::string& method) {
  for (const char* known : kMethods) {
    if (method == known) return true;
  }
  return false;
}

/// The dropout layer of `method` at `rate`; "none" has none. "row-nominal" is searched row ARD scaled by the
/// nominal 1/(1-p) instead of each pattern's 1/(1-r); "row-kt" is searched row ARD over the generalized
/// (k, T) patterns; "row-d4" is searched row ARD with dp <= 4 (no pattern scaled by more than 4).
graph::DropoutSpec MakeDropout(const std::string& method, double rate) {
  if (method == "bernoulli") return graph::Dropout(rate);
  if (method == "tile" || method == "tile-v2") return graph::TileDropout(rate);
  graph::DropoutSpec spec = graph::RowDropout(rate);
  if (method == "row-fixed") spec.family = graph::PatternFamily::kFixed;
  if (method == "row-nominal") spec.scaling = graph::ScaleMode::kNominal;
  if (method == "row-kt" || method == "row-kt-v2") spec.generalized = true;
  if (method == "row-d4") spec.max_period = 4;
  return spec;
}

/// The pattern search settings of `method`: the default search (with the rate-spread term) for the "-v2"
/// methods; for every other method the search the study and its ablation ran, without that term (spread
/// weight 0), so that their lines in the results file stay reproducible.
graph::SearchOptions SearchOptionsFor(const std::string& method) {
  graph::SearchOptions options;
  if (!method.ends_with("-v2")) options.spread_weight = 0.0;
  return options;
}

/// The MLP 784-H-H-10 with the run's dropout after each hidden layer's ReLU.
StatusOr<graph::Network> BuildMlp(const RunConfig& run, int64_t hidden) {
  graph::Sequential mlp({runtime::kFashionMnistRows * runtime::kFashionMnistCols});
  for (int layer = 0; layer < 2; ++layer) {
    mlp.Add(graph::FullyConnected(hidden)).Add(graph::ReLU());
    if (run.method != "none") mlp.Add(MakeDropout(run.method, run.rate));
  }
  mlp.Add(graph::FullyConnected(runtime::kFashionMnistClasses));
  return mlp.Build();
}

/// The start of every line of `run`: everything that identifies the run and its schedule, up to and
/// including the key of the epoch number. Lines of a finished run are recognised by it.
std::string LinePrefix(const RunConfig& run, const Args& args) {
  std::ostringstream prefix;
  prefix << "{\"method\":\"" << run.method << "\",\"p\":" << run.rate << ",\"seed\":" << run.seed
         << ",\"hidden\":" << args.hidden << ",\"epochs\":" << args.epochs << ",\"batch\":" << kBatch
         << ",\"base_lr\":" << args.lr << ",\"epoch\":";
  return prefix.str();
}

/// `value` with `decimals` digits after the point, or null when it is not finite (a diverged run's loss):
/// JSON has no NaN.
std::string JsonNumber(double value, int decimals = 6) {
  if (!std::isfinite(value)) return "null";
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

/// Whether `path` already holds the final epoch of the run whose lines start with `prefix`.
bool RunComplete(const std::string& path, const std::string& prefix, int64_t epochs) {
  std::ifstream in(path);
  const std::string last = prefix + std::to_string(epochs) + ",";
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(last)) return true;
  }
  return false;
}

/// Appends `line` and a newline to `path` with one write on an O_APPEND descriptor, so concurrent
/// writers never interleave within a line.
Status AppendLine(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  SIEVE_ENSURE(fd >= 0, StatusCode::kInternal, "cannot open " << path << " for appending: " << std::strerror(errno));
  const std::string text = line + "\n";
  const ssize_t written = ::write(fd, text.data(), text.size());
  const int write_errno = errno;
  ::close(fd);
  SIEVE_ENSURE(written == static_cast<ssize_t>(text.size()), StatusCode::kInternal,
               "short write to " << path << " (" << written << " of " << text.size()
                                 << " bytes): " << std::strerror(write_errno));
  return Status::Ok();
}

/// The iterations of the two learning-rate drops, after half and after three quarters of the epochs
/// (whole epochs, rounded down); a drop that would come at iteration 0 or repeat the previous one is left out.
std::vector<int64_t> StepValues(int64_t epochs, int64_t iterations_per_epoch) {
  std::vector<int64_t> steps;
  for (int64_t epoch : {epochs / 2, epochs * 3 / 4}) {
    const int64_t iteration = epoch * iterations_per_epoch;
    if (iteration > 0 && (steps.empty() || iteration > steps.back())) steps.push_back(iteration);
  }
  return steps;
}

/// Trains one run, appending a line per epoch to args.out.
Status TrainRun(const RunConfig& run, const Args& args, const runtime::Dataset& train, const runtime::Dataset& test) {
  SIEVE_ASSIGN_OR_RETURN(graph::Network network, BuildMlp(run, args.hidden));
  const int64_t iterations_per_epoch = train.size() / kBatch;  // Fit drops the last partial batch
  runtime::TrainerOptions options;
  options.batch_size = kBatch;
  options.seed = run.seed;
  options.search = SearchOptionsFor(run.method);
  options.solver.type = ops::SolverType::kSGD;
  options.solver.momentum = kMomentum;
  options.solver.weight_decay = kWeightDecay;
  options.solver.lr.base_lr = args.lr;
  options.solver.lr.type = runtime::LrPolicyType::kMultiStep;
  options.solver.lr.gamma = 0.1f;
  options.solver.lr.stepvalue = StepValues(args.epochs, iterations_per_epoch);
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Trainer> trainer, runtime::Trainer::Create(network, options));

  const std::string prefix = LinePrefix(run, args);
  Status write_status = Status::Ok();
  runtime::FitOptions fit{.epochs = args.epochs, .eval = &test, .display = 0};
  fit.on_epoch = [&](const runtime::EpochReport& report) {
    const std::string line =
        prefix + std::to_string(report.epoch) + ",\"train_loss\":" + JsonNumber(report.train_loss) +
        ",\"train_acc\":" + JsonNumber(report.train_accuracy) + ",\"test_loss\":" + JsonNumber(report.eval->loss) +
        ",\"test_acc\":" + JsonNumber(report.eval->accuracy) + ",\"seconds\":" + JsonNumber(report.seconds, 3) + "}";
    write_status = AppendLine(args.out, line);
    return write_status.ok();
  };
  SIEVE_ASSIGN_OR_RETURN(const std::vector<runtime::EpochReport> reports, trainer->Fit(train, fit));
  SIEVE_RETURN_IF_ERROR(write_status);
  const runtime::EpochReport& last = reports.back();
  std::printf("ard_accuracy: %s p=%g seed=%llu: test accuracy %.4f after %lld epochs\n", run.method.c_str(), run.rate,
              static_cast<unsigned long long>(run.seed), last.eval->accuracy, static_cast<long long>(last.epoch));
  std::fflush(stdout);
  return Status::Ok();
}

int Run(const Args& args) {
  std::vector<RunConfig> runs;
  for (const std::string& method : args.methods) {
    for (uint64_t seed : args.seeds) {
      if (method == "none") {
        runs.push_back({method, 0.0, seed});
        continue;
      }
      for (double rate : args.rates) runs.push_back({method, rate, seed});
    }
  }
  std::vector<RunConfig> pending;
  for (const RunConfig& run : runs) {
    if (RunComplete(args.out, LinePrefix(run, args), args.epochs)) {
      std::printf("ard_accuracy: %s p=%g seed=%llu already complete in %s\n", run.method.c_str(), run.rate,
                  static_cast<unsigned long long>(run.seed), args.out.c_str());
    } else {
      pending.push_back(run);
    }
  }
  if (pending.empty()) return 0;

  auto train = runtime::LoadFashionMnist(args.data, runtime::Split::kTrain);
  auto test = runtime::LoadFashionMnist(args.data, runtime::Split::kTest);
  if (!train.ok() || !test.ok()) {
    std::fprintf(stderr, "ard_accuracy: %s\n", (train.ok() ? test.status() : train.status()).ToString().c_str());
    return 1;
  }
  for (const RunConfig& run : pending) {
    if (Status status = TrainRun(run, args, *train, *test); !status.ok()) {
      std::fprintf(stderr, "ard_accuracy: %s p=%g seed=%llu: %s\n", run.method.c_str(), run.rate,
                   static_cast<unsigned long long>(run.seed), status.ToString().c_str());
      return 1;
    }
  }
  return 0;
}

int Usage(const std::string& error) {
  std::fprintf(stderr,
               "%s%susage: ard_accuracy --out PATH "
               "[--methods none,bernoulli,row,row-fixed,tile,row-nominal,row-kt,row-d4,row-v2,row-kt-v2,tile-v2] "
               "[--rates P,P,...] [--seeds S,S,...] [--hidden H] [--epochs N] [--lr LR] [--data DIR]\n",
               error.c_str(), error.empty() ? "" : "\n");
  return 2;
}

/// Splits "a,b,c" at the commas.
std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> items;
  std::stringstream stream(list);
  for (std::string item; std::getline(stream, item, ',');) items.push_back(item);
  return items;
}

/// Parses all of `text` with `parse` (a strtod-like function); false if anything is left over.
template <typename T, typename Parse>
bool ParseAll(const std::string& text, Parse parse, T& value) {
  char* end = nullptr;
  value = static_cast<T>(parse(text.c_str(), &end));
  return !text.empty() && end != text.c_str() && *end == '\0';
}

}  // namespace
}  // namespace sieve

int main(int argc, char** argv) {
  sieve::Args args;
  const auto to_double = [](const char* s, char** end) { return std::strtod(s, end); };
  const auto to_integer = [](const char* s, char** end) { return std::strtoll(s, end, 10); };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return sieve::Usage("");
    if (i + 1 >= argc) return sieve::Usage("missing value after " + flag);
    const std::string value = argv[++i];
    const std::string bad = "bad value '" + value + "' for " + flag;
    if (flag == "--out") {
      args.out = value;
    } else if (flag == "--data") {
      args.data = value;
    } else if (flag == "--methods") {
      args.methods = sieve::SplitList(value);
      for (const std::string& method : args.methods) {
        if (!sieve::KnownMethod(method)) return sieve::Usage("unknown method '" + method + "' in " + flag);
      }
    } else if (flag == "--rates") {
      args.rates.clear();
      for (const std::string& item : sieve::SplitList(value)) {
        double rate = 0.0;
        if (!sieve::ParseAll(item, to_double, rate) || rate <= 0.0 || rate >= 1.0) return sieve::Usage(bad);
        args.rates.push_back(rate);
      }
    } else if (flag == "--seeds") {
      args.seeds.clear();
      for (const std::string& item : sieve::SplitList(value)) {
        int64_t seed = 0;
        if (!sieve::ParseAll(item, to_integer, seed) || seed < 0) return sieve::Usage(bad);
        args.seeds.push_back(static_cast<uint64_t>(seed));
      }
    } else if (flag == "--hidden") {
      if (!sieve::ParseAll(value, to_integer, args.hidden) || args.hidden <= 0) return sieve::Usage(bad);
    } else if (flag == "--epochs") {
      if (!sieve::ParseAll(value, to_integer, args.epochs) || args.epochs <= 0) return sieve::Usage(bad);
    } else if (flag == "--lr") {
      if (!sieve::ParseAll(value, to_double, args.lr) || !(args.lr > 0.0f)) return sieve::Usage(bad);
    } else {
      return sieve::Usage("unknown flag " + flag);
    }
  }
  if (args.out.empty()) return sieve::Usage("--out is required");
  if (args.methods.empty() || args.rates.empty() || args.seeds.empty()) return sieve::Usage("an empty list");
  return sieve::Run(args);
}
