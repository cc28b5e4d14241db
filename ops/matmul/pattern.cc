// Kept-index arithmetic of the dropout patterns.
#include "ops/matmul/pattern.h"

#include <algorithm>
#include <sstream>

namespace sieve::ops {

namespace {
int64_t PositiveMod(int64_t a, int64_t m) {
  const int64_t r = a % m;
  return r < 0 ? r + m : r;
}
}  // namespace

bool RowPattern::Kept(int64_t i) const { return PositiveMod(i - offset, period) < keep; }

int64_t RowPattern::KeptCount(int64_t extent) const {
  if (extent <= 0) return 0;
  // Full periods contribute `keep` each; the tail [full*period, extent) is counted directly.
  const int64_t full = extent / period;
  int64_t count = full * keep;
  for (int64_t i = full * period; i < extent; ++i) count += Kept(i) ? 1 : 0;
  return count;
}

std::string RowPattern::ToString() const {
  std::ostringstream os;
  os << "row(k=" << keep << ",T=" << period << ",o=" << offset << ")";
  return os.str();
}

std::string TilePattern::ToString() const {
  std::ostringstream os;
  os << "tile(" << tile_rows << "x" << tile_cols << ",dp=" << dp << ",o=" << offset << ")";
  return os.str();
}

bool ChannelSet::Kept(int64_t i) const { return std::binary_search(kept.begin(), kept.end(), i); }

std::string ChannelSet::ToString() const {
  std::ostringstream os;
  os << "channels(" << kept.size() << " kept)";
  return os.str();
}

bool IsKept(const IndexPattern& pattern, int64_t i) {
  return std::visit([i](const auto& p) { return p.Kept(i); }, pattern);
}

int64_t KeptCount(const IndexPattern& pattern, int64_t extent) {
  if (const auto* row = std::get_if<RowPattern>(&pattern)) return row->KeptCount(extent);
  const auto& kept = std::get<ChannelSet>(pattern).kept;
  return std::lower_bound(kept.begin(), kept.end(), extent) - kept.begin();
}

std::vector<int64_t> KeptIndices(const IndexPattern& pattern, int64_t extent) {
  std::vector<int64_t> out;
  if (const auto* row = std::get_if<RowPattern>(&pattern)) {
    out.reserve(static_cast<size_t>(row->KeptCount(extent)));
    for (int64_t i = 0; i < extent; ++i)
      if (row->Kept(i)) out.push_back(i);
    return out;
  }
  const auto& kept = std::get<ChannelSet>(pattern).kept;
  out.assign(kept.begin(), std::lower_bound(kept.begin(), kept.end(), extent));
  return out;
}

std::string PatternToString(const IndexPattern& pattern) {
  return std::visit([](const auto& p) { return p.ToString(); }, pattern);
}

std::string PatternToString(const DropoutPattern& pattern) {
  return std::visit([](const auto& p) { return p.ToString(); }, pattern);
}

std::string ValidatePattern(const IndexPattern& pattern, int64_t extent) {
  std::ostringstream os;
  if (const auto* row = std::get_if<RowPattern>(&pattern)) {
    if (row->period < 1 || row->keep < 1 || row->keep > row->period || row->offset < 0 ||
        row->offset >= row->period)
      os << row->ToString() << " needs 1 <= k <= T and 0 <= o < T";
    return os.str();
  }
  const auto& kept = std::get<ChannelSet>(pattern).kept;
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] < 0 || kept[i] >= extent || (i > 0 && kept[i] <= kept[i - 1])) {
      os << "channel set must be sorted, unique and inside [0, " << extent << "); entry " << i << " is "
         << kept[i];
      return os.str();
    }
  }
  return os.str();
}

std::string ValidatePattern(const TilePattern& pattern) {
  std::ostringstream os;
  if (pattern.tile_rows < 1 || pattern.tile_cols < 1 || pattern.dp < 1 || pattern.offset < 0 ||
      pattern.offset >= pattern.dp)
    os << pattern.ToString() << " needs positive tile sizes, dp >= 1 and 0 <= o < dp";
  return os.str();
}

}  // namespace sieve::ops
