// Sieve's random numbers: the Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the Random123 library) and the stream
// convention every random draw in Sieve follows. Header-only and usable from host and CUDA device
// code, so the CPU and the GPU draw bit-identical bits for the same (seed, stream, element).
// It is not a stateful engine: a draw is a pure function of (seed, stream id, element index), which
// is what makes dropout masks regenerable in backward and runs reproducible from the seed.
//
// Stream convention (SPEC 1, "everything is reproducible from the seed"):
//   key     = the 64-bit seed              (k0 = low 32 bits, k1 = high 32 bits)
//   counter = (64-bit block index, 64-bit stream id)
//             (c0 = block low, c1 = block high, c2 = stream low, c3 = stream high)
//   element i of a stream is lane i % 4 of block i / 4.
// A stream id names one consumer of randomness, e.g. (dropout site, iteration), so every site and
// every iteration draws independently, and any element can be recomputed on its own.
#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "framework/host_device.h"
#include "framework/status.h"

namespace sieve {

/// Philox4x32 round multipliers and Weyl key increments (Random123's PHILOX_M4x32_*, PHILOX_W32_*).
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
inline constexpr int kPhiloxRounds = 10;

/// Four 32-bit words: a Philox counter, or the block of random bits it maps to.
struct PhiloxBlock {
  uint32_t x[4];
};

/// The two 32-bit words of a Philox4x32 key.
struct PhiloxKey {
  uint32_t k0;
  uint32_t k1;
};

/// Philox4x32-10: the bijection counter -> bits under `key`. Bit-exact with Random123's
/// philox4x32_R(10, ctr, key), hence with its published known-answer vectors.
SIEVE_HOST_DEVICE inline PhiloxBlock Philox4x32_10(PhiloxBlock ctr, PhiloxKey key) {
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < kPhiloxRounds; ++round) {
#if defined(__CUDA_ARCH__)
    const uint32_t hi0 = __umulhi(kPhiloxM0, ctr.x[0]), lo0 = kPhiloxM0 * ctr.x[0];
    const uint32_t hi1 = __umulhi(kPhiloxM1, ctr.x[2]), lo1 = kPhiloxM1 * ctr.x[2];
#else
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * ctr.x[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * ctr.x[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
#endif
    ctr = PhiloxBlock{{hi1 ^ ctr.x[1] ^ k0, lo1, hi0 ^ ctr.x[3] ^ k1, lo0}};
    // The key schedule bumps before every round but the first; bumping after the last is unused.
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return ctr;
}

/// A float uniform in [0, 1) from the top 24 bits of `bits`: (bits >> 8) * 2^-24. Exact in float,
/// so CPU and CUDA agree bit for bit; the largest value is 1 - 2^-24.
SIEVE_HOST_DEVICE constexpr float UniformFromBits(uint32_t bits) { return static_cast<float>(bits >> 8) * 0x1p-24f; }

/// Two independent standard normals from two words, by the Box-Muller transform:
///   u1 = (a + 1) * 2^-32 in (0, 1],  u2 = b * 2^-32 in [0, 1),
///   r = sqrt(-2 ln u1),  z0 = r cos(2 pi u2),  z1 = r sin(2 pi u2).
/// Computed in double and rounded once to float, so CPU (libm) and CUDA (its double math library)
/// agree except when the two double results straddle a float rounding boundary (rare; then they
/// differ by one float ulp). |z| <= sqrt(64 ln 2) ~ 6.66: the tail beyond that (probability
/// ~3e-11) is not represented.
SIEVE_HOST_DEVICE inline void NormalPairFromBits(uint32_t a, uint32_t b, float* z0, float* z1) {
  const double u1 = (static_cast<double>(a) + 1.0) * 0x1p-32;
  const double theta = 6.283185307179586476925 * (static_cast<double>(b) * 0x1p-32);
  const double r = std::sqrt(-2.0 * std::log(u1));
  *z0 = static_cast<float>(r * std::cos(theta));
  *z1 = static_cast<float>(r * std::sin(theta));
}

/// One random stream: the key (seed) and the high half of the counter (stream id). Element i is
/// lane i % 4 of block i / 4. Normals use the block's lanes in pairs: element i is
/// Box-Muller(lane 2j, lane 2j+1) with j = (i % 4) / 2, taking the cosine for even i and the sine
/// for odd i, so normals have the same element addressing as bits and uniforms.
struct RandomStream {
  uint64_t seed = 0;
  uint64_t id = 0;

  SIEVE_HOST_DEVICE PhiloxBlock Block(uint64_t block) const {
    return Philox4x32_10(PhiloxBlock{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                      static_cast<uint32_t>(id), static_cast<uint32_t>(id >> 32)}},
                         PhiloxKey{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  }
  /// The 32 random bits of element i (computes its whole block; bulk code should use Block).
  SIEVE_HOST_DEVICE uint32_t Bits(uint64_t i) const { return Block(i >> 2).x[i & 3]; }
  /// Uniform float in [0, 1) of element i.
  SIEVE_HOST_DEVICE float Uniform(uint64_t i) const { return UniformFromBits(Bits(i)); }
  /// Standard normal of element i.
  SIEVE_HOST_DEVICE float Normal(uint64_t i) const {
    const PhiloxBlock b = Block(i >> 2);
    const int lane = static_cast<int>(i & 2);
    float z0, z1;
    NormalPairFromBits(b.x[lane], b.x[lane + 1], &z0, &z1);
    return (i & 1) ? z1 : z0;
  }
};

/// Who draws from a stream. The kind occupies the top byte of a stream id, so the ids of different
/// subsystems never collide; kind 0 is left to ids made by hand (tests, tools).
enum class StreamKind : uint8_t {
  kDropout = 1,  // Bernoulli dropout masks: site = dropout site, iteration = training iteration
  kInit,         // parameter initialisers: site = parameter index, iteration = 0
  kPattern,      // approximate-random-dropout pattern sampling per site and iteration
  kChannel,      // sensitivity-aware feature-map sampling per conv site and iteration
  kShuffle,      // unit shuffling (SPEC 2.5) per layer and shuffle epoch
  kData,         // data-set shuffling and augmentation per epoch
  kSearch,       // pattern-distribution search
  kCount,
};

/// The stream id of (kind, site, iteration): kind in bits 63..56, site in bits 55..32 (< 2^24),
/// iteration in bits 31..0 (< 2^32).
inline uint64_t MakeStreamId(StreamKind kind, uint64_t site, uint64_t iteration) {
  SIEVE_CHECK(kind != StreamKind::kCount);
  SIEVE_CHECK(site < (uint64_t{1} << 24), "stream site " << site << " does not fit in 24 bits");
  SIEVE_CHECK(iteration < (uint64_t{1} << 32), "stream iteration " << iteration << " does not fit in 32 bits");
  return (static_cast<uint64_t>(kind) << 56) | (site << 32) | iteration;
}

/// Host-only bulk generation for CPU kernels: the bits of elements 4 * first_block ..
/// 4 * (first_block + W) - 1 of `stream`, in element order (out[4 * j + lane] is lane `lane` of
/// block first_block + j), equal to RandomStream::Bits bit for bit. The rounds run over W
/// independent counters in structure-of-arrays form, which compilers vectorise (the 32x32->64
/// multiplies become pmuludq / vpmuludq).
template <int W>
inline void PhiloxBlocks(const RandomStream& stream, uint64_t first_block, uint32_t (&out)[4 * W]) {
  uint32_t c0[W], c1[W], c2[W], c3[W];
  for (int j = 0; j < W; ++j) {
    const uint64_t block = first_block + static_cast<uint64_t>(j);
    c0[j] = static_cast<uint32_t>(block);
    c1[j] = static_cast<uint32_t>(block >> 32);
    c2[j] = static_cast<uint32_t>(stream.id);
    c3[j] = static_cast<uint32_t>(stream.id >> 32);
  }
  uint32_t k0 = static_cast<uint32_t>(stream.seed), k1 = static_cast<uint32_t>(stream.seed >> 32);
  for (int round = 0; round < kPhiloxRounds; ++round) {
    // Without the simd request GCC -O3 unrolls this loop completely and then fails to vectorise it.
#if defined(_OPENMP)
#pragma omp simd
#endif
    for (int j = 0; j < W; ++j) {
      const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0[j];
      const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c2[j];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[j] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[j] ^ k1;
      c1[j] = static_cast<uint32_t>(p1);
      c3[j] = static_cast<uint32_t>(p0);
      c0[j] = n0;
      c2[j] = n2;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  for (int j = 0; j < W; ++j) {
    out[4 * j + 0] = c0[j];
    out[4 * j + 1] = c1[j];
    out[4 * j + 2] = c2[j];
    out[4 * j + 3] = c3[j];
  }
}

/// Consecutive 64-bit words of a stream (word k is element 2k in the high half and 2k + 1 in the
/// low half) and unbiased integers below a bound by rejection. Host only.
class RandomWords {
 public:
  explicit RandomWords(RandomStream stream) : stream_(stream) {}

  uint64_t Next() {
    if (lane_ == 4) {
      block_ = stream_.Block(next_block_++);
      lane_ = 0;
    }
    const uint64_t word = (uint64_t{block_.x[lane_]} << 32) | block_.x[lane_ + 1];
    lane_ += 2;
    return word;
  }

  /// Uniform in [0, bound): words below 2^64 mod bound are rejected, so the rest is a whole
  /// multiple of bound and the remainder is unbiased.
  uint64_t Below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    uint64_t r = Next();
    while (r < threshold) r = Next();
    return r % bound;
  }

 private:
  RandomStream stream_;
  uint64_t next_block_ = 0;
  PhiloxBlock block_{};
  int lane_ = 4;
};

/// The permutation of [0, size) that the Fisher-Yates shuffle draws from `stream` (for i = size-1
/// down to 1, swap i with RandomWords::Below(i + 1)): the same on every platform and standard library.
inline std::vector<int64_t> RandomPermutation(int64_t size, RandomStream stream) {
  std::vector<int64_t> order(static_cast<size_t>(size));
  std::iota(order.begin(), order.end(), int64_t{0});
  RandomWords words(stream);
  for (int64_t i = size - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(words.Below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace sieve
