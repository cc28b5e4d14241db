// Lowering of Dropout (Bernoulli): in a training graph, a Bernoulli DropoutSite "<layer>.site"
// (width: the elements per sample) and one Dropout node naming it; in an evaluation graph
// nothing, the output blob is the input value itself.
#include <cmath>

#include "graph/lower/lower_context.h"

namespace sieve::graph {

Status LowerDropout(const Layer& layer, const DropoutSpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(spec.rate >= 0.0 && spec.rate < 1.0, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": rate must be in [0, 1), got " << spec.rate);
  ValueId x = ctx.Input(layer, 0);
  if (ctx.value(x).dtype != DType::kFloat32)
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 0) << "; Dropout needs float32");
  if (!ctx.training()) {
    ctx.SetOutput(layer, 0, x);
    return Status::Ok();
  }
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

}  // namespace sieve::graph
