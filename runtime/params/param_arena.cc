// ParamArena: registration checks, the aligned layout, the views, and name lookup with a
// nearest-name suggestion.
#include "runtime/params/param_arena.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/rng.h"
#include "framework/suggest.h"

namespace sieve::runtime {

namespace {

// Parameter i initialises from stream site i, which MakeStreamId holds in 24 bits.
constexpr int64_t kMaxParams = int64_t{1} << 24;

int64_t RoundUpToAlignment(int64_t n) {
  return (n + kParamAlignElements - 1) / kParamAlignElements * kParamAlignElements;
}

// The elements [offset, offset + numel(shape)) of a flat buffer, viewed with `shape`.
Tensor RegionView(const Tensor& flat, int64_t offset, const Shape& shape) {
  StatusOr<Tensor> view = flat.Slice(0, offset, offset + ShapeNumel(shape)).Reshape(shape);
  SIEVE_CHECK(view.ok(), view.status().ToString());
  return std::move(view).value();
}

}  // namespace

Status ParamArena::Register(std::string name, Shape shape, ParamSpec spec) {
  SIEVE_ENSURE(!name.empty(), StatusCode::kInvalidArgument,
               "a parameter needs a name (shape " << ShapeToString(shape) << ")");
  SIEVE_ENSURE(
      !finalized_, StatusCode::kFailedPrecondition,
      "cannot register parameter '" << name << "' " << ShapeToString(shape) << ": the arena is already finalized");
  SIEVE_ENSURE(
      !index_.contains(name), StatusCode::kInvalidArgument,
      "duplicate parameter '" << name << "' " << ShapeToString(shape) << ": already registered with shape "
                              << ShapeToString(entries_[static_cast<size_t>(index_.find(name)->second)].shape));
  SIEVE_ENSURE(size() < kMaxParams, StatusCode::kOutOfRange,
               "cannot register parameter '" << name << "': an arena holds at most " << kMaxParams
                                             << " parameters (the site field of an init stream id)");
  for (int64_t d : shape) {
    SIEVE_ENSURE(d >= 1, StatusCode::kInvalidArgument,
                 "parameter '" << name << "' has shape " << ShapeToString(shape) << "; every extent must be >= 1");
  }
  SIEVE_ENSURE(std::isfinite(spec.lr_mult) && std::isfinite(spec.decay_mult), StatusCode::kInvalidArgument,
               "parameter '" << name << "' needs finite lr_mult and decay_mult, got " << spec.lr_mult << " and "
                             << spec.decay_mult);
  const Status init_ok = ValidateInitSpec(spec.init);
  SIEVE_ENSURE(init_ok.ok(), init_ok.code(), "parameter '" << name << "': " << init_ok.message());
  for (const ConstantRun& run : spec.init_runs)
    SIEVE_ENSURE(run.offset >= 0 && run.count >= 0 && run.offset + run.count <= ShapeNumel(shape) &&
                     std::isfinite(run.value),
                 StatusCode::kInvalidArgument,
                 "parameter '" << name << "' " << ShapeToString(shape) << ": the constant run of " << run.count
                               << " elements from element " << run.offset << " (value " << run.value
                               << ") must be finite and lie inside its " << ShapeNumel(shape) << " elements");
  index_.emplace(name, size());
  entries_.push_back(ParamEntry{.name = std::move(name), .shape = std::move(shape), .spec = spec});
  return Status::Ok();
}

Status ParamArena::Finalize(Device device, ops::SolverType solver) {
  SIEVE_ENSURE(!finalized_, StatusCode::kFailedPrecondition,
               "the arena of " << size() << " parameters is already finalized on " << device_.ToString());
  SIEVE_ENSURE(solver < ops::SolverType::kCount, StatusCode::kInvalidArgument,
               "unknown solver type " << static_cast<int>(solver));
  SIEVE_ENSURE(device.is_cpu() || CudaAvailable(), StatusCode::kUnavailable,
               "cannot place the arena of " << size() << " parameters on " << device.ToString()
                                            << ": no usable CUDA GPU in this " << (CudaCompiled() ? "CUDA" : "CPU-only")
                                            << " build");
  int64_t end = 0;
  for (ParamEntry& e : entries_) {
    e.offset = RoundUpToAlignment(end);
    end = e.offset + ShapeNumel(e.shape);
  }
  total_elements_ = RoundUpToAlignment(end);

  flat_params_ = Tensor::Zeros({total_elements_}, DType::kFloat32, device);
  flat_grads_ = Tensor::Zeros({total_elements_}, DType::kFloat32, device);
  flat_state_.clear();
  for (int s = 0; s < ops::SolverStateSlots(solver); ++s) {
    flat_state_.push_back(Tensor::Zeros({total_elements_}, DType::kFloat32, device));
  }
  for (ParamEntry& e : entries_) {
    e.param = RegionView(flat_params_, e.offset, e.shape);
    e.grad = RegionView(flat_grads_, e.offset, e.shape);
    e.state.clear();
    for (const Tensor& flat : flat_state_) e.state.push_back(RegionView(flat, e.offset, e.shape));
  }
  device_ = device;
  solver_ = solver;
  finalized_ = true;
  return Status::Ok();
}

Status ParamArena::Initialize(uint64_t seed) {
  SIEVE_RETURN_IF_ERROR(EnsureFinalized("Initialize"));
  for (size_t i = 0; i < entries_.size(); ++i) {
    const ParamEntry& e = entries_[i];
    const RandomStream stream{seed, MakeStreamId(StreamKind::kInit, i, 0)};
    const Status filled = runtime::Initialize(e.param, e.spec.init, stream);
    SIEVE_ENSURE(filled.ok(), filled.code(),
                 "initialising parameter '" << e.name << "' " << ShapeToString(e.shape) << " with "
                                            << InitSpecToString(e.spec.init) << ": " << filled.message());
    for (const ConstantRun& run : e.spec.init_runs) {
      const std::vector<float> fill(static_cast<size_t>(run.count), run.value);
      const Tensor values = Tensor::FromVector({run.count}, fill);
      SIEVE_RETURN_IF_ERROR(RegionView(flat_params_, e.offset + run.offset, {run.count}).CopyFrom(values));
    }
  }
  return Status::Ok();
}

Status ParamArena::ZeroGrads() {
  SIEVE_RETURN_IF_ERROR(EnsureFinalized("ZeroGrads"));
  ZeroBytes(flat_grads_.raw_data(), device_, flat_grads_.nbytes());
  return Status::Ok();
}

int64_t ParamArena::param_elements() const {
  int64_t n = 0;
  for (const ParamEntry& e : entries_) n += ShapeNumel(e.shape);
  return n;
}

bool ParamArena::HasUniformMults() const {
  return std::all_of(entries_.begin(), entries_.end(), [&](const ParamEntry& e) {
    return e.spec.lr_mult == entries_.front().spec.lr_mult && e.spec.decay_mult == entries_.front().spec.decay_mult;
  });
}

StatusOr<int64_t> ParamArena::IndexOf(std::string_view name) const {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  SIEVE_ENSURE(!entries_.empty(), StatusCode::kNotFound,
               "unknown parameter '" << name << "': the arena holds no parameters");
  const ParamEntry* nearest = &entries_[static_cast<size_t>(NearestIndex(
      name, size(), [&](int64_t i) -> std::string_view { return entries_[static_cast<size_t>(i)].name; }))];
  return SIEVE_ERROR(StatusCode::kNotFound, "unknown parameter '" << name << "'; did you mean '" << nearest->name
                                                                  << "' " << ShapeToString(nearest->shape)
                                                                  << "? (the arena holds " << size() << " parameters)");
}

StatusOr<const ParamEntry*> ParamArena::Lookup(std::string_view name, const char* what) const {
  SIEVE_ASSIGN_OR_RETURN(const int64_t i, IndexOf(name));
  const ParamEntry& e = entries_[static_cast<size_t>(i)];
  SIEVE_ENSURE(finalized_, StatusCode::kFailedPrecondition,
               what << " of parameter '" << e.name << "' " << ShapeToString(e.shape)
                    << " has no storage yet: call Finalize on the arena first");
  return &e;
}

StatusOr<Tensor> ParamArena::param(std::string_view name) const {
  SIEVE_ASSIGN_OR_RETURN(const ParamEntry* e, Lookup(name, "the weights"));
  return e->param;
}

StatusOr<Tensor> ParamArena::grad(std::string_view name) const {
  SIEVE_ASSIGN_OR_RETURN(const ParamEntry* e, Lookup(name, "the gradient"));
  return e->grad;
}

StatusOr<Tensor> ParamArena::state(int slot, std::string_view name) const {
  SIEVE_ASSIGN_OR_RETURN(const ParamEntry* e, Lookup(name, "the optimizer state"));
  SIEVE_ENSURE(slot >= 0 && slot < state_slots(), StatusCode::kOutOfRange,
               "optimizer state slot " << slot << " of parameter '" << e->name << "' " << ShapeToString(e->shape)
                                       << " out of range: the arena was finalized for " << ops::SolverTypeName(solver_)
                                       << ", which keeps " << state_slots() << " slot(s)");
  return e->state[static_cast<size_t>(slot)];
}

Status ParamArena::EnsureFinalized(const char* what) const {
  SIEVE_ENSURE(finalized_, StatusCode::kFailedPrecondition,
               what << " on an arena of " << size() << " parameters that is not finalized: call Finalize first");
  return Status::Ok();
}

StatusOr<Tensor> ParamArena::flat_params() const {
  SIEVE_RETURN_IF_ERROR(EnsureFinalized("flat_params"));
  return flat_params_;
}

StatusOr<Tensor> ParamArena::flat_grads() const {
  SIEVE_RETURN_IF_ERROR(EnsureFinalized("flat_grads"));
  return flat_grads_;
}

StatusOr<Tensor> ParamArena::flat_state(int slot) const {
  SIEVE_RETURN_IF_ERROR(EnsureFinalized("flat_state"));
  SIEVE_ENSURE(slot >= 0 && slot < state_slots(), StatusCode::kOutOfRange,
               "optimizer state slot " << slot << " out of range: the arena was finalized for "
                                       << ops::SolverTypeName(solver_) << ", which keeps " << state_slots()
                                       << " slot(s)");
  return flat_state_[static_cast<size_t>(slot)];
}

}  // namespace sieve::runtime
