# MatMul tests: the blas-vs-reference harness, FLOP accounting, validation, registry.
list(APPEND SIEVE_TEST_SOURCES
  ops/matmul/matmul_test.cc
)
