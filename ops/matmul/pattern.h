// Dropout patterns as the MatMul primitive sees them: which indices of a GEMM dimension (or which
// tiles of a pair of dimensions) are live this iteration. Patterns are tiny value types; the kept
// set is never materialised as a mask (SPEC 2.1), only enumerated where a gather needs indices.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace sieve::ops {

/// Row (neuron) pattern: keeps index i iff (i - offset) mod period < keep.
/// The papers' (dp, o) pattern is {keep = 1, period = dp, offset = o}, rate 1 - 1/dp;
/// the generalised (k, T, o) pattern reaches any rational rate 1 - k/T.
struct RowPattern {
  int64_t keep = 1;
  int64_t period = 1;
  int64_t offset = 0;

  static RowPattern Strided(int64_t dp, int64_t offset) { return {1, dp, offset}; }
  bool is_strided() const { return keep == 1; }
  bool Kept(int64_t i) const;
  /// Number of kept indices in [0, extent).
  int64_t KeptCount(int64_t extent) const;
  /// Drop rate of the pattern itself (1 - keep/period).
  double rate() const { return 1.0 - static_cast<double>(keep) / static_cast<double>(period); }
  std::string ToString() const;  // "row(k=1,T=2,o=1)"
  friend bool operator==(const RowPattern&, const RowPattern&) = default;
};

/// Tile (synapse) pattern over a grid of tile_rows x tile_cols tiles: keeps tile (a, c) iff
/// (a + c) mod dp = offset, so every tile row keeps the same number of tiles (SPEC 2.3).
struct TilePattern {
  int64_t tile_rows = 32;
  int64_t tile_cols = 32;
  int64_t dp = 1;
  int64_t offset = 0;

  bool TileKept(int64_t a, int64_t c) const { return (a + c) % dp == offset; }
  /// Is element (i, j) inside a kept tile?
  bool Kept(int64_t i, int64_t j) const { return TileKept(i / tile_rows, j / tile_cols); }
  std::string ToString() const;  // "tile(32x32,dp=2,o=0)"
  friend bool operator==(const TilePattern&, const TilePattern&) = default;
};

/// An explicit set of kept indices (sorted, unique), e.g. the kept input feature maps of a conv.
struct ChannelSet {
  std::vector<int64_t> kept;

  bool Kept(int64_t i) const;
  std::string ToString() const;  // "channels(3 kept)"
  friend bool operator==(const ChannelSet&, const ChannelSet&) = default;
};

/// A pattern that selects indices of one dimension.
using IndexPattern = std::variant<RowPattern, ChannelSet>;
/// Any dropout pattern (SPEC 1: row, tile, channel-set).
using DropoutPattern = std::variant<RowPattern, TilePattern, ChannelSet>;

bool IsKept(const IndexPattern& pattern, int64_t i);
int64_t KeptCount(const IndexPattern& pattern, int64_t extent);
/// The kept indices in [0, extent), ascending.
std::vector<int64_t> KeptIndices(const IndexPattern& pattern, int64_t extent);
std::string PatternToString(const IndexPattern& pattern);
std::string PatternToString(const DropoutPattern& pattern);
/// Empty when the pattern is well-formed for `extent`, else why not.
std::string ValidatePattern(const IndexPattern& pattern, int64_t extent);
std::string ValidatePattern(const TilePattern& pattern);

}  // namespace sieve::ops
