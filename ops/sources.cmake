# ops/: the MatMul primitive and the helper kernels, CPU and CUDA side by side.
include(ops/matmul/sources.cmake)
include(ops/kernels/sources.cmake)
set(SIEVE_OPS_SOURCES ${SIEVE_MATMUL_SOURCES} ${SIEVE_KERNELS_SOURCES})
set(SIEVE_OPS_CUDA_SOURCES ${SIEVE_MATMUL_CUDA_SOURCES} ${SIEVE_KERNELS_CUDA_SOURCES})
