# Tests of runtime/solver/: lr policies at hand-computed iterations, solver steps, clipping, flat path, and
# deferred updates against eager ones.
list(APPEND SIEVE_TEST_SOURCES
  runtime/solver/deferred_update_test.cc
  runtime/solver/lr_policy_test.cc
  runtime/solver/solver_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  runtime/solver/solver_cuda_test.cc
)
