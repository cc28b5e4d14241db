// Lowering of the Input and Label layers: each becomes one leaf value [B, ...shape] that the
// trainer binds to a batch tensor (LoweredNet::inputs, LoweredNet::labels).
#include "graph/lower/lower_context.h"

namespace sieve::graph {
namespace {

Status CheckPerSampleShape(const Layer& layer, const Shape& shape) {
  for (int64_t extent : shape)
    SIEVE_ENSURE(extent >= 1, StatusCode::kInvalidArgument,
                 DescribeLayer(layer) << ": per-sample shape " << ShapeToString(shape) << " has an extent < 1");
  return Status::Ok();
}

}  // namespace

Status LowerInput(const Layer& layer, const InputSpec& spec, LowerContext& ctx) {
  SIEVE_RETURN_IF_ERROR(CheckPerSampleShape(layer, spec.shape));
  SIEVE_ENSURE(spec.dtype == DType::kFloat32 || spec.dtype == DType::kInt32, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": dtype " << DTypeName(spec.dtype) << "; inputs are float32 or int32");
  ctx.SetOutput(layer, 0, ctx.AddInput(layer, "out", ctx.BatchShape(spec.shape), spec.dtype));
  return Status::Ok();
}

Status LowerLabel(const Layer& layer, const LabelSpec& spec, LowerContext& ctx) {
  SIEVE_RETURN_IF_ERROR(CheckPerSampleShape(layer, spec.shape));
  ctx.SetOutput(layer, 0, ctx.AddLabel(layer, "out", ctx.BatchShape(spec.shape)));
  return Status::Ok();
}

}  // namespace sieve::graph
