// The gradient rule of MatMul: C = alpha op(A) op(B) (+ beta base) has two backward GEMMs,
//
//   dop(A) = alpha dC op(B)^T     dop(B) = alpha op(A)^T dC
//
// written per transpose case so that every operand is read in the layout it is stored in (A, B
// and C of the forward, dC stored like C, dA like A, dB like B). The forward's dropout
// annotation carries over dimension by dimension: a selection or site use on forward dimension D
// becomes one on the backward GEMM's dimension that D turns into, each backward operand keeping
// the Full/Packed layout of the forward tensor it is (or is the gradient of), and a use that
// scales keeps scaling. Which entries a pattern drops is thereby the same forward and backward;
// a backward output that is Full along a selected dimension gets those entries from a base (zero,
// or the partial gradient), since SPEC 2.8 gives dropped weights zero gradient.
//
// An implicit-GEMM convolution (ops::ImplicitConv, role kForward: y[n] = W col(x[n])) has the
// same two backward GEMMs as a MatMul without transposes, each again an implicit convolution
// with the transposes fixed by its role:
//
//   dW = alpha sum_n dy[n] col(x[n])^T     kGradWeight, MatMul{dy, x} (M' = M, N' = K, K' = N)
//   dx[n] = col2im(alpha W^T dy[n])        kGradInput,  MatMul{W, dy} (M' = K, N' = N, K' = M)
//
// so a channel site's K use becomes dW's N use (its dropped columns come from the base) and dx's
// M use (its dropped maps come from the base). The two backward roles have no gradient rule.
#include <array>
#include <optional>

#include "graph/grad/rules.h"

namespace sieve::graph::grad {

namespace {

using ops::Dim;
using ops::Layout;

// The forward tensor a backward GEMM operand is, or is the gradient of.
enum class Operand { kA, kB, kC };

// One backward GEMM: its operands (A', B' and the output C'), transposes, and the backward
// dimension each forward dimension turns into (indexed by the forward Dim).
struct GemmPlan {
  Operand a, b, c;
  bool trans_a, trans_b;
  std::array<Dim, 3> dim;
};

constexpr Dim kM = Dim::kM, kN = Dim::kN, kK = Dim::kK;

// dA: without trans_a, dA = dC op(B)^T (M' = M, N' = K, K' = N); with trans_a, dA (stored K x M)
// = op(B) dC^T (M' = K, N' = M, K' = N).
GemmPlan PlanGradA(const ops::MatMulAttr& f) {
  if (!f.trans_a) return {Operand::kC, Operand::kB, Operand::kA, false, !f.trans_b, {kM, kK, kN}};
  return {Operand::kB, Operand::kC, Operand::kA, f.trans_b, true, {kN, kK, kM}};
}

// dB: without trans_b, dB = op(A)^T dC (M' = K, N' = N, K' = M); with trans_b, dB (stored N x K)
// = dC^T op(A) (M' = N, N' = K, K' = M).
GemmPlan PlanGradB(const ops::MatMulAttr& f) {
  if (!f.trans_b) return {Operand::kA, Operand::kC, Operand::kB, !f.trans_a, false, {kK, kN, kM}};
  return {Operand::kC, Operand::kA, Operand::kB, true, f.trans_a, {kK, kM, kN}};
}

Layout LayoutOf(Operand op, Layout a, Layout b, Layout c) { return op == Operand::kA ? a : op == Operand::kB ? b : c; }

Dim Mapped(const GemmPlan& plan, Dim d) { return plan.dim[static_cast<int>(d)]; }

std::optional<Dim> DimOf(SiteTarget target) {
  switch (target) {
    case SiteTarget::kMatMulM:
      return kM;
    case SiteTarget::kMatMulN:
      return kN;
    case SiteTarget::kMatMulK:
      return kK;
    default:
      return std::nullopt;
  }
}

SiteTarget TargetOf(Dim d) {
  return d == kM ? SiteTarget::kMatMulM : d == kN ? SiteTarget::kMatMulN : SiteTarget::kMatMulK;
}

std::optional<ops::DimSelection>& Selection(ops::MatMulAttr& attr, Dim d) {
  return d == kM ? attr.m : d == kN ? attr.n : attr.k;
}

// The backward GEMM's attribute: transposes from the plan, the forward's alpha, beta 0, and the
// forward's selections and tile moved to the dimensions they turn into.
ops::MatMulAttr MapAttr(const ops::MatMulAttr& f, const GemmPlan& plan) {
  ops::MatMulAttr out;
  out.trans_a = plan.trans_a;
  out.trans_b = plan.trans_b;
  out.alpha = f.alpha;
  for (Dim d : {kM, kN, kK}) {
    const std::optional<ops::DimSelection>& s = f.selection(d);
    if (!s) continue;
    Selection(out, Mapped(plan, d)) =
        ops::DimSelection{s->pattern, s->extent, LayoutOf(plan.a, s->a, s->b, s->c), LayoutOf(plan.b, s->a, s->b, s->c),
                          LayoutOf(plan.c, s->a, s->b, s->c)};
  }
  if (f.tile) out.tile = ops::TileSelection{f.tile->pattern, Mapped(plan, f.tile->rows), Mapped(plan, f.tile->cols)};
  return out;
}

SiteUse MapUse(const SiteUse& use, const GemmPlan& plan) {
  SiteUse out = use;
  if (const std::optional<Dim> d = DimOf(use.target)) {
    out.target = TargetOf(Mapped(plan, *d));
    out.a = LayoutOf(plan.a, use.a, use.b, use.c);
    out.b = LayoutOf(plan.b, use.a, use.b, use.c);
    out.c = LayoutOf(plan.c, use.a, use.b, use.c);
  } else {  // a tile use
    out.tile_rows = Mapped(plan, use.tile_rows);
    out.tile_cols = Mapped(plan, use.tile_cols);
  }
  return out;
}

bool IsOutputPair(Dim rows, Dim cols) { return (rows == kM && cols == kN) || (rows == kN && cols == kM); }

// Whether a GEMM leaves entries of its output unwritten (ops/matmul/matmul.h): C Full along a
// selected M or N, or a tile pattern over (M, N).
bool LeavesOutputUnwritten(const ops::MatMulAttr& attr, const std::vector<SiteUse>& uses) {
  for (Dim d : {kM, kN})
    if (const auto& s = attr.selection(d); s && s->c == Layout::kFull) return true;
  if (attr.tile && IsOutputPair(attr.tile->rows, attr.tile->cols)) return true;
  for (const SiteUse& use : uses) {
    const std::optional<Dim> d = DimOf(use.target);
    if (d && *d != kK && use.c == Layout::kFull) return true;
    if (use.target == SiteTarget::kMatMulTile && IsOutputPair(use.tile_rows, use.tile_cols)) return true;
  }
  return false;
}

// The backward GEMMs of an implicit convolution's forward: the plans of a MatMul without
// transposes, the transposes left to the role (ops/matmul/matmul.h).
GemmPlan PlanConvGrad(const ops::MatMulAttr& f, bool grad_a) {
  ops::MatMulAttr untransposed = f;
  untransposed.trans_a = untransposed.trans_b = false;
  GemmPlan plan = grad_a ? PlanGradA(untransposed) : PlanGradB(untransposed);
  plan.trans_a = plan.trans_b = false;
  return plan;
}

// Emits the GEMM that computes the gradient of `target` (the forward A or B) and adds it.
Status EmitGemm(GradContext& ctx, const GemmPlan& plan, ValueId target, ValueId dc, const char* suffix) {
  const Node& f = ctx.forward();
  const auto& fattr = std::get<ops::MatMulAttr>(f.attr);
  auto value_of = [&](Operand op) { return op == Operand::kA ? f.inputs[0] : op == Operand::kB ? f.inputs[1] : dc; };
  ops::MatMulAttr attr = MapAttr(fattr, plan);
  if (fattr.conv) {
    using Role = ops::ImplicitConv::Role;
    attr.conv = ops::ImplicitConv{plan.c == Operand::kA ? Role::kGradWeight : Role::kGradInput, fattr.conv->geometry};
  }
  std::vector<SiteUse> sites;
  for (const SiteUse& use : f.sites) sites.push_back(MapUse(use, plan));
  const std::string name = BackwardName(ctx, suffix);
  std::vector<ValueId> inputs = {value_of(plan.a), value_of(plan.b)};
  if (LeavesOutputUnwritten(attr, sites)) {
    inputs.push_back(ctx.AccumulationBase(target));
    attr.beta = 1.0f;
  }
  const ValueId out = ctx.NewGrad(target);
  ctx.Emit(OpKind::kMatMul, name, std::move(inputs), {out}, attr, std::move(sites));
  return ctx.AddGrad(target, out);
}

}  // namespace

Status MatMulGrad(GradContext& ctx) {
  const Node& f = ctx.forward();
  const auto& attr = std::get<ops::MatMulAttr>(f.attr);
  const ValueId a = f.inputs[0], b = f.inputs[1];
  const std::optional<ValueId> dc = ctx.GradOf(f.outputs[0]);
  if (!dc) return Status::Ok();
  SIEVE_ENSURE(!attr.conv || attr.conv->role == ops::ImplicitConv::Role::kForward, StatusCode::kUnimplemented,
               DescribeNode(f) << ": an implicit convolution's " << ConvRoleName(attr.conv->role)
                               << " GEMM has no gradient rule (only the forward convolution is differentiated)");
  // Read everything from `f` before emitting: Emit appends nodes and may move the node table.
  const bool base_needs = f.has_base() && ctx.NeedsGrad(f.inputs[2]);
  const ValueId base = f.has_base() ? f.inputs[2] : ValueId{-1};
  const bool unwritten = LeavesOutputUnwritten(attr, f.sites);
  const float beta = attr.beta;
  const std::string node = DescribeNode(f);
  const GemmPlan plan_a = attr.conv ? PlanConvGrad(attr, true) : PlanGradA(attr);
  const GemmPlan plan_b = attr.conv ? PlanConvGrad(attr, false) : PlanGradB(attr);
  if (ctx.NeedsGrad(a)) SIEVE_RETURN_IF_ERROR(EmitGemm(ctx, plan_a, a, *dc, ".grad_a"));
  if (ctx.NeedsGrad(b)) SIEVE_RETURN_IF_ERROR(EmitGemm(ctx, plan_b, b, *dc, ".grad_b"));
  if (base_needs) {
    // C = alpha op(A) op(B) + beta base on the entries the GEMM writes, C = base elsewhere.
    if (beta == 1.0f) return ctx.AddGrad(base, *dc);
    SIEVE_ENSURE(beta == 0.0f && !unwritten, StatusCode::kUnimplemented,
                 node << ": the gradient of its base with beta " << beta
                      << (unwritten ? " and entries the selection leaves unwritten" : "")
                      << " is not supported (only beta = 1, or beta = 0 with every entry written)");
  }
  return Status::Ok();
}

}  // namespace sieve::graph::grad
