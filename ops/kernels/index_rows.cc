// Validation and device dispatch of the Tensor-level index-row kernels.
#include "ops/kernels/index_rows.h"

#include "ops/check.h"

#include <utility>

namespace sieve::ops {

namespace {

// `table` is the [V, D] side, `rows` the [n, D] side, in either direction.
Status CheckOperands(const char* op, const char* table_name, const Tensor& table, const char* rows_name,
                     const Tensor& rows, const Tensor& indices) {
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, table_name, table, "[rows, features]"));
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, rows_name, rows, "[rows, features]"));
  SIEVE_ENSURE(indices.dtype() == DType::kInt32 && indices.is_contiguous(), StatusCode::kInvalidArgument,
               op << ": indices must be a contiguous int32 tensor; got " << indices.ToString());
  SIEVE_ENSURE(rows.dim(0) == indices.numel() && rows.dim(1) == table.dim(1), StatusCode::kInvalidArgument,
               op << ": " << rows_name << " must be [" << indices.numel() << ", " << table.dim(1) << "] for indices "
                  << ShapeToString(indices.shape()) << " into " << table_name << " " << ShapeToString(table.shape())
                  << "; got " << ShapeToString(rows.shape()));
  SIEVE_ENSURE(rows.device() == table.device() && indices.device() == table.device(), StatusCode::kInvalidArgument,
               op << ": operands on different devices: " << table.ToString() << ", " << rows.ToString() << ", indices "
                  << indices.ToString());
  SIEVE_ENSURE(!Overlaps(table, rows), StatusCode::kInvalidArgument,
               op << ": " << table_name << " and " << rows_name << " overlap in memory");
  const Tensor host = indices.device().is_cpu() ? indices : indices.Clone(Device::CPU());
  const int32_t* index = host.data<int32_t>();
  const int64_t limit = table.dim(0);
  for (int64_t i = 0; i < indices.numel(); ++i) {
    SIEVE_ENSURE(index[i] >= 0 && index[i] < limit, StatusCode::kOutOfRange,
                 op << ": indices[" << i << "] = " << index[i] << " is outside [0, " << limit << ") for " << table_name
                    << " " << ShapeToString(table.shape()));
  }
  return Status::Ok();
}

}  // namespace

Status GatherRows(const Tensor& table, const Tensor& indices, const Tensor& out) {
  SIEVE_RETURN_IF_ERROR(CheckOperands("GatherRows", "table", table, "out", out, indices));
  if (out.numel() == 0) return Status::Ok();
  if (table.device().is_cpu()) {
    cpu::GatherRows(table.data<float>(), table.stride(0), table.dim(0), indices.data<int32_t>(), out.dim(0), out.dim(1),
                    out.data<float>(), out.stride(0));
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::GatherRows(table.data<float>(), table.stride(0), table.dim(0), indices.data<int32_t>(), out.dim(0), out.dim(1),
                   out.data<float>(), out.stride(0));
  return Status::Ok();
#else
  return SIEVE_ERROR(StatusCode::kUnimplemented, "GatherRows: no kernel for " << table.ToString() << " in this build");
#endif
}

Status ScatterAddRows(const Tensor& src, const Tensor& indices, const Tensor& dst) {
  SIEVE_RETURN_IF_ERROR(CheckOperands("ScatterAddRows", "dst", dst, "src", src, indices));
  if (src.numel() == 0) return Status::Ok();
  if (dst.device().is_cpu()) {
    cpu::ScatterAddRows(src.data<float>(), src.stride(0), indices.data<int32_t>(), src.dim(0), src.dim(1),
                        dst.data<float>(), dst.stride(0), dst.dim(0));
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::ScatterAddRows(src.data<float>(), src.stride(0), indices.data<int32_t>(), src.dim(0), src.dim(1),
                       dst.data<float>(), dst.stride(0), dst.dim(0));
  return Status::Ok();
#else
  return SIEVE_ERROR(StatusCode::kUnimplemented,
                     "ScatterAddRows: no kernel for " << dst.ToString() << " in this build");
#endif
}

}  // namespace sieve::ops
