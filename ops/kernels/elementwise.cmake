# Elementwise helper kernels: bias, activations, softmax + cross-entropy, index rows (embeddings).
list(APPEND SIEVE_OPS_SOURCES
  ops/kernels/activation.cc
  ops/kernels/activation_cpu.cc
  ops/kernels/activation_ref.cc
  ops/kernels/bias.cc
  ops/kernels/bias_cpu.cc
  ops/kernels/bias_ref.cc
  ops/kernels/index_rows.cc
  ops/kernels/index_rows_cpu.cc
  ops/kernels/index_rows_ref.cc
  ops/kernels/softmax_xent.cc
  ops/kernels/softmax_xent_cpu.cc
  ops/kernels/softmax_xent_ref.cc
)
list(APPEND SIEVE_OPS_CUDA_SOURCES
  ops/kernels/activation_cuda.cu
  ops/kernels/bias_cuda.cu
  ops/kernels/index_rows_cuda.cu
  ops/kernels/softmax_xent_cuda.cu
)
