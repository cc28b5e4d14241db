# framework/: tensor, device, memory, status, rng, logging.
set(SIEVE_FRAMEWORK_SOURCES
  framework/device.cc
  framework/file_io.cc
  framework/logging.cc
  framework/memory.cc
  framework/status.cc
  framework/suggest.cc
  framework/tensor.cc
)
set(SIEVE_FRAMEWORK_CUDA_SOURCES
  framework/cuda_context.cc
  framework/memory_cuda.cc
)
