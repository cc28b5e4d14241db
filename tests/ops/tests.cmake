include(${CMAKE_CURRENT_LIST_DIR}/matmul/tests.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/kernels/tests.cmake)
