# graph/autodiff.cc and graph/grad/: reverse-mode differentiation of the forward MatMul IR, one
# file per family of gradient rules. Included from graph/sources.cmake.
list(APPEND SIEVE_GRAPH_SOURCES
  graph/autodiff.cc
  graph/grad/conv.cc
  graph/grad/elementwise.cc
  graph/grad/embedding.cc
  graph/grad/loss.cc
  graph/grad/matmul.cc
)
