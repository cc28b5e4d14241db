# Tests of the Philox generator and Sieve's stream convention (framework/rng.h); owner: rng.
list(APPEND SIEVE_TEST_SOURCES
  framework/rng_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  framework/rng_cuda_test.cc
)
