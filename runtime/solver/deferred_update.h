// Deferred optimizer updates of the weights a dropout pattern leaves unread (SPEC 2.8).
//
// When a row site drops unit i this iteration, no GEMM of the iteration reads row i of its producer's
// weight or bias entry i, so their gradient is zero and the eager update only applies momentum and
// weight decay to them: a dense, memory-bound pass that does not shrink with the pattern and would cap
// the speedup. Here the update of such a BLOCK (a row for a row site, a tile for a tile site) is
// deferred instead. Every block records how many updates it has had; once the next iteration's
// patterns are drawn, the blocks they keep are caught up on the zero-gradient steps they skipped, each
// with the learning rate of its iteration (CatchUpKept); the step then updates only the kept blocks
// (Step). Before anything reads every weight (evaluation, saving, unit shuffling) CatchUpAll brings all
// blocks up to date.
//
// Catching up is exact: kReplay runs the solver's own update kernel on each skipped step with a zero
// gradient while the block sits in cache, so the weights and optimizer state are bitwise those of the
// eager update; kClosedForm (SGD and Nesterov) applies the product of the skipped steps' 2x2 linear maps
// of (weight, history) once, equal to eager up to float rounding. Adam has no closed form and always
// replays.
//
// The Trainer leaves it off by default (TrainerOptions::defer_updates): on the CPU measured here, one
// flat pass over every weight streams at full memory bandwidth, while updating a strided subset of rows
// costs nearly as much, and the catch-up is a second pass (docs/benchmarks/mlp_ard.md).
//
// This file is not the solver (solver.h: the eager step of every entry) and does not decide which
// patterns are drawn; it reads them from the graph's sites. CPU arenas only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/status.h"
#include "graph/ir.h"
#include "runtime/params/param_arena.h"
#include "runtime/solver/solver.h"

namespace sieve::runtime {

/// How the skipped updates of a deferred block are applied, or whether updates are deferred at all.
enum class DeferMode : uint8_t {
  kOff,         ///< every step updates every entry (Solver::Step)
  kReplay,      ///< replay each skipped step with the solver's kernel: bitwise the eager weights
  kClosedForm,  ///< SGD / Nesterov: one linear map per block; eager up to rounding. Adam replays.
  kCount,
};
/// "off", "replay", "closed_form".
const char* DeferModeName(DeferMode mode);

/// A parameter whose every reader in a graph skips the blocks one dropout site drops.
struct DeferredParam {
  std::string name;        ///< the parameter: its graph value's name and its ParamArena name
  graph::SiteId site{};    ///< the site whose pattern says which blocks an iteration reads
  int64_t block_rows = 1;  ///< a row site: one row; a tile site: the site's tile
  int64_t block_cols = 1;  ///< a row site: the whole row (1 for a bias); a tile site: the site's tile
};

/// The parameters of `graph` whose updates can be deferred, in value order: a float32 parameter of
/// rank 1 or 2 that no view reads, whose every reader is a MatMul that selects the parameter's rows
/// with one row site (group 1, the site's width = the row count) or its tiles with one tile site (tile
/// rows along the parameter's rows), or a BiasAdd that selects its entries with one row site. The
/// producer side of a row site qualifies (its weight's rows and its bias); the consumer side (columns)
/// and LSTM weights do not.
std::vector<DeferredParam> FindDeferrableParams(const graph::Graph& graph);

/// The deferral state of one arena: per deferred parameter, the number of updates each block has had.
class DeferredUpdates {
 public:
  /// `params` (from FindDeferrableParams) with every block current at `iteration` updates. Errors:
  /// kOff, a non-CPU arena, an arena laid out for another solver, a parameter not in the arena or
  /// listed twice, a parameter of rank other than 1 or 2, a block shape < 1.
  static StatusOr<DeferredUpdates> Create(const Solver& solver, const ParamArena& arena,
                                          std::vector<DeferredParam> params, int64_t iteration,
                                          DeferMode mode = DeferMode::kReplay);

  /// Applies, to every block that the current pattern of its site in `graph` keeps, the updates it
  /// skipped, so it has had `iteration` updates. Errors: a site without a current pattern of its kind
  /// (naming the site and the parameter), a block ahead of `iteration`.
  Status CatchUpKept(ParamArena& arena, const graph::Graph& graph, int64_t iteration);

  /// The solver's update at `iteration` (Solver::Step's rate, clipping and hyper-parameters): every
  /// entry of the parameters that are not deferred, and the kept blocks of the deferred ones, which
  /// must be current (CatchUpKept with the same patterns). Dropped blocks fall one update behind.
  /// Clipping measures every gradient, as Solver::Step does; a dropped block's gradient is zero (the
  /// backward fills it, graph/autodiff.h).
  StatusOr<StepReport> Step(ParamArena& arena, const graph::Graph& graph, int64_t iteration);

  /// Brings every block of every deferred parameter to `iteration` updates.
  Status CatchUpAll(ParamArena& arena, int64_t iteration);

  /// Declares every block current at `iteration` updates, after the weights and optimizer state were
  /// replaced from outside (weights loaded from a file).
  void MarkCurrent(int64_t iteration);

  /// Blocks that have had fewer than `iteration` updates.
  int64_t StaleBlocks(int64_t iteration) const;
  const std::vector<DeferredParam>& params() const { return params_; }
  DeferMode mode() const { return mode_; }

 private:
  // One deferred parameter seen as a rows x cols matrix (a bias: rows x 1) cut into blocks.
  struct Tracked {
    int64_t entry = 0;  // its index in the arena
    int64_t rows = 0, cols = 0;
    int64_t grid_rows = 0, grid_cols = 0;
    std::vector<int64_t> updates;  // per block (row-major over the grid): the updates it has had
  };

  DeferredUpdates(Solver solver, DeferMode mode) : solver_(std::move(solver)), mode_(mode) {}
  ops::UpdateHyper Hyper(const ParamSpec& spec, int64_t iteration) const;
  // Brings the blocks that the current patterns of `graph` keep (every block when null) to
  // `iteration` updates.
  Status CatchUp(ParamArena& arena, const graph::Graph* graph, int64_t iteration);

  Solver solver_;
  DeferMode mode_;
  std::vector<DeferredParam> params_;
  std::vector<Tracked> tracked_;      // parallel to params_
  std::vector<bool> deferred_entry_;  // per arena entry: is it deferred?
  std::vector<float> zeros_;          // the zero gradient replays read, as long as the longest run
};

}  // namespace sieve::runtime
