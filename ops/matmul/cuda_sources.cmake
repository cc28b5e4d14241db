# The CUDA backend of MatMul (cuBLAS), the CUDA gather/scatter kernels it packs operands with, and
# the per-device cuBLAS handle and scratch buffers they share. CUDA builds only.
list(APPEND SIEVE_OPS_CUDA_SOURCES
  framework/cuda_context.cc
  ops/kernels/gather_scatter_cuda.cu
  ops/matmul/matmul_cuda.cu
)
