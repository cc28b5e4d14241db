// MatMul: the op harness (STYLE item 4). The "blas" implementation is checked against the naive
// reference on seeded random cases covering every annotation the reference runs: transposes,
// alpha/beta (beta = 0 over NaN garbage), index selections on M, N, K alone and together with each
// operand Full or Packed, strided / generalised / channel-set patterns, tile patterns on every
// pair of dimensions, and operands given as strided views. Entries of C that the annotation drops,
// and the padding around strided views, must be left bit-for-bit untouched. Also: FLOP accounting
// against a brute-force count, the workspace's steady state, concurrent callers, validation
// messages, and the registry.
#include "ops/matmul/matmul.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "ops/matmul/matmul_cpu_workspace.h"

namespace sieve::ops {
namespace {

using Rng = std::mt19937;

int64_t Uniform(Rng& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
bool Coin(Rng& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }

// A matrix view of rows x cols inside a larger storage (ld > cols, a row of slack before and
// after) when `padded`, so writes outside the view are caught.
struct Matrix {
  Tensor storage;
  Tensor view;
};

Matrix RandomMatrix(Rng& rng, int64_t rows, int64_t cols, bool padded) {
  const int64_t ld = padded ? cols + Uniform(rng, 1, 5) : cols;
  const int64_t pad_rows = padded ? 2 : 0;
  Matrix m;
  m.storage = Tensor::Empty({rows + pad_rows, ld});
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  float* p = m.storage.data<float>();
  for (int64_t i = 0; i < m.storage.numel(); ++i) p[i] = value(rng);
  m.view = m.storage.MatrixView(padded ? ld : 0, rows, cols, ld);
  return m;
}

IndexPattern RandomPattern(Rng& rng, int64_t extent) {
  switch (Uniform(rng, 0, 2)) {
    case 0: {  // the papers' (dp, o)
      const int64_t dp = Uniform(rng, 1, 4);
      return RowPattern::Strided(dp, Uniform(rng, 0, dp - 1));
    }
    case 1: {  // generalised (k, T, o), offsets that wrap around the period included
      const int64_t period = Uniform(rng, 2, 7);
      return RowPattern{Uniform(rng, 1, period), period, Uniform(rng, 0, period - 1)};
    }
    default: {
      ChannelSet set;
      const int64_t shape = Uniform(rng, 0, 3);
      if (shape == 0 && extent > 0) {  // a contiguous range
        const int64_t lo = Uniform(rng, 0, extent - 1), hi = Uniform(rng, lo, extent - 1);
        for (int64_t i = lo; i <= hi; ++i) set.kept.push_back(i);
      } else if (shape == 1) {  // an arithmetic progression
        const int64_t step = Uniform(rng, 2, 5);
        for (int64_t i = Uniform(rng, 0, 4); i < extent; i += step) set.kept.push_back(i);
      } else {
        const double keep = shape == 2 ? 0.3 : 0.8;
        for (int64_t i = 0; i < extent; ++i)
          if (Coin(rng, keep)) set.kept.push_back(i);
      }
      return set;
    }
  }
}

Layout RandomLayout(Rng& rng) { return Coin(rng) ? Layout::kFull : Layout::kPacked; }

DimSelection RandomSelection(Rng& rng, int64_t extent) {
  return {RandomPattern(rng, extent), extent, RandomLayout(rng), RandomLayout(rng), RandomLayout(rng)};
}

TilePattern RandomTile(Rng& rng) {
  const int64_t dp = Uniform(rng, 1, 4);
  return {Uniform(rng, 1, 9), Uniform(rng, 1, 9), dp, Uniform(rng, 0, dp - 1)};
}

// A complete MatMul call: dense extents, annotation, operands.
struct Case {
  int64_t M = 0, N = 0, K = 0;
  MatMulAttr attr;
  bool pad_a = false, pad_b = false, pad_c = false;
  bool nan_c = false;  // fill C with NaN (only with beta = 0)
};

int64_t& Extent(Case& c, Dim d) { return d == Dim::kM ? c.M : d == Dim::kN ? c.N : c.K; }

int64_t Stored(const Case& c, Dim d, char operand) {
  const int64_t dense = d == Dim::kM ? c.M : d == Dim::kN ? c.N : c.K;
  const auto& sel = c.attr.selection(d);
  if (!sel) return dense;
  const Layout layout = operand == 'a' ? sel->a : operand == 'b' ? sel->b : sel->c;
  return layout == Layout::kPacked ? KeptCount(sel->pattern, dense) : dense;
}

struct Operands {
  Matrix a, b, c;
};

Operands MakeOperands(Rng& rng, const Case& c) {
  Operands o;
  const int64_t am = Stored(c, Dim::kM, 'a'), ak = Stored(c, Dim::kK, 'a');
  const int64_t bk = Stored(c, Dim::kK, 'b'), bn = Stored(c, Dim::kN, 'b');
  o.a = c.attr.trans_a ? RandomMatrix(rng, ak, am, c.pad_a) : RandomMatrix(rng, am, ak, c.pad_a);
  o.b = c.attr.trans_b ? RandomMatrix(rng, bn, bk, c.pad_b) : RandomMatrix(rng, bk, bn, c.pad_b);
  o.c = RandomMatrix(rng, Stored(c, Dim::kM, 'c'), Stored(c, Dim::kN, 'c'), c.pad_c);
  if (c.nan_c) o.c.view.Fill(std::nanf(""));
  return o;
}

// Where dense index i lives in operand `operand` (rank if packed), or -1 if dropped.
int64_t Position(const Case& c, Dim d, char operand, int64_t i) {
  const auto& sel = c.attr.selection(d);
  if (!sel) return i;
  if (!IsKept(sel->pattern, i)) return -1;
  const Layout layout = operand == 'a' ? sel->a : operand == 'b' ? sel->b : sel->c;
  return layout == Layout::kPacked ? KeptCount(sel->pattern, i) : i;
}

bool TileKept(const Case& c, int64_t m, int64_t n, int64_t k) {
  if (!c.attr.tile) return true;
  auto index = [&](Dim d) { return d == Dim::kM ? m : d == Dim::kN ? n : k; };
  return c.attr.tile->pattern.Kept(index(c.attr.tile->rows), index(c.attr.tile->cols));
}

bool TileOnOutput(const Case& c) { return c.attr.tile && c.attr.tile->rows != Dim::kK && c.attr.tile->cols != Dim::kK; }

// Which entries of C's view the semantics write (row-major over the view).
std::vector<char> WrittenMask(const Case& c, const Tensor& view) {
  std::vector<char> written(static_cast<size_t>(view.numel()), 0);
  for (int64_t m = 0; m < c.M; ++m) {
    const int64_t cm = Position(c, Dim::kM, 'c', m);
    if (cm < 0) continue;
    for (int64_t n = 0; n < c.N; ++n) {
      const int64_t cn = Position(c, Dim::kN, 'c', n);
      if (cn < 0 || (TileOnOutput(c) && !TileKept(c, m, n, 0))) continue;
      written[static_cast<size_t>(cm * view.dim(1) + cn)] = 1;
    }
  }
  return written;
}

Tensor Abs(const Tensor& storage) {
  Tensor out = storage.Clone();
  float* p = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] = std::fabs(p[i]);
  return out;
}

Tensor SameView(const Tensor& storage, const Tensor& like_view, const Tensor& like_storage) {
  const int64_t offset = (static_cast<const float*>(like_view.raw_data()) - like_storage.data<float>());
  return storage.MatrixView(offset, like_view.dim(0), like_view.dim(1), like_view.stride(0));
}

bool SameBits(float x, float y) { return std::memcmp(&x, &y, sizeof(float)) == 0; }

// Runs `impl` and the reference on copies of C and compares every element of C's storage.
void CheckCase(Rng& rng, const Case& c, const MatMulImpl& impl = *BlasMatMulImpl()) {
  Operands o = MakeOperands(rng, c);
  INFO(c.attr.ToString() << " M=" << c.M << " N=" << c.N << " K=" << c.K << " A " << ShapeToString(o.a.view.shape())
                         << " B " << ShapeToString(o.b.view.shape()) << " C " << ShapeToString(o.c.view.shape())
                         << " pads " << c.pad_a << c.pad_b << c.pad_c);
  const Tensor original = o.c.storage.Clone();
  Tensor expected_storage = o.c.storage.Clone();
  Tensor expected = SameView(expected_storage, o.c.view, o.c.storage);

  auto args = MakeMatMulArgs(o.a.view, o.b.view, o.c.view, c.attr);
  REQUIRE(args.ok());
  REQUIRE(impl.Supports(*args).ok());
  impl.Run(*args);
  auto ref_args = MakeMatMulArgs(o.a.view, o.b.view, expected, c.attr);
  REQUIRE(ref_args.ok());
  ReferenceMatMulImpl()->Run(*ref_args);

  // Error bound per entry: (K + 4) roundings of the sum of |terms|, which the reference computes
  // when every operand and scalar is replaced by its absolute value.
  MatMulAttr abs_attr = c.attr;
  abs_attr.alpha = std::fabs(c.attr.alpha);
  abs_attr.beta = std::fabs(c.attr.beta);
  Tensor bound_storage = Abs(o.c.storage);
  const Tensor a_abs = Abs(o.a.storage), b_abs = Abs(o.b.storage);
  auto bound_args = MakeMatMulArgs(SameView(a_abs, o.a.view, o.a.storage), SameView(b_abs, o.b.view, o.b.storage),
                                   SameView(bound_storage, o.c.view, o.c.storage), abs_attr);
  REQUIRE(bound_args.ok());
  ReferenceMatMulImpl()->Run(*bound_args);

  const std::vector<char> written = WrittenMask(c, o.c.view);
  const int64_t view_offset = static_cast<const float*>(o.c.view.raw_data()) - o.c.storage.data<float>();
  const int64_t ld = o.c.view.stride(0), cols = o.c.view.dim(1);
  const float* got = o.c.storage.data<float>();
  const float* want = expected_storage.data<float>();
  const float* before = original.data<float>();
  const float* bound = bound_storage.data<float>();
  const float tol_scale = 2.0f * static_cast<float>(c.K + 4) * 6e-8f;
  int64_t bad = 0;
  for (int64_t e = 0; e < o.c.storage.numel(); ++e) {
    const int64_t rel = e - view_offset;
    const bool in_view = rel >= 0 && rel / ld < o.c.view.dim(0) && rel % ld < cols;
    const bool must_write = in_view && written[static_cast<size_t>((rel / ld) * cols + rel % ld)];
    if (must_write) {
      const float tol = tol_scale * bound[e] + 1e-30f;
      if (!(std::fabs(got[e] - want[e]) <= tol)) {
        if (bad++ < 5)
          FAIL_CHECK("C element " << e << ": blas " << got[e] << " reference " << want[e] << " tol " << tol);
      }
    } else if (!SameBits(got[e], before[e]) || !SameBits(want[e], before[e])) {
      if (bad++ < 5)
        FAIL_CHECK("C element " << e << " must stay " << before[e] << "; blas " << got[e] << ", reference " << want[e]);
    }
  }
  CHECK(bad == 0);
}

// A random case. `selections` picks which dimensions get an index selection (bit 0 M, 1 N, 2 K);
// `tile` adds a tile pattern on a random pair of the unselected dimensions.
Case RandomCase(Rng& rng, int selections, bool tile, int64_t max_extent = 70) {
  Case c;
  c.M = Uniform(rng, 1, max_extent);
  c.N = Uniform(rng, 1, max_extent);
  c.K = Uniform(rng, 1, max_extent);
  c.attr.trans_a = Coin(rng);
  c.attr.trans_b = Coin(rng);
  const float alphas[] = {1.0f, -0.5f, 2.0f};
  const float betas[] = {0.0f, 1.0f, -0.75f};
  c.attr.alpha = alphas[Uniform(rng, 0, 2)];
  c.attr.beta = betas[Uniform(rng, 0, 2)];
  c.nan_c = c.attr.beta == 0.0f && Coin(rng);
  c.pad_a = Coin(rng, 0.3);
  c.pad_b = Coin(rng, 0.3);
  c.pad_c = Coin(rng, 0.3);
  if (selections & 1) c.attr.m = RandomSelection(rng, c.M);
  if (selections & 2) c.attr.n = RandomSelection(rng, c.N);
  if (selections & 4) c.attr.k = RandomSelection(rng, c.K);
  if (tile) {
    std::vector<Dim> free;
    for (int bit = 0; bit < 3; ++bit)
      if (!(selections & (1 << bit))) free.push_back(static_cast<Dim>(bit));
    REQUIRE(free.size() >= 2);
    std::shuffle(free.begin(), free.end(), rng);
    c.attr.tile = TileSelection{RandomTile(rng), free[0], free[1]};
  }
  return c;
}

TEST_CASE("blas MatMul matches the reference on dense GEMMs", "[ops][matmul]") {
  Rng rng(1);
  for (int i = 0; i < 60; ++i) CheckCase(rng, RandomCase(rng, 0, false));
  Case tiny;
  tiny.M = tiny.N = tiny.K = 1;
  CheckCase(rng, tiny);
}

TEST_CASE("blas MatMul matches the reference with one selected dimension", "[ops][matmul]") {
  Rng rng(2);
  for (int bit = 0; bit < 3; ++bit) {
    for (int i = 0; i < 150; ++i) CheckCase(rng, RandomCase(rng, 1 << bit, false));
  }
}

TEST_CASE("blas MatMul matches the reference with two and three selected dimensions", "[ops][matmul]") {
  Rng rng(3);
  for (int selections : {3, 5, 6, 7}) {
    for (int i = 0; i < 120; ++i) CheckCase(rng, RandomCase(rng, selections, false));
  }
}

TEST_CASE("blas MatMul matches the reference with tile patterns", "[ops][matmul]") {
  Rng rng(4);
  for (int i = 0; i < 200; ++i) CheckCase(rng, RandomCase(rng, 0, true));
  // An index selection on the third dimension.
  for (int bit = 0; bit < 3; ++bit) {
    for (int i = 0; i < 60; ++i) CheckCase(rng, RandomCase(rng, 1 << bit, true));
  }
}

TEST_CASE("blas MatMul covers every tile dimension pair and the 32x32 layer shapes", "[ops][matmul]") {
  Rng rng(5);
  const Dim dims[] = {Dim::kM, Dim::kN, Dim::kK};
  for (Dim rows : dims) {
    for (Dim cols : dims) {
      if (rows == cols) continue;
      for (int64_t dp = 1; dp <= 4; ++dp) {
        Case c = RandomCase(rng, 0, false);
        c.attr.tile = TileSelection{{Uniform(rng, 1, 9), Uniform(rng, 1, 9), dp, Uniform(rng, 0, dp - 1)}, rows, cols};
        CheckCase(rng, c);
      }
    }
  }
  // An FC layer Y = X W^T with a 32x32 tile pattern on W (N x K): forward, grad-input, grad-weight,
  // with extents that leave partial edge tiles.
  const int64_t batch = 9, n = 75, k = 70;
  const TilePattern tp{32, 32, 2, 1};
  Case fwd;
  fwd.M = batch, fwd.N = n, fwd.K = k;
  fwd.attr.trans_b = true;
  fwd.attr.tile = TileSelection{tp, Dim::kN, Dim::kK};
  CheckCase(rng, fwd);
  Case grad_input;
  grad_input.M = batch, grad_input.N = k, grad_input.K = n;
  grad_input.attr.tile = TileSelection{tp, Dim::kK, Dim::kN};
  CheckCase(rng, grad_input);
  Case grad_weight;
  grad_weight.M = n, grad_weight.N = k, grad_weight.K = batch;
  grad_weight.attr.trans_a = true;
  grad_weight.attr.beta = 1.0f;
  grad_weight.attr.tile = TileSelection{tp, Dim::kM, Dim::kN};
  CheckCase(rng, grad_weight);
}

TEST_CASE("blas MatMul handles larger operands on the multi-threaded copy paths", "[ops][matmul]") {
  Rng rng(6);
  for (int selections : {1, 2, 4, 7}) CheckCase(rng, RandomCase(rng, selections, false, 260));
  CheckCase(rng, RandomCase(rng, 0, true, 260));
  CheckCase(rng, RandomCase(rng, 4, true, 260));
}

TEST_CASE("blas MatMul handles empty dimensions and empty selections", "[ops][matmul]") {
  Rng rng(7);
  for (int64_t zero = 0; zero < 3; ++zero) {
    Case c = RandomCase(rng, 0, false, 8);
    Extent(c, static_cast<Dim>(zero)) = 0;
    CheckCase(rng, c);
  }
  // Nothing kept along K: C becomes beta * C on its kept entries, also through the scatter path.
  for (Layout c_layout : {Layout::kFull, Layout::kPacked}) {
    for (float beta : {0.0f, 0.5f}) {
      Case c = RandomCase(rng, 0, false, 12);
      c.attr.beta = beta;
      c.nan_c = false;
      c.attr.k = DimSelection{ChannelSet{}, c.K, Layout::kFull, Layout::kPacked};
      c.attr.n = DimSelection{RowPattern{2, 3, 2}, c.N, Layout::kFull, Layout::kFull, c_layout};
      CheckCase(rng, c);
    }
  }
  // A tile class that keeps no K (dp larger than K's tile count) still scales its outputs.
  Case c;
  c.M = 5, c.N = 7, c.K = 3;
  c.attr.beta = 0.5f;
  c.attr.tile = TileSelection{{2, 2, 4, 3}, Dim::kN, Dim::kK};
  CheckCase(rng, c);
}

TEST_CASE("blas MatMul overwrites NaN garbage in C when beta is 0", "[ops][matmul]") {
  Rng rng(8);
  for (int selections : {0, 1, 2, 3, 4}) {
    Case c = RandomCase(rng, selections, selections == 0);
    c.attr.beta = 0.0f;
    c.nan_c = true;
    CheckCase(rng, c);
  }
}

// Brute-force count of the multiply-adds the semantics keep, from the reference loop structure.
int64_t CountFlops(const Case& c) {
  int64_t pairs = 0;
  for (int64_t m = 0; m < c.M; ++m) {
    if (Position(c, Dim::kM, 'c', m) < 0) continue;
    for (int64_t n = 0; n < c.N; ++n) {
      if (Position(c, Dim::kN, 'c', n) < 0) continue;
      for (int64_t k = 0; k < c.K; ++k) {
        if (Position(c, Dim::kK, 'a', k) >= 0 && TileKept(c, m, n, k)) ++pairs;
      }
    }
  }
  return 2 * pairs;
}

TEST_CASE("ExecutedFlops and DenseFlops match a brute-force count", "[ops][matmul]") {
  Rng rng(9);
  for (int i = 0; i < 120; ++i) {
    const int selections = static_cast<int>(Uniform(rng, 0, 7));
    const bool tile = selections == 0 || (Coin(rng) && (selections == 1 || selections == 2 || selections == 4));
    Case c = RandomCase(rng, selections, tile, 40);
    Operands o = MakeOperands(rng, c);
    auto args = MakeMatMulArgs(o.a.view, o.b.view, o.c.view, c.attr);
    REQUIRE(args.ok());
    INFO(c.attr.ToString());
    CHECK(ExecutedFlops(*args) == CountFlops(c));
    CHECK(DenseFlops(*args) == 2 * c.M * c.N * c.K);
  }
}

TEST_CASE("blas MatMul workspace stops growing after the first call", "[ops][matmul]") {
  // Gathers on A and B and a scatter on C, then a tiled call: all through the workspace.
  Tensor a = Tensor::Zeros({64, 90}), b = Tensor::Zeros({80, 90}), c = Tensor::Zeros({64, 80});
  MatMulAttr attr;
  attr.trans_b = true;
  attr.k = DimSelection{RowPattern{2, 3, 1}, 90};
  attr.n = DimSelection{ChannelSet{{1, 4, 5, 9, 30, 31, 79}}, 80};
  MatMulAttr tiled;
  tiled.trans_b = true;
  tiled.tile = TileSelection{{32, 32, 2, 0}, Dim::kN, Dim::kK};
  cpu::Workspace& ws = cpu::Workspace::ThisThread();
  REQUIRE(MatMul(a, b, c, attr).ok());
  REQUIRE(MatMul(a, b, c, tiled).ok());
  const size_t capacity = ws.capacity_bytes();
  const int64_t grows = ws.grow_count();
  CHECK(capacity > 0);
  REQUIRE(MatMul(a, b, c, attr).ok());
  REQUIRE(MatMul(a, b, c, tiled).ok());
  CHECK(ws.capacity_bytes() == capacity);
  CHECK(ws.grow_count() == grows);
}

TEST_CASE("blas MatMul can be called from several threads at once", "[ops][matmul]") {
  // Each calling thread packs into its own workspace: threads with different operands of the same
  // shapes must each get their own result.
  Rng rng(11);
  Case c = RandomCase(rng, 7, false, 60);
  c.M = c.N = c.K = 240;
  c.attr.m = DimSelection{RowPattern{2, 3, 1}, c.M, Layout::kFull, Layout::kFull, Layout::kFull};
  c.attr.n = DimSelection{RowPattern{3, 4, 0}, c.N, Layout::kFull, Layout::kFull, Layout::kFull};
  c.attr.k = DimSelection{RowPattern{5, 7, 6}, c.K, Layout::kFull, Layout::kFull, Layout::kFull};
  c.attr.beta = 0.0f;
  c.nan_c = false;
  constexpr int kThreads = 4;
  std::vector<Operands> operands;
  std::vector<std::vector<float>> expected;
  for (int t = 0; t < kThreads; ++t) {
    operands.push_back(MakeOperands(rng, c));
    Tensor want = Tensor::Zeros(operands[t].c.view.shape());
    REQUIRE(MatMul(operands[t].a.view, operands[t].b.view, want, c.attr).ok());
    expected.push_back(want.ToVector());
  }
  std::vector<float> worst(kThreads, 0.0f);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Operands& o = operands[t];
      Tensor out = Tensor::Zeros(o.c.view.shape());
      for (int rep = 0; rep < 50; ++rep) {
        SIEVE_CHECK_OK(MatMul(o.a.view, o.b.view, out, c.attr));
        const std::vector<float> got = out.ToVector();
        for (size_t i = 0; i < got.size(); ++i) worst[t] = std::max(worst[t], std::fabs(got[i] - expected[t][i]));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (float w : worst) CHECK(w <= 1e-4f);
}

TEST_CASE("MatMul rejects mismatched shapes naming both", "[ops][matmul]") {
  Tensor a = Tensor::Zeros({4, 3}), b = Tensor::Zeros({5, 2}), c = Tensor::Zeros({4, 2});
  Status s = MatMul(a, b, c, {});
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("[4, 3]") && Catch::Contains("[5, 2]"));
}

TEST_CASE("MatMul rejects bad annotations with precise messages", "[ops][matmul]") {
  Tensor a = Tensor::Zeros({4, 6}), b = Tensor::Zeros({6, 5}), c = Tensor::Zeros({4, 5});
  SECTION("packed extent that does not match the kept count") {
    MatMulAttr attr;
    attr.k = DimSelection{RowPattern::Strided(2, 0), 6, Layout::kPacked, Layout::kFull};
    Status s = MatMul(a, b, c, attr);  // A has 6 columns but K keeps 3
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("[4, 6]") && Catch::Contains("[6, 5]") && Catch::Contains("keeps 3"));
  }
  SECTION("malformed row pattern") {
    MatMulAttr attr;
    attr.n = DimSelection{RowPattern{3, 2, 0}, 5};
    Status s = MatMul(a, b, c, attr);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("row(k=3,T=2,o=0)") && Catch::Contains("dimension N"));
  }
  SECTION("unsorted channel set") {
    MatMulAttr attr;
    attr.m = DimSelection{ChannelSet{{2, 1}}, 4};
    Status s = MatMul(a, b, c, attr);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("sorted") && Catch::Contains("dimension M"));
  }
  SECTION("output overlapping an input") {
    Tensor storage = Tensor::Zeros({4, 11});
    Tensor lhs = storage.MatrixView(0, 4, 6, 11), out = storage.MatrixView(5, 4, 5, 11);
    Status s = MatMul(lhs, b, out, {});
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("overlaps") && Catch::Contains("[4, 6]") && Catch::Contains("[4, 5]"));
  }
  SECTION("tile and selection on the same dimension") {
    MatMulAttr attr;
    attr.n = DimSelection{RowPattern::Strided(2, 0), 5};
    attr.tile = TileSelection{{2, 2, 2, 0}, Dim::kN, Dim::kK};
    Status s = MatMul(a, b, c, attr);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("both a tile pattern and an index selection"));
  }
}

TEST_CASE("MatMul implementations are registered in order with names", "[ops][matmul]") {
  const auto& cpu = MatMulImpls(DeviceType::kCPU);
  REQUIRE(cpu.size() >= 2);
  CHECK(cpu.front()->name() == "blas");
  CHECK(cpu.back()->name() == "reference");
  REQUIRE(FindMatMulImpl("blas") == BlasMatMulImpl());
  REQUIRE(FindMatMulImpl("reference") == ReferenceMatMulImpl());
  CHECK(FindMatMulImpl("blas")->device_type() == DeviceType::kCPU);
  CHECK(FindMatMulImpl("no-such-impl") == nullptr);
  // The blas implementation takes every CPU annotation, so MatMul never falls through to the reference.
  Rng rng(10);
  for (int selections = 0; selections < 8; ++selections) {
    Case c = RandomCase(rng, selections, selections == 0 || selections == 4);
    Operands o = MakeOperands(rng, c);
    auto args = MakeMatMulArgs(o.a.view, o.b.view, o.c.view, c.attr);
    REQUIRE(args.ok());
    CHECK(BlasMatMulImpl()->Supports(*args).ok());
  }
}

}  // namespace
}  // namespace sieve::ops
