# The CUDA backend of MatMul (cuBLAS) and the CUDA gather/scatter kernels it packs operands with.
list(APPEND SIEVE_OPS_CUDA_SOURCES
  ops/kernels/gather_scatter_cuda.cu
  ops/matmul/matmul_cuda.cu
)
