# runtime/config/: net and solver files (proto/sieve.proto) -> graph::Network and the solver settings;
# proto_text is their shared protobuf text parsing with located, suggestive errors.
list(APPEND SIEVE_RUNTIME_SOURCES
  runtime/config/net_config.cc
  runtime/config/proto_text.cc
  runtime/config/solver_config.cc
)
