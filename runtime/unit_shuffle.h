// Unit shuffling (SPEC 2.5, beyond the papers): every E epochs, permute the hidden units of a
// FullyConnected layer whose output a row dropout site drops. A strided row pattern always drops
// the same groups of units together (units i and i + dp share every draw); permuting the units
// regroups them, which removes that co-drop bias over the run. The permutation is applied to
// everything indexed by the units, consistently, so the function the network computes does not
// change:
//
//   the producer's weight rows and bias entries    (the site's N and bias_cols uses),
//   the weight columns of every consuming layer     (the site's K uses: FullyConnected, Lstm input),
//
// each in the weights, the gradients and every optimizer state slot of the ParamArena. The
// activation between producer and consumer is element-wise, so it commutes with the permutation.
//
// This file does not decide when to shuffle: the trainer calls ShuffleScheduledUnits at the end of
// each epoch (the schedules come from DropoutSpec::shuffle_every_epochs through
// graph::LoweredNet::unit_shuffles). It does not know about deferred updates: bring every
// deferred block up to date first (runtime/solver/deferred_update.h, DeferredUpdates::CatchUpAll).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/status.h"
#include "graph/lower.h"
#include "runtime/params/param_arena.h"

namespace sieve::runtime {

/// One parameter axis indexed by a site's units: rows (axis 0) or columns (axis 1) of a weight, or
/// the entries (axis 0) of a bias.
struct UnitAxis {
  std::string param;  ///< the ParamArena name (the graph value's name)
  int axis = 0;
};

/// The parameter axes indexed by the units of row site `site` of `net` (a training graph), from
/// its forward site uses: the rows of the weight B of a MatMul with an N use (trans_b; columns
/// otherwise), the entries of the bias of a BiasAdd with a bias_cols use, and the columns of the
/// weight B of a MatMul with a K use (trans_b; rows otherwise). Errors, naming the site: not a row
/// site, no MatMul computes the units (no N use: the producer did not shrink, see
/// graph/lower/dropout.cc), a use whose operand is not a parameter or is a grouped use, or an axis
/// whose extent differs from the site's width.
StatusOr<std::vector<UnitAxis>> SiteUnitAxes(const graph::LoweredNet& net, graph::SiteId site);

/// The permutation of [0, width) for (seed, site, epoch): the Fisher-Yates shuffle (for
/// i = width-1 down to 1, swap i with j uniform in [0, i]) whose draws are the consecutive 64-bit
/// words of the Philox stream {seed, MakeStreamId(StreamKind::kShuffle, site, epoch)}, made
/// unbiased by rejection. The same on every platform and in every run.
std::vector<int64_t> UnitPermutation(int64_t width, uint64_t seed, graph::SiteId site, int64_t epoch);

/// Moves old unit permutation[i] to position i along every axis of `axes`, in the weights, the
/// gradients and every optimizer state slot of `params` (on any device; through the host). Errors:
/// an arena that is not finalized, an unknown parameter, an axis the parameter does not have, or a
/// permutation that is not one of [0, extent) for an axis.
Status PermuteUnits(const std::vector<UnitAxis>& axes, const std::vector<int64_t>& permutation, ParamArena& params);

/// SiteUnitAxes + UnitPermutation(site width, seed, site, epoch) + PermuteUnits.
Status ShuffleUnits(const graph::LoweredNet& net, graph::SiteId site, ParamArena& params, uint64_t seed, int64_t epoch);

/// What the trainer calls when epoch `epoch` (1-based) has finished: ShuffleUnits for every
/// schedule of net.unit_shuffles whose every_epochs divides `epoch`. Returns how many sites it
/// shuffled.
StatusOr<int> ShuffleScheduledUnits(const graph::LoweredNet& net, ParamArena& params, uint64_t seed, int64_t epoch);

}  // namespace sieve::runtime
