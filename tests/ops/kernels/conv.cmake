# Tests of the convolution helper kernels (im2col/col2im, pooling, per-channel statistics); [cuda] cases compare against the CPU.
list(APPEND SIEVE_TEST_SOURCES
  ops/kernels/channel_stats_sensitivity_test.cc
  ops/kernels/im2col_test.cc
  ops/kernels/pooling_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  ops/kernels/channel_stats_sensitivity_cuda_test.cc
  ops/kernels/im2col_cuda_test.cc
  ops/kernels/pooling_cuda_test.cc
)
