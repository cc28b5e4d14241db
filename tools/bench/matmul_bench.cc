// `sieve-bench matmul`: the three training GEMMs of one FC layer Y = X W^T (X: B x K, W: N x K,
// out x in), dense vs compacted, with every gather/scatter the compaction needs inside the timed
// region:
//   forward      Y  = X W^T
//   grad-input   dX = dY W
//   grad-weight  dW = dY^T X
// Scenarios: the layer's output dropped (row pattern on N: W rows are a strided view or a row
// gather, Y/dY packed), its input dropped (row pattern on K: X/dX packed; W's kept columns are
// gathered once in the forward and reused by grad-input, as a layer does; dW's kept columns are
// computed packed and scattered), both dropped, and a 32x32 tile pattern on W. Plus Sieve's dense
// MatMul against a raw cblas_sgemm call, to show the primitive's own overhead.
// All variants of one shape run interleaved in one process.
#include <cblas.h>

#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "framework/memory.h"
#include "framework/tensor.h"
#include "ops/kernels/gather_scatter.h"
#include "ops/matmul/matmul.h"
#include "tools/bench/bench_util.h"

namespace sieve::bench {
namespace {

using ops::DimSelection;
using ops::Layout;
using ops::MatMulAttr;
using ops::RowPattern;

constexpr int64_t kBatch = 128;
constexpr double kTargetSingle = 0.9;  // one dropped dimension
constexpr double kTargetDouble = 0.85;
constexpr double kTargetTile = 0.75;
constexpr double kTargetDense = 0.9;  // Sieve's dense MatMul vs raw sgemm (within 10%)

// The rates of the benchmark: p = 0.3 and 0.7 exactly with generalised patterns; 0.5 and 0.667 as
// the strided patterns the zero-copy path takes (0.3 has no strided form).
struct RatePattern {
  RowPattern pattern;
  std::string label;
};

std::vector<RatePattern> RatePatterns() {
  std::vector<RatePattern> out;
  for (const RowPattern& p :
       {RowPattern{7, 10, 9}, RowPattern::Strided(2, 1), RowPattern::Strided(3, 2), RowPattern{3, 10, 9}}) {
    char label[64];
    if (p.is_strided()) {
      std::snprintf(label, sizeof(label), "dp=%lld p=%.3f", static_cast<long long>(p.period), p.rate());
    } else {
      std::snprintf(label, sizeof(label), "k=%lld,T=%lld p=%.3f", static_cast<long long>(p.keep),
                    static_cast<long long>(p.period), p.rate());
    }
    out.push_back({p, label});
  }
  return out;
}

// One GEMM of the layer: operands, annotation, and the gather that belongs to its timing.
struct Gemm {
  Tensor a, b, c;
  MatMulAttr attr;
  std::function<void()> prepare = {};

  void Run() const {
    if (prepare) prepare();
    SIEVE_CHECK_OK(ops::MatMul(a, b, c, attr));
  }
  // Dense FLOPs and executed FLOPs of the annotated call.
  std::pair<double, double> Flops() const {
    auto args = ops::MakeMatMulArgs(a, b, c, attr);
    SIEVE_CHECK_OK(args.status());
    return {static_cast<double>(ops::DenseFlops(*args)), static_cast<double>(ops::ExecutedFlops(*args))};
  }
};

constexpr const char* kGemmNames[] = {"fwd", "grad-in", "grad-w"};
constexpr const char* kGemmKeys[] = {"forward", "grad_input", "grad_weight"};

// A scenario under one pattern: its three GEMMs.
struct Config {
  std::string scenario;  // dense, output_dropped, ...
  std::string label;     // short form for the row name
  std::string pattern;
  double rate = 0.0;
  std::optional<double> target;
  Gemm gemms[3] = {};
};

// The dense tensors of one layer, on the benchmark's device.
struct Layer {
  int64_t n = 0, k = 0;
  Device device;
  std::mt19937 rng{42};
  Tensor x, w, y, dy, dx, dw;

  Tensor Random(Shape shape) {
    Tensor host = Tensor::Empty(shape);
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    float* p = host.data<float>();
    for (int64_t i = 0; i < host.numel(); ++i) p[i] = value(rng);
    return device.is_cpu() ? host : host.Clone(device);
  }
  Tensor Zeros(Shape shape) { return Tensor::Zeros(std::move(shape), DType::kFloat32, device); }

  Layer(int64_t n_, int64_t k_, Device device_) : n(n_), k(k_), device(device_) {
    x = Random({kBatch, k});
    w = Random({n, k});
    dy = Random({kBatch, n});
    y = Zeros({kBatch, n});
    dx = Zeros({kBatch, k});
    dw = Zeros({n, k});
  }
};

DimSelection Select(const RowPattern& p, int64_t extent, Layout a, Layout b, Layout c) {
  return DimSelection{p, extent, a, b, c};
}

MatMulAttr Attr(bool trans_a, bool trans_b) {
  MatMulAttr attr;
  attr.trans_a = trans_a;
  attr.trans_b = trans_b;
  return attr;
}

Config MakeConfig(std::string scenario, std::string label, std::string pattern, double rate, double target) {
  Config c;
  c.scenario = std::move(scenario);
  c.label = std::move(label);
  c.pattern = std::move(pattern);
  c.rate = rate;
  c.target = target;
  return c;
}

Config Dense(const Layer& l) {
  Config c = MakeConfig("dense", "dense", "none", 0.0, kTargetDense);
  c.gemms[0] = {l.x, l.w, l.y, Attr(false, true)};
  c.gemms[1] = {l.dy, l.w, l.dx, Attr(false, false)};
  c.gemms[2] = {l.dy, l.x, l.dw, Attr(true, false)};
  return c;
}

// (a) This layer produces a dropout site: N is selected. W's kept rows are a view (strided) or a
// row gather (generalised); Y and dY stay packed; dW's kept rows are written in place or scattered.
Config OutputDropped(Layer& l, const RatePattern& rp) {
  const RowPattern& p = rp.pattern;
  const int64_t kept = p.KeptCount(l.n);
  Tensor y = l.Zeros({kBatch, kept}), dy = l.Random({kBatch, kept});
  Config c = MakeConfig("output_dropped", "out " + rp.label, p.ToString(), p.rate(), kTargetSingle);
  c.gemms[0] = {l.x, l.w, y, Attr(false, true)};
  c.gemms[0].attr.n = Select(p, l.n, Layout::kFull, Layout::kFull, Layout::kPacked);
  c.gemms[1] = {dy, l.w, l.dx, Attr(false, false)};
  c.gemms[1].attr.k = Select(p, l.n, Layout::kPacked, Layout::kFull, Layout::kFull);
  c.gemms[2] = {dy, l.x, l.dw, Attr(true, false)};
  c.gemms[2].attr.m = Select(p, l.n, Layout::kPacked, Layout::kFull, Layout::kFull);
  return c;
}

// (b) This layer consumes a dropout site: K is selected. X and dX are packed; the forward gathers
// W's kept columns once and grad-input reuses them; grad-weight computes dW's kept columns packed
// and scatters them into dW.
Config InputDropped(Layer& l, const RatePattern& rp) {
  const RowPattern& p = rp.pattern;
  const int64_t kept = p.KeptCount(l.k);
  Tensor x = l.Random({kBatch, kept}), w = l.Zeros({l.n, kept}), dx = l.Zeros({kBatch, kept});
  Config c = MakeConfig("input_dropped", "in " + rp.label, p.ToString(), p.rate(), kTargetSingle);
  const Tensor w_full = l.w;
  c.gemms[0] = {x, w, l.y, Attr(false, true),
                [w_full, p, w] { SIEVE_CHECK_OK(ops::GatherSubmatrix(w_full, std::nullopt, p, w)); }};
  c.gemms[0].attr.k = Select(p, l.k, Layout::kPacked, Layout::kPacked, Layout::kFull);
  c.gemms[1] = {l.dy, w, dx, Attr(false, false)};
  c.gemms[1].attr.n = Select(p, l.k, Layout::kFull, Layout::kPacked, Layout::kPacked);
  c.gemms[2] = {l.dy, x, l.dw, Attr(true, false)};
  c.gemms[2].attr.n = Select(p, l.k, Layout::kFull, Layout::kPacked, Layout::kFull);
  return c;
}

// (c) Both: a hidden layer between two dropout sites with the same pattern family.
Config BothDropped(Layer& l, const RatePattern& rp) {
  const RowPattern& p = rp.pattern;
  const int64_t kn = p.KeptCount(l.n), kk = p.KeptCount(l.k);
  Tensor x = l.Random({kBatch, kk}), w = l.Zeros({kn, kk}), y = l.Zeros({kBatch, kn});
  Tensor dy = l.Random({kBatch, kn}), dx = l.Zeros({kBatch, kk});
  Config c = MakeConfig("both_dropped", "both " + rp.label, p.ToString(), p.rate(), kTargetDouble);
  const Tensor w_full = l.w;
  c.gemms[0] = {x, w, y, Attr(false, true), [w_full, p, w] { SIEVE_CHECK_OK(ops::GatherSubmatrix(w_full, p, p, w)); }};
  c.gemms[0].attr.n = Select(p, l.n, Layout::kFull, Layout::kPacked, Layout::kPacked);
  c.gemms[0].attr.k = Select(p, l.k, Layout::kPacked, Layout::kPacked, Layout::kFull);
  c.gemms[1] = {dy, w, dx, Attr(false, false)};
  c.gemms[1].attr.n = Select(p, l.k, Layout::kFull, Layout::kPacked, Layout::kPacked);
  c.gemms[1].attr.k = Select(p, l.n, Layout::kPacked, Layout::kPacked, Layout::kFull);
  c.gemms[2] = {dy, x, l.dw, Attr(true, false)};
  c.gemms[2].attr.m = Select(p, l.n, Layout::kPacked, Layout::kFull, Layout::kFull);
  c.gemms[2].attr.n = Select(p, l.k, Layout::kFull, Layout::kPacked, Layout::kFull);
  return c;
}

// (d) A tile pattern on W (N x K) in all three GEMMs.
Config Tiled(const Layer& l, const ops::TilePattern& t) {
  const double rate = 1.0 - 1.0 / static_cast<double>(t.dp);
  char label[64];
  std::snprintf(label, sizeof(label), "tile %lldx%lld dp=%lld p=%.3f", static_cast<long long>(t.tile_rows),
                static_cast<long long>(t.tile_cols), static_cast<long long>(t.dp), rate);
  Config c = MakeConfig("tile", label, t.ToString(), rate, kTargetTile);
  c.gemms[0] = {l.x, l.w, l.y, Attr(false, true)};
  c.gemms[0].attr.tile = ops::TileSelection{t, ops::Dim::kN, ops::Dim::kK};
  c.gemms[1] = {l.dy, l.w, l.dx, Attr(false, false)};
  c.gemms[1].attr.tile = ops::TileSelection{t, ops::Dim::kK, ops::Dim::kN};
  c.gemms[2] = {l.dy, l.x, l.dw, Attr(true, false)};
  c.gemms[2].attr.tile = ops::TileSelection{t, ops::Dim::kM, ops::Dim::kN};
  return c;
}

// The dense GEMMs as direct cblas_sgemm calls on the same buffers (CPU only).
std::vector<Variant> RawSgemm(const Layer& l) {
  const int b = static_cast<int>(kBatch), n = static_cast<int>(l.n), k = static_cast<int>(l.k);
  const float *x = l.x.data<float>(), *w = l.w.data<float>(), *dy = l.dy.data<float>();
  float *y = l.y.data<float>(), *dx = l.dx.data<float>(), *dw = l.dw.data<float>();
  return {
      {"raw fwd", [=] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, n, k, 1.0f, x, k, w, k, 0.0f, y, n); }},
      {"raw grad-in",
       [=] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, k, n, 1.0f, dy, n, w, k, 0.0f, dx, k); }},
      {"raw grad-w",
       [=] { cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, b, 1.0f, dy, n, x, k, 0.0f, dw, k); }},
  };
}

Row MakeRow(const std::string& shape, const std::string& name, const std::string& scenario, const std::string& gemm,
            const std::string& pattern, double rate, const Timing& timing) {
  Row r;
  r.name = shape + " " + name;
  r.timing = timing;
  r.text = {{"shape", shape}, {"scenario", scenario}, {"gemm", gemm}, {"pattern", pattern}};
  r.numbers = {{"rate", rate}};
  return r;
}

std::vector<Row> BenchShape(int64_t n, int64_t k, const Options& options, int reps) {
  Layer layer(n, k, options.device);
  std::vector<Config> configs;
  configs.push_back(Dense(layer));
  for (const RatePattern& rp : RatePatterns()) configs.push_back(OutputDropped(layer, rp));
  for (const RatePattern& rp : RatePatterns()) configs.push_back(InputDropped(layer, rp));
  for (const RatePattern& rp : RatePatterns()) configs.push_back(BothDropped(layer, rp));
  configs.push_back(Tiled(layer, ops::TilePattern{32, 32, 2, 0}));

  std::vector<Variant> variants;
  const bool raw = options.device.is_cpu();
  if (raw) variants = RawSgemm(layer);
  for (const Config& c : configs)
    for (int g = 0; g < 3; ++g) variants.push_back({c.label + " " + kGemmNames[g], [&c, g] { c.gemms[g].Run(); }});
  const std::vector<Timing> timings = TimeInterleaved(variants, reps, 2, options.device);

  std::ostringstream shape_os;
  shape_os << "B=" << kBatch << " N=" << n << " K=" << k;
  const std::string shape = shape_os.str();
  std::vector<Row> rows;
  size_t next = 0;
  std::vector<Timing> raw_timings;
  if (raw) {
    for (int g = 0; g < 3; ++g) {
      raw_timings.push_back(timings[next++]);
      rows.push_back(MakeRow(shape, std::string("raw-sgemm ") + kGemmNames[g], "raw_sgemm", kGemmKeys[g], "none", 0.0,
                             raw_timings.back()));
    }
    rows.push_back(MakeRow(shape, "raw-sgemm layer", "raw_sgemm", "layer", "none", 0.0,
                           Timing::Sum({&raw_timings[0], &raw_timings[1], &raw_timings[2]})));
    raw_timings.push_back(rows.back().timing);
  }
  // Dense rows are compared with raw sgemm, compacted rows with the dense row of the same GEMM.
  std::vector<double> dense_ms;
  for (const Config& c : configs) {
    const Timing* parts[3];
    double dense_flops = 0, executed_flops = 0;
    const bool is_dense = c.scenario == "dense";
    for (int g = 0; g < 4; ++g) {
      Row row;
      if (g < 3) {
        parts[g] = &timings[next++];
        const auto [dense, executed] = c.gemms[g].Flops();
        dense_flops += dense;
        executed_flops += executed;
        row = MakeRow(shape, c.label + " " + kGemmNames[g], c.scenario, kGemmKeys[g], c.pattern, c.rate, *parts[g]);
        if (!is_dense) row.Compare(dense_ms[g], dense / executed);
      } else {
        row = MakeRow(shape, c.label + " layer", c.scenario, "layer", c.pattern, c.rate,
                      Timing::Sum({parts[0], parts[1], parts[2]}));
        if (!is_dense) row.Compare(dense_ms[3], dense_flops / executed_flops);
      }
      if (is_dense) {
        dense_ms.push_back(row.timing.median);
        if (raw) row.Compare(raw_timings[g].median, 1.0);
      }
      row.target = c.target;
      rows.push_back(std::move(row));
    }
  }
  for (Row& r : rows) r.numbers.insert(r.numbers.end(), {{"batch", kBatch}, {"n", n}, {"k", k}});
  return rows;
}

std::vector<int64_t> ParseSizes(const std::string& list) {
  std::vector<int64_t> sizes;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (end == item.c_str() || *end != '\0' || v < 1) return {};
    sizes.push_back(v);
  }
  return sizes;
}

int RunMatMul(const Options& options) {
  std::vector<int64_t> sizes =
      options.quick ? std::vector<int64_t>{1024, 2048} : std::vector<int64_t>{1024, 2048, 4096};
  for (size_t i = 0; i < options.args.size(); ++i) {
    if (options.args[i] == "--sizes" && i + 1 < options.args.size()) {
      sizes = ParseSizes(options.args[++i]);
      if (sizes.empty()) {
        std::fprintf(stderr, "sieve-bench matmul: --sizes needs a comma-separated list of positive N=K values\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "sieve-bench matmul: unknown argument '%s' (verb options: --sizes N1,N2,...)\n",
                   options.args[i].c_str());
      return 2;
    }
  }
  const int reps = options.Reps(20, 10);
  std::printf("matmul: FC layer Y = X W^T, B=%lld, N=K in {", static_cast<long long>(kBatch));
  for (size_t i = 0; i < sizes.size(); ++i) std::printf("%s%lld", i ? ", " : "", static_cast<long long>(sizes[i]));
  std::printf("}, device %s, %d reps (2 warm-up), times in ms\n", options.device.ToString().c_str(), reps);
  std::printf(
      "speedup: dense Sieve / this (dense rows: raw sgemm / Sieve); ideal: dense / executed FLOPs; "
      "eff = speedup / ideal\n");

  std::vector<Row> all;
  for (int64_t size : sizes) {
    std::vector<Row> rows = BenchShape(size, size, options, reps);
    PrintTable("N = K = " + std::to_string(size), rows);
    all.insert(all.end(), rows.begin(), rows.end());
  }
  return FinishReport("matmul", options, all);
}

}  // namespace

SIEVE_BENCH_VERB(matmul, "FC layer GEMMs, dense vs compacted (out/in/both dropped, tile); --sizes N,...", RunMatMul);

}  // namespace sieve::bench
