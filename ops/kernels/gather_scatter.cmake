# ops/kernels/gather_scatter: sub-matrix gather/scatter (validation + dispatch, reference, CPU).
# The CUDA half (gather_scatter_cuda.cu) is listed with the CUDA MatMul sources.
list(APPEND SIEVE_OPS_SOURCES
  ops/kernels/gather_scatter.cc
  ops/kernels/gather_scatter_cpu.cc
  ops/kernels/gather_scatter_ref.cc
)
