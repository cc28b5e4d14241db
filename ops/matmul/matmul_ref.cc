// The naive reference MatMul: a direct transcription of the semantics in matmul.h, one
// multiply-add at a time in double precision. Slow on purpose; it is the oracle every fast path
// is tested against, and it runs any annotation the validator accepts (CPU tensors only).
#include <vector>

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

class ReferenceMatMul final : public MatMulImpl {
 public:
  std::string_view name() const override { return "reference"; }
  DeviceType device_type() const override { return DeviceType::kCPU; }

  Status Supports(const MatMulArgs& args) const override {
    SIEVE_ENSURE(args.c.device().is_cpu(), StatusCode::kUnimplemented, "reference runs on the CPU only");
    return Status::Ok();
  }

  void Run(const MatMulArgs& args) const override {
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
