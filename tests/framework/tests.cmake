list(APPEND SIEVE_TEST_SOURCES
  framework/status_test.cc
  framework/suggest_test.cc
  framework/tensor_test.cc
)
include(${CMAKE_CURRENT_LIST_DIR}/rng.cmake)
