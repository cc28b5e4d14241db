# Tests of runtime/solver/: lr policies at hand-computed iterations, solver steps, clipping, flat path.
list(APPEND SIEVE_TEST_SOURCES
  runtime/solver/lr_policy_test.cc
  runtime/solver/solver_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  runtime/solver/solver_cuda_test.cc
)
