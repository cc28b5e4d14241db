// Host emulation of the part of cuBLAS that Sieve's MatMul backend uses, for tools/gpu/emulate.sh:
// a column-major SGEMM with cuBLAS's argument checks, and stricter ones that catch Sieve bugs the
// real library would turn into wrong numbers or silent out-of-bounds reads: every operand must lie
// inside one device allocation, the handle must be in FP32 math mode, and a call with an empty
// extent is an error (the backend skips those). Not the real library.
#pragma once

#include <algorithm>
#include <cstdio>

#include "cuda_runtime.h"

enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_TF32_TENSOR_OP_MATH;  // so that a handle nobody configured is caught
};
typedef cublasContext* cublasHandle_t;

namespace emu {
inline int live_handles = 0;
inline long gemms = 0;
}  // namespace emu

inline cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext;
  ++emu::live_handles;
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  --emu::live_handles;
  std::fprintf(stderr, "emulated cuBLAS: handle destroyed (%d left) after %ld GEMMs and %ld kernel launches\n",
               emu::live_handles, emu::gemms, emu::launches);
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t math) {
  handle->math = math;
  return CUBLAS_STATUS_SUCCESS;
}

inline const char* cublasGetStatusName(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_EMULATED_ERROR";
}
inline const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "success" : "emulated error";
}

inline cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t trans_a, cublasOperation_t trans_b, int m,
                                  int n, int k, const float* alpha, const float* a, int lda, const float* b, int ldb,
                                  const float* beta, float* c, int ldc) {
  ++emu::gemms;
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (handle->math != CUBLAS_DEFAULT_MATH) emu::Die("SGEMM on a handle not in FP32 math mode");
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, trans_a == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < std::max(1, trans_b == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || k == 0) emu::Die("SGEMM with an empty extent");
  auto inside = [](const float* p, long rows, long cols, long ld) {
    return emu::IsDevice(p, sizeof(float) * static_cast<size_t>((cols - 1) * ld + rows));
  };
  if (!inside(a, trans_a == CUBLAS_OP_N ? m : k, trans_a == CUBLAS_OP_N ? k : m, lda))
    emu::Die("SGEMM reads A outside");
  if (!inside(b, trans_b == CUBLAS_OP_N ? k : n, trans_b == CUBLAS_OP_N ? n : k, ldb))
    emu::Die("SGEMM reads B outside");
  if (!inside(c, m, n, ldc)) emu::Die("SGEMM writes C outside device memory");
  for (long j = 0; j < n; ++j) {
    for (long i = 0; i < m; ++i) {
      float sum = 0.0f;  // FP32 accumulation, in order: the rounding the tolerances must absorb
      for (long p = 0; p < k; ++p) {
        const float x = trans_a == CUBLAS_OP_N ? a[i + p * lda] : a[p + i * lda];
        const float y = trans_b == CUBLAS_OP_N ? b[p + j * ldb] : b[j + p * ldb];
        sum += x * y;
      }
      float& out = c[i + j * ldc];
      out = *beta == 0.0f ? *alpha * sum : *alpha * sum + *beta * out;  // beta == 0 overwrites, as cuBLAS
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}
