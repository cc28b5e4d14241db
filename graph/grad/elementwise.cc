// Gradient rules of the element-wise kinds: bias (per column and per channel), activation,
// Bernoulli dropout, copy and add. Their data gradients either pass dY through unchanged (bias,
// copy, add: the same value becomes the gradient of the input) or are one backward kernel.
#include <optional>

#include "graph/grad/rules.h"

namespace sieve::graph::grad {

namespace {

// The gradient of the forward node's only output; rules run only when it exists.
ValueId OutputGrad(GradContext& ctx) {
  const std::optional<ValueId> dy = ctx.GradOf(ctx.forward().outputs[0]);
  SIEVE_CHECK(dy.has_value(), DescribeNode(ctx.forward()) << ": rule called without an output gradient");
  return *dy;
}

// One backward kernel dx = kind(inputs) with the forward's attribute and site uses.
Status EmitDataGrad(GradContext& ctx, OpKind kind, std::vector<ValueId> inputs) {
  const Node& f = ctx.forward();
  const ValueId x = f.inputs[0];
  const NodeAttr attr = f.attr;
  const std::vector<SiteUse> sites = f.sites;
  const std::string name = BackwardName(ctx, ".grad");
  const ValueId dx = ctx.NewGrad(x);
  ctx.Emit(kind, name, std::move(inputs), {dx}, attr, sites);
  return ctx.AddGrad(x, dx);
}

}  // namespace

Status BiasAddGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const ValueId x = f.inputs[0], bias = f.inputs[1];
  const ValueId dy = OutputGrad(ctx);
  if (ctx.NeedsGrad(bias)) {
    // db[j] = sum_b dy[b, j] over the kept columns; dropped entries of db are not written, so they
    // start from zero (a dropped bias gets zero gradient, SPEC 2.8) or from the partial sum.
    BiasAttr attr;
    attr.cols = std::get<BiasAttr>(f.attr).cols;
    const std::vector<SiteUse> sites = f.sites;
    const std::string name = BackwardName(ctx, ".grad");
    std::vector<ValueId> inputs = {dy};
    if (attr.cols || !sites.empty()) {
      inputs.push_back(ctx.AccumulationBase(bias));
      attr.beta = 1.0f;
    }
    const ValueId db = ctx.NewGrad(bias);
    ctx.Emit(OpKind::kBiasBackward, name, std::move(inputs), {db}, attr, sites);
    SIEVE_RETURN_IF_ERROR(ctx.AddGrad(bias, db));
  }
  if (ctx.NeedsGrad(x)) SIEVE_RETURN_IF_ERROR(ctx.AddGrad(x, dy));
  return Status::Ok();
}

Status ChannelBiasAddGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const ValueId x = f.inputs[0], bias = f.inputs[1];
  const ValueId dy = OutputGrad(ctx);
  if (ctx.NeedsGrad(bias)) {
    const std::string name = BackwardName(ctx, ".grad");
    const ValueId db = ctx.NewGrad(bias);
    ctx.Emit(OpKind::kChannelBiasBackward, name, {dy}, {db}, BiasAttr{});
    SIEVE_RETURN_IF_ERROR(ctx.AddGrad(bias, db));
  }
  if (ctx.NeedsGrad(x)) SIEVE_RETURN_IF_ERROR(ctx.AddGrad(x, dy));
  return Status::Ok();
}

Status ActivationGrad(GradContext& ctx) {
  const ValueId y = ctx.forward().outputs[0];
  return EmitDataGrad(ctx, OpKind::kActivationBackward, {y, OutputGrad(ctx)});
}

Status DropoutGrad(GradContext& ctx) { return EmitDataGrad(ctx, OpKind::kDropoutBackward, {OutputGrad(ctx)}); }

Status CopyGrad(GradContext& ctx) { return ctx.AddGrad(ctx.forward().inputs[0], OutputGrad(ctx)); }

Status AddOpGrad(GradContext& ctx) {
  const ValueId a = ctx.forward().inputs[0], b = ctx.forward().inputs[1];
  const ValueId dy = OutputGrad(ctx);
  if (ctx.NeedsGrad(a)) SIEVE_RETURN_IF_ERROR(ctx.AddGrad(a, dy));
  if (ctx.NeedsGrad(b)) SIEVE_RETURN_IF_ERROR(ctx.AddGrad(b, dy));
  return Status::Ok();
}

}  // namespace sieve::graph::grad
