# Tests of the elementwise helper kernels (bias, activations, softmax + cross-entropy, index rows);
# [cuda] cases compare each CUDA kernel with the CPU one.
list(APPEND SIEVE_TEST_SOURCES
  ops/kernels/activation_test.cc
  ops/kernels/bias_test.cc
  ops/kernels/index_rows_test.cc
  ops/kernels/softmax_xent_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  ops/kernels/activation_cuda_test.cc
  ops/kernels/bias_cuda_test.cc
  ops/kernels/index_rows_cuda_test.cc
  ops/kernels/softmax_xent_cuda_test.cc
)
