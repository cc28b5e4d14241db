# graph/: the MatMul IR (ops table, typed attributes, values, dropout sites), its verifier, text and
# Graphviz dumps, and the pass manager with the per-iteration passes.
set(SIEVE_GRAPH_SOURCES)
list(APPEND SIEVE_GRAPH_SOURCES
  graph/dump.cc
  graph/ir.cc
  graph/memory_plan.cc
  graph/op_kind.cc
  graph/pass.cc
  graph/pattern_pass.cc
  graph/pattern_search.cc
  graph/sensitivity_pass.cc
  graph/sequential.cc
  graph/verify.cc
)
include(graph/lower/sources.cmake)
include(graph/grad/sources.cmake)
