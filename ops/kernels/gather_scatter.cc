// The Tensor-level gather/scatter API: validate shapes, strides, devices and patterns (errors name
// both shapes and the patterns), then dispatch to the CPU or CUDA raw-pointer version.
#include "ops/kernels/gather_scatter.h"

#include <sstream>

#include "ops/check.h"

#ifdef SIEVE_WITH_CUDA
#include "framework/cuda_context.h"
#endif

namespace sieve::ops {

namespace {

std::string Describe(const std::optional<IndexPattern>& p) { return p ? PatternToString(*p) : "all"; }

// `full` is the matrix the patterns index, `packed` the kept x kept one.
Status Validate(const char* op, const Tensor& full, const std::optional<IndexPattern>& rows,
                const std::optional<IndexPattern>& cols, const Tensor& packed, const char* full_name,
                const char* packed_name) {
  auto both = [&] {
    std::ostringstream os;
    os << full_name << " " << ShapeToString(full.shape()) << ", " << packed_name << " " << ShapeToString(packed.shape())
       << ", rows " << Describe(rows) << ", cols " << Describe(cols);
    return os.str();
  };
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, full_name, full, "[rows, cols]"));
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, packed_name, packed, "[kept rows, kept cols]"));
  SIEVE_ENSURE(full.device() == packed.device(), StatusCode::kInvalidArgument,
               op << " operands on different devices: " << full.ToString() << ", " << packed.ToString());
  if (rows) {
    const std::string why = ValidatePattern(*rows, full.dim(0));
    SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument, op << " row pattern: " << why << "; " << both());
  }
  if (cols) {
    const std::string why = ValidatePattern(*cols, full.dim(1));
    SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument, op << " column pattern: " << why << "; " << both());
  }
  const int64_t kept_rows = rows ? KeptCount(*rows, full.dim(0)) : full.dim(0);
  const int64_t kept_cols = cols ? KeptCount(*cols, full.dim(1)) : full.dim(1);
  SIEVE_ENSURE(packed.dim(0) == kept_rows && packed.dim(1) == kept_cols, StatusCode::kInvalidArgument,
               op << ": " << packed_name << " must be " << ShapeToString({kept_rows, kept_cols})
                  << " (the kept rows x kept columns of " << full_name << "); got " << both());
  SIEVE_ENSURE(!Overlaps(full, packed), StatusCode::kInvalidArgument,
               op << ": source and destination overlap; " << both());
  return Status::Ok();
}

const IndexPattern* Ptr(const std::optional<IndexPattern>& p) { return p ? &*p : nullptr; }

}  // namespace

Status GatherSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                       const std::optional<IndexPattern>& cols, const Tensor& dst) {
  SIEVE_RETURN_IF_ERROR(Validate("GatherSubmatrix", src, rows, cols, dst, "src", "dst"));
  const Device device = src.device();
  if (device.is_cpu()) {
    cpu::GatherSubmatrix(src.data<float>(), src.stride(0), src.dim(0), src.dim(1), Ptr(rows), Ptr(cols),
                         dst.data<float>(), dst.stride(0));
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  SetCudaDevice(device.index);
  cuda::GatherSubmatrix(src.data<float>(), src.stride(0), src.dim(0), src.dim(1), Ptr(rows), Ptr(cols),
                        dst.data<float>(), dst.stride(0));
  return Status::Ok();
#else
  return SIEVE_ERROR(StatusCode::kUnimplemented,
                     "GatherSubmatrix on " << device.ToString() << " but this build has no CUDA backend");
#endif
}

Status ScatterSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                        const std::optional<IndexPattern>& cols, const Tensor& dst, float beta) {
  SIEVE_RETURN_IF_ERROR(Validate("ScatterSubmatrix", dst, rows, cols, src, "dst", "src"));
  const Device device = dst.device();
  if (device.is_cpu()) {
    cpu::ScatterSubmatrix(src.data<float>(), src.stride(0), dst.dim(0), dst.dim(1), Ptr(rows), Ptr(cols),
                          dst.data<float>(), dst.stride(0), beta);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  SetCudaDevice(device.index);
  cuda::ScatterSubmatrix(src.data<float>(), src.stride(0), dst.dim(0), dst.dim(1), Ptr(rows), Ptr(cols),
                         dst.data<float>(), dst.stride(0), beta);
  return Status::Ok();
#else
  return SIEVE_ERROR(StatusCode::kUnimplemented,
                     "ScatterSubmatrix on " << device.ToString() << " but this build has no CUDA backend");
#endif
}

}  // namespace sieve::ops
