// Lowering of Conv2d over NCHW input as one GEMM for the whole batch:
//
//   Im2Col      x [B, Cin, H, W]  -> "<layer>.col" [Cin*k*k, B*HoWo]        (workspace)
//   MatMul      W [Cout, Cin*k*k] x col -> "<layer>.matmul.out" [Cout, B*HoWo] (channel-major)
//   SwapLeadingAxes   (a reading view "<layer>.cbp" [Cout, B, HoWo] of it)
//               -> "<layer>.swap.out" [B, Cout, HoWo], read as NCHW through "<layer>.nchw"
//   ChannelBiasAdd    -> "<layer>.out" [B, Cout, Ho, Wo]
//
// Without a bias the NCHW view is "<layer>.out".
//
// When the input blob is dropped by a channel site (a sensitivity or random-channel Dropout layer,
// SPEC 3) the Im2Col takes a channels use of the site and "<layer>.col" is packed along its rows
// in groups of k*k (the kept maps' rows only); the MatMul takes a K use (group k*k, W Full: its
// kept columns are gathered, col Packed) that scales by Cin / kept. Autodiff maps the use onto the
// grad-weight GEMM (dW Full: dropped columns get zero) and the grad-input GEMM (dcol Packed), and
// Col2Im writes the kept maps only, so dropped maps get zero gradient.
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

  const int64_t batch = x_shape[0];
  const int64_t filters = spec.filters;
  const int64_t patch = g.channels * g.kernel_area();
  const int64_t plane = g.out_plane();
  std::vector<SiteUse> im2col_uses, matmul_uses;
  const ValueId col = ctx.AddValue(layer, "col", {patch, batch * plane}, ValueRole::kWorkspace);
  if (const DroppedBlob* mark = ctx.Dropped(layer, 0)) {
    const DropoutSite& site = ctx.graph().site(mark->site);
    // Lower admits only channel sites here (CheckDroppedReaders), made over this input's maps.
    SIEVE_CHECK(site.kind == SiteKind::kChannel && site.width == g.channels,
                DescribeLayer(layer) << ": reads " << DescribeSite(site) << " over " << g.channels << " maps");
    im2col_uses.push_back(SiteUse{.site = mark->site, .target = SiteTarget::kChannels});
    SiteUse k_use{.site = mark->site, .target = SiteTarget::kMatMulK, .group = g.kernel_area(), .scale = true};
    k_use.b = ops::Layout::kPacked;
    matmul_uses.push_back(k_use);
    ctx.graph().PackValue(col, mark->site, 0, g.kernel_area());
  }
  ctx.Emit(layer, OpKind::kIm2Col, "im2col", {x}, {col}, ConvAttr{.geometry = g}, std::move(im2col_uses));

  const ValueId w = ctx.DeclareParam(layer, "w", {filters, patch}, spec.weight);
  const ValueId gemm = ctx.AddValue(layer, "matmul.out", {filters, batch * plane});
  ctx.Emit(layer, OpKind::kMatMul, "matmul", {w, col}, {gemm}, ops::MatMulAttr{}, std::move(matmul_uses));

  const ValueId channel_major = ctx.Reshape(layer, gemm, {filters, batch, plane}, "cbp");
  const ValueId batch_major = ctx.AddValue(layer, "swap.out", {batch, filters, plane});
  ctx.Emit(layer, OpKind::kSwapLeadingAxes, "swap", {channel_major}, {batch_major});
  const Shape y_shape = {batch, filters, g.out_h(), g.out_w()};
  const ValueId nchw = ctx.Reshape(layer, batch_major, y_shape, spec.bias ? "nchw" : "out");
  if (!spec.bias) {
    ctx.SetOutput(layer, 0, nchw);
    return Status::Ok();
  }
  const ValueId b = ctx.DeclareParam(layer, "b", {filters}, spec.bias_param);
  const ValueId y = ctx.AddValue(layer, "out", y_shape);
  ctx.Emit(layer, OpKind::kChannelBiasAdd, "bias", {nchw, b}, {y}, BiasAttr{});
  ctx.SetOutput(layer, 0, y);
  return Status::Ok();
}

}  // namespace sieve::graph
