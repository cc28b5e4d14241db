// Gradient rules of the convolution helpers: Im2Col (its adjoint Col2Im), SwapLeadingAxes (itself
// with the axes exchanged back), and max / average pooling (their backward kernels). The conv GEMM
// itself is a MatMul (matmul.cc); the per-channel bias is in elementwise.cc.
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

Status Im2ColGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const ValueId x = f.inputs[0];
  ConvAttr attr = std::get<ConvAttr>(f.attr);
  attr.beta = 0.0f;
  const std::vector<SiteUse> sites = f.sites;
  const std::string name = BackwardName(ctx, ".grad");
  std::vector<ValueId> inputs = {OutputGrad(ctx)};
  // Col2Im writes the kept channels only; dropped input maps get zero gradient (or keep the
  // partial sum).
  if (attr.channels || !sites.empty()) {
    inputs.push_back(ctx.AccumulationBase(x));
    attr.beta = 1.0f;
  }
  const ValueId dx = ctx.NewGrad(x);
  ctx.Emit(OpKind::kCol2Im, name, std::move(inputs), {dx}, std::move(attr), sites);
  return ctx.AddGrad(x, dx);
}

Status SwapLeadingAxesGrad(GradContext& ctx) {
  const ValueId x = ctx.forward().inputs[0];
  const std::string name = BackwardName(ctx, ".grad");
  const ValueId dy = OutputGrad(ctx);
  const ValueId dx = ctx.NewGrad(x);
  ctx.Emit(OpKind::kSwapLeadingAxes, name, {dy}, {dx});
  return ctx.AddGrad(x, dx);
}

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
