// Lowering of SoftmaxCrossEntropy and Accuracy. Both become a SoftmaxXent node over the logits
// viewed as [rows, C] and the labels as rows int32 entries:
//   SoftmaxCrossEntropy  node "<layer>.softmax" -> "<layer>.prob" with the layer's loss weight
//                        and ignore label, recorded as a LossHead (AppendBackward's root);
//   Accuracy             the statistics of a SoftmaxXent node give the accuracy, recorded as a
//                        MetricHead and never differentiated. When an earlier loss node without
//                        an ignore label reads the same logits and labels, the metric is that
//                        node (its statistics are the same); otherwise a node of its own with
//                        loss weight 0.
#include <cmath>

#include "graph/lower/lower_context.h"

namespace sieve::graph {
namespace {

// The logits [rows, C] and labels (rows entries) as the kernel takes them, before reshaping.
struct XentInputs {
  ValueId logits{};
  ValueId labels{};
  int64_t rows = 0;
  int64_t classes = 0;
};

StatusOr<XentInputs> CheckXentInputs(const Layer& layer, const LowerContext& ctx) {
  XentInputs in{.logits = ctx.Input(layer, 0), .labels = ctx.Input(layer, 1)};
  const Shape logits_shape = ctx.shape(in.logits);
  if (ctx.value(in.logits).dtype != DType::kFloat32 || logits_shape.size() < 2)
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 0)
                                                         << "; the logits must be float32 [B, ..., C]");
  if (ctx.value(in.labels).dtype != DType::kInt32)
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 1) << "; the labels must be int32");
  const Shape expected(logits_shape.begin(), logits_shape.end() - 1);
  if (ctx.shape(in.labels) != expected)
    return SIEVE_ERROR(StatusCode::kInvalidArgument,
                       ctx.DescribeInput(layer, 1)
                           << "; the labels must have the logits' shape without the class axis, "
                           << ShapeToString(expected) << " (logits '" << layer.inputs[0] << "' have shape "
                           << ShapeToString(logits_shape) << ")");
  in.classes = logits_shape.back();
  in.rows = ShapeNumel(expected);
  return in;
}

// Emits the SoftmaxXent node over `in` (logits reshaped to [rows, C], labels made contiguous).
NodeId EmitSoftmaxXent(const Layer& layer, const XentInputs& in, const SoftmaxXentAttr& attr, LowerContext& ctx) {
  const ValueId logits = ctx.Reshape(layer, in.logits, {in.rows, in.classes}, "logits");
  const ValueId labels = ctx.Contiguous(layer, in.labels, "labels");
  const ValueId prob = ctx.AddValue(layer, "prob", {in.rows, in.classes});
  return ctx.Emit(layer, OpKind::kSoftmaxXent, "softmax", {logits, labels}, {prob}, attr);
}

// Do `a` and `b` hold the same elements in the same order (one dense region of one buffer)?
bool SameElements(const LowerContext& ctx, ValueId a, ValueId b) {
  const Graph& g = ctx.graph();
  return ctx.IsContiguous(a) && ctx.IsContiguous(b) && g.StorageRoot(a) == g.StorageRoot(b) &&
         g.StorageOffset(a) == g.StorageOffset(b) && ShapeNumel(ctx.shape(a)) == ShapeNumel(ctx.shape(b));
}

}  // namespace

Status LowerSoftmaxCrossEntropy(const Layer& layer, const SoftmaxCrossEntropySpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(std::isfinite(spec.loss_weight), StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": loss_weight must be finite, got " << spec.loss_weight);
  SIEVE_ASSIGN_OR_RETURN(const XentInputs in, CheckXentInputs(layer, ctx));
  const NodeId node = EmitSoftmaxXent(
      layer, in, SoftmaxXentAttr{.ignore_label = spec.ignore_label, .loss_weight = spec.loss_weight}, ctx);
  ctx.net().losses.push_back(LossHead{.layer = layer.name, .node = node});
  if (!layer.outputs.empty()) ctx.SetOutput(layer, 0, ctx.graph().node(node).outputs[0]);
  return Status::Ok();
}

Status LowerAccuracy(const Layer& layer, const AccuracySpec&, LowerContext& ctx) {
  SIEVE_ASSIGN_OR_RETURN(const XentInputs in, CheckXentInputs(layer, ctx));
  for (const LossHead& loss : ctx.net().losses) {
    const Node& node = ctx.graph().node(loss.node);
    if (std::get<SoftmaxXentAttr>(node.attr).ignore_label || ctx.shape(node.outputs[0]).back() != in.classes ||
        !SameElements(ctx, node.inputs[0], in.logits) || !SameElements(ctx, node.inputs[1], in.labels))
      continue;
    ctx.net().metrics.push_back(MetricHead{.layer = layer.name, .node = loss.node});
    return Status::Ok();
  }
  const NodeId node = EmitSoftmaxXent(layer, in, SoftmaxXentAttr{.loss_weight = 0.0f}, ctx);
  ctx.net().metrics.push_back(MetricHead{.layer = layer.name, .node = node});
  return Status::Ok();
}

}  // namespace sieve::graph
