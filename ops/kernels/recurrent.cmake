# Kernels of the recurrent lowering and of gradient summation: elementwise Add and the LSTM gates;
# owner: kernels.
list(APPEND SIEVE_OPS_SOURCES
  ops/kernels/add.cc
  ops/kernels/add_cpu.cc
  ops/kernels/add_ref.cc
  ops/kernels/lstm_gates.cc
  ops/kernels/lstm_gates_cpu.cc
  ops/kernels/lstm_gates_ref.cc
)
list(APPEND SIEVE_OPS_CUDA_SOURCES
  ops/kernels/add_cuda.cu
  ops/kernels/lstm_gates_cuda.cu
)
