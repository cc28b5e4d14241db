// Lowering of Pool: one MaxPool node (outputs "<layer>.out" and the int32 "<layer>.argmax" its
// backward reads) or one AvgPool node, over NCHW input with a square window.
#include "graph/lower/lower_context.h"
#include "ops/kernels/pooling.h"

namespace sieve::graph {

Status LowerPool(const Layer& layer, const PoolSpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(spec.kind == PoolSpec::Kind::kMax || spec.kind == PoolSpec::Kind::kAvg, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": unknown pooling kind " << static_cast<int>(spec.kind));
  ValueId x = ctx.Input(layer, 0);
  const Shape x_shape = ctx.shape(x);
  if (ctx.value(x).dtype != DType::kFloat32 || x_shape.size() != 4)
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 0)
                                                         << "; Pool needs float32 NCHW input [B, C, H, W]");
  ops::ConvGeometry g =
      ops::ConvGeometry::Square(x_shape[1], x_shape[2], x_shape[3], spec.kernel, spec.stride, spec.pad);
  g.ceil_mode = spec.ceil_mode;
  if (Status st = ops::ValidatePoolingGeometry(g); !st.ok())
    return SIEVE_ERROR(StatusCode::kInvalidArgument,
                       ctx.DescribeInput(layer, 0) << "; bad pooling geometry (kernel " << spec.kernel << ", stride "
                                                   << spec.stride << ", pad " << spec.pad << "): " << st.message());
  x = ctx.Contiguous(layer, x, "in");
  const Shape y_shape = {x_shape[0], x_shape[1], g.out_h(), g.out_w()};
  const ValueId y = ctx.AddValue(layer, "out", y_shape);
  if (spec.kind == PoolSpec::Kind::kMax) {
    const ValueId argmax = ctx.AddValue(layer, "argmax", y_shape, ValueRole::kActivation, DType::kInt32);
    ctx.Emit(layer, OpKind::kMaxPool, "pool", {x}, {y, argmax}, PoolAttr{.geometry = g});
  } else {
    ctx.Emit(layer, OpKind::kAvgPool, "pool", {x}, {y}, PoolAttr{.geometry = g});
  }
  ctx.SetOutput(layer, 0, y);
  return Status::Ok();
}

}  // namespace sieve::graph
