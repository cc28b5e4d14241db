// TEMPORARY dense-only BLAS MatMul (being replaced by the full compacting implementation).
#include <cblas.h>

#include "ops/matmul/matmul.h"

namespace sieve::ops {
namespace {
class BlasMatMul final : public MatMulImpl {
 public:
  std::string_view name() const override { return "blas"; }
  DeviceType device_type() const override { return DeviceType::kCPU; }
  Status Supports(const MatMulArgs& args) const override {
    SIEVE_ENSURE(args.c.device().is_cpu(), StatusCode::kUnimplemented, "CPU only");
    SIEVE_ENSURE(args.attr.is_dense(), StatusCode::kUnimplemented, "dense only");
    return Status::Ok();
  }
  void Run(const MatMulArgs& args) const override {
    const auto& t = args.attr;
    cblas_sgemm(CblasRowMajor, t.trans_a ? CblasTrans : CblasNoTrans, t.trans_b ? CblasTrans : CblasNoTrans,
                args.M, args.N, args.K, t.alpha, args.a.data<float>(), args.a.stride(0), args.b.data<float>(),
                args.b.stride(0), t.beta, args.c.data<float>(), args.c.stride(0));
  }
};
}  // namespace
const MatMulImpl* BlasMatMulImpl() {
  static const BlasMatMul impl;
  return &impl;
}
}  // namespace sieve::ops
