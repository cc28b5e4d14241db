// Validation and device dispatch of the Tensor-level index-row kernels.
#include "ops/kernels/index_rows.h"

#include <utility>

namespace sieve::ops {

namespace {

Status CheckMatrix(const char* op, const char* name, const Tensor& t) {
  SIEVE_ENSURE(t.rank() == 2, StatusCode::kInvalidArgument,
               op << ": " << name << " must be 2-D [rows, features]; got " << ShapeToString(t.shape()));
  SIEVE_ENSURE(t.dtype() == DType::kFloat32, StatusCode::kUnimplemented,
               op << " supports float32; " << name << " is " << t.ToString());
  SIEVE_ENSURE((t.stride(1) == 1 || t.dim(1) <= 1) && (t.stride(0) >= t.dim(1) || t.dim(0) <= 1),
               StatusCode::kInvalidArgument,
               op << ": " << name << " needs unit column stride and leading dimension >= columns; got strides "
                  << ShapeToString(t.strides()) << " for " << ShapeToString(t.shape()));
  return Status::Ok();
}

bool Overlap(const Tensor& a, const Tensor& b) {
  auto span = [](const Tensor& t) {
    const char* p = static_cast<const char*>(t.raw_data());
    const int64_t elems = t.dim(0) == 0 || t.dim(1) == 0 ? 0 : (t.dim(0) - 1) * t.stride(0) + t.dim(1);
    return std::pair{p, p + elems * static_cast<int64_t>(sizeof(float))};
  };
  const auto [a0, a1] = span(a);
  const auto [b0, b1] = span(b);
  return a0 < b1 && b0 < a1;
}

// `table` is the [V, D] side, `rows` the [n, D] side, in either direction.
Status CheckOperands(const char* op, const char* table_name, const Tensor& table, const char* rows_name,
                     const Tensor& rows, const Tensor& indices) {
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, table_name, table));
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, rows_name, rows));
  SIEVE_ENSURE(indices.dtype() == DType::kInt32 && indices.is_contiguous(), StatusCode::kInvalidArgument,
               op << ": indices must be a contiguous int32 tensor; got " << indices.ToString());
  SIEVE_ENSURE(rows.dim(0) == indices.numel() && rows.dim(1) == table.dim(1), StatusCode::kInvalidArgument,
               op << ": " << rows_name << " must be [" << indices.numel() << ", " << table.dim(1) << "] for indices "
                  << ShapeToString(indices.shape()) << " into " << table_name << " " << ShapeToString(table.shape())
                  << "; got " << ShapeToString(rows.shape()));
  SIEVE_ENSURE(rows.device() == table.device() && indices.device() == table.device(), StatusCode::kInvalidArgument,
               op << ": operands on different devices: " << table.ToString() << ", " << rows.ToString() << ", indices "
                  << indices.ToString());
  SIEVE_ENSURE(!Overlap(table, rows), StatusCode::kInvalidArgument,
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
