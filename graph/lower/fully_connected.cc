// Lowering of FullyConnected: Y = X W^T + b as a MatMul (X [B, K], W [N, K], trans_b) into
// "<layer>.matmul.out" and a separate BiasAdd into "<layer>.out" (without a bias the MatMul
// writes "<layer>.out"). An input of rank > 2 is flattened from axis 1 by a reading view.
//
// An input blob of a row or tile Dropout layer (graph/lower/dropout.cc) annotates the MatMul:
//   row   a K use of the site (X Packed along K when the dropout packed it, else Full; W Full, its
//         kept columns), scaling: the GEMM reads only the kept units, times the site's scale;
//   tile  a tile use over (N, K), the tile grid of W, scaling.
// Autodiff maps either onto the backward GEMMs. A dropout that makes THIS layer's output compact
// adds the N use itself, later.
#include <utility>
#include <vector>

#include "graph/lower/lower_context.h"

namespace sieve::graph {

namespace {

// The site use of the MatMul X W^T for a dropped input blob; `x` is the [B, K] operand.
StatusOr<SiteUse> DroppedInputUse(const Layer& layer, const DroppedBlob& mark, ValueId x, LowerContext& ctx) {
  const DropoutSite& site = ctx.graph().site(mark.site);
  if (site.kind == SiteKind::kTile) {
    SiteUse use{.site = mark.site, .target = SiteTarget::kMatMulTile, .scale = true};
    use.tile_rows = ops::Dim::kN;
    use.tile_cols = ops::Dim::kK;
    return use;
  }
  SIEVE_ENSURE(ctx.shape(x)[1] == site.width, StatusCode::kInvalidArgument,
               ctx.DescribeInput(layer, 0) << "; it is dropped by row dropout layer '" << mark.layer
                                           << "' over its last axis, so FullyConnected needs it as [B, " << site.width
                                           << "], or its axis on that last axis ([B, ..., " << site.width << "])");
  SiteUse use{.site = mark.site, .target = SiteTarget::kMatMulK, .scale = true};
  if (mark.packed) use.a = ops::Layout::kPacked;
  return use;
}

}  // namespace

Status LowerFullyConnected(const Layer& layer, const FullyConnectedSpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(spec.units >= 1, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": units must be >= 1, got " << spec.units);
  ValueId x = ctx.Input(layer, 0);
  const Shape x_shape = ctx.shape(x);
  if (ctx.value(x).dtype != DType::kFloat32 || x_shape.size() < 2)
    return SIEVE_ERROR(StatusCode::kInvalidArgument,
                       ctx.DescribeInput(layer, 0) << "; FullyConnected needs float32 [B, K] (or [B, ...], flattened)");
  SIEVE_ENSURE(spec.axis >= 1 && spec.axis < static_cast<int>(x_shape.size()), StatusCode::kInvalidArgument,
               ctx.DescribeInput(layer, 0) << "; FullyConnected axis " << spec.axis << " is outside [1, " << x_shape.size() << ")");
  const Shape lead(x_shape.begin(), x_shape.begin() + spec.axis);
  const int64_t batch = ShapeNumel(lead);
  const int64_t k = ShapeNumel(x_shape) / batch;
  SIEVE_ENSURE(k >= 1, StatusCode::kInvalidArgument,
               ctx.DescribeInput(layer, 0) << "; FullyConnected needs at least one feature per sample");
  x = ctx.Reshape(layer, x, {batch, k}, "in");
  Shape out_shape = lead;
  out_shape.push_back(spec.units);
  std::vector<SiteUse> uses;
  if (const DroppedBlob* mark = ctx.Dropped(layer, 0)) {
    SIEVE_ASSIGN_OR_RETURN(SiteUse use, DroppedInputUse(layer, *mark, x, ctx));
    uses.push_back(use);
  }

  const ValueId w = ctx.DeclareParam(layer, "w", {spec.units, k}, spec.weight);
  const ValueId y = ctx.AddValue(layer, spec.bias ? "matmul.out" : "out", {batch, spec.units});
  ops::MatMulAttr matmul;
  matmul.trans_b = true;
  ctx.Emit(layer, OpKind::kMatMul, "matmul", {x, w}, {y}, matmul, std::move(uses));
  if (!spec.bias) {
    ctx.SetOutput(layer, 0, ctx.Reshape(layer, y, out_shape, "out.view"));
    return Status::Ok();
  }
  const ValueId b = ctx.DeclareParam(layer, "b", {spec.units}, spec.bias_param);
  const ValueId out = ctx.AddValue(layer, "out", {batch, spec.units});
  ctx.Emit(layer, OpKind::kBiasAdd, "bias", {y, b}, {out}, BiasAttr{});
  ctx.SetOutput(layer, 0, ctx.Reshape(layer, out, out_shape, "out.view"));
  return Status::Ok();
}

}  // namespace sieve::graph
