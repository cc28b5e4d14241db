# runtime/data/: the IDX reader, in-memory datasets (Fashion-MNIST), the prefetching batch loader, text corpora
# (Jane Austen) and the token streams of language models.
list(APPEND SIEVE_RUNTIME_SOURCES
  runtime/data/batch_loader.cc
  runtime/data/dataset.cc
  runtime/data/idx.cc
  runtime/data/text_corpus.cc
  runtime/data/token_stream.cc
)
