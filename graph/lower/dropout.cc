// Lowering of Dropout. In an evaluation graph every kind emits nothing: the output blob is the
// input value itself. In a training graph:
//
//   kBernoulli  a Bernoulli DropoutSite "<layer>.site" (width: the elements per sample) and one
//               Dropout node naming it, into "<layer>.out";
//   kRow        a row DropoutSite "<layer>.site" over the units of the input's last axis and no
//               node: the output blob is the input value, marked as dropped (DroppedBlob), and the
//               FullyConnected or Lstm layers that read it give their GEMM a K use of the site
//               (fully_connected.cc, lstm.cc). When the input is the output of a FullyConnected
//               chain MatMul -> [BiasAdd] -> Activation* whose values nothing else reads (no node,
//               view or later layer), the PRODUCER shrinks too: the MatMul gets an N use (C packed,
//               W's kept rows read in place), the BiasAdd a bias_cols use, and every value of the
//               chain is packed along axis 1, so the readers take it packed;
//   kTile       a tile DropoutSite "<layer>.site" with the spec's tile shape and no node: the output
//               blob is the input value, marked; each FullyConnected layer that reads it gives its
//               MatMul a tile use over (N, K) of its weight (fully_connected.cc).
//   kSensitivity, kRandomChannel
//               a channel DropoutSite "<layer>.site" over the C input maps of an NCHW input and no
//               node: the output blob is the input value, marked; the Conv2d that reads it (the
//               first later reader, if any, must be one) builds im2col for the kept maps only and
//               gives its GEMM a K use (graph/lower/conv2d.cc). The network input is never dropped: a site on
//               a data input is an error. graph/sensitivity_pass.h chooses the maps.
// Row and tile sites carry the spec's scaling and pattern-search settings (graph/pattern_pass.h
// draws their patterns). Unit shuffling (runtime/unit_shuffle.h) is recorded for row sites whose
// producer shrinks.
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "graph/lower/lower_context.h"

namespace sieve::graph {

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;

Status CheckSettings(const Layer& layer, const DropoutSpec& spec) {
  SIEVE_ENSURE(spec.rate >= 0.0 && spec.rate < 1.0, kInvalid,
               DescribeLayer(layer) << ": rate must be in [0, 1), got " << spec.rate);
  SIEVE_ENSURE(spec.kind == DropoutSpec::Kind::kBernoulli || spec.kind == DropoutSpec::Kind::kRow ||
                   spec.kind == DropoutSpec::Kind::kTile || IsChannelDropout(spec.kind),
               kInvalid, DescribeLayer(layer) << ": unknown dropout kind " << static_cast<int>(spec.kind));
  if (spec.kind == DropoutSpec::Kind::kBernoulli) return Status::Ok();
  if (IsChannelDropout(spec.kind)) {
    SIEVE_ENSURE(spec.scaling < ScaleMode::kCount, kInvalid,
                 DescribeLayer(layer) << ": unknown scale mode " << static_cast<int>(spec.scaling));
    SIEVE_ENSURE(spec.temperature >= 0.0 && std::isfinite(spec.temperature), kInvalid,
                 DescribeLayer(layer) << ": temperature must be finite and >= 0, got " << spec.temperature);
    SIEVE_ENSURE(spec.warmup_iterations >= 0, kInvalid,
                 DescribeLayer(layer) << ": warmup_iterations must be >= 0, got " << spec.warmup_iterations);
    SIEVE_ENSURE(spec.ema_weight > 0.0 && spec.ema_weight <= 1.0, kInvalid,
                 DescribeLayer(layer) << ": ema_weight must be in (0, 1], got " << spec.ema_weight);
    return Status::Ok();
  }
  const char* kind = DropoutKindName(spec.kind);
  SIEVE_ENSURE(spec.scaling < ScaleMode::kCount, kInvalid,
               DescribeLayer(layer) << ": unknown scale mode " << static_cast<int>(spec.scaling));
  SIEVE_ENSURE(spec.family == PatternFamily::kSearched || spec.family == PatternFamily::kFixed, kInvalid,
               DescribeLayer(layer) << ": unknown pattern family " << static_cast<int>(spec.family));
  SIEVE_ENSURE(spec.max_period >= 1, kInvalid,
               DescribeLayer(layer) << ": max_period must be >= 1, got " << spec.max_period);
  SIEVE_ENSURE(spec.shuffle_every_epochs >= 0, kInvalid,
               DescribeLayer(layer) << ": shuffle_every_epochs must be >= 0, got " << spec.shuffle_every_epochs);
  if (spec.kind == DropoutSpec::Kind::kTile) {
    SIEVE_ENSURE(
        spec.tile_rows >= 1 && spec.tile_cols >= 1, kInvalid,
        DescribeLayer(layer) << ": the tile shape must be positive, got " << spec.tile_rows << "x" << spec.tile_cols);
    SIEVE_ENSURE(!spec.generalized, kInvalid,
                 DescribeLayer(layer) << ": generalized (k, T) patterns are for row dropout, not " << kind);
    SIEVE_ENSURE(spec.shuffle_every_epochs == 0, kInvalid,
                 DescribeLayer(layer) << ": unit shuffling is for row dropout, not " << kind);
  }
  return Status::Ok();
}

DropoutSite PatternSite(const Layer& layer, const DropoutSpec& spec, SiteKind kind, int64_t width) {
  return DropoutSite{.name = LowerContext::Name(layer, "site"),
                     .kind = kind,
                     .width = width,
                     .rate = spec.rate,
                     .tile_rows = spec.tile_rows,
                     .tile_cols = spec.tile_cols,
                     .scaling = spec.scaling,
                     .search = PatternSearchSpec{
                         .family = spec.family, .max_period = spec.max_period, .generalized = spec.generalized}};
}

// The nodes and values of a FullyConnected chain MatMul -> [BiasAdd] -> Activation* ending in
// `x`, in execution order, when its MatMul can take an N use: x W^T with W a parameter of `width`
// rows, dense but for K uses (its input may be row-dropped itself), every value 2-D [B, width].
struct ProducerChain {
  NodeId matmul = kNoNode;
  NodeId bias = kNoNode;
  std::vector<NodeId> nodes;
  std::vector<ValueId> values;  // the outputs of `nodes`, x last
};

std::optional<ProducerChain> FindProducerChain(const Graph& g, ValueId x, int64_t width) {
  ProducerChain chain;
  ValueId v = x;
  bool after_bias = false;  // walking backwards: a BiasAdd has been passed
  while (true) {
    const Value& value = g.value(v);
    if (value.view || value.planned.size() != 2 || value.planned[1] != width || !value.packed.empty() ||
        value.producer == kNoNode)
      return std::nullopt;
    const Node& n = g.node(value.producer);
    if (n.phase != Phase::kForward || n.has_base()) return std::nullopt;
    chain.nodes.insert(chain.nodes.begin(), n.id);
    chain.values.insert(chain.values.begin(), v);
    if (n.kind == OpKind::kActivation && !after_bias && n.sites.empty()) {
      v = n.inputs[0];
      continue;
    }
    if (n.kind == OpKind::kBiasAdd && !after_bias && n.sites.empty() && !std::get<BiasAttr>(n.attr).cols &&
        g.value(n.inputs[1]).role == ValueRole::kParam) {
      chain.bias = n.id;
      after_bias = true;
      v = n.inputs[0];
      continue;
    }
    if (n.kind != OpKind::kMatMul) return std::nullopt;
    const auto& mm = std::get<ops::MatMulAttr>(n.attr);
    const Value& w = g.value(n.inputs[1]);
    if (!mm.is_dense() || mm.trans_a || !mm.trans_b || w.role != ValueRole::kParam || w.planned.size() != 2 ||
        w.planned[0] != width)
      return std::nullopt;
    for (const SiteUse& use : n.sites)
      if (use.target != SiteTarget::kMatMulK) return std::nullopt;
    chain.matmul = n.id;
    return chain;
  }
}

// True when nothing but the chain reads its values: each is read only by the next node of the
// chain (x by nothing yet), no value views one of them, and no later layer reads a blob bound to
// one of them other than the dropout's own output blob.
bool ChainIsPrivate(const ProducerChain& chain, const Layer& layer, LowerContext& ctx) {
  const Graph& g = ctx.graph();
  const std::set<ValueId> values(chain.values.begin(), chain.values.end());
  for (size_t i = 0; i < chain.values.size(); ++i) {
    const std::vector<NodeId> readers = g.Consumers(chain.values[i]);
    const std::vector<NodeId> expected =
        i + 1 < chain.values.size() ? std::vector<NodeId>{chain.nodes[i + 1]} : std::vector<NodeId>{};
    if (readers != expected) return false;
  }
  for (const Value& v : g.values())
    if (v.view && values.contains(v.view->base)) return false;
  std::set<std::string> other_blobs;
  for (const auto& [blob, value] : ctx.net().blobs)
    if (values.contains(value) && blob != layer.outputs[0]) other_blobs.insert(blob);
  return ctx.LaterReader(other_blobs) == nullptr;
}

// Gives the chain's nodes their uses of `site` and packs its values.
void ShrinkProducer(const ProducerChain& chain, SiteId site, Graph& g) {
  SiteUse n_use{.site = site, .target = SiteTarget::kMatMulN};
  n_use.c = ops::Layout::kPacked;
  g.mutable_node(chain.matmul).sites.push_back(n_use);
  if (chain.bias != kNoNode)
    g.mutable_node(chain.bias).sites.push_back(SiteUse{.site = site, .target = SiteTarget::kBiasCols});
  for (ValueId v : chain.values) g.PackValue(v, site, 1);
}

Status LowerBernoulli(const Layer& layer, const DropoutSpec& spec, ValueId x, LowerContext& ctx) {
  x = ctx.Contiguous(layer, x, "in");
  const Shape shape = ctx.shape(x);
  // The site's rate is what the kernel uses, a float; the verifier compares the two as floats.
  const float rate = static_cast<float>(spec.rate);
  const SiteId site = ctx.graph().AddSite(DropoutSite{.name = LowerContext::Name(layer, "site"),
                                                      .kind = SiteKind::kBernoulli,
                                                      .width = ShapeNumel(shape) / shape[0],
                                                      .rate = rate});
  const ValueId y = ctx.AddValue(layer, "out", shape);
  ctx.Emit(layer, OpKind::kDropout, "dropout", {x}, {y}, DropoutAttr{.rate = rate, .site = site});
  ctx.SetOutput(layer, 0, y);
  return Status::Ok();
}

Status LowerRow(const Layer& layer, const DropoutSpec& spec, ValueId x, LowerContext& ctx) {
  const Shape& shape = ctx.shape(x);
  SIEVE_ENSURE(shape.size() >= 2 && shape.back() >= 1, kInvalid,
               ctx.DescribeInput(layer, 0) << "; row dropout needs [B, units] or [B, T, units]");
  const int64_t width = shape.back();
  Graph& g = ctx.graph();
  const SiteId site = g.AddSite(PatternSite(layer, spec, SiteKind::kRow, width));
  ctx.SetOutput(layer, 0, x);
  const std::optional<ProducerChain> chain = FindProducerChain(g, x, width);
  const bool shrink = chain && ChainIsPrivate(*chain, layer, ctx);
  if (shrink) ShrinkProducer(*chain, site, g);
  if (spec.shuffle_every_epochs > 0) {
    SIEVE_ENSURE(shrink, kInvalid,
                 DescribeLayer(layer) << ": unit shuffling needs the dropped units to come straight from a "
                                         "FullyConnected layer (through its bias and activations) that nothing else "
                                         "reads; input '"
                                      << layer.inputs[0] << "' does not");
    ctx.net().unit_shuffles.push_back(UnitShuffleSchedule{.site = site, .every_epochs = spec.shuffle_every_epochs});
  }
  ctx.MarkDropped(layer, 0, DroppedBlob{.site = site, .layer = layer.name, .packed = shrink});
  return Status::Ok();
}

Status LowerTile(const Layer& layer, const DropoutSpec& spec, ValueId x, LowerContext& ctx) {
  const SiteId site = ctx.graph().AddSite(PatternSite(layer, spec, SiteKind::kTile, 0));
  ctx.SetOutput(layer, 0, x);
  ctx.MarkDropped(layer, 0, DroppedBlob{.site = site, .layer = layer.name, .packed = false});
  return Status::Ok();
}

Status LowerChannel(const Layer& layer, const DropoutSpec& spec, ValueId x, LowerContext& ctx) {
  const char* kind = DropoutKindName(spec.kind);
  const Shape& shape = ctx.shape(x);
  SIEVE_ENSURE(shape.size() == 4 && shape[1] >= 1, kInvalid,
               ctx.DescribeInput(layer, 0) << "; " << kind << " dropout drops feature maps of NCHW [B, C, H, W]");
  SIEVE_ENSURE(ctx.value(x).role != ValueRole::kInput, kInvalid,
               ctx.DescribeInput(layer, 0) << "; it is the network's input, whose maps " << kind
                                           << " dropout never drops (place it before a later Conv2d)");
  const int64_t channels = shape[1];
  const int64_t dropped = ChannelsDropped(spec.rate, channels);
  SIEVE_ENSURE(dropped < channels, kInvalid,
               DescribeLayer(layer) << ": rate " << spec.rate << " would drop ceil(" << spec.rate << " * " << channels
                                    << ") = " << dropped << " of the " << channels << " maps of input '"
                                    << layer.inputs[0] << "'; at least one must stay");
  // A network that ends here (a prefix being checked) has no reader yet; the trainer's pass then
  // finds no convolution using the site (graph/sensitivity_pass.h).
  const Layer* reader = ctx.LaterReader({layer.outputs[0]});
  SIEVE_ENSURE(reader == nullptr || std::holds_alternative<Conv2dSpec>(reader->spec), kInvalid,
               DescribeLayer(layer) << ": " << kind << " dropout drops input maps of a convolution, so output '"
                                    << layer.outputs[0] << "' must be read by a Conv2d; it is read by "
                                    << DescribeLayer(*reader));
  const SiteId site = ctx.graph().AddSite(DropoutSite{.name = LowerContext::Name(layer, "site"),
                                                      .kind = SiteKind::kChannel,
                                                      .width = channels,
                                                      .rate = spec.rate,
                                                      .scaling = spec.scaling});
  ctx.SetOutput(layer, 0, x);
  ctx.MarkDropped(layer, 0, DroppedBlob{.site = site, .layer = layer.name, .packed = false});
  return Status::Ok();
}

}  // namespace

Status LowerDropout(const Layer& layer, const DropoutSpec& spec, LowerContext& ctx) {
  SIEVE_RETURN_IF_ERROR(CheckSettings(layer, spec));
  const ValueId x = ctx.Input(layer, 0);
  if (ctx.value(x).dtype != DType::kFloat32)
    return SIEVE_ERROR(kInvalid, ctx.DescribeInput(layer, 0) << "; Dropout needs float32");
  if (!ctx.training()) {
    ctx.SetOutput(layer, 0, x);
    return Status::Ok();
  }
  switch (spec.kind) {
    case DropoutSpec::Kind::kRow:
      return LowerRow(layer, spec, x, ctx);
    case DropoutSpec::Kind::kTile:
      return LowerTile(layer, spec, x, ctx);
    case DropoutSpec::Kind::kSensitivity:
    case DropoutSpec::Kind::kRandomChannel:
      return LowerChannel(layer, spec, x, ctx);
    default:
      return LowerBernoulli(layer, spec, x, ctx);
  }
}

}  // namespace sieve::graph
