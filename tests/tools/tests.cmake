# tools/: end-to-end tests of the `sieve` binary (run as a child process; its path comes from
# tests/CMakeLists.txt as SIEVE_CLI_PATH).
list(APPEND SIEVE_TEST_SOURCES
  tools/sieve_cli_test.cc
)
