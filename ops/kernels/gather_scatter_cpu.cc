// Multi-threaded CPU gather/scatter of sub-matrices (the cpu:: half of gather_scatter.h).
// These copies are pure overhead on a compacted GEMM's speedup, so every pattern kind gets its own
// inner loop: contiguous column ranges are memcpy, the short runs of generalised (k, T) patterns
// are single inlined block moves, strided columns with a small period are constant-stride loops
// the compiler vectorises as de-interleaves, and only explicit channel lists use an indexed loop.
// Rows are spread over the OpenMP team (shared with OpenBLAS) once a copy is large enough to pay
// for the fork. `sieve-bench gather` times these loops against a plain copy.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "ops/kernels/gather_scatter.h"
#include "ops/matmul/kept_set.h"

namespace sieve::ops::cpu {

namespace {

// Below this many copied elements (about 128 KiB) one thread finishes before a fork would pay off.
constexpr int64_t kParallelElements = int64_t{1} << 15;

template <typename Fn>
void ForEachRow(int64_t rows, int64_t elements, Fn&& fn) {
  if (rows < 2 || elements < kParallelElements || omp_get_max_threads() < 2 || omp_in_parallel()) {
    for (int64_t i = 0; i < rows; ++i) fn(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) fn(i);
}

template <int64_t kStep>
void GatherStep(const float* __restrict s, int64_t n, float* __restrict d) {
  for (int64_t j = 0; j < n; ++j) d[j] = s[j * kStep];
}

void GatherStrided(const float* __restrict s, int64_t step, int64_t n, float* __restrict d) {
  switch (step) {
    case 2:
      GatherStep<2>(s, n, d);
      return;
    case 3:
      GatherStep<3>(s, n, d);
      return;
    case 4:
      GatherStep<4>(s, n, d);
      return;
    default:
      for (int64_t j = 0; j < n; ++j) d[j] = s[j * step];
  }
}

// Copies the n floats of one short run with at most two (overlapping) fixed-size block moves,
// which the compiler inlines; a memcpy call per run would cost more than the copy for the 3- or
// 7-wide runs of generalised patterns. Overlap is harmless because both moves write equal values.
inline void CopyRun(float* __restrict d, const float* __restrict s, int64_t n) {
  if (n >= 8) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) std::memcpy(d + i, s + i, 8 * sizeof(float));
    if (i < n) std::memcpy(d + n - 8, s + n - 8, 8 * sizeof(float));
  } else if (n >= 4) {
    std::memcpy(d, s, 4 * sizeof(float));
    std::memcpy(d + n - 4, s + n - 4, 4 * sizeof(float));
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

// Runs of fewer than kBlock elements (the 1- to 3-wide runs of patterns like (3, 10)) move as one
// kBlock-wide block each; wider runs are two overlapping block moves (CopyRun) and need no help.
constexpr int64_t kBlock = 4;

// How many leading runs [offset + j*period, + keep) leave room for a kBlock-wide move on both
// sides: the source block inside the full row and the destination block inside the packed row.
int64_t BlockRuns(const KeptSet& c) {
  const int64_t packed_room = c.count - c.lead;
  if (c.keep >= kBlock || c.offset + kBlock > c.extent || packed_room < kBlock) return 0;
  return std::min((c.extent - kBlock - c.offset) / c.period + 1, (packed_room - kBlock) / c.keep + 1);
}

// Gathers those runs kBlock floats at a time: each block's tail is overwritten by the next run's
// block, so a short run costs one inlined vector move.
int64_t GatherBlocks(const float* __restrict s, const KeptSet& c, float* __restrict d) {
  const int64_t runs = BlockRuns(c);
  for (int64_t j = 0; j < runs; ++j) std::memcpy(d + j * c.keep, s + c.offset + j * c.period, kBlock * sizeof(float));
  return runs;
}

// The packed kept columns of a kRuns row: the wrapped lead run, block moves for short runs, then
// exact copies for the wider runs and whatever runs are left near the ends of the rows.
void GatherRuns(const float* __restrict s, const KeptSet& c, float* __restrict d) {
  CopyRun(d, s, c.lead);
  d += c.lead;
  int64_t j = GatherBlocks(s, c, d);
  for (int64_t start = c.offset + j * c.period; start < c.extent; start += c.period, ++j)
    CopyRun(d + j * c.keep, s + start, std::min(c.keep, c.extent - start));
}

// The kept columns of one source row, packed into d.
void GatherRow(const float* __restrict s, const KeptSet& cols, float* __restrict d) {
  switch (cols.kind) {
    case KeptSet::Kind::kRange:
      std::memcpy(d, s + cols.first, static_cast<size_t>(cols.count) * sizeof(float));
      return;
    case KeptSet::Kind::kStrided:
      GatherStrided(s + cols.first, cols.step, cols.count, d);
      return;
    case KeptSet::Kind::kRuns:
      GatherRuns(s, cols, d);
      return;
    case KeptSet::Kind::kList:
      for (int64_t j = 0; j < cols.count; ++j) d[j] = s[cols.list[j]];
      return;
  }
}

// How a scattered value combines with the destination: d = s, d = s + d, d = s + beta d.
// beta == 0 must overwrite (NaN garbage in d does not survive), as in BLAS.
enum class Combine { kAssign, kAdd, kScale };

template <Combine kMode>
struct Combiner {
  float beta;
  void operator()(float& d, float s) const {
    if constexpr (kMode == Combine::kAssign) {
      d = s;
    } else if constexpr (kMode == Combine::kAdd) {
      d = s + d;
    } else {
      d = s + beta * d;
    }
  }
};

template <int64_t kStep, typename Op>
void ScatterStep(const float* __restrict s, int64_t n, float* __restrict d, Op op) {
  for (int64_t j = 0; j < n; ++j) op(d[j * kStep], s[j]);
}

template <typename Op>
void ScatterStrided(const float* __restrict s, int64_t step, int64_t n, float* __restrict d, Op op) {
  switch (step) {
    case 2:
      ScatterStep<2>(s, n, d, op);
      return;
    case 3:
      ScatterStep<3>(s, n, d, op);
      return;
    case 4:
      ScatterStep<4>(s, n, d, op);
      return;
    default:
      for (int64_t j = 0; j < n; ++j) op(d[j * step], s[j]);
  }
}

template <typename Op>
void ScatterContiguous(const float* __restrict s, int64_t n, float* __restrict d, Op op) {
  for (int64_t j = 0; j < n; ++j) op(d[j], s[j]);
}

// Short runs scattered kBlock floats at a time without touching the dropped entries between
// them: combine the whole destination block with the source, then keep the combined value only in
// the run's `keep` lanes (a bitwise select, so other lanes keep their exact bits, NaN included).
// GCC/Clang vector extensions make this a handful of vector instructions per run.
template <Combine kMode>
int64_t ScatterBlocks(const float* __restrict s, const KeptSet& c, float* __restrict d, Combiner<kMode> op) {
  using Bits = uint32_t __attribute__((vector_size(kBlock * sizeof(uint32_t))));
  using Floats = float __attribute__((vector_size(kBlock * sizeof(float))));
  const int64_t runs = BlockRuns(c);
  Bits take;
  for (int64_t i = 0; i < kBlock; ++i) take[i] = i < c.keep ? ~uint32_t{0} : 0;
  for (int64_t j = 0; j < runs; ++j) {
    float* out = d + c.offset + j * c.period;
    Floats in, old;
    std::memcpy(&in, s + j * c.keep, sizeof(in));
    std::memcpy(&old, out, sizeof(old));
    Floats combined = in;
    if constexpr (kMode == Combine::kAdd) combined = in + old;
    if constexpr (kMode == Combine::kScale) combined = in + op.beta * old;
    const Bits merged = (std::bit_cast<Bits>(combined) & take) | (std::bit_cast<Bits>(old) & ~take);
    std::memcpy(out, &merged, sizeof(merged));
  }
  return runs;
}

// The kept columns of a kRuns destination row: the wrapped lead run, block moves for short runs,
// then the wider runs and whatever runs are left near the ends of the rows.
template <Combine kMode>
void ScatterRuns(const float* __restrict s, const KeptSet& c, float* __restrict d, Combiner<kMode> op) {
  if constexpr (kMode == Combine::kAssign) {
    CopyRun(d, s, c.lead);
  } else {
    ScatterContiguous(s, c.lead, d, op);
  }
  s += c.lead;
  int64_t j = ScatterBlocks(s, c, d, op);
  for (int64_t start = c.offset + j * c.period; start < c.extent; start += c.period, ++j) {
    const int64_t len = std::min(c.keep, c.extent - start);
    if constexpr (kMode == Combine::kAssign) {
      CopyRun(d + start, s + j * c.keep, len);
    } else {
      ScatterContiguous(s + j * c.keep, len, d + start, op);
    }
  }
}

// One packed source row into the kept columns of a destination row.
template <Combine kMode>
void ScatterRow(const float* __restrict s, const KeptSet& cols, float* __restrict d, Combiner<kMode> op) {
  switch (cols.kind) {
    case KeptSet::Kind::kRange:
      if constexpr (kMode == Combine::kAssign) {
        std::memcpy(d + cols.first, s, static_cast<size_t>(cols.count) * sizeof(float));
      } else {
        ScatterContiguous(s, cols.count, d + cols.first, op);
      }
      return;
    case KeptSet::Kind::kStrided:
      ScatterStrided(s, cols.step, cols.count, d + cols.first, op);
      return;
    case KeptSet::Kind::kRuns:
      ScatterRuns(s, cols, d, op);
      return;
    case KeptSet::Kind::kList:
      for (int64_t j = 0; j < cols.count; ++j) op(d[cols.list[j]], s[j]);
      return;
  }
}

template <Combine kMode>
void ScatterRows(const float* src, int64_t ld_src, const KeptSet& rows, const KeptSet& cols, float* dst, int64_t ld_dst,
                 float beta) {
  const Combiner<kMode> op{beta};
  ForEachRow(rows.count, rows.count * cols.count,
             [&](int64_t i) { ScatterRow(src + i * ld_src, cols, dst + rows.At(i) * ld_dst, op); });
}

}  // namespace

void GatherSubmatrix(const float* src, int64_t ld_src, int64_t src_rows, int64_t src_cols, const IndexPattern* rows,
                     const IndexPattern* cols, float* dst, int64_t ld_dst) {
  const KeptSet r = AnalyzeKept(rows, src_rows);
  const KeptSet c = AnalyzeKept(cols, src_cols);
  if (r.count == 0 || c.count == 0) return;
  ForEachRow(r.count, r.count * c.count, [&](int64_t i) { GatherRow(src + r.At(i) * ld_src, c, dst + i * ld_dst); });
}

void ScatterSubmatrix(const float* src, int64_t ld_src, int64_t dst_rows, int64_t dst_cols, const IndexPattern* rows,
                      const IndexPattern* cols, float* dst, int64_t ld_dst, float beta) {
  const KeptSet r = AnalyzeKept(rows, dst_rows);
  const KeptSet c = AnalyzeKept(cols, dst_cols);
  if (r.count == 0 || c.count == 0) return;
  if (beta == 0.0f) {
    ScatterRows<Combine::kAssign>(src, ld_src, r, c, dst, ld_dst, beta);
  } else if (beta == 1.0f) {
    ScatterRows<Combine::kAdd>(src, ld_src, r, c, dst, ld_dst, beta);
  } else {
    ScatterRows<Combine::kScale>(src, ld_src, r, c, dst, ld_dst, beta);
  }
}

}  // namespace sieve::ops::cpu
