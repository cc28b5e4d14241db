// SensitivityDropPass: the feature-map choice of the per-iteration pipeline (SPEC 3). Before every
// training iteration it sets the pattern of every channel dropout site (a sensitivity or
// random-channel Dropout layer before a Conv2d, graph/lower/dropout.cc): the ChannelSet of the
// conv's input maps it keeps. ResolveSites then writes it into the conv's three implicit-GEMM
// MatMuls (forward K, grad-weight N, grad-input M: kept * k * k indices, whose column matrices
// hold the kept maps only), and folds the scale Cin / kept into their alpha.
//
// Choice, per site of C maps and rate p, d = ceil(p * C) maps dropped (graph/layers.h):
//   * warm-up: during the first `warmup_iterations` iterations nothing is dropped;
//   * random channel: d maps uniformly without replacement;
//   * sensitivity: d maps without replacement with probability proportional to
//     softmax(-s_c / temperature), where s_c = S_c / mean(S) is the map's running sensitivity
//     normalised by the mean over the observed maps (so the temperature does not depend on the
//     loss's scale; a map never observed counts as 1, the mean). Drawn as Gumbel-top-d: the maps
//     with the d largest keys -s_c / temperature + Gumbel(u_c), which is exactly successive
//     sampling without replacement. Temperature 0 drops the d least sensitive maps.
//   The uniforms u_c are element c of Philox stream {seed, (kChannel, site index, iteration)}
//   (framework/rng.h), so a run's selections are reproducible from its seed.
//
// Estimates (sensitivity sites only): after each training run the trainer calls Observe, which
// reads the conv's input A, its weight W and the weight's gradient dW (values the forward and
// backward computed anyway; A is kept alive for it, see ObservedValues) and updates, for each map
// the iteration kept, the running (EMA) importance I_c = mean |A_c| and sensitivity
// S_c = |sum A_c * dL/dA_c| (ops/kernels/channel_stats.h: the latter equals |sum W_c * dW_c| over
// the map's k*k weight columns). Maps the iteration dropped keep their previous estimates. The
// estimates are training state: Estimates / RestoreEstimates save and restore them by site name,
// and EncodeEstimates / DecodeEstimates turn them into bytes for a checkpoint section.
//
// This file is not the lowering of the sites (graph/lower/dropout.cc, conv2d.cc) nor the kernels
// (ops/matmul/matmul.h, ops/kernels/channel_stats.h); it leaves row, tile and Bernoulli sites alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/ir.h"
#include "graph/layers.h"
#include "graph/pass.h"
#include "ops/matmul/pattern.h"

namespace sieve::graph {

/// How one channel site chooses its maps: the settings of its Dropout layer (DropoutSpec).
struct ChannelSiteConfig {
  std::string site;          ///< the site's name, "<dropout layer>.site"
  bool sensitivity = true;   ///< kSensitivity; false: kRandomChannel
  double temperature = 1.0;  ///< >= 0
  int64_t warmup_iterations = 0;
  double ema_weight = 0.1;  ///< in (0, 1]
};

/// The settings of every sensitivity and random-channel Dropout layer of `network`, in layer order.
std::vector<ChannelSiteConfig> ChannelSiteConfigs(const Network& network);

/// The running estimates of one sensitivity site, one entry per input map.
struct ChannelEstimates {
  std::string site;                 ///< the site's name
  std::vector<double> importance;   ///< EMA of mean |A_c|
  std::vector<double> sensitivity;  ///< EMA of |sum A_c * dL/dA_c|
  std::vector<int64_t> observed;    ///< the iterations that kept (and so measured) map c
};

/// The maps `config`'s site drops at (`seed`, `iteration`) given `estimates` (unused by random
/// channel sites, and may be null for them), as the ChannelSet of the kept maps, ascending. See the
/// file comment for the rule. `iteration` must be in [0, 2^32), the site index below 2^24.
ops::ChannelSet ChooseChannels(const DropoutSite& site, const ChannelSiteConfig& config,
                               const ChannelEstimates* estimates, uint64_t seed, int64_t iteration);

/// Reads a value of the training graph after a run (the trainer passes Executor::Get).
using ValueReader = std::function<StatusOr<Tensor>(ValueId)>;

/// Sets the kept maps of every channel site it was made for; keeps the sensitivity estimates.
class SensitivityDropPass final : public Pass {
 public:
  std::string_view name() const override { return "SensitivityDrop"; }
  /// Fails, naming the site, when the graph no longer has a site it was made for (same index, name
  /// and kind) or the iteration is outside [0, 2^32).
  Status Run(Graph& graph, PassContext& context) override;

  /// Updates the estimates of every sensitivity site from the run that used the sites' current
  /// patterns, reading A, W and dW through `read`. Fails, naming the site, when the graph has no
  /// gradient of the conv's weight (not a training graph) or a value has an unexpected shape.
  Status Observe(const Graph& graph, const ValueReader& read);

  /// The values Observe reads that live in the executor's arena (each sensitivity site's conv
  /// input): the trainer keeps them alive to the end of the run (MemoryPlanOptions::keep_alive).
  std::vector<ValueId> ObservedValues() const;

  /// The estimates of every sensitivity site, in site order.
  const std::vector<ChannelEstimates>& Estimates() const { return estimates_; }
  /// OK when RestoreEstimates(estimates) would succeed: every entry names a sensitivity site of the
  /// pass, once, with as many maps (a checkpoint checks before it applies anything).
  Status CheckEstimates(const std::vector<ChannelEstimates>& estimates) const;
  /// Replaces the estimates of the sites named in `estimates` (CheckEstimates); sites not named keep
  /// theirs. Nothing changes on error.
  Status RestoreEstimates(const std::vector<ChannelEstimates>& estimates);

  /// The sites the pass chooses maps for, with their settings.
  const std::vector<ChannelSiteConfig>& configs() const { return configs_; }

 private:
  friend StatusOr<std::unique_ptr<SensitivityDropPass>> MakeSensitivityDropPass(const Graph&,
                                                                                std::vector<ChannelSiteConfig>);
  // Where Observe reads one sensitivity site's inputs.
  struct Probe {
    SiteId site{};
    size_t estimates = 0;                // index into estimates_
    ValueId input{};                     // A, the conv's input [B, C, H, W]
    ValueId weight{};                    // W [Cout, C * group]
    std::optional<ValueId> weight_grad;  // dW, absent in a graph without backward
    int64_t group = 1;                   // k * k
    double ema_weight = 0.1;
  };

  std::vector<SiteId> sites_;  // parallel to configs_
  std::vector<ChannelSiteConfig> configs_;
  std::vector<std::optional<size_t>> estimate_of_;  // per config: its index in estimates_
  std::vector<ChannelEstimates> estimates_;
  std::vector<Probe> probes_;
};

/// The pass for the channel sites of `graph` named in `configs` (ChannelSiteConfigs of the network
/// the graph was lowered from). Fails, naming it, for a config whose site is not a channel site of
/// the graph, or whose site no forward implicit-convolution MatMul uses on K, or with a setting out of range.
StatusOr<std::unique_ptr<SensitivityDropPass>> MakeSensitivityDropPass(const Graph& graph,
                                                                       std::vector<ChannelSiteConfig> configs);

/// The estimates as bytes (a versioned little-endian record per site) for a checkpoint section,
/// and back; decoding fails on truncated or malformed input, naming what is wrong.
std::string EncodeEstimates(const std::vector<ChannelEstimates>& estimates);
StatusOr<std::vector<ChannelEstimates>> DecodeEstimates(std::string_view bytes);

}  // namespace sieve::graph
