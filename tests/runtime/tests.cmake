include(${CMAKE_CURRENT_LIST_DIR}/data/tests.cmake)
