// CPU random fills. The stream is cut into 64-element chunks aligned to its own element index;
// each chunk's bits come from one vectorised PhiloxBlocks call and are turned into values in a
// local buffer, and chunks are spread over the OpenMP team, so results do not depend on the
// thread count. Partial chunks at either end copy only the elements that belong to the output.
#include <algorithm>

#include "ops/kernels/random_fill.h"

namespace sieve::ops::cpu {

namespace {

constexpr int kBlocksPerChunk = 16;
constexpr int64_t kChunk = 4 * kBlocksPerChunk;
// Fork the team only when there are enough chunks to pay for it; Gaussian values cost about ten
// times more per element than uniform values or bits, so they break even sooner.
constexpr int64_t kParallelMinChunks = 256;
constexpr int64_t kParallelMinChunksNormal = 32;

// out[k] = value of stream element first + k, k in [0, n); `make(bits, values)` maps the bits of
// one chunk to its kChunk values.
template <typename T, typename MakeChunk>
void GenerateChunked(T* out, int64_t n, const RandomStream& stream, uint64_t first, int64_t parallel_min_chunks,
                     MakeChunk make) {
  if (n <= 0) return;
  const uint64_t end = first + static_cast<uint64_t>(n);
  const uint64_t chunk_begin = first / kChunk;
  const auto chunks = static_cast<int64_t>((end + kChunk - 1) / kChunk - chunk_begin);
#pragma omp parallel for schedule(static) if (chunks >= parallel_min_chunks)
  for (int64_t c = 0; c < chunks; ++c) {
    const uint64_t chunk = chunk_begin + static_cast<uint64_t>(c);
    uint32_t bits[kChunk];
    PhiloxBlocks<kBlocksPerChunk>(stream, chunk * kBlocksPerChunk, bits);
    T values[kChunk];
    make(bits, values);
    const uint64_t lo = std::max(chunk * kChunk, first), hi = std::min(chunk * kChunk + kChunk, end);
    std::copy(values + (lo - chunk * kChunk), values + (hi - chunk * kChunk), out + (lo - first));
  }
}

}  // namespace

void FillUniform(float* out, int64_t n, float low, float high, const RandomStream& stream, uint64_t first) {
  const float range = high - low;
  GenerateChunked(out, n, stream, first, kParallelMinChunks, [=](const uint32_t* bits, float* values) {
    for (int64_t e = 0; e < kChunk; ++e) values[e] = UniformFillValue(low, range, bits[e]);
  });
}

void FillNormal(float* out, int64_t n, float mean, float stddev, const RandomStream& stream, uint64_t first) {
  GenerateChunked(out, n, stream, first, kParallelMinChunksNormal, [=](const uint32_t* bits, float* values) {
    // Elements 2q and 2q + 1 are the cosine and sine halves of one Box-Muller pair (rng.h).
    for (int64_t q = 0; q < kChunk / 2; ++q) {
      float z0, z1;
      NormalPairFromBits(bits[2 * q], bits[2 * q + 1], &z0, &z1);
      values[2 * q] = NormalFillValue(mean, stddev, z0);
      values[2 * q + 1] = NormalFillValue(mean, stddev, z1);
    }
  });
}

void FillBits(uint32_t* out, int64_t n, const RandomStream& stream, uint64_t first) {
  GenerateChunked(out, n, stream, first, kParallelMinChunks,
                  [](const uint32_t* bits, uint32_t* values) { std::copy(bits, bits + kChunk, values); });
}

}  // namespace sieve::ops::cpu
