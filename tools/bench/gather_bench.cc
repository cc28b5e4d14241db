// `sieve-bench gather`: the sub-matrix gathers and scatters that compaction adds (ops/kernels/
// gather_scatter.h), timed against a copy of the whole matrix by the same kernel (no pattern). The copy
// rate of a gather or scatter is (kept elements read + written) * 4 bytes / time; its efficiency is
// that rate over the plain copy's. These copies are the overhead that keeps a compacted GEMM from
// its ideal speedup, so this verb is how that overhead is measured on its own.
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "framework/tensor.h"
#include "ops/kernels/gather_scatter.h"
#include "tools/bench/bench_util.h"

namespace sieve::bench {
namespace {

using ops::IndexPattern;
using ops::RowPattern;

struct NamedPattern {
  std::string label;
  IndexPattern pattern;
};

// The patterns of `sieve-bench matmul` and the 32-wide runs of a 32x32 tile class (dp = 2).
std::vector<NamedPattern> Patterns() {
  return {{"dp=2", RowPattern::Strided(2, 1)},
          {"dp=3", RowPattern::Strided(3, 2)},
          {"k=7,T=10", RowPattern{7, 10, 9}},
          {"k=3,T=10", RowPattern{3, 10, 9}},
          {"tile runs 32/64", RowPattern{32, 64, 32}}};
}

Tensor RandomMatrix(int64_t rows, int64_t cols, Device device, std::mt19937& rng) {
  Tensor host = Tensor::Empty({rows, cols});
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  float* p = host.data<float>();
  for (int64_t i = 0; i < host.numel(); ++i) p[i] = value(rng);
  return device.is_cpu() ? host : host.Clone(device);
}

// One timed copy: what it does and how many elements it moves (read + written, kept ones only).
struct Copy {
  std::string name;
  std::string pattern;
  double elements = 0;
  std::function<void()> run;
};

std::vector<Row> BenchSize(int64_t n, const Options& options, int reps) {
  std::mt19937 rng(7);
  const Device device = options.device;
  const Tensor full = RandomMatrix(n, n, device, rng);
  const Tensor copy = Tensor::Zeros({n, n}, DType::kFloat32, device);
  const Tensor scatter_dst = RandomMatrix(n, n, device, rng);

  std::vector<Copy> copies;
  // The reference: the same kernel with nothing dropped, i.e. a multi-threaded whole-matrix copy.
  copies.push_back({"copy whole matrix", "none", 2.0 * static_cast<double>(n * n),
                    [full, copy] { SIEVE_CHECK_OK(ops::GatherSubmatrix(full, std::nullopt, std::nullopt, copy)); }});
  for (const NamedPattern& np : Patterns()) {
    const IndexPattern p = np.pattern;
    const int64_t kept = ops::KeptCount(p, n);
    const Tensor cols = Tensor::Empty({n, kept}, DType::kFloat32, device);
    const Tensor rows = Tensor::Empty({kept, n}, DType::kFloat32, device);
    const Tensor both = Tensor::Empty({kept, kept}, DType::kFloat32, device);
    const std::string label = ops::PatternToString(p);
    const double col_elems = 2.0 * static_cast<double>(n * kept), both_elems = 2.0 * static_cast<double>(kept * kept);
    copies.push_back({"gather cols " + np.label, label, col_elems,
                      [full, p, cols] { SIEVE_CHECK_OK(ops::GatherSubmatrix(full, std::nullopt, p, cols)); }});
    copies.push_back({"gather rows " + np.label, label, col_elems,
                      [full, p, rows] { SIEVE_CHECK_OK(ops::GatherSubmatrix(full, p, std::nullopt, rows)); }});
    copies.push_back({"gather both " + np.label, label, both_elems,
                      [full, p, both] { SIEVE_CHECK_OK(ops::GatherSubmatrix(full, p, p, both)); }});
    copies.push_back({"scatter cols " + np.label, label, col_elems, [cols, p, scatter_dst] {
                        SIEVE_CHECK_OK(ops::ScatterSubmatrix(cols, std::nullopt, p, scatter_dst, 0.0f));
                      }});
    copies.push_back({"scatter-add cols " + np.label, label, col_elems, [cols, p, scatter_dst] {
                        SIEVE_CHECK_OK(ops::ScatterSubmatrix(cols, std::nullopt, p, scatter_dst, 1.0f));
                      }});
    copies.push_back({"scatter both " + np.label, label, both_elems, [both, p, scatter_dst] {
                        SIEVE_CHECK_OK(ops::ScatterSubmatrix(both, p, p, scatter_dst, 0.0f));
                      }});
  }

  std::vector<Variant> variants;
  for (const Copy& c : copies) variants.push_back({c.name, c.run});
  const std::vector<Timing> timings = TimeInterleaved(variants, reps, 2, device);

  std::ostringstream shape;
  shape << "[" << n << ", " << n << "]";
  std::vector<Row> rows;
  double memcpy_rate = 0.0;
  for (size_t i = 0; i < copies.size(); ++i) {
    Row r;
    r.name = shape.str() + " " + copies[i].name;
    r.timing = timings[i];
    const double gb_per_s = copies[i].elements * sizeof(float) / (timings[i].median * 1e6);
    if (i == 0) memcpy_rate = gb_per_s;
    r.efficiency = gb_per_s / memcpy_rate;
    r.text = {{"shape", shape.str()}, {"copy", copies[i].name}, {"pattern", copies[i].pattern}};
    r.numbers = {{"gb_per_s", gb_per_s}, {"elements", copies[i].elements}};
    rows.push_back(std::move(r));
  }
  return rows;
}

int RunGather(const Options& options) {
  if (!options.args.empty()) {
    std::fprintf(stderr, "sieve-bench gather: unknown argument '%s'\n", options.args.front().c_str());
    return 2;
  }
  const std::vector<int64_t> sizes =
      options.quick ? std::vector<int64_t>{2048} : std::vector<int64_t>{1024, 2048, 4096};
  const int reps = options.Reps(20, 10);
  std::printf("gather: sub-matrix gathers/scatters vs a whole-matrix copy, device %s, %d reps, times in ms\n",
              options.device.ToString().c_str(), reps);
  std::printf("eff = copy rate / whole-matrix copy rate, rate = (kept elements read + written) * 4 B / time\n");
  std::vector<Row> all;
  for (int64_t n : sizes) {
    std::vector<Row> rows = BenchSize(n, options, reps);
    PrintTable("N = K = " + std::to_string(n), rows);
    all.insert(all.end(), rows.begin(), rows.end());
  }
  return FinishReport("gather", options, all);
}

}  // namespace

SIEVE_BENCH_VERB(gather, "the gathers/scatters compaction adds, against a whole-matrix copy", RunGather);

}  // namespace sieve::bench
