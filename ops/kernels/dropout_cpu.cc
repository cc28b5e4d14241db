// CPU Bernoulli dropout. The Philox bits of 16 blocks (64 elements) come from one vectorised
// PhiloxBlocks call, the keep rule is an integer compare turned into an all-ones / all-zeros mask,
// and large inputs are split over the OpenMP team in whole 64-element chunks.
#include <algorithm>
#include <bit>

#include "ops/kernels/dropout.h"

namespace sieve::ops::cpu {

namespace {

constexpr int kBlocksPerChunk = 16;
constexpr int64_t kChunk = 4 * kBlocksPerChunk;  // elements per PhiloxBlocks call
// Below this many elements a fork of the team costs more than the Philox work it would split.
constexpr int64_t kParallelMinElements = int64_t{1} << 14;

// in * scale where the bits keep the element, else +0. A select written as `keep ? in * scale : 0`
// is not vectorised by GCC for SSE2 / AVX2 (it keeps the branch); masking the product's bits is,
// and gives the same values (dropped elements are +0 whatever the input).
inline float Masked(float in, float scale, uint32_t bits, uint32_t threshold) {
  const uint32_t keep_mask = 0u - static_cast<uint32_t>((bits >> 8) >= threshold);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(in * scale) & keep_mask);
}

// out[k] for k in [0, count) from the bits of elements first_block * 4 + skip + k (count + skip <=
// kChunk): the tail after the last whole chunk, or the unaligned head.
void ApplyPartialChunk(const float* in, float* out, int64_t count, int64_t skip, uint32_t threshold, float scale,
                       const RandomStream& stream, uint64_t first_block) {
  uint32_t bits[kChunk];
  PhiloxBlocks<kBlocksPerChunk>(stream, first_block, bits);
  for (int64_t k = 0; k < count; ++k) out[k] = Masked(in[k], scale, bits[skip + k], threshold);
}

}  // namespace

void ApplyDropout(const float* in, float* out, int64_t n, float p, const RandomStream& stream, uint64_t first) {
  if (n <= 0) return;
  const uint32_t threshold = DropoutKeepThreshold(p);
  const float scale = DropoutScale(p);
  // Elements before the stream's next block boundary, so every chunk starts on a block.
  const int64_t head = std::min<int64_t>(n, static_cast<int64_t>((4 - (first & 3)) & 3));
  if (head > 0) ApplyPartialChunk(in, out, head, static_cast<int64_t>(first & 3), threshold, scale, stream, first >> 2);
  const int64_t chunks = (n - head) / kChunk;
  const uint64_t body_block = (first + static_cast<uint64_t>(head)) >> 2;
  const float* in_body = in + head;
  float* out_body = out + head;

#pragma omp parallel for schedule(static) if (chunks * kChunk >= kParallelMinElements)
  for (int64_t c = 0; c < chunks; ++c) {
    uint32_t bits[kChunk];
    PhiloxBlocks<kBlocksPerChunk>(stream, body_block + static_cast<uint64_t>(c) * kBlocksPerChunk, bits);
    const float* x = in_body + c * kChunk;
    float* y = out_body + c * kChunk;
    for (int64_t e = 0; e < kChunk; ++e) y[e] = Masked(x[e], scale, bits[e], threshold);
  }

  const int64_t done = chunks * kChunk;
  const int64_t tail = n - head - done;
  if (tail > 0) {
    ApplyPartialChunk(in_body + done, out_body + done, tail, 0, threshold, scale, stream,
                      body_block + static_cast<uint64_t>(chunks) * kBlocksPerChunk);
  }
}

}  // namespace sieve::ops::cpu
