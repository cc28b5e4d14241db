# Tests of runtime/params/: arena layout, views and errors; initialiser statistics and reproducibility.
list(APPEND SIEVE_TEST_SOURCES
  runtime/params/initializer_test.cc
  runtime/params/param_arena_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  runtime/params/param_arena_cuda_test.cc
)
