# [cuda] tests of the cuBLAS MatMul, the CUDA gather/scatter kernels and device memory (CUDA builds
# only; ctest runs them as the single entry `cuda_tests`, skipped without a GPU).
list(APPEND SIEVE_CUDA_TEST_SOURCES
  framework/memory_cuda_test.cc
  ops/kernels/gather_scatter_cuda_test.cc
  ops/matmul/implicit_conv_cuda_test.cc
  ops/matmul/matmul_cuda_test.cc
)
