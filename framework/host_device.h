// SIEVE_HOST_DEVICE: marks a function that host code and CUDA device code both call, so one
// definition (e.g. the Philox generator in framework/rng.h) serves the CPU and the GPU. It expands
// to nothing outside nvcc, so the same headers compile in CPU-only builds.
#pragma once

#if defined(__CUDACC__)
#define SIEVE_HOST_DEVICE __host__ __device__
#else
#define SIEVE_HOST_DEVICE
#endif
