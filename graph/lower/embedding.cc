// Lowering of Embedding: the int32 indices [B, ...] as a flat [n] vector, one IndexRows node
// gathering table rows into "<layer>.rows" [n, dim], and a reading view "<layer>.out"
// [B, ..., dim] of them (the rows themselves when the input is [B]).
#include "graph/lower/lower_context.h"

namespace sieve::graph {

Status LowerEmbedding(const Layer& layer, const EmbeddingSpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(spec.vocab >= 1 && spec.dim >= 1, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": vocab and dim must be >= 1, got " << spec.vocab << " and " << spec.dim);
  ValueId ids = ctx.Input(layer, 0);
  const Shape ids_shape = ctx.shape(ids);
  if (ctx.value(ids).dtype != DType::kInt32)
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 0)
                                                         << "; Embedding needs int32 indices [B, ...]");
  const int64_t n = ShapeNumel(ids_shape);
  ids = ctx.Reshape(layer, ids, {n}, "ids");

  const ValueId table = ctx.DeclareParam(layer, "w", {spec.vocab, spec.dim}, spec.weight);
  const ValueId rows = ctx.AddValue(layer, ids_shape.size() == 1 ? "out" : "rows", {n, spec.dim});
  ctx.Emit(layer, OpKind::kIndexRows, "lookup", {table, ids}, {rows});
  Shape out_shape = ids_shape;
  out_shape.push_back(spec.dim);
  ctx.SetOutput(layer, 0, ctx.Reshape(layer, rows, out_shape, "out"));
  return Status::Ok();
}

}  // namespace sieve::graph
