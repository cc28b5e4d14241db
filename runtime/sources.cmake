# runtime/: backends, scheduler, executor, solvers, data, checkpoints.
set(SIEVE_RUNTIME_SOURCES)
include(runtime/config/sources.cmake)
include(runtime/data/sources.cmake)
include(runtime/params/sources.cmake)
include(runtime/solver/sources.cmake)
list(APPEND SIEVE_RUNTIME_SOURCES
  runtime/backend.cc
  runtime/checkpoint.cc
  runtime/executor.cc
  runtime/export/onnx_export.cc
  runtime/kernel_table.cc
  runtime/tensorboard_writer.cc
  runtime/train_log.cc
  runtime/train_loop.cc
  runtime/trainer.cc
  runtime/unit_shuffle.cc
)
