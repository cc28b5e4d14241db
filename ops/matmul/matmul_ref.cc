// The naive reference MatMul: a direct transcription of the semantics in matmul.h, one
// multiply-add at a time in double precision. Slow on purpose; it is the oracle every fast path
// is tested against, and it runs any annotation the validator accepts (CPU tensors only). An
// implicit convolution runs per image through the reference im2col / col2im (ops/kernels/im2col.h).
#include <vector>

#include "ops/kernels/im2col.h"
#include "ops/matmul/implicit_conv.h"
#include "ops/matmul/matmul.h"

namespace sieve::ops {

namespace {

// Where dense index i of a dimension lives in an operand: i itself if Full, its rank if Packed,
// -1 if dropped.
struct IndexMap {
  std::vector<int64_t> position_full;    // i or -1
  std::vector<int64_t> position_packed;  // rank or -1

  IndexMap(const std::optional<DimSelection>& sel, int64_t dense)
      : position_full(static_cast<size_t>(dense)), position_packed(static_cast<size_t>(dense)) {
    int64_t rank = 0;
    for (int64_t i = 0; i < dense; ++i) {
      const bool kept = !sel || IsKept(sel->pattern, i);
      position_full[i] = kept ? i : -1;
      position_packed[i] = kept ? rank++ : -1;
    }
  }
  int64_t At(int64_t i, const std::optional<DimSelection>& sel, char operand) const {
    const bool packed =
        sel && (operand == 'a' ? sel->a : operand == 'b' ? sel->b : sel->c) == Layout::kPacked;
    return packed ? position_packed[i] : position_full[i];
  }
};

// alpha * sum + beta * old, where beta == 0 overwrites (so NaN garbage does not propagate), as BLAS does.
float Blend(const MatMulAttr& attr, double sum, float old) {
  return static_cast<float>(attr.alpha * sum + (attr.beta == 0.0f ? 0.0 : attr.beta * static_cast<double>(old)));
}

// The ImplicitConv contract of matmul.h, one image at a time: the column matrix of the kept maps
// (ref::Im2Col), then the role's GEMM as naive loops in double.
void RunImplicitConv(const MatMulArgs& args) {
  const ImplicitConvPlan p = PlanImplicitConv(args);
  const MatMulAttr& attr = args.attr;
  const int64_t rows = p.kept_rows(), plane = p.out_plane, cout = p.out_channels;
  // The W / dW column of each row of the column matrix.
  std::vector<int64_t> column(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    column[r] = p.maps ? p.maps->kept[static_cast<size_t>(r / p.kernel_area)] * p.kernel_area + r % p.kernel_area : r;
  std::vector<float> col(static_cast<size_t>(rows * plane));
  const float* A = args.a.data<float>();
  const float* B = args.b.data<float>();
  float* C = args.c.data<float>();

  switch (p.role) {
    case ImplicitConv::Role::kForward: {  // A = W, B = x, C = y
      const int64_t ldw = args.a.stride(0);
      for (int64_t n = 0; n < p.batch; ++n) {
        ref::Im2Col(B + n * p.in_image, 1, p.geometry, p.maps_or_null(), col.data(), plane, 0);
        float* y = C + n * p.out_image;
        for (int64_t co = 0; co < cout; ++co) {
          for (int64_t q = 0; q < plane; ++q) {
            double sum = 0.0;
            for (int64_t r = 0; r < rows; ++r)
              sum += static_cast<double>(A[co * ldw + column[r]]) * static_cast<double>(col[r * plane + q]);
            y[co * plane + q] = Blend(attr, sum, y[co * plane + q]);
          }
        }
      }
      break;
    }
    case ImplicitConv::Role::kGradWeight: {  // A = dy, B = x, C = dW
      std::vector<double> sum(static_cast<size_t>(cout * rows), 0.0);
      for (int64_t n = 0; n < p.batch; ++n) {
        ref::Im2Col(B + n * p.in_image, 1, p.geometry, p.maps_or_null(), col.data(), plane, 0);
        const float* dy = A + n * p.out_image;
        for (int64_t co = 0; co < cout; ++co)
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < plane; ++q)
              sum[co * rows + r] += static_cast<double>(dy[co * plane + q]) * static_cast<double>(col[r * plane + q]);
      }
      const int64_t ldw = args.c.stride(0);
      for (int64_t co = 0; co < cout; ++co)
        for (int64_t r = 0; r < rows; ++r)
          C[co * ldw + column[r]] = Blend(attr, sum[co * rows + r], C[co * ldw + column[r]]);
      break;
    }
    case ImplicitConv::Role::kGradInput: {  // A = W, B = dy, C = dx
      const int64_t ldw = args.a.stride(0);
      for (int64_t n = 0; n < p.batch; ++n) {
        const float* dy = B + n * p.out_image;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t q = 0; q < plane; ++q) {
            double sum = 0.0;
            for (int64_t co = 0; co < cout; ++co)
              sum += static_cast<double>(A[co * ldw + column[r]]) * static_cast<double>(dy[co * plane + q]);
            col[r * plane + q] = static_cast<float>(attr.alpha * sum);
          }
        }
        ref::Col2Im(col.data(), plane, 0, 1, p.geometry, p.maps_or_null(), C + n * p.in_image, attr.beta);
      }
      break;
    }
  }
}

class ReferenceMatMul final : public MatMulImpl {
 public:
  std::string_view name() const override { return "reference"; }
  DeviceType device_type() const override { return DeviceType::kCPU; }

  Status Supports(const MatMulArgs& args) const override {
    SIEVE_ENSURE(args.c.device().is_cpu(), StatusCode::kUnimplemented, "reference runs on the CPU only");
    return Status::Ok();
  }

  void Run(const MatMulArgs& args) const override {
    if (args.attr.conv) {
      RunImplicitConv(args);
      return;
    }
    const MatMulAttr& attr = args.attr;
    const IndexMap mm(attr.m, args.M), nm(attr.n, args.N), km(attr.k, args.K);
    const float* A = args.a.data<float>();
    const float* B = args.b.data<float>();
    float* C = args.c.data<float>();
    const int64_t lda = args.a.stride(0), ldb = args.b.stride(0), ldc = args.c.stride(0);
    auto tile_kept = [&](int64_t m, int64_t n, int64_t k) {
      if (!attr.tile) return true;
      auto index = [&](Dim d) { return d == Dim::kM ? m : d == Dim::kN ? n : k; };
      return attr.tile->pattern.Kept(index(attr.tile->rows), index(attr.tile->cols));
    };
    const bool tile_on_output = attr.tile && attr.tile->rows != Dim::kK && attr.tile->cols != Dim::kK;

    for (int64_t m = 0; m < args.M; ++m) {
      const int64_t cm = mm.At(m, attr.m, 'c'), am = mm.At(m, attr.m, 'a');
      if (cm < 0) continue;
      for (int64_t n = 0; n < args.N; ++n) {
        const int64_t cn = nm.At(n, attr.n, 'c'), bn = nm.At(n, attr.n, 'b');
        if (cn < 0) continue;
        if (tile_on_output && !tile_kept(m, n, 0)) continue;
        double sum = 0.0;
        for (int64_t k = 0; k < args.K; ++k) {
          const int64_t ak = km.At(k, attr.k, 'a'), bk = km.At(k, attr.k, 'b');
          if (ak < 0 || !tile_kept(m, n, k)) continue;
          const float av = attr.trans_a ? A[ak * lda + am] : A[am * lda + ak];
          const float bv = attr.trans_b ? B[bn * ldb + bk] : B[bk * ldb + bn];
          sum += static_cast<double>(av) * static_cast<double>(bv);
        }
        float& out = C[cm * ldc + cn];
        // beta == 0 overwrites (so NaN garbage in C does not propagate), as BLAS does.
        out = static_cast<float>(attr.alpha * sum + (attr.beta == 0.0f ? 0.0 : attr.beta * static_cast<double>(out)));
      }
    }
  }
};

}  // namespace

const MatMulImpl* ReferenceMatMulImpl() {
  static const ReferenceMatMul impl;
  return &impl;
}

}  // namespace sieve::ops
