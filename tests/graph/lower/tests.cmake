# Tests of graph/lower*: the structure each layer kind lowers to and the errors Lower reports
# (lower_test.cc), and the numbers small lowered networks compute on the CPU executor
# (lower_numeric_test.cc); row and tile dropout sites in the lowering (ard_lower_test.cc); the
# convolution's forward and backward against a naive reference (conv2d_test.cc).
list(APPEND SIEVE_TEST_SOURCES
  graph/lower/ard_lower_test.cc
  graph/lower/conv2d_test.cc
  graph/lower/lower_numeric_test.cc
  graph/lower/lower_test.cc
  graph/lower/lstm_test.cc
)
