// [cuda] tests of the cuBLAS MatMul against the CPU reference: dense GEMMs in every transpose,
// row patterns and channel sets on every dimension in every layout, tile patterns over every pair of
// dimensions, strided views, padded leading dimensions, empty dimensions and NaN-filled outputs.
// Every case compares the whole backing store of C: kept entries within FP32 rounding of the
// reference, everything else (dropped entries, padding) bit-for-bit untouched.
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ops/matmul/matmul.h"

namespace sieve::ops {
namespace {

using Rng = std::mt19937_64;

int64_t Uniform(Rng& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
bool Coin(Rng& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }
template <typename T>
T Pick(Rng& rng, const std::vector<T>& values) {
  return values[static_cast<size_t>(Uniform(rng, 0, static_cast<int64_t>(values.size()) - 1))];
}

// A rows x cols operand inside a rows x ld backing store, held on the CPU and (the same bits) on the GPU.
struct Operand {
  int64_t rows = 0, cols = 0, ld = 0;
  Tensor cpu, gpu;  // the backing stores
  Tensor CpuView() const { return cpu.MatrixView(0, rows, cols, ld); }
  Tensor GpuView() const { return gpu.MatrixView(0, rows, cols, ld); }
};

Operand MakeOperand(int64_t rows, int64_t cols, int64_t pad, Rng& rng, bool fill_nan = false) {
  Operand op{rows, cols, cols + pad, {}, {}};
  std::vector<float> values(static_cast<size_t>(rows * op.ld));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : values) v = fill_nan ? std::numeric_limits<float>::quiet_NaN() : dist(rng);
  op.cpu = Tensor::FromVector({rows, op.ld}, values);
  op.gpu = op.cpu.Clone(Device::CUDA(0));
  return op;
}

// A copy of `t` (CPU) with every element replaced by f(element).
Tensor Map(const Tensor& t, float (*f)(float)) {
  std::vector<float> v = t.ToVector();
  for (float& x : v) x = f(x);
  return Tensor::FromVector(t.shape(), v);
}

struct Case {
  int64_t M = 1, N = 1, K = 1;
  MatMulAttr attr;
  bool nan_c = false;  // C starts as NaN (beta == 0 must overwrite it)
};

std::string LayoutName(Layout l) { return l == Layout::kFull ? "F" : "P"; }

std::string Describe(const Case& c) {
  std::ostringstream os;
  os << "M=" << c.M << " N=" << c.N << " K=" << c.K << " " << c.attr.ToString();
  for (Dim d : {Dim::kM, Dim::kN, Dim::kK}) {
    if (const auto& s = c.attr.selection(d))
      os << " " << DimName(d) << "-layouts(a,b,c)=" << LayoutName(s->a) << LayoutName(s->b) << LayoutName(s->c);
  }
  if (c.nan_c) os << " C=NaN";
  return os.str();
}

int64_t StoredExtent(const Case& c, Dim d, char operand) {
  const int64_t dense = d == Dim::kM ? c.M : d == Dim::kN ? c.N : c.K;
  const auto& s = c.attr.selection(d);
  if (!s) return dense;
  const Layout layout = operand == 'a' ? s->a : operand == 'b' ? s->b : s->c;
  return layout == Layout::kPacked ? KeptCount(s->pattern, dense) : dense;
}

// Runs the case on the GPU and checks the whole backing store of C against the reference.
void CheckCase(const Case& c, Rng& rng) {
  INFO(Describe(c));
  const MatMulAttr& attr = c.attr;
  const int64_t am = StoredExtent(c, Dim::kM, 'a'), ak = StoredExtent(c, Dim::kK, 'a');
  const int64_t bk = StoredExtent(c, Dim::kK, 'b'), bn = StoredExtent(c, Dim::kN, 'b');
  const Operand a =
      attr.trans_a ? MakeOperand(ak, am, Uniform(rng, 0, 3), rng) : MakeOperand(am, ak, Uniform(rng, 0, 3), rng);
  const Operand b =
      attr.trans_b ? MakeOperand(bn, bk, Uniform(rng, 0, 3), rng) : MakeOperand(bk, bn, Uniform(rng, 0, 3), rng);
  const Operand out =
      MakeOperand(StoredExtent(c, Dim::kM, 'c'), StoredExtent(c, Dim::kN, 'c'), Uniform(rng, 0, 3), rng, c.nan_c);

  // The reference three times: the expected values; the same on |A|, |B|, |C| with |alpha| and
  // |beta|, which bounds each entry's rounding error; and on a NaN-filled C with beta = 0, which
  // marks the entries the call writes (they come back finite).
  auto reference = [&](const Tensor& ta, const Tensor& tb, const Tensor& tc_backing, const MatMulAttr& at) {
    Tensor backing = tc_backing.Clone();
    auto args = MakeMatMulArgs(ta.MatrixView(0, a.rows, a.cols, a.ld), tb.MatrixView(0, b.rows, b.cols, b.ld),
                               backing.MatrixView(0, out.rows, out.cols, out.ld), at);
    REQUIRE(args.ok());
    ReferenceMatMulImpl()->Run(*args);
    return backing.ToVector();
  };
  auto abs = [](float x) { return std::fabs(x); };
  auto nan = [](float) { return std::numeric_limits<float>::quiet_NaN(); };
  MatMulAttr abs_attr = attr, mark_attr = attr;
  abs_attr.alpha = std::fabs(attr.alpha);
  abs_attr.beta = std::fabs(attr.beta);
  mark_attr.beta = 0.0f;
  const std::vector<float> expected = reference(a.cpu, b.cpu, out.cpu, attr);
  const std::vector<float> magnitude = reference(Map(a.cpu, abs), Map(b.cpu, abs), Map(out.cpu, abs), abs_attr);
  const std::vector<float> marked = reference(a.cpu, b.cpu, Map(out.cpu, nan), mark_attr);

  const Status status = MatMul(a.GpuView(), b.GpuView(), out.GpuView(), attr);
  REQUIRE(status.ok());
  const std::vector<float> got = out.gpu.ToVector();
  const std::vector<float> before = out.cpu.ToVector();

  // Worst-case FP32 error grows with K; random data stays far below this, while one wrong or
  // missing term of a K-long sum is off by about magnitude / K.
  const double tolerance = 8.0 * FLT_EPSILON * (std::sqrt(static_cast<double>(c.K)) + 2.0);
  int64_t bad = 0;
  std::ostringstream first_bad;
  for (size_t e = 0; e < got.size(); ++e) {
    const bool written = std::isfinite(marked[e]);
    const bool ok = written ? std::fabs(static_cast<double>(got[e]) - expected[e]) <=
                                  tolerance * magnitude[e] + std::numeric_limits<float>::min()
                            : std::bit_cast<uint32_t>(got[e]) == std::bit_cast<uint32_t>(before[e]);
    if (!ok && bad++ < 5) {
      first_bad << " [row " << e / static_cast<size_t>(out.ld) << ", col " << e % static_cast<size_t>(out.ld)
                << (written ? "] got " : ", not written] got ") << got[e] << " expected "
                << (written ? expected[e] : before[e]) << ";";
    }
  }
  INFO("mismatches:" << first_bad.str());
  CHECK(bad == 0);
}

IndexPattern RandomPattern(int64_t extent, Rng& rng) {
  switch (Uniform(rng, 0, 3)) {
    case 0: {  // the papers' (dp, o)
      const int64_t dp = Uniform(rng, 1, 4);
      return RowPattern::Strided(dp, Uniform(rng, 0, dp - 1));
    }
    case 1: {  // generalised (k, T, o), including runs that wrap past the period
      const int64_t period = Uniform(rng, 2, 7);
      return RowPattern{Uniform(rng, 1, period), period, Uniform(rng, 0, period - 1)};
    }
    case 2: {  // an arbitrary subset, possibly empty or full
      ChannelSet set;
      const double keep = Pick<double>(rng, {0.0, 0.3, 0.7, 1.0});
      for (int64_t i = 0; i < extent; ++i)
        if (Coin(rng, keep)) set.kept.push_back(i);
      return set;
    }
    default: {  // a strided pattern with a large period: at most one kept index
      const int64_t period = extent + Uniform(rng, 1, 3);
      return RowPattern::Strided(period, Uniform(rng, 0, period - 1));
    }
  }
}

DimSelection RandomSelection(int64_t extent, Rng& rng) {
  auto layout = [&rng] { return Coin(rng) ? Layout::kFull : Layout::kPacked; };
  return DimSelection{RandomPattern(extent, rng), extent, layout(), layout(), layout()};  // evaluated in order
}

std::optional<DimSelection>& SelectionOf(MatMulAttr& attr, Dim d) {
  return d == Dim::kM ? attr.m : d == Dim::kN ? attr.n : attr.k;
}

Case RandomShape(Rng& rng) {
  const std::vector<int64_t> extents = {1, 2, 3, 5, 8, 13, 31, 32, 33, 47, 64, 70};
  Case c;
  c.M = Pick(rng, extents);
  c.N = Pick(rng, extents);
  c.K = Pick(rng, extents);
  c.attr.trans_a = Coin(rng);
  c.attr.trans_b = Coin(rng);
  c.attr.alpha = Pick<float>(rng, {1.0f, -0.5f, 1.75f});
  c.attr.beta = Pick<float>(rng, {0.0f, 1.0f, -0.25f});
  c.nan_c = c.attr.beta == 0.0f && Coin(rng);
  return c;
}

int64_t DenseExtent(const Case& c, Dim d) { return d == Dim::kM ? c.M : d == Dim::kN ? c.N : c.K; }

TEST_CASE("cuBLAS MatMul: dense GEMMs in every transpose match the reference", "[cuda][ops][matmul]") {
  Rng rng(1);
  for (const auto& [M, N, K] : std::vector<std::array<int64_t, 3>>{
           {1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {4, 6, 1}, {33, 31, 65}, {64, 32, 128}, {97, 130, 75}}) {
    for (int t = 0; t < 4; ++t) {
      for (float beta : {0.0f, 1.0f, -0.75f}) {
        Case c;
        c.M = M;
        c.N = N;
        c.K = K;
        c.attr.trans_a = t & 1;
        c.attr.trans_b = t & 2;
        c.attr.alpha = 1.25f;
        c.attr.beta = beta;
        c.nan_c = beta == 0.0f;
        CheckCase(c, rng);
      }
    }
  }
}

TEST_CASE("cuBLAS MatMul: row patterns and channel sets on every dimension and layout", "[cuda][ops][matmul]") {
  Rng rng(2);
  for (int i = 0; i < 200; ++i) {
    Case c = RandomShape(rng);
    for (Dim d : {Dim::kM, Dim::kN, Dim::kK})
      if (Coin(rng, 0.6)) SelectionOf(c.attr, d) = RandomSelection(DenseExtent(c, d), rng);
    CheckCase(c, rng);
  }
}

TEST_CASE("cuBLAS MatMul: tile patterns over every pair of dimensions", "[cuda][ops][matmul]") {
  Rng rng(3);
  const std::vector<std::pair<Dim, Dim>> pairs = {{Dim::kM, Dim::kN}, {Dim::kN, Dim::kM}, {Dim::kM, Dim::kK},
                                                  {Dim::kK, Dim::kM}, {Dim::kN, Dim::kK}, {Dim::kK, Dim::kN}};
  for (int i = 0; i < 180; ++i) {
    Case c = RandomShape(rng);
    const auto [rows, cols] = pairs[static_cast<size_t>(i) % pairs.size()];
    TilePattern tile;
    tile.tile_rows = Pick<int64_t>(rng, {1, 2, 3, 4, 8, 32, 100});
    tile.tile_cols = Pick<int64_t>(rng, {1, 2, 3, 4, 8, 32, 100});
    tile.dp = Pick<int64_t>(rng, {1, 2, 3, 5, 40});
    tile.offset = Uniform(rng, 0, tile.dp - 1);
    c.attr.tile = TileSelection{tile, rows, cols};
    for (Dim d : {Dim::kM, Dim::kN, Dim::kK})
      if (d != rows && d != cols && Coin(rng)) SelectionOf(c.attr, d) = RandomSelection(DenseExtent(c, d), rng);
    CheckCase(c, rng);
  }
}

TEST_CASE("cuBLAS MatMul: strided row views of A, B and C", "[cuda][ops][matmul]") {
  Rng rng(4);
  // Each case puts a strided pattern on the storage row dimension of one Full operand, the layout
  // that runs as a zero-copy view, next to the transposed layout where the same pattern is gathered.
  for (bool trans : {false, true}) {
    for (int64_t dp : {2, 3}) {
      Case c;
      c.M = 45;
      c.N = 38;
      c.K = 52;
      c.attr.alpha = 0.5f;
      c.attr.beta = 1.0f;
      c.attr.trans_a = trans;
      c.attr.trans_b = trans;
      c.attr.m = DimSelection{RowPattern::Strided(dp, 1), c.M, Layout::kFull, Layout::kFull, Layout::kFull};
      CheckCase(c, rng);  // A (M rows unless transposed) and C (M rows)
      c.attr.m.reset();
      c.attr.k = DimSelection{RowPattern::Strided(dp, dp - 1), c.K, Layout::kPacked, Layout::kFull, Layout::kFull};
      CheckCase(c, rng);  // B (K rows unless transposed)
      c.attr.k.reset();
      c.attr.n = DimSelection{RowPattern::Strided(dp, 0), c.N, Layout::kFull, Layout::kFull, Layout::kPacked};
      CheckCase(c, rng);  // B when transposed (N rows)
    }
  }
}

TEST_CASE("cuBLAS MatMul: empty dimensions and empty kept sets", "[cuda][ops][matmul]") {
  Rng rng(5);
  const std::vector<float> betas = {0.0f, 1.0f, -2.0f};
  for (float beta : betas) {
    Case c;
    c.attr.beta = beta;
    c.M = 7;
    c.N = 9;
    c.K = 0;  // C = beta * C
    CheckCase(c, rng);
    c.K = 5;
    c.M = 0;  // nothing to write
    CheckCase(c, rng);
    c.M = 7;
    c.attr.k = DimSelection{ChannelSet{}, c.K, Layout::kFull, Layout::kFull, Layout::kFull};  // C = beta * C
    CheckCase(c, rng);
    c.attr.k.reset();
    c.attr.n = DimSelection{ChannelSet{}, c.N, Layout::kFull, Layout::kFull, Layout::kFull};  // C untouched
    CheckCase(c, rng);
  }
}

TEST_CASE("cuBLAS MatMul: an FC layer's three GEMMs at training sizes", "[cuda][ops][matmul]") {
  Rng rng(6);
  // Y = X W^T with W 512 x 384, batch 128: row ARD on the outputs (packed Y), on the inputs (packed X,
  // W gathered along its columns), and 32x32 tile ARD on W.
  Case forward;
  forward.M = 128;
  forward.N = 512;
  forward.K = 384;
  forward.attr.trans_b = true;
  forward.attr.alpha = 2.0f;
  forward.attr.n = DimSelection{RowPattern::Strided(2, 1), forward.N, Layout::kFull, Layout::kFull, Layout::kPacked};
  CheckCase(forward, rng);
  forward.attr.n.reset();
  forward.attr.k = DimSelection{RowPattern{2, 3, 1}, forward.K, Layout::kPacked, Layout::kFull, Layout::kFull};
  CheckCase(forward, rng);
  forward.attr.k.reset();
  forward.attr.tile = TileSelection{TilePattern{32, 32, 2, 1}, Dim::kN, Dim::kK};
  CheckCase(forward, rng);

  Case grad_weight;  // dW = dY^T X, dW Full and scattered under tile ARD
  grad_weight.M = 512;
  grad_weight.N = 384;
  grad_weight.K = 128;
  grad_weight.attr.trans_a = true;
  grad_weight.attr.beta = 1.0f;
  grad_weight.attr.tile = TileSelection{TilePattern{32, 32, 3, 2}, Dim::kM, Dim::kN};
  CheckCase(grad_weight, rng);
}

TEST_CASE("cuBLAS MatMul runs CUDA tensors only and says so", "[cuda][ops][matmul]") {
  const MatMulImpl* impl = FindMatMulImpl("cublas");
  REQUIRE(impl != nullptr);
  CHECK(impl->device_type() == DeviceType::kCUDA);
  auto args = MakeMatMulArgs(Tensor::Zeros({2, 3}), Tensor::Zeros({3, 4}), Tensor::Zeros({2, 4}), {});
  REQUIRE(args.ok());
  const Status declined = impl->Supports(*args);
  CHECK_FALSE(declined.ok());
  CHECK_THAT(declined.message(), Catch::Contains("CUDA") && Catch::Contains("cpu"));
}

}  // namespace
}  // namespace sieve::ops
