# runtime/params/: the parameter arena (one allocation per role, named views) and the initialisers.
list(APPEND SIEVE_RUNTIME_SOURCES
  runtime/params/initializer.cc
  runtime/params/param_arena.cc
)
