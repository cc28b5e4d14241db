// Gradient rule of IndexRows (the embedding lookup out[i] = table[indices[i]]): ScatterAddRows of
// the output gradient into the table's gradient, which starts from zero (rows no index names get
// zero gradient) or from the table's partial gradient.
#include <optional>

#include "graph/grad/rules.h"

namespace sieve::graph::grad {

Status IndexRowsGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const ValueId table = f.inputs[0], indices = f.inputs[1];
  const std::optional<ValueId> dout = ctx.GradOf(f.outputs[0]);
  SIEVE_CHECK(dout.has_value(), DescribeNode(f) << ": rule called without an output gradient");
  const std::string name = BackwardName(ctx, ".grad");
  const ValueId base = ctx.AccumulationBase(table);
  const ValueId dtable = ctx.NewGrad(table);
  ctx.Emit(OpKind::kScatterAddRows, name, {*dout, indices, base}, {dtable});
  return ctx.AddGrad(table, dtable);
}

}  // namespace sieve::graph::grad
