list(APPEND SIEVE_OPS_SOURCES
  ops/matmul/matmul.cc
  ops/matmul/matmul_cpu.cc
  ops/matmul/matmul_ref.cc
  ops/matmul/pattern.cc
)
