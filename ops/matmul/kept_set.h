// Kept-index layout of an IndexPattern over [0, extent), as the CPU fast paths need it: one
// contiguous range, an arithmetic progression, the runs of a generalised row pattern, or an
// explicit list. The BLAS MatMul turns ranges and progressions on an operand's row dimension into
// zero-copy views; the CPU gather/scatter loops pick their inner loop from the kind.
// Private to the CPU backend (ops/matmul/matmul_cpu.cc, ops/kernels/gather_scatter_cpu.cc); it is
// not part of the MatMul contract and materialises nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <variant>

#include "ops/matmul/pattern.h"

namespace sieve::ops::cpu {

struct KeptSet {
  enum class Kind : uint8_t {
    kRange,    // first, first + 1, ..., first + count - 1
    kStrided,  // first, first + step, ... (step >= 2)
    kRuns,     // [0, lead) then runs [offset + j*period, + keep) of a row pattern with 2 <= keep < period
    kList,     // list[0], list[1], ...
  };
  Kind kind = Kind::kRange;
  int64_t extent = 0;
  int64_t count = 0;
  int64_t first = 0;
  int64_t step = 1;
  int64_t keep = 0, period = 1, offset = 0, lead = 0;
  const int64_t* list = nullptr;

  bool is_view() const { return kind == Kind::kRange || kind == Kind::kStrided; }

  /// The i-th kept index, 0 <= i < count.
  int64_t At(int64_t i) const {
    switch (kind) {
      case Kind::kRange:
        return first + i;
      case Kind::kStrided:
        return first + i * step;
      case Kind::kRuns: {
        if (i < lead) return i;
        const int64_t r = i - lead;
        return offset + (r / keep) * period + r % keep;
      }
      case Kind::kList:
        return list[i];
    }
    return -1;
  }
};

inline KeptSet AllKept(int64_t extent) {
  KeptSet s;
  s.extent = extent;
  s.count = extent;
  return s;
}

/// Layout of the kept indices of `pattern` (every index when null) in [0, extent).
inline KeptSet AnalyzeKept(const IndexPattern* pattern, int64_t extent) {
  if (pattern == nullptr) return AllKept(extent);
  KeptSet s;
  s.extent = extent;
  s.count = KeptCount(*pattern, extent);
  if (s.count == 0) return s;
  if (const auto* set = std::get_if<ChannelSet>(pattern)) {
    const int64_t* k = set->kept.data();
    s.first = k[0];
    if (s.count == 1) return s;
    const int64_t d = k[1] - k[0];
    bool progression = true;
    for (int64_t i = 2; i < s.count && progression; ++i) progression = k[i] - k[i - 1] == d;
    if (progression) {
      if (d > 1) s.kind = KeptSet::Kind::kStrided;
      s.step = d;
      return s;
    }
    s.kind = KeptSet::Kind::kList;
    s.list = k;
    return s;
  }
  const RowPattern& row = std::get<RowPattern>(*pattern);
  if (row.keep == row.period) return AllKept(extent);
  if (row.keep == 1) {
    s.first = row.offset;
    if (s.count > 1) {
      s.kind = KeptSet::Kind::kStrided;
      s.step = row.period;
    }
    return s;
  }
  // The run that starts at offset may wrap past the period; its tail reappears as [0, lead).
  const int64_t lead = row.offset + row.keep > row.period ? std::min(row.offset + row.keep - row.period, extent) : 0;
  const int64_t first_run = lead > 0 ? lead : std::min(row.offset + row.keep, extent) - row.offset;
  s.first = lead > 0 ? 0 : row.offset;
  if (s.count == first_run) return s;  // a single run: a plain range
  s.kind = KeptSet::Kind::kRuns;
  s.keep = row.keep;
  s.period = row.period;
  s.offset = row.offset;
  s.lead = lead;
  return s;
}

}  // namespace sieve::ops::cpu
