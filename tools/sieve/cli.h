// Shared machinery of the `sieve` command-line tool: the verb table, flag parsing with "nearest valid
// flag" errors, exit codes, and loading a model (net and solver files) into a Trainer with its data.
//
// Adding a verb is one file that defines its Verb (flags, help, run function) and one line in the
// table of main.cc. Caffe's tools/caffe.cpp is the model; docs/cli.md is the user's reference.
//
// Not here: the training loop (runtime/train_loop.h), the log format (runtime/train_log.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/device.h"
#include "framework/status.h"
#include "runtime/config/net_config.h"
#include "runtime/config/solver_config.h"
#include "runtime/data/batch_source.h"
#include "runtime/trainer.h"

namespace sieve::cli {

/// Exit codes: success, a failure while running (a bad file, missing data, ...), a usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// One flag of a verb: `--name VALUE` (or `--name=VALUE`), or a switch when value is empty.
struct Flag {
  std::string name;   ///< without the dashes: "solver"
  std::string value;  ///< what the value is, for the help: "FILE", "N"; "" for a switch
  std::string help;
};

/// The flags a verb was given.
class Args {
 public:
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  /// The value of a flag that was given (a programming error otherwise).
  const std::string& Get(const std::string& name) const;
  /// The value as an integer in [min, max]; INVALID_ARGUMENT names the flag and the value.
  StatusOr<int64_t> GetInt(const std::string& name, int64_t min, int64_t max) const;
  void Set(const std::string& name, std::string value) { values_[name] = std::move(value); }

 private:
  std::map<std::string, std::string> values_;
};

struct Verb {
  std::string name;
  std::string summary;                ///< one line, for `sieve --help`
  std::string usage;                  ///< "sieve train --solver FILE [--snapshot FILE | --weights FILE] [--gpu N]"
  std::string description;            ///< paragraphs after the usage in `sieve VERB --help`
  std::vector<Flag> flags;            ///< --help is implied
  std::vector<std::string> required;  ///< flags that must be given
  int (*run)(const Verb& verb, const Args& args);
};

/// The verbs (main.cc), in the order `sieve --help` lists them.
const std::vector<const Verb*>& Verbs();

/// Parses argv after the verb. A usage error (an unknown flag, with the nearest valid one; a missing
/// value or required flag) is INVALID_ARGUMENT; `--help` sets *help.
StatusOr<Args> ParseArgs(const Verb& verb, int argc, char** argv, bool* help);

/// The verb's --help text.
std::string VerbHelp(const Verb& verb);

/// A status's message for the user: without the " (source.cc:123)" tag SIEVE_ERROR appends.
std::string UserMessage(const Status& status);

/// Prints "sieve VERB: message" (one line, UserMessage) to stderr and returns kExitFailure.
int Fail(const Verb& verb, const Status& status);
/// Prints "sieve VERB: message" and "see 'sieve VERB --help'" to stderr and returns kExitUsage.
int UsageError(const Verb& verb, const std::string& message);

/// The device of `--gpu N` when given, else `fallback`; a usage error for a value that is not an index.
StatusOr<Device> DeviceFromArgs(const Args& args, Device fallback);

/// The batch size a net gives for a phase, or the tool's choice when it gives none.
inline constexpr int64_t kDefaultBatchSize = 128;

/// A net file read for both phases, and the Trainer and data built from it.
struct Model {
  runtime::NetConfig train_net;
  runtime::NetConfig test_net;
  runtime::TrainerOptions options;
  std::unique_ptr<runtime::Trainer> trainer;
};

/// Reads `net_path` for TRAIN and TEST and fills the trainer options from them and `solver` (the
/// update, the seed, the pattern search) on `device`: the TRAIN batch size (or kDefaultBatchSize), the
/// TEST batch size for evaluation, carried recurrent state for text-corpus language models. The
/// trainer is not created yet (CreateTrainer), so that the data can be checked first.
StatusOr<Model> ReadModel(const std::string& net_path, const runtime::SolverFile& solver, Device device);

/// Creates model.trainer from the TRAIN network (evaluation lowers it without dropout, SPEC 1).
Status CreateTrainer(Model& model);

/// Solver settings for the verbs that take only a net file: SGD defaults, seed 1, CPU.
runtime::SolverFile DefaultSolver();

}  // namespace sieve::cli
