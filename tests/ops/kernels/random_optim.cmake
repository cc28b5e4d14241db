# Tests of Bernoulli dropout, random fills and optimizer updates; owner: rng.
list(APPEND SIEVE_TEST_SOURCES
  ops/kernels/dropout_test.cc
  ops/kernels/optimizer_test.cc
  ops/kernels/random_fill_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  ops/kernels/dropout_cuda_test.cc
  ops/kernels/optimizer_cuda_test.cc
  ops/kernels/random_fill_cuda_test.cc
)
