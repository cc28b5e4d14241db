# runtime/solver/: learning-rate policies and the solver's update driver.
list(APPEND SIEVE_RUNTIME_SOURCES
  runtime/solver/lr_policy.cc
  runtime/solver/solver.cc
)
