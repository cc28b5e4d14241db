# Tests of runtime/data/: IDX files written on the fly, the real Fashion-MNIST ("[data]"), batch loading.
list(APPEND SIEVE_TEST_SOURCES
  runtime/data/batch_loader_test.cc
  runtime/data/dataset_test.cc
  runtime/data/idx_test.cc
)
