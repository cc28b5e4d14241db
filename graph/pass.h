// Passes over the MatMul IR and the manager that runs them (TVM's pass context and instruments,
// tinygrad's named rewrites; STYLE.md 5).
//
// A Pass is a named Graph -> Graph step. A PassManager runs a short ordered list of them; around
// each pass it calls Instruments, whose before/after hooks verify the graph, dump it to files and
// time the pass. The first failure (a pass, or a hook such as verification) stops the list with a
// Status naming the pass and the iteration.
//
// The scheduler runs one such list before every training iteration (MakeIterationPipeline):
// first the passes that choose this iteration's patterns, then ResolveSites and ReplanShapes.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/status.h"
#include "graph/ir.h"

namespace sieve::graph {

/// Verification after every pass is on by default in debug builds (NDEBUG undefined).
#ifdef NDEBUG
inline constexpr bool kVerifyPassesByDefault = false;
#else
inline constexpr bool kVerifyPassesByDefault = true;
#endif

struct PassOptions {
  bool verify_each = kVerifyPassesByDefault;  ///< verify the input, then the graph after each pass
  std::string dump_dir;  ///< non-empty: after each pass write <iteration>_<index>_<pass>.txt and .dot there
  bool timing = false;   ///< accumulate each pass's time in the manager's TimingInstrument
};

/// What a pass may read besides the graph.
struct PassContext {
  int64_t iteration = 0;  ///< the training iteration the passes prepare
  uint64_t seed = 0;      ///< the run's seed; random passes draw from Philox streams keyed by it
  PassOptions options;
};

class Pass {
 public:
  virtual ~Pass() = default;
  /// "ResolveSites": used in messages, dump file names and timing reports.
  virtual std::string_view name() const = 0;
  virtual Status Run(Graph& graph, PassContext& context) = 0;
};

/// Hooks around every pass of a run. `index` is the pass's position in the list (0-based). A
/// hook that fails stops the run.
class Instrument {
 public:
  virtual ~Instrument() = default;
  virtual std::string_view name() const = 0;
  virtual Status BeforePass(const Pass& pass, int index, const Graph& graph, const PassContext& context);
  virtual Status AfterPass(const Pass& pass, int index, const Graph& graph, const PassContext& context);
};

/// Verifies the graph before the first pass (so a broken input is not blamed on a pass) and
/// after every pass.
class VerifyInstrument final : public Instrument {
 public:
  std::string_view name() const override { return "Verify"; }
  Status BeforePass(const Pass& pass, int index, const Graph& graph, const PassContext& context) override;
  Status AfterPass(const Pass& pass, int index, const Graph& graph, const PassContext& context) override;
};

/// Writes DumpText and DumpDot of the graph after every pass to
/// <dir>/<iteration>_<index>_<pass>.txt and .dot, creating the directory.
class DumpInstrument final : public Instrument {
 public:
  explicit DumpInstrument(std::string dir) : dir_(std::move(dir)) {}
  std::string_view name() const override { return "Dump"; }
  Status AfterPass(const Pass& pass, int index, const Graph& graph, const PassContext& context) override;

 private:
  std::string dir_;
};

/// Accumulates the wall time of each pass over every run it instruments.
class TimingInstrument final : public Instrument {
 public:
  struct Entry {
    std::string pass;
    int64_t runs = 0;
    double total_ms = 0.0;
  };
  std::string_view name() const override { return "Timing"; }
  Status BeforePass(const Pass& pass, int index, const Graph& graph, const PassContext& context) override;
  Status AfterPass(const Pass& pass, int index, const Graph& graph, const PassContext& context) override;
  /// One entry per pass name, in order of first appearance.
  const std::vector<Entry>& entries() const { return entries_; }
  /// One line per pass: "ResolveSites: 12 runs, 0.183 ms total, 0.015 ms mean".
  std::string Report() const;

 private:
  std::chrono::steady_clock::time_point start_;
  std::vector<Entry> entries_;
};

/// An ordered list of passes and the instruments that watch them.
class PassManager {
 public:
  PassManager& Add(std::unique_ptr<Pass> pass);
  /// Instruments added here run on every Run, between the built-in ones (see Run).
  PassManager& AddInstrument(std::unique_ptr<Instrument> instrument);

  /// Runs the passes in order. Instruments: Verify (options.verify_each), Dump (options.dump_dir),
  /// the added ones, Timing (options.timing), in that order before a pass and in reverse order
  /// after it, so the timing brackets only the pass and a graph that fails verification has
  /// already been dumped. Stops at the first failure with a Status naming the pass, its position
  /// and the iteration, and keeping the failure's code and message.
  Status Run(Graph& graph, PassContext& context);

  std::vector<std::string> pass_names() const;
  /// The per-pass times of every Run with options.timing.
  const TimingInstrument& timing() const { return timing_; }

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
  std::vector<std::unique_ptr<Instrument>> instruments_;
  TimingInstrument timing_;
};

/// Writes the current site patterns into the node attributes (ResolveSiteUses).
class ResolveSitesPass final : public Pass {
 public:
  std::string_view name() const override { return "ResolveSites"; }
  Status Run(Graph& graph, PassContext& context) override;
};

/// Re-plans the live shapes from the current site patterns (ResolveLiveShapes).
class ReplanShapesPass final : public Pass {
 public:
  std::string_view name() const override { return "ReplanShapes"; }
  Status Run(Graph& graph, PassContext& context) override;
};

/// The per-iteration pipeline, in order:
///   1. `choose_patterns`: the passes that set this iteration's site patterns (pattern sampling
///      for row and tile sites, feature-map choice for conv sites), in the given order;
///   2. ResolveSites;
///   3. ReplanShapes.
PassManager MakeIterationPipeline(std::vector<std::unique_ptr<Pass>> choose_patterns);

}  // namespace sieve::graph
