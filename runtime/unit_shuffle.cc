// Unit shuffling (unit_shuffle.h): finding the parameter axes a row site's units index, drawing
// the seeded permutation and applying it to weights, gradients and optimizer state.
#include "runtime/unit_shuffle.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "framework/rng.h"
#include "framework/tensor.h"

namespace sieve::runtime {

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;
using graph::ValueId;

// One axis found from a site use, with the node it came from (for messages).
struct FoundAxis {
  UnitAxis axis;
  std::string node;
};

// The axes the forward uses of `site` index, or why a use cannot be followed.
StatusOr<std::vector<FoundAxis>> UseAxes(const graph::Graph& g, const graph::DropoutSite& site) {
  std::vector<FoundAxis> found;
  bool produced = false;
  for (const graph::Node& n : g.nodes()) {
    if (n.phase != graph::Phase::kForward) continue;
    for (const graph::SiteUse& use : n.sites) {
      if (use.site != site.id) continue;
      SIEVE_ENSURE(use.group == 1, kInvalid,
                   graph::DescribeSite(site) << ": " << graph::DescribeNode(n) << " uses it with group " << use.group
                                             << "; unit shuffling permutes whole-unit axes only");
      int axis = 0;
      ValueId param{};
      if (n.kind == graph::OpKind::kMatMul &&
          (use.target == graph::SiteTarget::kMatMulN || use.target == graph::SiteTarget::kMatMulK)) {
        const bool trans_b = std::get<ops::MatMulAttr>(n.attr).trans_b;
        const bool n_use = use.target == graph::SiteTarget::kMatMulN;
        produced = produced || n_use;
        // B is [K, N], or [N, K] with trans_b.
        axis = (n_use == trans_b) ? 0 : 1;
        param = n.inputs[1];
      } else if (n.kind == graph::OpKind::kBiasAdd && use.target == graph::SiteTarget::kBiasCols) {
        param = n.inputs[1];
      } else {
        return SIEVE_ERROR(kInvalid, graph::DescribeSite(site)
                                         << ": " << graph::DescribeNode(n) << " uses it for "
                                         << graph::SiteTargetName(use.target)
                                         << "; unit shuffling follows only MatMul N/K and BiasAdd uses");
      }
      const graph::Value& v = g.value(param);
      SIEVE_ENSURE(v.role == graph::ValueRole::kParam, kInvalid,
                   graph::DescribeSite(site) << ": " << graph::DescribeNode(n) << " selects units of "
                                             << graph::DescribeValue(v) << ", which is not a parameter");
      SIEVE_ENSURE(axis < static_cast<int>(v.planned.size()) && v.planned[axis] == site.width, kInvalid,
                   graph::DescribeSite(site)
                       << " has " << site.width << " units but axis " << axis << " of " << graph::DescribeValue(v)
                       << " (used by " << graph::DescribeNode(n) << ") does not have that extent");
      found.push_back(FoundAxis{UnitAxis{v.name, axis}, n.name});
    }
  }
  SIEVE_ENSURE(produced, StatusCode::kFailedPrecondition,
               graph::DescribeSite(site) << ": no MatMul computes its units (no N use), so there is no layer whose "
                                            "units to shuffle; the dropout must follow a FullyConnected layer that "
                                            "nothing else reads");
  return found;
}

// `host` (a contiguous host tensor) with old index permutation[i] moved to index i along `axis`.
Tensor Permuted(const Tensor& host, int axis, const std::vector<int64_t>& permutation) {
  Tensor out = Tensor::Empty(host.shape(), host.dtype());
  const float* src = host.data<float>();
  float* dst = out.data<float>();
  const int64_t extent = host.dim(axis);
  // Elements before the axis (outer), the axis, elements after it (inner).
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= host.dim(d);
  for (int d = axis + 1; d < host.rank(); ++d) inner *= host.dim(d);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < extent; ++i)
      std::copy_n(src + (o * extent + permutation[static_cast<size_t>(i)]) * inner, inner,
                  dst + (o * extent + i) * inner);
  return out;
}

Status PermuteTensor(const Tensor& t, int axis, const std::vector<int64_t>& permutation) {
  const Tensor host = t.Clone(Device::CPU());
  return t.CopyFrom(Permuted(host, axis, permutation));
}

}  // namespace

StatusOr<std::vector<UnitAxis>> SiteUnitAxes(const graph::LoweredNet& net, graph::SiteId site) {
  const graph::Graph& g = net.graph;
  SIEVE_ENSURE(
      g.has_site(site), kInvalid,
      "unit shuffling: site $" << graph::Index(site) << " is not a site of the graph (it has " << g.num_sites() << ")");
  const graph::DropoutSite& s = g.site(site);
  SIEVE_ENSURE(s.kind == graph::SiteKind::kRow, kInvalid,
               graph::DescribeSite(s) << ": unit shuffling permutes the units of row sites only");
  SIEVE_ASSIGN_OR_RETURN(std::vector<FoundAxis> found, UseAxes(g, s));
  std::vector<UnitAxis> axes;
  std::set<std::pair<std::string, int>> seen;
  for (FoundAxis& f : found)
    if (seen.emplace(f.axis.param, f.axis.axis).second) axes.push_back(std::move(f.axis));
  return axes;
}

std::vector<int64_t> UnitPermutation(int64_t width, uint64_t seed, graph::SiteId site, int64_t epoch) {
  SIEVE_CHECK(width >= 0 && epoch >= 0, "unit permutation of width " << width << " at epoch " << epoch);
  return RandomPermutation(width, {seed, MakeStreamId(StreamKind::kShuffle, static_cast<uint64_t>(graph::Index(site)),
                                                      static_cast<uint64_t>(epoch))});
}

Status PermuteUnits(const std::vector<UnitAxis>& axes, const std::vector<int64_t>& permutation, ParamArena& params) {
  SIEVE_ENSURE(params.finalized(), StatusCode::kFailedPrecondition,
               "unit shuffling: the parameter arena is not finalized");
  const auto extent = static_cast<int64_t>(permutation.size());
  std::vector<bool> hit(permutation.size(), false);
  for (int64_t p : permutation) {
    SIEVE_ENSURE(p >= 0 && p < extent && !hit[static_cast<size_t>(p)], kInvalid,
                 "unit shuffling: the permutation of " << extent << " units has " << p << " out of range or twice");
    hit[static_cast<size_t>(p)] = true;
  }
  // Check every axis before changing anything.
  std::vector<const ParamEntry*> entries;
  for (const UnitAxis& a : axes) {
    SIEVE_ASSIGN_OR_RETURN(const int64_t index, params.IndexOf(a.param));
    const ParamEntry& e = params.entries()[static_cast<size_t>(index)];
    SIEVE_ENSURE(a.axis >= 0 && a.axis < static_cast<int>(e.shape.size()) && e.shape[a.axis] == extent, kInvalid,
                 "unit shuffling: parameter '" << a.param << "' " << ShapeToString(e.shape) << " has no axis " << a.axis
                                               << " of " << extent << " units");
    entries.push_back(&e);
  }
  for (size_t i = 0; i < axes.size(); ++i) {
    const ParamEntry& e = *entries[i];
    SIEVE_RETURN_IF_ERROR(PermuteTensor(e.param, axes[i].axis, permutation));
    SIEVE_RETURN_IF_ERROR(PermuteTensor(e.grad, axes[i].axis, permutation));
    for (const Tensor& slot : e.state) SIEVE_RETURN_IF_ERROR(PermuteTensor(slot, axes[i].axis, permutation));
  }
  return Status::Ok();
}

Status ShuffleUnits(const graph::LoweredNet& net, graph::SiteId site, ParamArena& params, uint64_t seed,
                    int64_t epoch) {
  SIEVE_ENSURE(epoch >= 0 && epoch < (int64_t{1} << 32), kInvalid,
               "unit shuffling: epoch " << epoch << " is outside [0, 2^32)");
  SIEVE_ASSIGN_OR_RETURN(const std::vector<UnitAxis> axes, SiteUnitAxes(net, site));
  return PermuteUnits(axes, UnitPermutation(net.graph.site(site).width, seed, site, epoch), params);
}

StatusOr<int> ShuffleScheduledUnits(const graph::LoweredNet& net, ParamArena& params, uint64_t seed, int64_t epoch) {
  SIEVE_ENSURE(epoch >= 1, kInvalid, "unit shuffling: epochs are counted from 1, got " << epoch);
  int shuffled = 0;
  for (const graph::UnitShuffleSchedule& schedule : net.unit_shuffles) {
    SIEVE_ENSURE(schedule.every_epochs >= 1, kInvalid,
                 "unit shuffling: site $" << graph::Index(schedule.site) << " is scheduled every "
                                          << schedule.every_epochs << " epochs");
    if (epoch % schedule.every_epochs != 0) continue;
    SIEVE_RETURN_IF_ERROR(ShuffleUnits(net, schedule.site, params, seed, epoch));
    ++shuffled;
  }
  return shuffled;
}

}  // namespace sieve::runtime
