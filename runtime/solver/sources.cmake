# runtime/solver/: learning-rate policies, the solver's update driver and the deferred updates of dropped rows.
list(APPEND SIEVE_RUNTIME_SOURCES
  runtime/solver/deferred_update.cc
  runtime/solver/lr_policy.cc
  runtime/solver/solver.cc
)
