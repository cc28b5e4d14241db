include(${CMAKE_CURRENT_LIST_DIR}/config/tests.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/data/tests.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/params/tests.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/solver/tests.cmake)
list(APPEND SIEVE_TEST_SOURCES
  runtime/ard_trainer_test.cc
  runtime/ard_equivalence_test.cc
  runtime/checkpoint_test.cc
  runtime/executor_test.cc
  runtime/flop_count_test.cc
  runtime/kernel_fill_eff_test.cc
  runtime/onnx_export_test.cc
  runtime/golden_test.cc
  runtime/network_gradcheck_test.cc
  runtime/train_loop_test.cc
  runtime/sensitivity_equivalence_test.cc
  runtime/tensorboard_writer_test.cc
  runtime/trainer_test.cc
  runtime/unit_shuffle_test.cc
)
list(APPEND SIEVE_CUDA_TEST_SOURCES
  runtime/trainer_cuda_test.cc
)
