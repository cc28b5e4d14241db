// `sieve device_query`: the devices this build of Sieve can train on. The CPU always; CUDA devices
// when the build has the CUDA backend (SIEVE_WITH_CUDA) and the machine has a GPU and a driver —
// otherwise one line saying which of the two is missing. Exit 0 when a CUDA device is listed, 1 when
// none is, so scripts can test for a GPU.
#include <cstdio>
#include <thread>

#ifdef SIEVE_WITH_CUDA
#include <cuda_runtime.h>
#endif

#include "tools/sieve/cli.h"
#include "tools/sieve/verbs.h"

namespace sieve::cli {
namespace {

int RunDeviceQuery(const Verb& verb, const Args& args) {
  std::printf("cpu: %u hardware threads\n", std::thread::hardware_concurrency());
#ifdef SIEVE_WITH_CUDA
  int count = 0;
  if (cudaError_t error = cudaGetDeviceCount(&count); error != cudaSuccess) {
    std::printf("cuda: no device usable: %s (%s)\n", cudaGetErrorString(error), cudaGetErrorName(error));
    return kExitFailure;
  }
  if (count == 0) {
    std::printf("cuda: the driver reports no CUDA device\n");
    return kExitFailure;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::printf("cuda: %d device(s), driver %d.%d, runtime %d.%d\n", count, driver / 1000, driver % 1000 / 10,
              runtime / 1000, runtime % 1000 / 10);
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaError_t error = cudaGetDeviceProperties(&p, i); error != cudaSuccess) {
      std::printf("cuda:%d: cannot read its properties: %s\n", i, cudaGetErrorString(error));
      continue;
    }
    std::printf("cuda:%d: %s, compute capability %d.%d, %.1f GiB, %d multiprocessors (sieve train --gpu %d)\n", i,
                p.name, p.major, p.minor, static_cast<double>(p.totalGlobalMem) / (1 << 30), p.multiProcessorCount, i);
  }
  return kExitOk;
#else
  std::printf(
      "cuda: not available: this sieve was built without the CUDA backend (configure with "
      "-DSIEVE_CUDA=ON where nvcc is installed)\n");
  return kExitFailure;
#endif
}

}  // namespace

const Verb kDeviceQueryVerb{
    .name = "device_query",
    .summary = "list the devices this build can train on (CPU, CUDA GPUs)",
    .usage = "sieve device_query",
    .description = "Exit status 0 when at least one CUDA device is usable, 1 otherwise (with the reason).",
    .flags = {},
    .required = {},
    .run = RunDeviceQuery};

}  // namespace sieve::cli
