// The "blas" MatMul: runs every annotation the reference runs, as compacted OpenBLAS GEMMs.
//
// How each operand reaches cblas_sgemm (row-major):
//   - a dimension that is unselected, or Packed in that operand, is used as stored;
//   - a Full operand whose storage ROW dimension keeps an arithmetic progression (a strided row
//     pattern, or a range) becomes a zero-copy view: pointer += first * ld, ld *= step;
//   - a Full operand whose storage COLUMN dimension keeps a contiguous range becomes a view too;
//   - anything else (columns of a strided pattern, generalised (k, T) patterns, channel sets) is
//     gathered into the calling thread's grow-only workspace; an output C that needs it is computed
//     into the workspace and scattered back with beta semantics. (Splitting a generalised (k, T)
//     pattern into k strided GEMMs on views was tried and measured slower at N = K = 2048: each
//     thin GEMM repacks the other operand.)
// A tile pattern over (P, Q) is run as one such GEMM per residue class q of P's tile index: all
// tiles of a class keep the same tiles along Q, so class q selects P with the row pattern
// (tP, dp*tP, q*tP) and Q with (tQ, dp*tQ, ((o - q) mod dp)*tQ). Classes write disjoint entries of C.
// P is the tile dimension that indexes C (never K), so an output whose class keeps no K still
// receives beta * C, as in the reference.
// An implicit convolution (attr.conv) runs in matmul_cpu_conv.cc.
#include <cblas.h>

#include <algorithm>
#include <array>
#include <limits>

#include "ops/kernels/gather_scatter.h"
#include "ops/matmul/implicit_conv.h"
#include "ops/matmul/kept_set.h"
#include "ops/matmul/matmul.h"
#include "ops/matmul/matmul_cpu_workspace.h"

namespace sieve::ops {

namespace {

using cpu::KeptSet;

// One GEMM dimension as one BLAS call sees it: which indices are kept (null: all of them) and how
// each operand stores it.
struct DimPlan {
  const IndexPattern* pattern = nullptr;
  int64_t extent = 0;
  Layout a = Layout::kFull, b = Layout::kFull, c = Layout::kFull;

  int64_t Kept() const { return pattern ? KeptCount(*pattern, extent) : extent; }
  // What an operand selects from its stored extent: Full operands the kept indices, Packed none.
  const IndexPattern* PatternFor(char operand) const {
    return (operand == 'a' ? a : operand == 'b' ? b : c) == Layout::kFull ? pattern : nullptr;
  }
};
using Plan = std::array<DimPlan, 3>;  // indexed by Dim

DimPlan& At(Plan& plan, Dim d) { return plan[static_cast<size_t>(d)]; }
const DimPlan& At(const Plan& plan, Dim d) { return plan[static_cast<size_t>(d)]; }

// A matrix as BLAS reads or writes it after zero-copy views, plus the selections a copy must still
// apply (rows x cols are the extents of the viewed storage those selections index).
struct Operand {
  float* data = nullptr;
  int64_t ld = 1;
  int64_t rows = 0, cols = 0;
  const IndexPattern* row_pattern = nullptr;
  const IndexPattern* col_pattern = nullptr;
  int64_t kept_cols = 0;

  bool needs_copy() const { return row_pattern != nullptr || col_pattern != nullptr; }
};

Operand MakeOperand(const Tensor& t, Dim row_dim, Dim col_dim, const Plan& plan, char name) {
  Operand o{t.data<float>(), t.stride(0), t.dim(0), t.dim(1)};
  if (const IndexPattern* rows = At(plan, row_dim).PatternFor(name)) {
    const KeptSet kept = cpu::AnalyzeKept(rows, o.rows);
    if (kept.is_view()) {
      if (kept.count > 0) o.data += kept.first * o.ld;
      if (kept.count > 1) o.ld *= kept.step;
      o.rows = kept.count;
    } else {
      o.row_pattern = rows;
    }
  }
  o.kept_cols = o.cols;
  if (const IndexPattern* cols = At(plan, col_dim).PatternFor(name)) {
    const KeptSet kept = cpu::AnalyzeKept(cols, o.cols);
    if (kept.kind == KeptSet::Kind::kRange) {
      if (kept.count > 0) o.data += kept.first;
      o.cols = kept.count;
    } else {
      o.col_pattern = cols;
    }
    o.kept_cols = kept.count;
  }
  // With at most one row the stride is never used, and BLAS only asks ld >= columns.
  o.ld = std::max({o.ld, o.cols, int64_t{1}});
  return o;
}

// C = beta * C over m x n entries (beta == 0 overwrites, so NaN garbage does not survive).
void ScaleMatrix(float* c, int64_t ldc, int64_t m, int64_t n, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

// One compacted GEMM: view what can be viewed, gather the rest, GEMM, scatter the output.
void RunPlan(const MatMulArgs& args, const Plan& plan) {
  const MatMulAttr& attr = args.attr;
  const int64_t m = At(plan, Dim::kM).Kept(), n = At(plan, Dim::kN).Kept(), k = At(plan, Dim::kK).Kept();
  if (m == 0 || n == 0) return;

  const Operand c = MakeOperand(args.c, Dim::kM, Dim::kN, plan, 'c');
  Operand a, b;
  if (k > 0) {
    a = attr.trans_a ? MakeOperand(args.a, Dim::kK, Dim::kM, plan, 'a')
                     : MakeOperand(args.a, Dim::kM, Dim::kK, plan, 'a');
    b = attr.trans_b ? MakeOperand(args.b, Dim::kN, Dim::kK, plan, 'b')
                     : MakeOperand(args.b, Dim::kK, Dim::kN, plan, 'b');
  }
  const int64_t a_floats = a.needs_copy() ? cpu::Workspace::Aligned(m * k) : 0;
  const int64_t b_floats = b.needs_copy() ? cpu::Workspace::Aligned(k * n) : 0;
  const int64_t c_floats = c.needs_copy() ? cpu::Workspace::Aligned(m * n) : 0;
  float* const space = cpu::Workspace::ThisThread().Reserve(a_floats + b_floats + c_floats);

  float* c_out = c.data;
  int64_t ldc = c.ld;
  float gemm_beta = attr.beta;
  if (c.needs_copy()) {
    c_out = space + a_floats + b_floats;
    ldc = n;
    gemm_beta = 0.0f;
  }

  if (k == 0) {
    // No kept k: every kept entry of C becomes beta * C (the empty sum is 0).
    ScaleMatrix(c_out, ldc, m, n, gemm_beta);
  } else {
    auto pack = [](const Operand& o, float* dst) {
      cpu::GatherSubmatrix(o.data, o.ld, o.rows, o.cols, o.row_pattern, o.col_pattern, dst, o.kept_cols);
      return dst;
    };
    const float* pa = a.needs_copy() ? pack(a, space) : a.data;
    const float* pb = b.needs_copy() ? pack(b, space + a_floats) : b.data;
    const int64_t lda = a.needs_copy() ? std::max<int64_t>(a.kept_cols, 1) : a.ld;
    const int64_t ldb = b.needs_copy() ? std::max<int64_t>(b.kept_cols, 1) : b.ld;
    cblas_sgemm(CblasRowMajor, attr.trans_a ? CblasTrans : CblasNoTrans, attr.trans_b ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), attr.alpha, pa,
                static_cast<blasint>(lda), pb, static_cast<blasint>(ldb), gemm_beta, c_out, static_cast<blasint>(ldc));
  }

  if (c.needs_copy()) {
    cpu::ScatterSubmatrix(c_out, ldc, c.rows, c.cols, c.row_pattern, c.col_pattern, c.data, c.ld, attr.beta);
  }
}

Plan PlanOf(const MatMulArgs& args) {
  Plan plan;
  for (Dim d : {Dim::kM, Dim::kN, Dim::kK}) {
    DimPlan& p = At(plan, d);
    p.extent = d == Dim::kM ? args.M : d == Dim::kN ? args.N : args.K;
    if (const auto& sel = args.attr.selection(d)) {
      p.pattern = &sel->pattern;
      p.a = sel->a;
      p.b = sel->b;
      p.c = sel->c;
    }
  }
  return plan;
}

void RunTiled(const MatMulArgs& args) {
  const TileSelection& tile = *args.attr.tile;
  const TilePattern& pat = tile.pattern;
  const Dim p_dim = tile.rows == Dim::kK ? tile.cols : tile.rows;
  const Dim q_dim = p_dim == tile.rows ? tile.cols : tile.rows;
  const int64_t tp = p_dim == tile.rows ? pat.tile_rows : pat.tile_cols;
  const int64_t tq = p_dim == tile.rows ? pat.tile_cols : pat.tile_rows;
  Plan plan = PlanOf(args);
  const int64_t p_tiles = (At(plan, p_dim).extent + tp - 1) / tp;
  // Tile dimensions carry no index selection (validated), so every operand stores them Full.
  IndexPattern p_pattern, q_pattern;
  At(plan, p_dim).pattern = &p_pattern;
  At(plan, q_dim).pattern = &q_pattern;
  for (int64_t q = 0; q < std::min(pat.dp, p_tiles); ++q) {
    const int64_t partner = ((pat.offset - q) % pat.dp + pat.dp) % pat.dp;
    p_pattern = RowPattern{tp, pat.dp * tp, q * tp};
    q_pattern = RowPattern{tq, pat.dp * tq, partner * tq};
    RunPlan(args, plan);
  }
}

class BlasMatMul final : public MatMulImpl {
 public:
  std::string_view name() const override { return "blas"; }
  DeviceType device_type() const override { return DeviceType::kCPU; }

  Status Supports(const MatMulArgs& args) const override {
    SIEVE_ENSURE(args.c.device().is_cpu(), StatusCode::kUnimplemented,
                 "blas runs CPU tensors; C is on " << args.c.device().ToString());
    constexpr int64_t kMaxBlasInt = std::numeric_limits<blasint>::max();
    if (args.attr.conv) {
      // One image's GEMM: W (and dW) [Cout, Cin*kh*kw], the column matrix [Cin*kh*kw, Ho*Wo] and
      // one image of y / dy [Cout, Ho*Wo].
      const int64_t cout = args.attr.conv->role == ImplicitConv::Role::kGradInput ? args.K : args.M;
      const int64_t columns = args.attr.conv->geometry.channels * args.attr.conv->geometry.kernel_area();
      const int64_t plane = args.attr.conv->geometry.out_plane();
      const Tensor& weight = args.attr.conv->role == ImplicitConv::Role::kGradWeight ? args.c : args.a;
      SIEVE_ENSURE(cout * std::max(weight.stride(0), columns) <= kMaxBlasInt && columns * plane <= kMaxBlasInt &&
                       cout * plane <= kMaxBlasInt,
                   StatusCode::kUnimplemented,
                   "blas indexes with " << sizeof(blasint) * 8 << "-bit BLAS integers; an image's GEMM of "
                                        << args.attr.ToString() << " is too large");
      return Status::Ok();
    }
    // Views multiply a leading dimension by a step, but never past the span of the tensor.
    for (const Tensor* t : {&args.a, &args.b, &args.c}) {
      SIEVE_ENSURE(t->dim(0) * std::max(t->stride(0), t->dim(1)) <= kMaxBlasInt, StatusCode::kUnimplemented,
                   "blas indexes with " << sizeof(blasint) * 8 << "-bit BLAS integers; operand "
                                        << ShapeToString(t->shape()) << " with leading dimension " << t->stride(0)
                                        << " is too large");
    }
    return Status::Ok();
  }

  void Run(const MatMulArgs& args) const override {
    if (args.attr.conv) {
      cpu::RunImplicitConv(args);
    } else if (args.attr.tile) {
      RunTiled(args);
    } else {
      RunPlan(args, PlanOf(args));
    }
  }
};

}  // namespace

const MatMulImpl* BlasMatMulImpl() {
  static const BlasMatMul impl;
  return &impl;
}

}  // namespace sieve::ops
