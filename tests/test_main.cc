// Test entry point: Catch2 with Sieve's logger quieted to warnings. `--require-gpu` makes the run
// exit 77 (ctest's "skipped") when no CUDA GPU is usable, so [cuda] cases never fake a pass.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <vector>

#include "framework/device.h"
#include "framework/logging.h"

int main(int argc, char** argv) {
  std::vector<char*> args;
  bool require_gpu = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--require-gpu") == 0) {
      require_gpu = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  if (require_gpu && !sieve::CudaAvailable()) {
    std::printf("no usable CUDA GPU (%s build): [cuda] tests skipped\n",
                sieve::CudaCompiled() ? "CUDA" : "CPU-only");
    return 77;
  }
  sieve::SetLogLevel("warn");
  // Catch2 exits with its count of failed assertions; report any failure as 1 so that exactly 77
  // failures can never read as ctest's "skipped".
  const int failures = Catch::Session().run(static_cast<int>(args.size()), args.data());
  return failures == 0 ? 0 : 1;
}
