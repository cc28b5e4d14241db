include(${CMAKE_CURRENT_LIST_DIR}/data/tests.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/params/tests.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/solver/tests.cmake)
