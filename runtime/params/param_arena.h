// ParamArena: every learnable parameter of a network in one allocation per role (STYLE item 7,
// after llm.c): one buffer for all weights, one for all gradients and one per optimizer state slot,
// each parameter a named view at the same 64-byte aligned offset in every buffer. One buffer per
// role makes zeroing the gradients one memset, lets the solver update all parameters in one pass
// when their multipliers agree, and gives checkpoints and global-norm clipping a single tensor.
// It is not a layer registry and does no autodiff: the graph registers what it needs and writes
// gradients through the views.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "framework/device.h"
#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/kernels/optimizer.h"
#include "runtime/params/initializer.h"

namespace sieve::runtime {

/// Every parameter's region starts this many bytes into a buffer times an integer, so each view is
/// as aligned as its buffer (64 bytes on the host: one cache line, one AVX-512 vector).
inline constexpr int64_t kParamAlignBytes = 64;
inline constexpr int64_t kParamAlignElements = kParamAlignBytes / static_cast<int64_t>(sizeof(float));

/// A run of `count` consecutive elements of a parameter (row-major, from element `offset`) that
/// starts at `value` instead of what InitSpec draws: the forget-gate block of an LSTM bias, which
/// starts at the layer's forget bias.
struct ConstantRun {
  int64_t offset = 0;
  int64_t count = 0;
  float value = 0.0f;
};

/// Per-parameter learning settings (Caffe's ParamSpec) and how to initialise the weights.
struct ParamSpec {
  float lr_mult = 1.0f;     // the parameter's rate is the solver's rate times this
  float decay_mult = 1.0f;  // its L2 decay is the solver's weight_decay times this
  InitSpec init;            // Caffe's default filler: constant 0
  std::vector<ConstantRun> init_runs;  // written over `init`'s values, in order
};

/// One registered parameter. The tensors are views into the arena's buffers, defined once the
/// arena is finalized; `state` holds one view per optimizer state slot.
struct ParamEntry {
  std::string name;
  Shape shape;
  ParamSpec spec;
  int64_t offset = 0;  // element offset of the region in every buffer, a multiple of kParamAlignElements
  Tensor param;
  Tensor grad;
  std::vector<Tensor> state;
};

/// The parameters of one network on one device. Register all parameters, then Finalize once;
/// after that the set is fixed and the views stay valid for the arena's lifetime.
class ParamArena {
 public:
  ParamArena() = default;
  ParamArena(const ParamArena&) = delete;
  ParamArena& operator=(const ParamArena&) = delete;
  ParamArena(ParamArena&&) = default;
  ParamArena& operator=(ParamArena&&) = default;

  /// Adds a parameter, e.g. Register("fc1.w", {2048, 784}, {.init = InitSpec::Xavier()}).
  /// Errors (naming the parameter): empty or duplicate name, an extent < 1, non-finite
  /// multipliers, an invalid init spec, or an arena that is already finalized.
  Status Register(std::string name, Shape shape, ParamSpec spec = {});
  /// Allocates the buffers on `device` with the state slots `solver` keeps
  /// (ops::SolverStateSlots); weights, gradients and states start at zero, padding included.
  /// Errors: already finalized, or a CUDA device without a usable GPU.
  Status Finalize(Device device, ops::SolverType solver);
  /// Fills every parameter from its InitSpec; parameter i draws from the stream
  /// (seed, MakeStreamId(StreamKind::kInit, i, 0)), so the weights depend only on the seed and the
  /// registration order, not on the device or thread count.
  Status Initialize(uint64_t seed);
  /// Sets all gradients to zero with one fill of the gradient buffer.
  Status ZeroGrads();

  bool finalized() const { return finalized_; }
  /// The device of the buffers (meaningful once finalized).
  Device device() const { return device_; }
  /// The solver the state slots were laid out for, and how many slots it keeps.
  ops::SolverType solver_type() const { return solver_; }
  int state_slots() const { return static_cast<int>(flat_state_.size()); }
  /// Number of parameters.
  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  /// Sum of the parameters' element counts (without padding).
  int64_t param_elements() const;
  /// Length of each buffer in elements, padding included (a multiple of kParamAlignElements).
  int64_t total_elements() const { return total_elements_; }

  /// The parameters in registration order; `for (const ParamEntry& p : arena)` iterates them too.
  const std::vector<ParamEntry>& entries() const { return entries_; }
  std::vector<ParamEntry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<ParamEntry>::const_iterator end() const { return entries_.end(); }
  /// True when every parameter has the same lr_mult and the same decay_mult (vacuously for none).
  bool HasUniformMults() const;

  /// Registration index of `name`; NOT_FOUND names the nearest registered name.
  StatusOr<int64_t> IndexOf(std::string_view name) const;
  /// Views of one parameter's weights, gradient and state slot `slot`. Errors: unknown name
  /// (with the nearest name), an arena not yet finalized, a slot out of range.
  StatusOr<Tensor> param(std::string_view name) const;
  StatusOr<Tensor> grad(std::string_view name) const;
  StatusOr<Tensor> state(int slot, std::string_view name) const;

  /// The whole buffers as 1-D tensors of total_elements(); padding is zero.
  StatusOr<Tensor> flat_params() const;
  StatusOr<Tensor> flat_grads() const;
  StatusOr<Tensor> flat_state(int slot) const;

 private:
  // The finalized entry of `name`, or why there is none.
  StatusOr<const ParamEntry*> Lookup(std::string_view name, const char* what) const;
  Status EnsureFinalized(const char* what) const;

  std::vector<ParamEntry> entries_;
  std::map<std::string, int64_t, std::less<>> index_;
  bool finalized_ = false;
  Device device_ = Device::CPU();
  ops::SolverType solver_ = ops::SolverType::kSGD;
  int64_t total_elements_ = 0;
  Tensor flat_params_;
  Tensor flat_grads_;
  std::vector<Tensor> flat_state_;
};

}  // namespace sieve::runtime
