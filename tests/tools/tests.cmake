# tools/: end-to-end tests of the `sieve` binary (run as a child process; its path comes from
# tests/CMakeLists.txt as SIEVE_CLI_PATH), and what `sieve-bench zoo` derives from a net without timing
# (tools/bench/zoo_model.cc, compiled into the test binary; it reads the zoo MLP file from the source tree).
list(APPEND SIEVE_TEST_SOURCES
  tools/sieve_cli_test.cc
  tools/zoo_model_test.cc
  ${PROJECT_SOURCE_DIR}/tools/bench/zoo_model.cc
  ${PROJECT_SOURCE_DIR}/tools/bench/bench_util.cc
)
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/zoo_model_test.cc
  PROPERTIES COMPILE_DEFINITIONS SIEVE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
