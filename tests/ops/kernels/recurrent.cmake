# Tests of Add and the LSTM gates (and ops::ElementsOverlap, which they rely on);
# [cuda] cases compare each CUDA kernel with the CPU one.
list(APPEND SIEVE_TEST_SOURCES
  ops/kernels/add_test.cc
  ops/kernels/lstm_gates_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  ops/kernels/add_cuda_test.cc
  ops/kernels/lstm_gates_cuda_test.cc
)
