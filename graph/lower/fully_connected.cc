// Lowering of FullyConnected: Y = X W^T + b as a MatMul (X [B, K], W [N, K], trans_b) into
// "<layer>.matmul.out" and a separate BiasAdd into "<layer>.out" (without a bias the MatMul
// writes "<layer>.out"). An input of rank > 2 is flattened from axis 1 by a reading view.
#include "graph/lower/lower_context.h"

namespace sieve::graph {

Status LowerFullyConnected(const Layer& layer, const FullyConnectedSpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(spec.units >= 1, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": units must be >= 1, got " << spec.units);
  ValueId x = ctx.Input(layer, 0);
  const Shape x_shape = ctx.shape(x);
  if (ctx.value(x).dtype != DType::kFloat32 || x_shape.size() < 2)
    return SIEVE_ERROR(StatusCode::kInvalidArgument,
                       ctx.DescribeInput(layer, 0) << "; FullyConnected needs float32 [B, K] (or [B, ...], flattened)");
  const int64_t batch = x_shape[0];
  const int64_t k = ShapeNumel(x_shape) / batch;
  SIEVE_ENSURE(k >= 1, StatusCode::kInvalidArgument,
               ctx.DescribeInput(layer, 0) << "; FullyConnected needs at least one feature per sample");
  x = ctx.Reshape(layer, x, {batch, k}, "in");

  const ValueId w = ctx.DeclareParam(layer, "w", {spec.units, k}, spec.weight);
  const ValueId y = ctx.AddValue(layer, spec.bias ? "matmul.out" : "out", {batch, spec.units});
  ops::MatMulAttr matmul;
  matmul.trans_b = true;
  ctx.Emit(layer, OpKind::kMatMul, "matmul", {x, w}, {y}, matmul);
  if (!spec.bias) {
    ctx.SetOutput(layer, 0, y);
    return Status::Ok();
  }
  const ValueId b = ctx.DeclareParam(layer, "b", {spec.units}, spec.bias_param);
  const ValueId out = ctx.AddValue(layer, "out", {batch, spec.units});
  ctx.Emit(layer, OpKind::kBiasAdd, "bias", {y, b}, {out}, BiasAttr{});
  ctx.SetOutput(layer, 0, out);
  return Status::Ok();
}

}  // namespace sieve::graph
