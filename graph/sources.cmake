# graph/: IR, lowering, autodiff, passes (filled by its owner).
set(SIEVE_GRAPH_SOURCES)
