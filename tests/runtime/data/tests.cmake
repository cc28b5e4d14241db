# Tests of runtime/data/: IDX files written on the fly, the real Fashion-MNIST ("[data]"), batch loading, text
# corpora and token streams ("[corpus]"; the real Jane Austen corpus: "[austen]").
list(APPEND SIEVE_TEST_SOURCES
  runtime/data/batch_loader_test.cc
  runtime/data/dataset_test.cc
  runtime/data/idx_test.cc
  runtime/data/text_corpus_test.cc
  runtime/data/token_stream_test.cc
)
