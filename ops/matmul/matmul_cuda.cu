// The cuBLAS MatMul ("cublas"): the CUDA implementation of the primitive in matmul.h, with the same
// results as matmul_ref.cc within FP32 rounding (FP32 math, no TF32).
//
// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so every GEMM is issued with the
// operands swapped and no data moves. A selection on a dimension becomes a smaller dense GEMM:
//   - an operand that stores the dimension Packed is used as it is;
//   - a Full operand with a strided row pattern (keep == 1) on its storage row dimension is a
//     zero-copy view: pointer += offset * ld, ld *= period;
//   - anything else is gathered into a per-device grow-only scratch buffer; an output that needs it
//     is computed into scratch and scattered with the caller's beta.
// A tile pattern runs as one GEMM per residue class r of the tile index a of one of its dimensions
// (a = r mod dp): the tiles of a class all keep the partner tiles c = o - r mod dp, and both index
// sets are generalised row patterns (k = tile, T = tile * dp), so each class is a selection problem
// of the kind above. The leading dimension is an output dimension (M or N), so every output entry
// lies in exactly one class and is written, if kept, by exactly one GEMM.
// An implicit convolution (attr.conv) runs per chunk of images whose column matrix fits a scratch
// budget: the CUDA im2col of the chunk's kept maps (ops/kernels/im2col.h) into scratch, then one
// GEMM per image on its block of columns (grad-weight accumulating with beta = 1 after the first
// image; grad-input writing the block and the chunk's col2im adding it into dx with beta). With a
// selection W's kept columns are gathered once, and dW's are accumulated in scratch and scattered.
// Not here: kernels (they live in ops/kernels/gather_scatter_cuda.cu) and any host fallback.
#include <algorithm>
#include <climits>
#include <optional>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/gather_scatter.h"
#include "ops/kernels/im2col.h"
#include "ops/matmul/implicit_conv.h"
#include "ops/matmul/matmul.h"

namespace sieve::ops {

namespace {

// Packed rows start 16 bytes apart at least, which cuBLAS's vectorised kernels need.
constexpr int64_t kPackAlign = 4;
// cuBLAS takes int extents and leading dimensions; packed ones are rounded up by kPackAlign.
constexpr int64_t kMaxExtent = INT_MAX - kPackAlign;

// A row-major float matrix on the device.
struct Matrix {
  float* data = nullptr;
  int64_t rows = 0, cols = 0, ld = 1;
};

// One GEMM dimension of a (sub-)problem: which indices are kept and how each operand stores it.
struct DimPlan {
  const IndexPattern* pattern = nullptr;  // null: every index kept
  int64_t dense = 0;
  int64_t kept = 0;
  Layout a = Layout::kFull, b = Layout::kFull, c = Layout::kFull;

  // The pattern an operand storing the dimension with `layout` still has to apply, or null.
  const IndexPattern* Restriction(Layout layout) const {
    return pattern != nullptr && layout == Layout::kFull && kept < dense ? pattern : nullptr;
  }
};

DimPlan PlanOf(const MatMulArgs& args, Dim d) {
  DimPlan plan;
  plan.dense = d == Dim::kM ? args.M : d == Dim::kN ? args.N : args.K;
  plan.kept = args.Kept(d);
  if (const auto& selection = args.attr.selection(d)) {
    plan.pattern = &selection->pattern;
    plan.a = selection->a;
    plan.b = selection->b;
    plan.c = selection->c;
  }
  return plan;
}

DimPlan WithPattern(DimPlan plan, const IndexPattern& pattern) {
  plan.pattern = &pattern;
  plan.kept = KeptCount(pattern, plan.dense);
  return plan;
}

Matrix Stored(const Tensor& t) {
  // A leading dimension only matters between rows; cuBLAS wants it >= max(1, columns) regardless.
  const int64_t rows = t.dim(0), cols = t.dim(1);
  return {t.data<float>(), rows, cols, rows <= 1 ? std::max<int64_t>(cols, 1) : t.stride(0)};
}

// The kept rows of `m` as a strided view, if `rows` allows one (null: all rows).
std::optional<Matrix> RowView(const Matrix& m, const IndexPattern* rows) {
  if (rows == nullptr) return m;
  const auto* row = std::get_if<RowPattern>(rows);
  if (row == nullptr || !row->is_strided()) return std::nullopt;
  const int64_t kept = row->KeptCount(m.rows);
  if (kept == 0) return Matrix{m.data, 0, m.cols, m.ld};
  if (kept == 1) return Matrix{m.data + row->offset * m.ld, 1, m.cols, m.ld};
  if (row->period > kMaxExtent / m.ld) return std::nullopt;  // the widened ld would not fit cuBLAS
  return Matrix{m.data + row->offset * m.ld, kept, m.cols, m.ld * row->period};
}

int64_t PackedLd(int64_t cols) { return std::max<int64_t>((cols + kPackAlign - 1) / kPackAlign * kPackAlign, 1); }

float* Scratch(int device, CudaScratch slot, int64_t rows, int64_t ld) {
  return static_cast<float*>(CudaScratchBuffer(device, slot, static_cast<size_t>(rows * ld) * sizeof(float)));
}

// The kept rows x kept columns of an input operand as a dense matrix: the operand itself, a view
// of it, or a gathered copy in scratch `slot`.
Matrix Pack(const Matrix& m, const IndexPattern* rows, const IndexPattern* cols, int device, CudaScratch slot) {
  if (cols == nullptr) {
    if (const auto view = RowView(m, rows)) return *view;
  }
  const int64_t kept_rows = rows ? KeptCount(*rows, m.rows) : m.rows;
  const int64_t kept_cols = cols ? KeptCount(*cols, m.cols) : m.cols;
  const int64_t ld = PackedLd(kept_cols);
  float* packed = Scratch(device, slot, kept_rows, ld);
  cuda::GatherSubmatrix(m.data, m.ld, m.rows, m.cols, rows, cols, packed, ld);
  return {packed, kept_rows, kept_cols, ld};
}

int Int(int64_t v) {
  SIEVE_CHECK(v >= 0 && v <= INT_MAX, "cuBLAS extent " << v << " does not fit an int");
  return static_cast<int>(v);
}

// C[m x n] = alpha op(A) op(B) + beta C on row-major matrices, as the column-major
// C^T = op(B)^T op(A)^T.
void Gemm(cublasHandle_t handle, const MatMulAttr& attr, int64_t m, int64_t n, int64_t k, const Matrix& a,
          const Matrix& b, float beta, const Matrix& c) {
  const float alpha = attr.alpha;
  SIEVE_CUBLAS_CHECK(cublasSgemm(handle, attr.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 attr.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, Int(n), Int(m), Int(k), &alpha, b.data,
                                 Int(b.ld), a.data, Int(a.ld), &beta, c.data, Int(c.ld)));
}

// One selection problem: every dimension restricted by its plan, no tiles.
void RunSelection(const MatMulArgs& args, const DimPlan& m, const DimPlan& n, const DimPlan& k, int device,
                  cublasHandle_t handle) {
  if (m.kept == 0 || n.kept == 0) return;  // no output entry is kept
  const MatMulAttr& attr = args.attr;
  const Matrix c = Stored(args.c);
  const IndexPattern* c_rows = m.Restriction(m.c);
  const IndexPattern* c_cols = n.Restriction(n.c);

  Matrix a, b;
  if (k.kept > 0) {
    const DimPlan& a_rows = attr.trans_a ? k : m;
    const DimPlan& a_cols = attr.trans_a ? m : k;
    const DimPlan& b_rows = attr.trans_b ? n : k;
    const DimPlan& b_cols = attr.trans_b ? k : n;
    a = Pack(Stored(args.a), a_rows.Restriction(a_rows.a), a_cols.Restriction(a_cols.a), device, CudaScratch::kMatMulA);
    b = Pack(Stored(args.b), b_rows.Restriction(b_rows.b), b_cols.Restriction(b_cols.b), device, CudaScratch::kMatMulB);
    SIEVE_CHECK(a.rows == a_rows.kept && a.cols == a_cols.kept && b.rows == b_rows.kept && b.cols == b_cols.kept,
                "packed operands " << a.rows << "x" << a.cols << " and " << b.rows << "x" << b.cols << " do not match "
                                   << attr.ToString());
    if (c_cols == nullptr) {
      if (const auto view = RowView(c, c_rows)) {
        Gemm(handle, attr, m.kept, n.kept, k.kept, a, b, attr.beta, *view);
        return;
      }
    }
  }
  // Compute the kept block into scratch, then scatter it with beta. With nothing kept along K the
  // block is zero and the scatter leaves beta * C (zero when beta == 0), as the reference does.
  const int64_t ld = PackedLd(n.kept);
  const Matrix block{Scratch(device, CudaScratch::kMatMulC, m.kept, ld), m.kept, n.kept, ld};
  if (k.kept > 0) {
    Gemm(handle, attr, m.kept, n.kept, k.kept, a, b, 0.0f, block);
  } else {
    SIEVE_CUDA_CHECK(cudaMemsetAsync(block.data, 0, static_cast<size_t>(m.kept * ld) * sizeof(float), CudaStream()));
  }
  cuda::ScatterSubmatrix(block.data, block.ld, c.rows, c.cols, c_rows, c_cols, c.data, c.ld, attr.beta);
}

// A tile selection as one selection problem per residue class of one tile dimension (file comment).
void RunTiled(const MatMulArgs& args, int device, cublasHandle_t handle) {
  const TileSelection& tile = *args.attr.tile;
  DimPlan plans[] = {PlanOf(args, Dim::kM), PlanOf(args, Dim::kN), PlanOf(args, Dim::kK)};
  // The classes are taken over an output dimension, so that every output entry lies in exactly one
  // class: classes over K would miss the entries whose tiles keep no K index, which the reference
  // still writes (beta * C). (a + c) mod dp = o is symmetric, so either tile dimension can lead.
  const bool k_leads = tile.rows == Dim::kK;
  DimPlan& lead = plans[static_cast<int>(k_leads ? tile.cols : tile.rows)];
  DimPlan& partner = plans[static_cast<int>(k_leads ? tile.rows : tile.cols)];
  // An empty tiled dimension leaves nothing to tile: the untiled problem writes what the
  // reference writes (nothing, or beta * C when K is the empty one).
  if (lead.dense == 0 || partner.dense == 0) {
    RunSelection(args, plans[0], plans[1], plans[2], device, handle);
    return;
  }
  // Clamping tiles to the extent and dp to the tile count changes no kept set, and keeps every
  // period below twice the extent (no overflow, and no loop over classes that hold nothing).
  const int64_t dp = tile.pattern.dp, offset = tile.pattern.offset;
  const int64_t lead_tile = std::min(k_leads ? tile.pattern.tile_cols : tile.pattern.tile_rows, lead.dense);
  const int64_t partner_tile = std::min(k_leads ? tile.pattern.tile_rows : tile.pattern.tile_cols, partner.dense);
  const int64_t lead_tiles = (lead.dense + lead_tile - 1) / lead_tile;
  const int64_t partner_tiles = (partner.dense + partner_tile - 1) / partner_tile;
  const int64_t lead_dp = std::min(dp, lead_tiles), partner_dp = std::min(dp, partner_tiles);
  const DimPlan lead_base = lead, partner_base = partner;
  for (int64_t r = 0; r < lead_dp; ++r) {
    const IndexPattern lead_class = RowPattern{lead_tile, lead_tile * lead_dp, r * lead_tile};
    const int64_t c0 = offset >= r ? offset - r : offset - r + dp;  // the partner keeps tiles c = c0 mod dp
    const IndexPattern partner_class =
        c0 < partner_tiles ? IndexPattern(RowPattern{partner_tile, partner_tile * partner_dp, c0 * partner_tile})
                           : IndexPattern(ChannelSet{});
    lead = WithPattern(lead_base, lead_class);
    partner = WithPattern(partner_base, partner_class);
    RunSelection(args, plans[0], plans[1], plans[2], device, handle);
  }
}

// Floats of column matrix one chunk of images may take in scratch (64 MiB); a chunk holds at least one image.
constexpr int64_t kConvColumnBudget = int64_t{1} << 24;

// Row-major C[m x n] = alpha op(A) op(B) + beta C, as in Gemm, with explicit transposes.
void RowMajorGemm(cublasHandle_t handle, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  SIEVE_CUBLAS_CHECK(cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 Int(n), Int(m), Int(k), &alpha, b, Int(ldb), a, Int(lda), &beta, c, Int(ldc)));
}

// y = beta * y over `count` floats (beta == 0 overwrites).
void ScaleVector(cublasHandle_t handle, float* y, int64_t count, float beta) {
  if (beta == 0.0f) {
    SIEVE_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(count) * sizeof(float), CudaStream()));
    return;
  }
  for (int64_t first = 0; first < count; first += INT_MAX) {
    const int64_t piece = std::min<int64_t>(INT_MAX, count - first);
    SIEVE_CUBLAS_CHECK(cublasSscal(handle, Int(piece), &beta, y + first, 1));
  }
}

void RunImplicitConv(const MatMulArgs& args, int device, cublasHandle_t handle) {
  using Role = ImplicitConv::Role;
  const ImplicitConvPlan p = PlanImplicitConv(args);
  const MatMulAttr& attr = args.attr;
  const int64_t rows = p.kept_rows(), plane = p.out_plane, cout = p.out_channels;
  if (rows == 0) {
    // The forward's sums are empty (y = beta * y); the backward roles write nothing.
    if (p.role == Role::kForward) ScaleVector(handle, args.c.data<float>(), p.batch * p.out_image, attr.beta);
    return;
  }
  // W_kept: W, or its kept columns gathered once.
  const float* w = nullptr;
  int64_t ldw = 0;
  if (p.role != Role::kGradWeight) {
    const Matrix stored = Stored(args.a);
    w = stored.data;
    ldw = stored.ld;
    if (p.columns != nullptr) {
      const int64_t ld = PackedLd(rows);
      float* gathered = Scratch(device, CudaScratch::kMatMulA, cout, ld);
      cuda::GatherSubmatrix(stored.data, stored.ld, stored.rows, stored.cols, nullptr, p.columns, gathered, ld);
      w = gathered;
      ldw = ld;
    }
  }
  // dW accumulates in place, or (with a selection) in a scratch block scattered at the end.
  Matrix dw_block;
  if (p.role == Role::kGradWeight) {
    dw_block = Stored(args.c);
    if (p.columns != nullptr) {
      const int64_t ld = PackedLd(rows);
      dw_block = {Scratch(device, CudaScratch::kMatMulC, cout, ld), cout, rows, ld};
    }
  }
  const int64_t chunk = std::clamp<int64_t>(kConvColumnBudget / (rows * plane), 1, p.batch);
  const int64_t ld_col = chunk * plane;
  float* col = Scratch(device, CudaScratch::kMatMulB, rows, ld_col);
  const float* x = args.b.data<float>();  // forward and grad-weight
  for (int64_t first = 0; first < p.batch; first += chunk) {
    const int64_t count = std::min(chunk, p.batch - first);
    switch (p.role) {
      case Role::kForward: {
        float* y = args.c.data<float>();
        cuda::Im2Col(x + first * p.in_image, count, p.geometry, p.maps_or_null(), col, ld_col, 0);
        for (int64_t i = 0; i < count; ++i)
          RowMajorGemm(handle, false, false, cout, plane, rows, attr.alpha, w, ldw, col + i * plane, ld_col, attr.beta,
                       y + (first + i) * p.out_image, plane);
        break;
      }
      case Role::kGradWeight: {
        const float* dy = args.a.data<float>();
        cuda::Im2Col(x + first * p.in_image, count, p.geometry, p.maps_or_null(), col, ld_col, 0);
        for (int64_t i = 0; i < count; ++i) {
          const int64_t n = first + i;
          // The first image applies beta in place; into the scratch block it overwrites.
          const float beta = n > 0 ? 1.0f : p.columns != nullptr ? 0.0f : attr.beta;
          RowMajorGemm(handle, false, true, cout, rows, plane, attr.alpha, dy + n * p.out_image, plane, col + i * plane,
                       ld_col, beta, dw_block.data, dw_block.ld);
        }
        break;
      }
      case Role::kGradInput: {
        const float* dy = args.b.data<float>();
        for (int64_t i = 0; i < count; ++i)
          RowMajorGemm(handle, true, false, rows, plane, cout, attr.alpha, w, ldw, dy + (first + i) * p.out_image,
                       plane, 0.0f, col + i * plane, ld_col);
        cuda::Col2Im(col, ld_col, 0, count, p.geometry, p.maps_or_null(), args.c.data<float>() + first * p.in_image,
                     attr.beta);
        break;
      }
    }
  }
  if (p.role == Role::kGradWeight && p.columns != nullptr) {
    const Matrix dw = Stored(args.c);
    cuda::ScatterSubmatrix(dw_block.data, dw_block.ld, dw.rows, dw.cols, nullptr, p.columns, dw.data, dw.ld, attr.beta);
  }
}

class CublasMatMul final : public MatMulImpl {
 public:
  std::string_view name() const override { return "cublas"; }
  DeviceType device_type() const override { return DeviceType::kCUDA; }

  Status Supports(const MatMulArgs& args) const override {
    SIEVE_ENSURE(args.c.device().is_cuda(), StatusCode::kUnimplemented,
                 "cublas runs CUDA tensors only; C is " << args.c.ToString());
    if (args.attr.conv) {
      // One image's GEMM takes 32-bit extents; a chunk's columns (ld) stay below 2^24 by the budget.
      const Tensor& weight = args.attr.conv->role == ImplicitConv::Role::kGradWeight ? args.c : args.a;
      SIEVE_ENSURE(args.M <= kMaxExtent && args.N <= kMaxExtent && args.K <= kMaxExtent &&
                       (weight.dim(0) <= 1 || weight.stride(0) <= kMaxExtent),
                   StatusCode::kUnimplemented,
                   "cublas takes 32-bit extents; an image's GEMM of " << args.attr.ToString() << " exceeds them");
      return Status::Ok();
    }
    SIEVE_ENSURE(args.M <= kMaxExtent && args.N <= kMaxExtent && args.K <= kMaxExtent, StatusCode::kUnimplemented,
                 "cublas takes 32-bit extents; M=" << args.M << ", N=" << args.N << ", K=" << args.K << " exceed "
                                                   << kMaxExtent);
    for (const Tensor* t : {&args.a, &args.b, &args.c}) {
      SIEVE_ENSURE(t->dim(0) <= 1 || t->stride(0) <= kMaxExtent, StatusCode::kUnimplemented,
                   "cublas takes 32-bit leading dimensions; an operand " << ShapeToString(t->shape())
                                                                         << " has row stride " << t->stride(0));
    }
    return Status::Ok();
  }

  void Run(const MatMulArgs& args) const override {
    const int device = args.c.device().index;
    SetCudaDevice(device);
    cublasHandle_t handle = CublasHandle(device);
    if (args.attr.conv) {
      RunImplicitConv(args, device, handle);
    } else if (args.attr.tile) {
      RunTiled(args, device, handle);
    } else {
      RunSelection(args, PlanOf(args, Dim::kM), PlanOf(args, Dim::kN), PlanOf(args, Dim::kK), device, handle);
    }
  }
};

}  // namespace

const MatMulImpl* CublasMatMulImpl() {
  static const CublasMatMul impl;
  return &impl;
}

}  // namespace sieve::ops
