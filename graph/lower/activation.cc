// Lowering of Activation: one Activation node into a new value "<layer>.out" of the input's shape.
#include "graph/lower/lower_context.h"

namespace sieve::graph {

Status LowerActivation(const Layer& layer, const ActivationSpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(spec.kind < ops::Activation::kCount, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": unknown activation " << static_cast<int>(spec.kind));
  ValueId x = ctx.Input(layer, 0);
  if (ctx.value(x).dtype != DType::kFloat32)
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 0) << "; Activation needs float32");
  // The kernel takes a contiguous tensor or a 2-D view with unit column stride (an LSTM step).
  if (ctx.shape(x).size() != 2) x = ctx.Contiguous(layer, x, "in");
  const ValueId y = ctx.AddValue(layer, "out", ctx.shape(x));
  ctx.Emit(layer, OpKind::kActivation, "act", {x}, {y}, ActivationAttr{.kind = spec.kind});
  ctx.SetOutput(layer, 0, y);
  return Status::Ok();
}

}  // namespace sieve::graph
