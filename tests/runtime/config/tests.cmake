# Tests of runtime/config/: every model file under models/ parses and lowers; each error class of a
# net or solver file names the file, line, column and field; truncated files fail cleanly; every zoo
# solver trains a few iterations through the loop of `sieve train` ("[zoo]"). The net and zoo tests
# read models/ (and the zoo test data/austen) from the source tree.
list(APPEND SIEVE_TEST_SOURCES
  runtime/config/net_config_sensitivity_test.cc
  runtime/config/net_config_test.cc
  runtime/config/solver_config_test.cc
  runtime/config/zoo_test.cc
)
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/net_config_test.cc ${CMAKE_CURRENT_LIST_DIR}/zoo_test.cc
  PROPERTIES COMPILE_DEFINITIONS SIEVE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
