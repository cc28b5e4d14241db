// Checked CUDA and cuBLAS calls: every runtime and cuBLAS call in Sieve goes through these,
// so a failure aborts with the call, its error name, file and line. Include only from CUDA builds.
#pragma once

#ifndef SIEVE_WITH_CUDA
#error "framework/cuda_check.h is only for CUDA builds"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "framework/status.h"

#define SIEVE_CUDA_CHECK(expr)                                                                   \
  do {                                                                                           \
    cudaError_t _sieve_err = (expr);                                                             \
    SIEVE_CHECK(_sieve_err == cudaSuccess, #expr << ": " << cudaGetErrorName(_sieve_err) << " (" \
                                                 << cudaGetErrorString(_sieve_err) << ")");      \
  } while (0)

#define SIEVE_CUBLAS_CHECK(expr)                                                     \
  do {                                                                               \
    cublasStatus_t _sieve_st = (expr);                                               \
    SIEVE_CHECK(_sieve_st == CUBLAS_STATUS_SUCCESS,                                  \
                #expr << ": " << cublasGetStatusName(_sieve_st) << " ("             \
                      << cublasGetStatusString(_sieve_st) << ")");                   \
  } while (0)

/// Checks the last kernel launch (launch-configuration errors surface here, not at the launch).
#define SIEVE_CUDA_CHECK_LAUNCH() SIEVE_CUDA_CHECK(cudaGetLastError())
