# graph/lower/: the layer graph (graph/layers.cc), Lower (graph/lower.cc) and one lowering per
# layer kind (lstm.cc is the kernels helper's). Included from graph/sources.cmake.
list(APPEND SIEVE_GRAPH_SOURCES
  graph/layers.cc
  graph/lower.cc
  graph/lower/activation.cc
  graph/lower/conv2d.cc
  graph/lower/dropout.cc
  graph/lower/embedding.cc
  graph/lower/fully_connected.cc
  graph/lower/input.cc
  graph/lower/lstm.cc
  graph/lower/pool.cc
  graph/lower/reshape.cc
  graph/lower/softmax_xent.cc
)
