// What the backends of an implicit-GEMM convolution MatMul (ImplicitConv in matmul.h) share: the
// validation MakeMatMulArgs runs when `attr.conv` is set, and the per-call plan (extents, the kept
// input maps) every implementation derives from validated args. Private to ops/matmul/; the
// contract itself is the ImplicitConv comment in matmul.h.
#pragma once

#include <cstdint>
#include <optional>

#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/kernels/im2col.h"
#include "ops/matmul/matmul.h"
#include "ops/matmul/pattern.h"

namespace sieve::ops {

/// "forward", "grad-weight", "grad-input".
const char* ConvRoleName(ImplicitConv::Role role);

/// Checks the operands of an implicit convolution against its role and geometry (called by
/// MakeMatMulArgs when attr.conv is set) and fills M, N, K and batch of `args`. Errors name the role,
/// every operand's shape and the geometry.
Status ValidateImplicitConv(const Tensor& a, const Tensor& b, const Tensor& c, const MatMulAttr& attr,
                            MatMulArgs& args);

/// One validated implicit convolution as the backends run it: per image n, the GEMM of the role over
/// the column matrix of the kept input maps only (kept_rows() = kept_maps * kernel_area rows).
struct ImplicitConvPlan {
  ImplicitConv::Role role = ImplicitConv::Role::kForward;
  ConvGeometry geometry;
  int64_t batch = 0;
  int64_t out_channels = 0;  // Cout: rows of W / dW
  int64_t kernel_area = 0;   // kh * kw
  int64_t out_plane = 0;     // Ho * Wo: columns of one image's column matrix
  int64_t in_image = 0;      // Cin * H * W: floats of one image of x / dx
  int64_t out_image = 0;     // Cout * Ho * Wo: floats of one image of y / dy
  int64_t kept_maps = 0;     // kept input channels
  /// The kept input maps when the im2col dimension is selected (nullopt: every map).
  std::optional<ChannelSet> maps;
  /// The selection on W's / dW's columns (the im2col dimension), or null when every column is kept.
  const IndexPattern* columns = nullptr;

  int64_t kept_rows() const { return kept_maps * kernel_area; }
  const ChannelSet* maps_or_null() const { return maps ? &*maps : nullptr; }
};

/// The plan of validated args (args.attr.conv set). `columns` points into args.attr.
ImplicitConvPlan PlanImplicitConv(const MatMulArgs& args);

namespace cpu {
/// The "blas" implementation's implicit convolution (matmul_cpu_conv.cc): validated CPU args.
void RunImplicitConv(const MatMulArgs& args);
}  // namespace cpu

}  // namespace sieve::ops
