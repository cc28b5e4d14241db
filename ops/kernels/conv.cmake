# Convolution helper kernels: im2col/col2im over kept input channels, max/average pooling, and the
# per-channel statistics of sensitivity-aware feature-map dropout.
list(APPEND SIEVE_OPS_SOURCES
  ops/kernels/channel_stats.cc
  ops/kernels/channel_stats_cpu.cc
  ops/kernels/channel_stats_ref.cc
  ops/kernels/im2col.cc
  ops/kernels/im2col_cpu.cc
  ops/kernels/im2col_ref.cc
  ops/kernels/pooling.cc
  ops/kernels/pooling_cpu.cc
  ops/kernels/pooling_ref.cc
)
list(APPEND SIEVE_OPS_CUDA_SOURCES
  ops/kernels/channel_stats_cuda.cu
  ops/kernels/im2col_cuda.cu
  ops/kernels/pooling_cuda.cu
)
