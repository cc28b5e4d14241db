// Gradient rules of the pooling kernels that CNNs put between convolutions: max and average
// pooling (their backward kernels). The convolution itself is an implicit-GEMM MatMul
// (matmul.cc); the per-channel bias is in elementwise.cc.
#include <optional>

#include "graph/grad/rules.h"

namespace sieve::graph::grad {

namespace {

ValueId OutputGrad(GradContext& ctx) {
  const std::optional<ValueId> dy = ctx.GradOf(ctx.forward().outputs[0]);
  SIEVE_CHECK(dy.has_value(), DescribeNode(ctx.forward()) << ": rule called without an output gradient");
  return *dy;
}

}  // namespace

Status MaxPoolGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const ValueId x = f.inputs[0], argmax = f.outputs[1];
  const PoolAttr attr{std::get<PoolAttr>(f.attr).geometry, 0.0f};
  const std::string name = BackwardName(ctx, ".grad");
  const ValueId dy = OutputGrad(ctx);
  const ValueId dx = ctx.NewGrad(x);
  ctx.Emit(OpKind::kMaxPoolBackward, name, {dy, argmax}, {dx}, attr);
  return ctx.AddGrad(x, dx);
}

Status AvgPoolGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const ValueId x = f.inputs[0];
  const PoolAttr attr{std::get<PoolAttr>(f.attr).geometry, 0.0f};
  const std::string name = BackwardName(ctx, ".grad");
  const ValueId dy = OutputGrad(ctx);
  const ValueId dx = ctx.NewGrad(x);
  ctx.Emit(OpKind::kAvgPoolBackward, name, {dy}, {dx}, attr);
  return ctx.AddGrad(x, dx);
}

}  // namespace sieve::graph::grad
