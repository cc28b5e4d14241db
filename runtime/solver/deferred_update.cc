// Deferred updates (deferred_update.h): which parameters qualify, the per-block update counts, the
// catch-up (replay or closed form) and the step over the kept blocks.
#include "runtime/solver/deferred_update.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <optional>
#include <set>
#include <utility>
#include <variant>

#include "ops/kernels/optimizer.h"

namespace sieve::runtime {

namespace {

using graph::SiteId;
using graph::SiteTarget;
using ops::Dim;

constexpr const char* kDeferModeNames[] = {"off", "replay", "closed_form"};
static_assert(std::size(kDeferModeNames) == static_cast<size_t>(DeferMode::kCount), "one name per DeferMode");

// Runs are split at this many floats so that the blocks spread over the OpenMP team, and a replayed run
// (weights and up to two state slots) stays in the L2 cache across its skipped steps.
constexpr int64_t kMaxRunFloats = int64_t{1} << 14;
// Below this many floats in all runs a fork of the OpenMP team costs more than it saves.
constexpr int64_t kParallelMinFloats = int64_t{1} << 15;

// ---------------------------------------------------------------------------------------------
// Which parameters qualify

// The GEMM dimension along axis `axis` (0 rows, 1 columns) of MatMul operand `operand` (0 A, 1 B): A is
// stored M x K (K x M transposed), B is stored K x N (N x K transposed).
Dim OperandAxisDim(const ops::MatMulAttr& attr, int operand, int axis) {
  if (operand == 0) return (axis == 0) != attr.trans_a ? Dim::kM : Dim::kK;
  return (axis == 0) != attr.trans_b ? Dim::kK : Dim::kN;
}

SiteTarget DimTarget(Dim dim) {
  return dim == Dim::kM ? SiteTarget::kMatMulM : dim == Dim::kN ? SiteTarget::kMatMulN : SiteTarget::kMatMulK;
}

// A site and how it cuts the parameter: into rows, or into its tiles.
struct Candidate {
  SiteId site{};
  bool tile = false;
};

// One place a node reads the parameter: the node and the operand position.
struct Read {
  const graph::Node* node;
  int operand;
};

// Does `use` make `read` skip every block `candidate` drops?
bool UseSkipsDropped(const graph::SiteUse& use, const Read& read, const Candidate& candidate) {
  if (use.site != candidate.site) return false;
  if (read.node->kind == graph::OpKind::kBiasAdd)
    return !candidate.tile && use.target == SiteTarget::kBiasCols && use.group == 1;
  const auto& attr = std::get<ops::MatMulAttr>(read.node->attr);
  const Dim rows = OperandAxisDim(attr, read.operand, 0);
  if (!candidate.tile) return use.target == DimTarget(rows) && use.group == 1;
  return use.target == SiteTarget::kMatMulTile && use.tile_rows == rows &&
         use.tile_cols == OperandAxisDim(attr, read.operand, 1);
}

bool SkipsDropped(const Read& read, const Candidate& candidate) {
  return std::any_of(read.node->sites.begin(), read.node->sites.end(),
                     [&](const graph::SiteUse& use) { return UseSkipsDropped(use, read, candidate); });
}

// The reads of `param`, or nullopt when one of them is of a kind deferral does not understand.
std::optional<std::vector<Read>> ReadsOf(const graph::Graph& graph, graph::ValueId param) {
  std::vector<Read> reads;
  for (graph::NodeId id : graph.Consumers(param)) {
    const graph::Node& node = graph.node(id);
    for (int i = 0; i < static_cast<int>(node.inputs.size()); ++i) {
      if (node.inputs[i] != param) continue;
      // An implicit convolution's operands are not the row-major GEMM operands OperandAxisDim reads.
      const bool matmul_operand =
          node.kind == graph::OpKind::kMatMul && i < 2 && !std::get<ops::MatMulAttr>(node.attr).conv;
      const bool bias = node.kind == graph::OpKind::kBiasAdd && i == 1;
      if (!matmul_operand && !bias) return std::nullopt;
      reads.push_back({&node, i});
    }
  }
  return reads;
}

// ---------------------------------------------------------------------------------------------
// Catching up in closed form

// The linear map of one SGD or Nesterov step with a zero gradient on (weight, history):
// w' = a w + b h, h' = c w + d h.
struct LinearStep {
  double a = 1, b = 0, c = 0, d = 1;

  // This map after `first` (applied first).
  LinearStep After(const LinearStep& first) const {
    return {a * first.a + b * first.c, a * first.b + b * first.d, c * first.a + d * first.c, c * first.b + d * first.d};
  }
};

// With g = 0: h' = mu h + lr wd w. SGD: w' = w - h'. Nesterov: w' = w - ((1 + mu) h' - mu h).
LinearStep ZeroGradientStep(ops::SolverType type, const ops::UpdateHyper& hyper) {
  const double mu = hyper.momentum;
  const double decay = static_cast<double>(hyper.lr) * static_cast<double>(hyper.weight_decay);
  if (type == ops::SolverType::kNesterov) return {1.0 - (1.0 + mu) * decay, -mu * mu, decay, mu};
  return {1.0 - decay, -mu, decay, mu};
}

void ApplyLinear(const LinearStep& map, float* w, float* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double wi = w[i], hi = h[i];
    w[i] = static_cast<float>(map.a * wi + map.b * hi);
    h[i] = static_cast<float>(map.c * wi + map.d * hi);
  }
}

// One update of n floats with the solver's CPU kernel (the one ops::ApplyUpdate runs on the host).
void UpdateRun(ops::SolverType type, float* w, const float* g, float* s0, float* s1, int64_t n,
               const ops::UpdateHyper& hyper) {
  switch (type) {
    case ops::SolverType::kSGD:
      ops::cpu::SgdUpdate(w, g, s0, n, hyper.lr, hyper.momentum, hyper.weight_decay);
      break;
    case ops::SolverType::kNesterov:
      ops::cpu::NesterovUpdate(w, g, s0, n, hyper.lr, hyper.momentum, hyper.weight_decay);
      break;
    default:  // kAdam
      ops::cpu::AdamUpdate(w, g, s0, s1, n, hyper.lr, hyper.momentum, hyper.momentum2, hyper.delta, hyper.weight_decay,
                           hyper.step);
      break;
  }
}

// A contiguous stretch of a parameter's floats whose blocks have all had `from` updates.
struct Run {
  size_t param = 0;  // index among the deferred parameters
  int64_t offset = 0;
  int64_t length = 0;
  int64_t from = 0;
};

// What the runs of one deferred parameter need: its buffers, and per step from `oldest` on the
// hyper-parameters (and for the closed form the map from that step to the target).
struct ParamWork {
  float* w = nullptr;
  const float* g = nullptr;
  float* s0 = nullptr;
  float* s1 = nullptr;
  int64_t oldest = 0;
  std::vector<ops::UpdateHyper> hyper;
  std::vector<LinearStep> since;

  void Bind(const ParamEntry& e) {
    w = e.param.data<float>();
    g = e.grad.data<float>();
    s0 = e.state[0].data<float>();
    s1 = e.state.size() > 1 ? e.state[1].data<float>() : nullptr;
  }
};

int64_t TotalFloats(const std::vector<Run>& runs) {
  int64_t total = 0;
  for (const Run& run : runs) total += run.length;
  return total;
}

// Appends the floats of block (a, c) of deferred parameter `param`, rows x cols cut into block_rows x
// block_cols blocks: merged into the previous run where contiguous and at the same count, and in runs of at most
// kMaxRunFloats.
void AppendBlockRuns(size_t param, int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols, int64_t a,
                     int64_t c, int64_t from, std::vector<Run>& runs) {
  const int64_t c0 = c * block_cols, c1 = std::min(cols, c0 + block_cols);
  for (int64_t r = a * block_rows; r < std::min(rows, (a + 1) * block_rows); ++r) {
    for (int64_t offset = r * cols + c0, end = r * cols + c1; offset < end;) {
      Run* last = runs.empty() ? nullptr : &runs.back();
      if (last && last->param == param && last->offset + last->length == offset && last->from == from &&
          last->length < kMaxRunFloats) {
        const int64_t grow = std::min(end - offset, kMaxRunFloats - last->length);
        last->length += grow;
        offset += grow;
      } else {
        const int64_t length = std::min(end - offset, kMaxRunFloats);
        runs.push_back({param, offset, length, from});
        offset += length;
      }
    }
  }
}

}  // namespace

const char* DeferModeName(DeferMode mode) {
  SIEVE_CHECK(mode < DeferMode::kCount, "defer mode " << static_cast<int>(mode));
  return kDeferModeNames[static_cast<int>(mode)];
}

std::vector<DeferredParam> FindDeferrableParams(const graph::Graph& graph) {
  std::set<graph::ValueId> viewed;  // storage roots that views read or write
  for (const graph::Value& v : graph.values())
    if (v.view) viewed.insert(graph.StorageRoot(v.id));
  std::vector<DeferredParam> found;
  for (const graph::Value& param : graph.values()) {
    const int rank = static_cast<int>(param.planned.size());
    if (param.role != graph::ValueRole::kParam || param.dtype != DType::kFloat32 || param.view ||
        viewed.count(param.id) || rank < 1 || rank > 2)
      continue;
    const std::optional<std::vector<Read>> reads = ReadsOf(graph, param.id);
    if (!reads || reads->empty()) continue;
    // The candidates are the sites the first read selects the parameter's blocks by; the one kept
    // must do so in every read.
    const Read& first = reads->front();
    for (const graph::SiteUse& use : first.node->sites) {
      const Candidate candidate{use.site, use.target == SiteTarget::kMatMulTile};
      if (!graph.has_site(use.site) || !UseSkipsDropped(use, first, candidate)) continue;
      if (!std::all_of(reads->begin(), reads->end(), [&](const Read& r) { return SkipsDropped(r, candidate); }))
        continue;
      const graph::DropoutSite& site = graph.site(use.site);
      DeferredParam deferred{.name = param.name, .site = site.id};
      if (candidate.tile) {
        if (site.kind != graph::SiteKind::kTile || rank != 2) continue;
        deferred.block_rows = site.tile_rows;
        deferred.block_cols = site.tile_cols;
      } else {
        if (site.kind != graph::SiteKind::kRow || site.width != param.planned[0]) continue;
        deferred.block_cols = rank == 2 ? param.planned[1] : 1;
      }
      found.push_back(std::move(deferred));
      break;
    }
  }
  return found;
}

StatusOr<DeferredUpdates> DeferredUpdates::Create(const Solver& solver, const ParamArena& arena,
                                                  std::vector<DeferredParam> params, int64_t iteration,
                                                  DeferMode mode) {
  SIEVE_ENSURE(mode == DeferMode::kReplay || mode == DeferMode::kClosedForm, StatusCode::kInvalidArgument,
               "deferred updates need mode replay or closed_form, got " << static_cast<int>(mode));
  SIEVE_ENSURE(arena.finalized() && arena.device().is_cpu(), StatusCode::kInvalidArgument,
               "deferred updates need a finalized CPU arena; this one is "
                   << (arena.finalized() ? "on " + arena.device().ToString() : std::string("not finalized")));
  SIEVE_ENSURE(arena.solver_type() == solver.config().type, StatusCode::kInvalidArgument,
               "the arena was laid out for " << ops::SolverTypeName(arena.solver_type()) << ", the solver is "
                                             << ops::SolverTypeName(solver.config().type));
  SIEVE_ENSURE(iteration >= 0, StatusCode::kInvalidArgument, "deferred updates at negative iteration " << iteration);
  DeferredUpdates d(solver, mode);
  d.deferred_entry_.assign(static_cast<size_t>(arena.size()), false);
  for (const DeferredParam& p : params) {
    SIEVE_ASSIGN_OR_RETURN(const int64_t entry, arena.IndexOf(p.name));
    SIEVE_ENSURE(!d.deferred_entry_[static_cast<size_t>(entry)], StatusCode::kInvalidArgument,
                 "parameter '" << p.name << "' is listed twice for deferred updates");
    const Shape& shape = arena.entries()[static_cast<size_t>(entry)].shape;
    SIEVE_ENSURE(shape.size() == 1 || shape.size() == 2, StatusCode::kInvalidArgument,
                 "parameter '" << p.name << "' " << ShapeToString(shape) << ": deferred updates need rank 1 or 2");
    SIEVE_ENSURE(
        p.block_rows >= 1 && p.block_cols >= 1, StatusCode::kInvalidArgument,
        "parameter '" << p.name << "': block " << p.block_rows << " x " << p.block_cols << " must be at least 1 x 1");
    d.deferred_entry_[static_cast<size_t>(entry)] = true;
    Tracked t;
    t.entry = entry;
    t.rows = shape[0];
    t.cols = shape.size() == 2 ? shape[1] : 1;
    t.grid_rows = (t.rows + p.block_rows - 1) / p.block_rows;
    t.grid_cols = (t.cols + p.block_cols - 1) / p.block_cols;
    t.updates.assign(static_cast<size_t>(t.grid_rows * t.grid_cols), iteration);
    d.tracked_.push_back(std::move(t));
  }
  d.params_ = std::move(params);
  d.zeros_.assign(static_cast<size_t>(kMaxRunFloats), 0.0f);
  return d;
}

ops::UpdateHyper DeferredUpdates::Hyper(const ParamSpec& spec, int64_t iteration) const {
  // As Solver::Step forms them: products in float, Adam's step iteration + 1.
  const SolverConfig& config = solver_.config();
  return ops::UpdateHyper{.lr = solver_.lr_policy().Rate(iteration) * spec.lr_mult,
                          .weight_decay = config.weight_decay * spec.decay_mult,
                          .momentum = config.momentum,
                          .momentum2 = config.momentum2,
                          .delta = config.delta,
                          .step = iteration + 1};
}

namespace {

// Which blocks of a parameter an iteration reads: every block, or those the site's pattern keeps.
using KeptFn = std::function<bool(int64_t a, int64_t c)>;

StatusOr<KeptFn> KeptBlocks(const graph::Graph* graph, const DeferredParam& p) {
  if (graph == nullptr) return KeptFn([](int64_t, int64_t) { return true; });
  SIEVE_ENSURE(graph->has_site(p.site), StatusCode::kInvalidArgument,
               "parameter '" << p.name << "' is deferred by site $" << graph::Index(p.site)
                             << ", which the graph does not have");
  const graph::DropoutSite& site = graph->site(p.site);
  SIEVE_ENSURE(site.pattern.has_value(), StatusCode::kFailedPrecondition,
               graph::DescribeSite(site) << " has no pattern this iteration; parameter '" << p.name
                                         << "' cannot be caught up before the patterns are drawn");
  if (const auto* row = std::get_if<ops::RowPattern>(&*site.pattern); row && p.block_rows == 1)
    return KeptFn([pattern = *row](int64_t a, int64_t) { return pattern.Kept(a); });
  const auto* tile = std::get_if<ops::TilePattern>(&*site.pattern);
  SIEVE_ENSURE(tile && tile->tile_rows == p.block_rows && tile->tile_cols == p.block_cols, StatusCode::kInvalidArgument,
               graph::DescribeSite(site) << " has pattern " << ops::PatternToString(*site.pattern)
                                         << ", which does not cut parameter '" << p.name << "' into its "
                                         << p.block_rows << " x " << p.block_cols << " blocks");
  return KeptFn([pattern = *tile](int64_t a, int64_t c) { return pattern.TileKept(a, c); });
}

}  // namespace

Status DeferredUpdates::CatchUp(ParamArena& arena, const graph::Graph* graph, int64_t iteration) {
  const ops::SolverType type = solver_.config().type;
  const bool closed_form = mode_ == DeferMode::kClosedForm && type != ops::SolverType::kAdam;
  // First every parameter's runs, so that an error changes nothing; then one parallel loop over all.
  std::vector<Run> runs;
  std::vector<std::vector<size_t>> caught(tracked_.size());  // per parameter: the blocks its runs cover
  for (size_t i = 0; i < tracked_.size(); ++i) {
    const Tracked& t = tracked_[i];
    const DeferredParam& p = params_[i];
    SIEVE_ASSIGN_OR_RETURN(const KeptFn kept, KeptBlocks(graph, p));
    for (int64_t a = 0; a < t.grid_rows; ++a) {
      for (int64_t c = 0; c < t.grid_cols; ++c) {
        const size_t block = static_cast<size_t>(a * t.grid_cols + c);
        const int64_t updates = t.updates[block];
        SIEVE_ENSURE(updates <= iteration, StatusCode::kFailedPrecondition,
                     "block (" << a << ", " << c << ") of parameter '" << p.name << "' has had " << updates
                               << " updates, more than the " << iteration << " it is caught up to");
        if (updates == iteration || !kept(a, c)) continue;
        AppendBlockRuns(i, t.rows, t.cols, p.block_rows, p.block_cols, a, c, updates, runs);
        caught[i].push_back(block);
      }
    }
  }
  if (runs.empty()) return Status::Ok();

  // Per parameter and skipped iteration s in [oldest, iteration): the hyper-parameters of s, and for the
  // closed form the map of the steps s .. iteration - 1 together.
  std::vector<ParamWork> work(tracked_.size(), ParamWork{.oldest = iteration});
  int64_t total = 0;  // floats times the steps replayed over them
  for (const Run& run : runs) {
    work[run.param].oldest = std::min(work[run.param].oldest, run.from);
    total += run.length * (closed_form ? 1 : iteration - run.from);
  }
  for (size_t i = 0; i < tracked_.size(); ++i) {
    if (caught[i].empty()) continue;
    ParamWork& w = work[i];
    const ParamEntry& e = arena.entries()[static_cast<size_t>(tracked_[i].entry)];
    w.Bind(e);
    for (int64_t s = w.oldest; s < iteration; ++s) w.hyper.push_back(Hyper(e.spec, s));
    if (closed_form) {
      w.since.resize(w.hyper.size());
      LinearStep product;
      for (int64_t s = iteration - 1; s >= w.oldest; --s) {
        product = product.After(ZeroGradientStep(type, w.hyper[static_cast<size_t>(s - w.oldest)]));
        w.since[static_cast<size_t>(s - w.oldest)] = product;
      }
    }
    for (size_t block : caught[i]) tracked_[i].updates[block] = iteration;
  }
  const float* zeros = zeros_.data();
  const auto count = static_cast<int64_t>(runs.size());
#pragma omp parallel for schedule(dynamic, 4) if (total >= kParallelMinFloats)
  for (int64_t r = 0; r < count; ++r) {
    const Run& run = runs[static_cast<size_t>(r)];
    const ParamWork& w = work[run.param];
    const size_t first = static_cast<size_t>(run.from - w.oldest);
    float* s1 = w.s1 ? w.s1 + run.offset : nullptr;
    if (closed_form) {
      ApplyLinear(w.since[first], w.w + run.offset, w.s0 + run.offset, run.length);
      continue;
    }
    for (size_t s = first; s < w.hyper.size(); ++s)
      UpdateRun(type, w.w + run.offset, zeros, w.s0 + run.offset, s1, run.length, w.hyper[s]);
  }
  return Status::Ok();
}

Status DeferredUpdates::CatchUpKept(ParamArena& arena, const graph::Graph& graph, int64_t iteration) {
  return CatchUp(arena, &graph, iteration);
}

Status DeferredUpdates::CatchUpAll(ParamArena& arena, int64_t iteration) { return CatchUp(arena, nullptr, iteration); }

StatusOr<StepReport> DeferredUpdates::Step(ParamArena& arena, const graph::Graph& graph, int64_t iteration) {
  const ops::SolverType type = solver_.config().type;
  const char* name = ops::SolverTypeName(type);
  SIEVE_ENSURE(arena.finalized() && arena.size() == static_cast<int64_t>(deferred_entry_.size()) &&
                   arena.state_slots() == ops::SolverStateSlots(type),
               StatusCode::kInvalidArgument,
               "deferred " << name << " step on an arena of " << arena.size()
                           << " parameters that is not the one the deferred updates were created for");
  SIEVE_ENSURE(iteration >= 0, StatusCode::kInvalidArgument, name << " step at negative iteration " << iteration);
  // First the kept blocks of every deferred parameter, all of which must be current, so that an error
  // changes nothing.
  std::vector<Run> runs;
  std::vector<std::vector<size_t>> kept_blocks(tracked_.size());
  for (size_t i = 0; i < tracked_.size(); ++i) {
    const Tracked& t = tracked_[i];
    const DeferredParam& p = params_[i];
    SIEVE_ASSIGN_OR_RETURN(const KeptFn kept, KeptBlocks(&graph, p));
    for (int64_t a = 0; a < t.grid_rows; ++a) {
      for (int64_t c = 0; c < t.grid_cols; ++c) {
        if (!kept(a, c)) continue;
        const size_t block = static_cast<size_t>(a * t.grid_cols + c);
        const int64_t updates = t.updates[block];
        SIEVE_ENSURE(updates == iteration, StatusCode::kFailedPrecondition,
                     "block (" << a << ", " << c << ") of parameter '" << p.name << "' has had " << updates
                               << " updates; the step at iteration " << iteration
                               << " needs it caught up first (CatchUpKept with this iteration's patterns)");
        AppendBlockRuns(i, t.rows, t.cols, p.block_rows, p.block_cols, a, c, iteration, runs);
        kept_blocks[i].push_back(block);
      }
    }
  }

  StepReport report;
  report.lr = solver_.lr_policy().Rate(iteration);
  report.path = UpdatePath::kPerParam;
  if (solver_.config().clip_gradients >= 0.0f) {
    std::vector<Tensor> grads;
    for (const ParamEntry& e : arena) grads.push_back(e.grad);
    SIEVE_ASSIGN_OR_RETURN(const ops::ClipOutcome clip, ops::ClipGradients(grads, solver_.config().clip_gradients));
    report.grad_norm = clip.norm;
    report.clipped = clip.clipped;
    report.clip_scale = clip.scale;
  }
  for (size_t i = 0; i < deferred_entry_.size(); ++i) {
    if (deferred_entry_[i]) continue;
    const ParamEntry& e = arena.entries()[i];
    const Status updated = ops::ApplyUpdate(type, e.param, e.grad, e.state, Hyper(e.spec, iteration));
    SIEVE_ENSURE(updated.ok(), updated.code(),
                 "updating parameter '" << e.name << "' " << ShapeToString(e.shape) << ": " << updated.message());
  }
  std::vector<ParamWork> work(tracked_.size());
  for (size_t i = 0; i < tracked_.size(); ++i) {
    const ParamEntry& e = arena.entries()[static_cast<size_t>(tracked_[i].entry)];
    work[i].Bind(e);
    work[i].hyper = {Hyper(e.spec, iteration)};
    for (size_t block : kept_blocks[i]) tracked_[i].updates[block] = iteration + 1;
  }
  const auto count = static_cast<int64_t>(runs.size());
#pragma omp parallel for schedule(static) if (TotalFloats(runs) >= kParallelMinFloats)
  for (int64_t r = 0; r < count; ++r) {
    const Run& run = runs[static_cast<size_t>(r)];
    const ParamWork& w = work[run.param];
    UpdateRun(type, w.w + run.offset, w.g + run.offset, w.s0 + run.offset, w.s1 ? w.s1 + run.offset : nullptr,
              run.length, w.hyper.front());
  }
  return report;
}

void DeferredUpdates::MarkCurrent(int64_t iteration) {
  for (Tracked& t : tracked_) std::fill(t.updates.begin(), t.updates.end(), iteration);
}

int64_t DeferredUpdates::StaleBlocks(int64_t iteration) const {
  int64_t stale = 0;
  for (const Tracked& t : tracked_)
    stale += std::count_if(t.updates.begin(), t.updates.end(), [&](int64_t u) { return u < iteration; });
  return stale;
}

}  // namespace sieve::runtime
