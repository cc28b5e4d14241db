// Lowering of Conv2d over NCHW input as one implicit-GEMM MatMul (ops/matmul/matmul.h,
// ImplicitConv): a GEMM per image whose column matrix the op builds a piece at a time, never for
// the whole batch:
//
//   MatMul{conv = kForward}  W [Cout, Cin*k*k], x [B, Cin, H, W] -> "<layer>.matmul.out" [B, Cout, Ho, Wo]
//   ChannelBiasAdd           -> "<layer>.out" [B, Cout, Ho, Wo]
//
// Without a bias the MatMul's output is "<layer>.out".
//
// When the input blob is dropped by a channel site (a sensitivity or random-channel Dropout layer,
// SPEC 3) the MatMul takes a K use of the site (group k*k: kept map c keeps the K indices
// c*k*k ... c*k*k + k*k - 1) that scales by Cin / kept, every operand Full: the op builds the
// column matrix of the kept maps only and skips the dropped maps' weight columns. Autodiff maps
// the use onto the grad-weight GEMM's N (dW: dropped columns get zero) and the grad-input GEMM's M
// (dx: dropped maps get zero), graph/grad/matmul.cc.
//
// The weight is declared with the GEMM's shape [Cout, Cin*k*k] (row o is filter o in (c, ki, kj)
// order, as Caffe stores it), so its fan-in for xavier/msra is Caffe's; its fan-out is Cout rather
// than Caffe's Cout*k*k.
#include <utility>
#include <vector>

#include "graph/lower/lower_context.h"
#include "ops/kernels/im2col.h"

namespace sieve::graph {

Status LowerConv2d(const Layer& layer, const Conv2dSpec& spec, LowerContext& ctx) {
  SIEVE_ENSURE(spec.filters >= 1, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << ": filters must be >= 1, got " << spec.filters);
  ValueId x = ctx.Input(layer, 0);
  const Shape x_shape = ctx.shape(x);
  if (ctx.value(x).dtype != DType::kFloat32 || x_shape.size() != 4)
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 0)
                                                         << "; Conv2d needs float32 NCHW input [B, C, H, W]");
  const ops::ConvGeometry g =
      ops::ConvGeometry::Square(x_shape[1], x_shape[2], x_shape[3], spec.kernel, spec.stride, spec.pad);
  if (Status st = g.Validate(); !st.ok())
    return SIEVE_ERROR(StatusCode::kInvalidArgument, ctx.DescribeInput(layer, 0)
                                                         << "; bad convolution geometry (kernel " << spec.kernel
                                                         << ", stride " << spec.stride << ", pad " << spec.pad
                                                         << "): " << st.message());
  x = ctx.Contiguous(layer, x, "in");

  const int64_t filters = spec.filters;
  std::vector<SiteUse> uses;
  if (const DroppedBlob* mark = ctx.Dropped(layer, 0)) {
    const DropoutSite& site = ctx.graph().site(mark->site);
    // Lower admits only channel sites here (CheckDroppedReaders), made over this input's maps.
    SIEVE_CHECK(site.kind == SiteKind::kChannel && site.width == g.channels,
                DescribeLayer(layer) << ": reads " << DescribeSite(site) << " over " << g.channels << " maps");
    uses.push_back(
        SiteUse{.site = mark->site, .target = SiteTarget::kMatMulK, .group = g.kernel_area(), .scale = true});
  }
  const ValueId w = ctx.DeclareParam(layer, "w", {filters, g.channels * g.kernel_area()}, spec.weight);
  const Shape y_shape = {x_shape[0], filters, g.out_h(), g.out_w()};
  const ValueId conv = ctx.AddValue(layer, spec.bias ? "matmul.out" : "out", y_shape);
  const ops::MatMulAttr attr{.conv = ops::ImplicitConv{.role = ops::ImplicitConv::Role::kForward, .geometry = g}};
  ctx.Emit(layer, OpKind::kMatMul, "matmul", {w, x}, {conv}, attr, std::move(uses));
  if (!spec.bias) {
    ctx.SetOutput(layer, 0, conv);
    return Status::Ok();
  }
  const ValueId b = ctx.DeclareParam(layer, "b", {filters}, spec.bias_param);
  const ValueId y = ctx.AddValue(layer, "out", y_shape);
  ctx.Emit(layer, OpKind::kChannelBiasAdd, "bias", {conv, b}, {y}, BiasAttr{});
  ctx.SetOutput(layer, 0, y);
  return Status::Ok();
}

}  // namespace sieve::graph
