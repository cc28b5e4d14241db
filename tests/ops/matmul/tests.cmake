# MatMul tests: the blas-vs-reference harness, FLOP accounting, validation, registry; the
# implicit-GEMM convolution roles.
list(APPEND SIEVE_TEST_SOURCES
  ops/matmul/implicit_conv_test.cc
  ops/matmul/matmul_test.cc
)
