# proto/: the model and solver definitions (sieve.proto) and TensorBoard's event messages
# (tensorboard_event.proto). protoc turns each X.proto into proto/X.pb.{h,cc} under
# the build folder, compiled into sieve_core; code includes "proto/sieve.pb.h". Included from the top
# CMakeLists.txt after sieve_core is defined. libprotobuf-dev and protobuf-compiler: tools/setup.sh.
find_package(Protobuf REQUIRED)
protobuf_generate(LANGUAGE cpp
  PROTOS ${PROJECT_SOURCE_DIR}/proto/sieve.proto ${PROJECT_SOURCE_DIR}/proto/tensorboard_event.proto
  IMPORT_DIRS ${PROJECT_SOURCE_DIR}
  PROTOC_OUT_DIR ${PROJECT_BINARY_DIR}
  OUT_VAR SIEVE_PROTO_GENERATED)
# Generated code is protoc's, not ours: our warning flags do not apply to it.
set_source_files_properties(${SIEVE_PROTO_GENERATED} PROPERTIES COMPILE_OPTIONS "-w")
target_sources(sieve_core PRIVATE ${SIEVE_PROTO_GENERATED})
target_include_directories(sieve_core PUBLIC ${PROJECT_BINARY_DIR})
target_link_libraries(sieve_core PRIVATE protobuf::libprotobuf)
# ONNX's schema as Debian's libonnx-dev ships it (/usr/include/onnx/onnx.proto; tools/setup.sh), for
# runtime/export/onnx_export.cc: generated into the build folder as onnx/onnx.pb.{h,cc}, compiled like ours
# (a custom command: CMake 3.25's protobuf_generate places outputs relative to the source folder only).
find_path(SIEVE_ONNX_PROTO_DIR onnx/onnx.proto PATHS /usr/include REQUIRED)
set(SIEVE_ONNX_PROTO_GENERATED ${PROJECT_BINARY_DIR}/onnx/onnx.pb.cc ${PROJECT_BINARY_DIR}/onnx/onnx.pb.h)
add_custom_command(OUTPUT ${SIEVE_ONNX_PROTO_GENERATED}
  COMMAND ${Protobuf_PROTOC_EXECUTABLE} --cpp_out=${PROJECT_BINARY_DIR} -I${SIEVE_ONNX_PROTO_DIR}
          ${SIEVE_ONNX_PROTO_DIR}/onnx/onnx.proto
  DEPENDS ${SIEVE_ONNX_PROTO_DIR}/onnx/onnx.proto ${Protobuf_PROTOC_EXECUTABLE}
  COMMENT "Running cpp protocol buffer compiler on onnx/onnx.proto (libonnx-dev)"
  VERBATIM)
set_source_files_properties(${SIEVE_ONNX_PROTO_GENERATED} PROPERTIES COMPILE_OPTIONS "-w")
target_sources(sieve_core PRIVATE ${SIEVE_ONNX_PROTO_GENERATED})
