# Tests of graph/: the IR and its site resolution, the verifier (one failing case per rule), the
# dumps and the pass manager; test_graphs.cc builds the small hand-made graphs they share.
list(APPEND SIEVE_TEST_SOURCES
  graph/autodiff_numeric_test.cc
  graph/autodiff_test.cc
  graph/dump_test.cc
  graph/ir_test.cc
  graph/memory_plan_test.cc
  graph/pass_test.cc
  graph/pattern_pass_test.cc
  graph/pattern_search_test.cc
  graph/sensitivity_pass_test.cc
  graph/test_graphs.cc
  graph/verify_recurrent_test.cc
  graph/verify_test.cc
)
include(${CMAKE_CURRENT_LIST_DIR}/lower/tests.cmake)
