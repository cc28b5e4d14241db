// The root rule: a loss node (SoftmaxXent with a loss weight) starts the backward with
// SoftmaxXentBackward(prob, labels) -> dlogits, which already holds loss_weight / counted rows
// (ops/kernels/softmax_xent.h), so nothing upstream scales again.
#include "graph/grad/rules.h"

namespace sieve::graph::grad {

Status SoftmaxXentGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const ValueId logits = f.inputs[0], labels = f.inputs[1], prob = f.outputs[0];
  const NodeAttr attr = f.attr;
  const std::string name = BackwardName(ctx, ".grad");
  const ValueId dlogits = ctx.NewGrad(logits);
  ctx.Emit(OpKind::kSoftmaxXentBackward, name, {prob, labels}, {dlogits}, attr);
  return ctx.AddGrad(logits, dlogits);
}

}  // namespace sieve::graph::grad
