# Gather/scatter tests: CPU and Tensor-level API against the reference, adjointness, validation.
list(APPEND SIEVE_TEST_SOURCES
  ops/kernels/gather_scatter_test.cc
)
