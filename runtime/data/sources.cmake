# runtime/data/: the IDX reader, in-memory datasets (Fashion-MNIST) and the prefetching batch loader.
list(APPEND SIEVE_RUNTIME_SOURCES
  runtime/data/batch_loader.cc
  runtime/data/dataset.cc
  runtime/data/idx.cc
)
