// Validation and planning of implicit-GEMM convolution MatMuls (the ImplicitConv contract in
// matmul.h). The backends run the plan; nothing here touches tensor data.
#include "ops/matmul/implicit_conv.h"

#include <array>
#include <sstream>
#include <string>
#include <variant>

#include "ops/check.h"

namespace sieve::ops {

namespace {

using Role = ImplicitConv::Role;

// The operand names of a role, in (A, B, C) order.
std::array<const char*, 3> OperandNames(Role role) {
  switch (role) {
    case Role::kForward:
      return {"W", "x", "y"};
    case Role::kGradWeight:
      return {"dy", "x", "dW"};
    case Role::kGradInput:
      return {"W", "dy", "dx"};
  }
  return {"A", "B", "C"};
}

// The GEMM dimension that indexes the column matrix's rows (Cin*kh*kw).
Dim Im2ColDim(Role role) {
  switch (role) {
    case Role::kForward:
      return Dim::kK;
    case Role::kGradWeight:
      return Dim::kN;
    case Role::kGradInput:
      return Dim::kM;
  }
  return Dim::kK;
}

// Empty when `set` keeps whole blocks of `block` consecutive indices starting at multiples of
// `block`, else why not.
std::string CheckWholeBlocks(const ChannelSet& set, int64_t block) {
  const int64_t kept = static_cast<int64_t>(set.kept.size());
  std::ostringstream why;
  if (kept % block != 0) {
    why << "keeps " << kept << " indices, not a multiple of kh*kw = " << block;
    return why.str();
  }
  for (int64_t start = 0; start < kept; start += block) {
    const int64_t first = set.kept[static_cast<size_t>(start)];
    bool whole = first % block == 0;
    for (int64_t t = 1; t < block && whole; ++t) whole = set.kept[static_cast<size_t>(start + t)] == first + t;
    if (!whole) {
      why << "the kept indices from rank " << start << " (index " << first
          << ") are not one whole block of kh*kw = " << block << " indices starting at a multiple of " << block;
      return why.str();
    }
  }
  return {};
}

}  // namespace

const char* ConvRoleName(ImplicitConv::Role role) {
  switch (role) {
    case Role::kForward:
      return "forward";
    case Role::kGradWeight:
      return "grad-weight";
    case Role::kGradInput:
      return "grad-input";
  }
  return "?";
}

Status ValidateImplicitConv(const Tensor& a, const Tensor& b, const Tensor& c, const MatMulAttr& attr,
                            MatMulArgs& args) {
  const Role role = attr.conv->role;
  const ConvGeometry& g = attr.conv->geometry;
  const std::array<const char*, 3> names = OperandNames(role);
  const std::array<const Tensor*, 3> operands = {&a, &b, &c};
  const std::string op = std::string("implicit conv ") + ConvRoleName(role);
  auto shapes = [&] {
    std::ostringstream os;
    for (size_t i = 0; i < operands.size(); ++i)
      os << (i ? ", " : "") << names[i] << " " << ShapeToString(operands[i]->shape());
    os << "; geometry " << g.ToString();
    return os.str();
  };

  const Status geometry = g.Validate();
  SIEVE_ENSURE(geometry.ok(), StatusCode::kInvalidArgument, op << ": " << geometry.message() << "; " << shapes());
  SIEVE_ENSURE(!attr.trans_a && !attr.trans_b, StatusCode::kInvalidArgument,
               op << ": trans_a and trans_b must be false (the role fixes the transposes); got " << attr.ToString()
                  << "; " << shapes());
  SIEVE_ENSURE(
      !attr.tile, StatusCode::kInvalidArgument,
      op << ": a tile pattern cannot select an implicit convolution; got " << attr.ToString() << "; " << shapes());

  // W / dW are matrices (any leading dimension); x, y, dy, dx contiguous NCHW batches.
  const Tensor& weight = role == Role::kGradWeight ? c : a;
  const Tensor& input = role == Role::kGradInput ? c : b;
  const Tensor& output = role == Role::kForward ? c : role == Role::kGradWeight ? a : b;
  for (size_t i = 0; i < operands.size(); ++i) {
    const Tensor& t = *operands[i];
    const int rank = &t == &weight ? 2 : 4;
    SIEVE_ENSURE(t.rank() == rank, StatusCode::kInvalidArgument,
                 op << ": " << names[i] << " must be " << rank << "-D; got " << shapes());
    SIEVE_ENSURE(t.dtype() == DType::kFloat32, StatusCode::kUnimplemented,
                 op << " supports float32; " << names[i] << " is " << t.ToString());
    SIEVE_ENSURE(
        t.device() == c.device(), StatusCode::kInvalidArgument,
        op << ": operands on different devices: " << a.ToString() << ", " << b.ToString() << ", " << c.ToString());
    if (rank == 2) {
      SIEVE_ENSURE(IsMatrixView(t), StatusCode::kInvalidArgument,
                   op << ": " << names[i] << " needs unit column stride and leading dimension >= columns; got strides "
                      << ShapeToString(t.strides()) << " for " << ShapeToString(t.shape()));
    } else {
      SIEVE_ENSURE(t.is_contiguous(), StatusCode::kInvalidArgument,
                   op << ": " << names[i] << " must be a contiguous NCHW batch; got strides "
                      << ShapeToString(t.strides()) << " for " << ShapeToString(t.shape()));
    }
  }
  SIEVE_ENSURE(!Overlaps(c, a) && !Overlaps(c, b), StatusCode::kInvalidArgument,
               op << ": output " << names[2] << " overlaps an input; " << shapes());

  const char* input_name = names[role == Role::kGradInput ? 2 : 1];
  const char* weight_name = names[role == Role::kGradWeight ? 2 : 0];
  const char* output_name = names[role == Role::kForward ? 2 : role == Role::kGradWeight ? 0 : 1];
  SIEVE_ENSURE(input.dim(1) == g.channels && input.dim(2) == g.height && input.dim(3) == g.width,
               StatusCode::kInvalidArgument,
               op << ": " << input_name << " must be [B, " << g.channels << ", " << g.height << ", " << g.width
                  << "]; got " << shapes());
  const int64_t batch = input.dim(0), out_channels = weight.dim(0);
  SIEVE_ENSURE(batch >= 1, StatusCode::kInvalidArgument, op << ": needs at least one image; got " << shapes());
  SIEVE_ENSURE(out_channels >= 1, StatusCode::kInvalidArgument,
               op << ": needs at least one output channel; got " << shapes());
  const int64_t columns = g.channels * g.kernel_area();
  SIEVE_ENSURE(weight.dim(1) == columns, StatusCode::kInvalidArgument,
               op << ": " << weight_name << " " << ShapeToString(weight.shape()) << " needs " << g.channels << "*"
                  << g.kernel_h << "*" << g.kernel_w << " = " << columns << " columns; got " << shapes());
  const Shape output_shape = {batch, out_channels, g.out_h(), g.out_w()};
  SIEVE_ENSURE(output.shape() == output_shape, StatusCode::kInvalidArgument,
               op << ": " << output_name << " must be " << ShapeToString(output_shape) << " (batch of " << input_name
                  << ", rows of " << weight_name << ", output size of the geometry); got " << shapes());

  const Dim im2col_dim = Im2ColDim(role);
  for (Dim d : {Dim::kM, Dim::kN, Dim::kK}) {
    const auto& sel = attr.selection(d);
    if (!sel) continue;
    SIEVE_ENSURE(d == im2col_dim, StatusCode::kInvalidArgument,
                 op << ": only the im2col dimension " << DimName(im2col_dim) << " may carry a selection; got "
                    << attr.ToString() << "; " << shapes());
    const auto* set = std::get_if<ChannelSet>(&sel->pattern);
    SIEVE_ENSURE(set != nullptr, StatusCode::kInvalidArgument,
                 op << ": the selection on " << DimName(d) << " must be a channel set of whole kh*kw blocks; got "
                    << PatternToString(sel->pattern) << "; " << shapes());
    SIEVE_ENSURE(sel->a == Layout::kFull && sel->b == Layout::kFull && sel->c == Layout::kFull,
                 StatusCode::kInvalidArgument,
                 op << ": the selection on " << DimName(d) << " must be Full in every operand; " << shapes());
    SIEVE_ENSURE(sel->extent == columns, StatusCode::kInvalidArgument,
                 op << ": the selection on " << DimName(d) << " has extent " << sel->extent << ", the im2col dimension "
                    << columns << "; " << shapes());
    const std::string invalid = ValidatePattern(sel->pattern, columns);
    SIEVE_ENSURE(invalid.empty(), StatusCode::kInvalidArgument,
                 op << ": the selection on " << DimName(d) << ": " << invalid << "; " << shapes());
    const std::string partial = CheckWholeBlocks(*set, g.kernel_area());
    SIEVE_ENSURE(partial.empty(), StatusCode::kInvalidArgument,
                 op << ": the channel set on " << DimName(d) << " " << partial << "; " << shapes());
  }

  const int64_t out_plane = g.out_plane();
  switch (role) {
    case Role::kForward:
      args.M = out_channels, args.N = out_plane, args.K = columns;
      break;
    case Role::kGradWeight:
      args.M = out_channels, args.N = columns, args.K = out_plane;
      break;
    case Role::kGradInput:
      args.M = columns, args.N = out_plane, args.K = out_channels;
      break;
  }
  args.batch = batch;
  return Status::Ok();
}

ImplicitConvPlan PlanImplicitConv(const MatMulArgs& args) {
  SIEVE_CHECK(args.attr.conv.has_value(), "PlanImplicitConv of a plain MatMul " << args.attr.ToString());
  ImplicitConvPlan plan;
  plan.role = args.attr.conv->role;
  plan.geometry = args.attr.conv->geometry;
  const ConvGeometry& g = plan.geometry;
  plan.batch = args.batch;
  plan.out_channels = plan.role == Role::kGradInput ? args.K : args.M;
  plan.kernel_area = g.kernel_area();
  plan.out_plane = g.out_plane();
  plan.in_image = g.channels * g.in_plane();
  plan.out_image = plan.out_channels * plan.out_plane;
  plan.kept_maps = g.channels;
  if (const auto& sel = args.attr.selection(Im2ColDim(plan.role))) {
    const ChannelSet& set = std::get<ChannelSet>(sel->pattern);
    const int64_t kept_maps = static_cast<int64_t>(set.kept.size()) / plan.kernel_area;
    // A set that keeps every map is no selection: the backends then skip the gathers.
    if (kept_maps < g.channels) {
      ChannelSet maps;
      maps.kept.reserve(static_cast<size_t>(kept_maps));
      for (int64_t r = 0; r < kept_maps; ++r)
        maps.kept.push_back(set.kept[static_cast<size_t>(r * plan.kernel_area)] / plan.kernel_area);
      plan.maps = std::move(maps);
      plan.kept_maps = kept_maps;
      plan.columns = &sel->pattern;
    }
  }
  return plan;
}

}  // namespace sieve::ops
