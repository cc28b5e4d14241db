# tests/interop/: the files Sieve writes, read by the real tools of other ecosystems (Python packages from PyPI
# in the venv of tools/setup_python.sh, which tools/setup.sh calls). Each script is one ctest entry; a missing
# interpreter or package fails it rather than skipping it.
if(DEFINED ENV{SIEVE_VENV})
  set(SIEVE_DEFAULT_VENV "$ENV{SIEVE_VENV}")
else()
  set(SIEVE_DEFAULT_VENV "/opt/sieve-venv")
endif()
set(SIEVE_PYTHON "${SIEVE_DEFAULT_VENV}/bin/python" CACHE FILEPATH "The Python of the interop tests (tools/setup_python.sh)")
add_test(NAME interop_tensorboard
         COMMAND ${SIEVE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_tensorboard.py --sieve $<TARGET_FILE:sieve>)
set_tests_properties(interop_tensorboard PROPERTIES TIMEOUT 600 LABELS interop)
# ONNX export: onnx_reference writes Sieve's own inference of each model family; test_onnx.py exports it with
# `sieve export` and checks it with onnx.checker and onnxruntime.
add_executable(onnx_reference ${CMAKE_CURRENT_LIST_DIR}/onnx_reference.cc)
target_link_libraries(onnx_reference PRIVATE sieve_core sieve_warnings)
# Built with the test binary (defined after this file is included), as `sieve` is.
cmake_language(DEFER CALL add_dependencies sieve_tests onnx_reference)
add_test(NAME interop_onnx
         COMMAND ${SIEVE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_onnx.py --sieve $<TARGET_FILE:sieve>
                 --reference $<TARGET_FILE:onnx_reference>)
set_tests_properties(interop_onnx PROPERTIES TIMEOUT 600 LABELS interop)
