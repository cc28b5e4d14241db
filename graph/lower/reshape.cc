// Lowering of Flatten and Reshape: a reading view of the input with the new shape (no copy; a
// strided input, such as an LSTM step, is copied to a dense value first).
#include "graph/lower/lower_context.h"

namespace sieve::graph {

Status LowerFlatten(const Layer& layer, const FlattenSpec&, LowerContext& ctx) {
  const ValueId x = ctx.Input(layer, 0);
  const Shape x_shape = ctx.shape(x);
  const int64_t batch = x_shape[0];
  ctx.SetOutput(layer, 0, ctx.Reshape(layer, x, {batch, ShapeNumel(x_shape) / batch}, "out"));
  return Status::Ok();
}

Status LowerReshape(const Layer& layer, const ReshapeSpec& spec, LowerContext& ctx) {
  const ValueId x = ctx.Input(layer, 0);
  const Shape x_shape = ctx.shape(x);
  const int64_t per_sample = ShapeNumel(x_shape) / x_shape[0];
  int inferred = -1;
  int64_t known = 1;
  for (int i = 0; i < static_cast<int>(spec.shape.size()); ++i) {
    const int64_t extent = spec.shape[i];
    SIEVE_ENSURE(extent >= 1 || (extent == -1 && inferred < 0), StatusCode::kInvalidArgument,
                 DescribeLayer(layer) << ": shape " << ShapeToString(spec.shape)
                                      << " must hold extents >= 1 and at most one -1");
    if (extent == -1) {
      inferred = i;
    } else {
      known *= extent;
    }
  }
  Shape per_sample_shape = spec.shape;
  if (inferred >= 0 && per_sample % known == 0) per_sample_shape[inferred] = per_sample / known;
  if (ShapeNumel(per_sample_shape) != per_sample)
    return SIEVE_ERROR(StatusCode::kInvalidArgument,
                       ctx.DescribeInput(layer, 0) << "; " << per_sample << " elements per sample do not fit shape "
                                                   << ShapeToString(spec.shape));
  ctx.SetOutput(layer, 0, ctx.Reshape(layer, x, ctx.BatchShape(per_sample_shape), "out"));
  return Status::Ok();
}

}  // namespace sieve::graph
