# ops/matmul/: the MatMul primitive (contract, patterns, reference, OpenBLAS backend).
list(APPEND SIEVE_OPS_SOURCES
  ops/matmul/implicit_conv.cc
  ops/matmul/matmul.cc
  ops/matmul/matmul_cpu.cc
  ops/matmul/matmul_cpu_conv.cc
  ops/matmul/matmul_ref.cc
  ops/matmul/pattern.cc
)
