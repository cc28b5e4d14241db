// Lowering of Lstm: a stack of LSTM layers over a batch-first sequence x [B, T, X], forward nodes
// plus the CustomGradient that writes their backward. Per layer l (H units, input X_l: X, then H):
//
//   parameters   "<layer>.l<l>.w" [4H, X_l], "<layer>.l<l>.u" [4H, H], "<layer>.l<l>.b" [4H], the
//                four column blocks of each in the gate order i, f, g, o (ops/kernels/lstm_gates.h);
//                the bias's forget block starts at forget_bias (a ConstantRun of its ParamSpec)
//   states       kInput leaves "<layer>.l<l>.h0", ".c0" [B, H]: zeros unless a trainer carries the
//                final states over (LoweredNet::state_carry pairs (h_{T-1}, h0) and (c_{T-1}, c0))
//   forward      in = x viewed as [B*T, X_l] (for l > 0 the layer below's h sequence)
//                xw = in W^T (one MatMul for all steps), xproj = xw + b (BiasAdd)
//                per step t: xproj.t = rows (b, t) of xproj (a strided view, row stride T*4H)
//                  preact.t = h_{t-1} U^T + xproj.t   (MatMul, beta 1, in place in xproj)
//                  (h_t, c_t, gates.t) = LstmGates(preact.t, c_{t-1})
//                h_t is a writing view of the layer's sequence "<layer>.l<l>.h" [B, T, H]
// The layer's output blob is the top layer's sequence [B, T, H] with return_sequences, else a
// reading view of its last step [B, H].
//
// The backward (one CustomGradient over every forward node of the layer) walks the layers top
// down and the steps in reverse:
//   dh_t     = dH_t (the gradient from above, if any) + dpreact_{t+1} U (a MatMul with beta 1 that
//              writes into dH's buffer, which nothing reads after this region: its readers are the
//              layers above, differentiated before it; a fresh MatMul when nothing comes from above)
//   (dpreact_t, dc_{t-1}) = LstmGatesBackward(gates.t, c_{t-1}, c_t, dh_t, dc_t); dc_{T-1} is a
//              zero fill; dpreact_t is a writing view of dxproj [B*T, 4H]
//   dU       = sum_t dpreact_t^T h_{t-1}, a chain of MatMuls with beta 1
//   dW = dxproj^T in, db = BiasBackward(dxproj), din = dxproj W (one GEMM each)
// din is the layer below's dH, and for the bottom layer the gradient of x (when x needs one).
// No gradient flows to h0 and c0 (truncated backpropagation through time).
//
// Row dropout on the layer's input (an input blob of a row Dropout layer, SPEC 2.7): the bottom
// layer's input projection gets a K use of the site (X Full, W's kept columns, scaling), so all T
// steps of the window share one pattern and the four gate blocks (rows of W) share it too; the
// recurrent h -> h path is not dropped. Its backward GEMMs take the same use on their N (the
// forward K): dW's dropped columns and din's dropped columns are not written, and start from a
// zero base (dropped weights get zero gradient, SPEC 2.8).
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graph/lower/lower_context.h"

namespace sieve::graph {

namespace {

// The values of one lowered layer the backward needs.
struct LstmLayerValues {
  std::string prefix;   // "l0"
  int64_t in_features;  // X_l
  ValueId in;           // [B*T, X_l]
  ValueId w, u, b;
  ValueId h0, c0;
  ValueId h_seq;                     // [B, T, H], assembled from the steps' h
  std::vector<ValueId> h, c, gates;  // per step
};

// Everything the CustomGradient's emit reads: the layer's name, its sizes and values.
struct LstmLowered {
  std::string layer;
  int64_t batch, steps, hidden;
  bool return_sequences;
  ValueId out;  // the output blob's value
  std::vector<LstmLayerValues> layers;
  std::optional<SiteId> input_site;  // a row site on the bottom layer's input

  std::string Name(const std::string& what) const { return layer + "." + what; }
  // Step t of a [B, T, width] sequence (or [B*T, width] rows) as a [B, width] view.
  ValueId Step(Graph& g, const std::string& what, ValueRole role, ValueId seq, int64_t width, int64_t t) const {
    return g.AddView(Name(what), role, {batch, width}, seq, t * width, {steps * width, 1});
  }
};

std::string StepName(const std::string& prefix, const std::string& what, int64_t t) {
  return prefix + "." + what + ".t" + std::to_string(t);
}

ops::MatMulAttr Gemm(bool trans_a, bool trans_b, float beta = 0.0f) {
  ops::MatMulAttr attr;
  attr.trans_a = trans_a;
  attr.trans_b = trans_b;
  attr.beta = beta;
  return attr;
}

// The use, on a backward GEMM's N, of the row site on the layer input (the forward's K).
std::vector<SiteUse> InputSiteUses(const std::optional<SiteId>& site) {
  if (!site) return {};
  return {SiteUse{.site = *site, .target = SiteTarget::kMatMulN, .scale = true}};
}

// The backward of one layer, given the gradient `d_out` (nullptr: none) of its whole output
// sequence (`sequence`: [B, T, H] or [B*T, H], written in place) or of its last step only ([B, H]),
// and the row site on its input, if any. Returns din, the gradient of the layer's input
// [B*T, X_l], when `input_needs_grad`.

StatusOr<std::optional<ValueId>> EmitLayerBackward(const LstmLowered& net, const LstmLayerValues& lv,
                                                   const std::optional<SiteId>& input_site, const ValueId* d_out,
                                                   bool sequence, bool input_needs_grad, GradContext& ctx) {
  Graph& g = ctx.graph();
  const int64_t B = net.batch, T = net.steps, H = net.hidden;
  const std::string& p = lv.prefix;
  constexpr ValueRole kGrad = ValueRole::kActivationGrad;

  const ValueId dxproj = g.AddValue(net.Name(p + ".xproj.grad"), kGrad, {B * T, 4 * H});
  const ValueId zero = g.AddValue(net.Name(p + ".c.grad.zero"), kGrad, {B, H});
  ctx.Emit(OpKind::kFill, net.Name(p + ".c.grad.zero"), {}, {zero}, FillAttr{0.0f});

  const std::string u_name = g.value(lv.u).name;
  ValueId dc = zero;            // the gradient of c_t, from step t + 1
  ValueId dpreact_next = zero;  // dpreact_{t+1} (read for t < T - 1)
  ValueId du = zero;            // the dU chain so far (read for t < T - 1)
  for (int64_t t = T - 1; t >= 0; --t) {
    const bool last = t == T - 1;
    // dh_t: from above and through the recurrence.
    ValueId dh = zero;
    if (d_out != nullptr && sequence) {
      const ValueId above = net.Step(g, StepName(p, "h.grad.above", t), kGrad, *d_out, H, t);
      dh = above;
      if (!last) {
        dh = net.Step(g, StepName(p, "h.grad", t), kGrad, *d_out, H, t);
        ctx.Emit(OpKind::kMatMul, net.Name(StepName(p, "recur.dh", t)), {dpreact_next, lv.u, above}, {dh},
                 Gemm(false, false, 1.0f));
      }
    } else if (!last) {
      dh = g.AddValue(net.Name(StepName(p, "h.grad", t)), kGrad, {B, H});
      ctx.Emit(OpKind::kMatMul, net.Name(StepName(p, "recur.dh", t)), {dpreact_next, lv.u}, {dh}, Gemm(false, false));
    } else if (d_out != nullptr) {
      dh = *d_out;
    }
    const ValueId c_prev = t == 0 ? lv.c0 : lv.c[t - 1];
    const ValueId dpreact = net.Step(g, StepName(p, "preact.grad", t), kGrad, dxproj, 4 * H, t);
    const ValueId dc_prev = g.AddValue(net.Name(t == 0 ? p + ".c0.grad" : StepName(p, "c.grad", t - 1)), kGrad, {B, H});
    ctx.Emit(OpKind::kLstmGatesBackward, net.Name(StepName(p, "cell.grad", t)), {lv.gates[t], c_prev, lv.c[t], dh, dc},
             {dpreact, dc_prev});
    dc = dc_prev;
    dpreact_next = dpreact;

    // dU += dpreact_t^T h_{t-1}. The last link is the parameter's gradient itself, "<u>.grad"
    // (AppendBackward keeps a kParamGrad value of that name as the final gradient, no copy).
    const ValueId h_prev = t == 0 ? lv.h0 : lv.h[t - 1];
    const ValueId du_t = t == 0 ? g.AddValue(u_name + ".grad", ValueRole::kParamGrad, {4 * H, H})
                                : g.AddValue(u_name + ".grad.t" + std::to_string(t), kGrad, {4 * H, H});
    std::vector<ValueId> inputs = {dpreact, h_prev};
    if (!last) inputs.push_back(du);
    ctx.Emit(OpKind::kMatMul, net.Name(StepName(p, "recur.du", t)), std::move(inputs), {du_t},
             Gemm(true, false, last ? 0.0f : 1.0f));
    du = du_t;
  }
  SIEVE_RETURN_IF_ERROR(ctx.AddGrad(lv.u, du));

  // With an input site, dW and din leave the dropped columns unwritten: they start from a base.
  const float beta = input_site ? 1.0f : 0.0f;
  const ValueId dw = ctx.NewGrad(lv.w);
  std::vector<ValueId> dw_inputs = {dxproj, lv.in};
  if (input_site) dw_inputs.push_back(ctx.AccumulationBase(lv.w));
  ctx.Emit(OpKind::kMatMul, net.Name(p + ".xproj.dw"), std::move(dw_inputs), {dw}, Gemm(true, false, beta),
           InputSiteUses(input_site));
  SIEVE_RETURN_IF_ERROR(ctx.AddGrad(lv.w, dw));
  const ValueId db = ctx.NewGrad(lv.b);
  ctx.Emit(OpKind::kBiasBackward, net.Name(p + ".xproj.db"), {dxproj}, {db}, BiasAttr{});
  SIEVE_RETURN_IF_ERROR(ctx.AddGrad(lv.b, db));
  if (!input_needs_grad) return std::optional<ValueId>();
  const ValueId din = g.AddValue(net.Name(p + ".in.grad"), kGrad, {B * T, lv.in_features});
  std::vector<ValueId> din_inputs = {dxproj, lv.w};
  if (input_site) din_inputs.push_back(ctx.AccumulationBase(lv.in));
  ctx.Emit(OpKind::kMatMul, net.Name(p + ".xproj.din"), std::move(din_inputs), {din}, Gemm(false, false, beta),
           InputSiteUses(input_site));
  return std::optional<ValueId>(din);
}

Status EmitBackward(const LstmLowered& net, GradContext& ctx) {
  std::optional<ValueId> d_out = ctx.GradOf(net.out);  // of the top layer's output
  bool sequence = net.return_sequences;
  if (d_out && sequence) {
    const Value& v = ctx.graph().value(*d_out);
    SIEVE_ENSURE(!v.view || v.view->strides.empty() || v.view->strides == ContiguousStrides(v.planned),
                 StatusCode::kUnimplemented,
                 "the gradient of the LSTM output " << DescribeValue(v) << " is not stored densely");
  }
  for (int l = static_cast<int>(net.layers.size()) - 1; l >= 0; --l) {
    const LstmLayerValues& lv = net.layers[l];
    const bool bottom = l == 0;
    SIEVE_ASSIGN_OR_RETURN(
        d_out, EmitLayerBackward(net, lv, bottom ? net.input_site : std::nullopt, d_out ? &*d_out : nullptr, sequence,
                                 !bottom || ctx.NeedsGrad(lv.in), ctx));
    sequence = true;  // the next layer down gets the gradient of its whole sequence
    if (bottom && d_out) SIEVE_RETURN_IF_ERROR(ctx.AddGrad(lv.in, *d_out));
  }
  return Status::Ok();
}

}  // namespace

Status LowerLstm(const Layer& layer, const LstmSpec& spec, LowerContext& ctx) {
  constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;
  SIEVE_ENSURE(spec.units >= 1, kInvalid, DescribeLayer(layer) << ": units must be >= 1, got " << spec.units);
  SIEVE_ENSURE(spec.layers >= 1, kInvalid, DescribeLayer(layer) << ": layers must be >= 1, got " << spec.layers);
  SIEVE_ENSURE(std::isfinite(spec.forget_bias), kInvalid,
               DescribeLayer(layer) << ": forget_bias must be finite, got " << spec.forget_bias);
  const ValueId x = ctx.Input(layer, 0);
  const Shape& x_shape = ctx.shape(x);
  SIEVE_ENSURE(ctx.value(x).dtype == DType::kFloat32 && x_shape.size() == 3 && x_shape[1] >= 1 && x_shape[2] >= 1,
               kInvalid,
               ctx.DescribeInput(layer, 0) << "; Lstm needs a float32 sequence [batch, steps, features] with at least "
                                              "one step and one feature");

  Graph& g = ctx.graph();
  LstmLowered net{.layer = layer.name,
                  .batch = x_shape[0],
                  .steps = x_shape[1],
                  .hidden = spec.units,
                  .return_sequences = spec.return_sequences,
                  .out = ValueId{}};
  if (const DroppedBlob* mark = ctx.Dropped(layer, 0)) {
    // Lower admits only row sites here; they pack only 2-D FullyConnected outputs, never a sequence.
    SIEVE_CHECK(g.site(mark->site).kind == SiteKind::kRow && !mark->packed,
                DescribeLayer(layer) << ": reads a tile-dropped or packed blob");
    net.input_site = mark->site;
  }
  const int64_t B = net.batch, T = net.steps, H = net.hidden;
  const auto name = [&](const std::string& what) { return LowerContext::Name(layer, what); };
  std::vector<NodeId> nodes;
  ValueId below = x;  // the sequence the next layer reads
  for (int l = 0; l < spec.layers; ++l) {
    LstmLayerValues lv;
    lv.prefix = "l" + std::to_string(l);
    const std::string& p = lv.prefix;
    lv.in_features = ctx.shape(below).back();
    lv.in = ctx.Reshape(layer, below, {B * T, lv.in_features}, p + ".in");
    lv.w = ctx.DeclareParam(layer, p + ".w", {4 * H, lv.in_features}, spec.weight);
    lv.u = ctx.DeclareParam(layer, p + ".u", {4 * H, H}, spec.weight);
    runtime::ParamSpec bias = spec.bias_param;
    bias.init_runs.push_back({.offset = H, .count = H, .value = spec.forget_bias});
    lv.b = ctx.DeclareParam(layer, p + ".b", {4 * H}, bias);

    const ValueId xw = ctx.AddValue(layer, p + ".xw", {B * T, 4 * H});
    std::vector<SiteUse> uses;
    if (l == 0 && net.input_site)
      uses.push_back(SiteUse{.site = *net.input_site, .target = SiteTarget::kMatMulK, .scale = true});
    nodes.push_back(
        ctx.Emit(layer, OpKind::kMatMul, p + ".xproj", {lv.in, lv.w}, {xw}, Gemm(false, true), std::move(uses)));
    const ValueId xproj = ctx.AddValue(layer, p + ".xproj", {B * T, 4 * H});
    nodes.push_back(ctx.Emit(layer, OpKind::kBiasAdd, p + ".xproj.bias", {xw, lv.b}, {xproj}, BiasAttr{}));

    lv.h0 = ctx.AddInput(layer, p + ".h0", {B, H});
    lv.c0 = ctx.AddInput(layer, p + ".c0", {B, H});
    lv.h_seq = ctx.AddValue(layer, p + ".h", {B, T, H});
    ValueId h_prev = lv.h0, c_prev = lv.c0;
    for (int64_t t = 0; t < T; ++t) {
      const ValueId xp = net.Step(g, StepName(p, "xproj", t), ValueRole::kActivation, xproj, 4 * H, t);
      const ValueId preact = net.Step(g, StepName(p, "preact", t), ValueRole::kActivation, xproj, 4 * H, t);
      nodes.push_back(ctx.Emit(layer, OpKind::kMatMul, StepName(p, "recur", t), {h_prev, lv.u, xp}, {preact},
                               Gemm(false, true, 1)));
      const ValueId h =
          g.AddView(name(StepName(p, "h", t)), ValueRole::kActivation, {B, H}, lv.h_seq, t * H, {T * H, 1});
      const ValueId c = ctx.AddValue(layer, StepName(p, "c", t), {B, H});
      const ValueId gates = ctx.AddValue(layer, StepName(p, "gates", t), {B, 4 * H});
      nodes.push_back(ctx.Emit(layer, OpKind::kLstmGates, StepName(p, "cell", t), {preact, c_prev}, {h, c, gates}));
      lv.h.push_back(h);
      lv.c.push_back(c);
      lv.gates.push_back(gates);
      h_prev = h;
      c_prev = c;
    }
    ctx.net().state_carry.emplace_back(h_prev, lv.h0);
    ctx.net().state_carry.emplace_back(c_prev, lv.c0);
    below = lv.h_seq;
    net.layers.push_back(std::move(lv));
  }
  net.out = spec.return_sequences
                ? below
                : g.AddView(name("out"), ValueRole::kActivation, {B, H}, below, (T - 1) * H, {T * H, 1});
  ctx.SetOutput(layer, 0, net.out);
  ctx.net().custom_gradients.push_back(CustomGradient{
      .name = layer.name, .nodes = std::move(nodes), .emit = [net](GradContext& gc) { return EmitBackward(net, gc); }});
  return Status::Ok();
}

}  // namespace sieve::graph
