# Kernels of the recurrent and conv lowerings and of gradient summation: elementwise Add,
# SwapLeadingAxes (channel-major GEMM output <-> NCHW) and the LSTM gates; owner: kernels.
list(APPEND SIEVE_OPS_SOURCES
  ops/kernels/add.cc
  ops/kernels/add_cpu.cc
  ops/kernels/add_ref.cc
  ops/kernels/lstm_gates.cc
  ops/kernels/lstm_gates_cpu.cc
  ops/kernels/lstm_gates_ref.cc
  ops/kernels/swap_axes.cc
  ops/kernels/swap_axes_cpu.cc
  ops/kernels/swap_axes_ref.cc
)
list(APPEND SIEVE_OPS_CUDA_SOURCES
  ops/kernels/add_cuda.cu
  ops/kernels/lstm_gates_cuda.cu
  ops/kernels/swap_axes_cuda.cu
)
