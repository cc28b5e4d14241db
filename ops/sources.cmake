# ops/: the MatMul primitive and the helper kernels, CPU and CUDA side by side.
# Each fragment appends to SIEVE_OPS_SOURCES (host) and SIEVE_OPS_CUDA_SOURCES (CUDA builds only).
set(SIEVE_OPS_SOURCES ops/check.cc)
set(SIEVE_OPS_CUDA_SOURCES)
include(ops/matmul/sources.cmake)
include(ops/matmul/cuda_sources.cmake)
include(ops/kernels/gather_scatter.cmake)
include(ops/kernels/elementwise.cmake)
include(ops/kernels/conv.cmake)
include(ops/kernels/random_optim.cmake)
include(ops/kernels/recurrent.cmake)
