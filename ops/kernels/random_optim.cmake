# Philox-driven kernels (Bernoulli dropout, random fills) and the optimizer updates; owner: rng.
# framework/rng.h and framework/host_device.h are header-only and need no entry.
list(APPEND SIEVE_OPS_SOURCES
  ops/kernels/dropout.cc
  ops/kernels/dropout_cpu.cc
  ops/kernels/dropout_ref.cc
  ops/kernels/optimizer.cc
  ops/kernels/optimizer_cpu.cc
  ops/kernels/optimizer_ref.cc
  ops/kernels/random_fill.cc
  ops/kernels/random_fill_cpu.cc
  ops/kernels/random_fill_ref.cc
)
list(APPEND SIEVE_OPS_CUDA_SOURCES
  ops/kernels/dropout_cuda.cu
  ops/kernels/optimizer_cuda.cu
  ops/kernels/random_fill_cuda.cu
)
# The square root in the Adam loop vectorises only when it need not set errno; its argument is a sum
# of squares, so it never would.
set_source_files_properties(ops/kernels/optimizer_cpu.cc PROPERTIES COMPILE_OPTIONS -fno-math-errno)
