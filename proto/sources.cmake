# proto/: the model and solver definitions. protoc turns sieve.proto into proto/sieve.pb.{h,cc} under
# the build folder, compiled into sieve_core; code includes "proto/sieve.pb.h". Included from the top
# CMakeLists.txt after sieve_core is defined. libprotobuf-dev and protobuf-compiler: tools/setup.sh.
find_package(Protobuf REQUIRED)
protobuf_generate(LANGUAGE cpp
  PROTOS ${PROJECT_SOURCE_DIR}/proto/sieve.proto
  IMPORT_DIRS ${PROJECT_SOURCE_DIR}
  PROTOC_OUT_DIR ${PROJECT_BINARY_DIR}
  OUT_VAR SIEVE_PROTO_GENERATED)
# Generated code is protoc's, not ours: our warning flags do not apply to it.
set_source_files_properties(${SIEVE_PROTO_GENERATED} PROPERTIES COMPILE_OPTIONS "-w")
target_sources(sieve_core PRIVATE ${SIEVE_PROTO_GENERATED})
target_include_directories(sieve_core PUBLIC ${PROJECT_BINARY_DIR})
target_link_libraries(sieve_core PRIVATE protobuf::libprotobuf)
