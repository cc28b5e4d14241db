// Solver files: a SolverParameter in protobuf text (proto/sieve.proto, docs/model_files.md) read into
// the runtime::SolverConfig of runtime/solver/solver.h, the training loop's settings with Caffe's
// meaning (max_iter, test_iter, test_interval, display, snapshot, ...), the device, the seed, the
// pattern-search settings, and the net file's path resolved against the solver file's folder.
//
// Errors name the file, the line and column and the field: parse errors (with the nearest valid
// field), a missing required value, a value outside its valid range (with the range), a learning-rate
// policy without the settings its formula reads, and what Solver::Create rejects.
//
// Not here: reading the net (net_config.h), running the loop, writing snapshots (the CLI).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "framework/device.h"
#include "framework/status.h"
#include "graph/pattern_search.h"
#include "runtime/solver/solver.h"

namespace sieve::runtime {

/// A solver file: the update, the loop and where the net is.
struct SolverFile {
  /// The net file (SolverParameter.net), resolved against the solver file's folder.
  std::string net;
  /// type, base_lr, lr_policy with its settings (lr.max_iter = max_iter), momentum, momentum2, delta,
  /// weight_decay, clip_gradients; validated by Solver::Create.
  SolverConfig solver;
  int64_t max_iter = 0;             ///< training iterations, >= 1
  int64_t test_iter = 0;            ///< test batches per test pass; >= 1 when test_interval > 0
  int64_t test_interval = 0;        ///< test every this many iterations; 0: never
  bool test_initialization = true;  ///< also test before the first iteration (when testing at all)
  int64_t display = 0;              ///< log every this many iterations; 0: never
  int64_t snapshot = 0;             ///< snapshot every this many iterations; 0: only after training
  /// Snapshot path prefix, resolved against the solver file's folder; when the file gives none, the
  /// solver file's path without its extension ("models/fashion_mlp/solver").
  std::string snapshot_prefix;
  bool snapshot_after_train = true;     ///< snapshot when training ends
  uint64_t random_seed = 1;             ///< weights, data order and dropout draws
  Device device = Device::CPU();        ///< solver_mode CPU, or GPU with device_id
  graph::SearchOptions pattern_search;  ///< for the row and tile dropout sites of the net
};

/// Reads the solver in `text`; `origin` names it in messages and is the path that the net and the
/// snapshot prefix are resolved against (a name without a folder resolves nothing). Errors:
/// INVALID_ARGUMENT, each message starting "origin:line:column: " (or "origin: ").
StatusOr<SolverFile> ParseSolverFile(std::string_view text, std::string_view origin = "<solver>");

/// ParseSolverFile of the file at `path`; NOT_FOUND when it does not exist.
StatusOr<SolverFile> LoadSolverFile(const std::string& path);

}  // namespace sieve::runtime
