list(APPEND SIEVE_TEST_SOURCES
  ops/matmul/matmul_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
)
