// Implicit-GEMM convolution MatMuls (ImplicitConv in ops/matmul/matmul.h). Every role runs on a sweep
// of geometries (kernel 1/3/5, stride 1/2, padding 0/1, odd channel counts, batch 1 and 5, with and
// without a kept-map selection, alpha != 1, beta 0 over NaN and beta != 0): the reference against
// an explicit computation from tested primitives (Im2ColBatch of the whole batch, one plain MatMul
// per image, Col2ImBatch), and the registered implementation (what ops::MatMul runs) against the
// reference at 1, 2 and 3 OpenMP threads. What a selection drops is poisoned: W's dropped columns
// and x's dropped maps hold NaN (reading them would show), dW's dropped columns, dx's dropped maps
// and dW's leading-dimension slack hold a sentinel that must survive bit for bit. Also: an empty
// selection, FLOP counts, ToString, and the validation errors.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ops/kernels/im2col.h"
#include "ops/matmul/matmul.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using Role = ImplicitConv::Role;
using Rng = std::mt19937;

constexpr float kSentinel = 12345.0f;

int64_t Uniform(Rng& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

// Sets the OpenMP team size for its lifetime and restores the previous one after.
class TeamSize {
 public:
  explicit TeamSize(int threads) : previous_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~TeamSize() { omp_set_num_threads(previous_); }
  TeamSize(const TeamSize&) = delete;
  TeamSize& operator=(const TeamSize&) = delete;

 private:
  int previous_;
};

struct ConvCase {
  Role role = Role::kForward;
  ConvGeometry g;
  int64_t batch = 1;
  int64_t cout = 1;
  std::optional<ChannelSet> maps;  // kept input maps; nullopt: no selection
  float alpha = 1.0f;
  float beta = 0.0f;
  int64_t w_slack = 0;  // extra columns in the leading dimension of W / dW

  int64_t columns() const { return g.channels * g.kernel_area(); }
  int64_t plane() const { return g.out_plane(); }
  int64_t kept_maps() const { return maps ? static_cast<int64_t>(maps->kept.size()) : g.channels; }
  bool MapKept(int64_t c) const { return !maps || maps->Kept(c); }
  const ChannelSet* maps_or_null() const { return maps ? &*maps : nullptr; }
};

std::string Describe(const ConvCase& c) {
  std::ostringstream os;
  os << "role " << static_cast<int>(c.role) << " batch " << c.batch << " Cout " << c.cout << " " << c.g.ToString()
     << " alpha " << c.alpha << " beta " << c.beta << " W slack " << c.w_slack;
  if (c.maps) os << " maps " << c.maps->kept.size() << " of " << c.g.channels;
  return os.str();
}

// The im2col-dimension indices of the kept maps: whole blocks of kh*kw.
ChannelSet ColumnsOf(const ChannelSet& maps, int64_t kernel_area) {
  ChannelSet columns;
  for (int64_t c : maps.kept)
    for (int64_t t = 0; t < kernel_area; ++t) columns.kept.push_back(c * kernel_area + t);
  return columns;
}

Dim Im2ColDim(Role role) { return role == Role::kForward ? Dim::kK : role == Role::kGradWeight ? Dim::kN : Dim::kM; }

MatMulAttr AttrOf(const ConvCase& c) {
  MatMulAttr attr;
  attr.alpha = c.alpha;
  attr.beta = c.beta;
  attr.conv = ImplicitConv{c.role, c.g};
  if (c.maps) {
    const DimSelection sel{ColumnsOf(*c.maps, c.g.kernel_area()), c.columns()};
    const Dim d = Im2ColDim(c.role);
    (d == Dim::kM ? attr.m : d == Dim::kN ? attr.n : attr.k) = sel;
  }
  return attr;
}

// The three tensors of a case: W (or dW) as a view into storage with slack columns, the input
// image batch x (or dx) and the output image batch y (or dy).
struct Operands {
  Tensor weight_storage, weight;
  Tensor input;   // [B, Cin, H, W]
  Tensor output;  // [B, Cout, Ho, Wo]
  // (A, B, C) of the role.
  Tensor a() const { return role == Role::kGradWeight ? output : weight; }
  Tensor b() const { return role == Role::kGradInput ? output : input; }
  Tensor c() const { return role == Role::kForward ? output : role == Role::kGradWeight ? weight : input; }
  Tensor c_storage() const { return role == Role::kGradWeight ? weight_storage : c(); }
  Role role = Role::kForward;
};

// Random operands; what the role must not read is NaN, what it must not write is the sentinel, and
// with beta == 0 the written entries start as NaN.
Operands MakeOperands(const ConvCase& c, Rng& rng) {
  Operands o;
  o.role = c.role;
  const ConvGeometry& g = c.g;
  const int64_t ld = c.columns() + c.w_slack, area = g.kernel_area();
  o.weight_storage = testing::RandomTensor({c.cout, ld}, rng);
  o.weight = o.weight_storage.MatrixView(0, c.cout, c.columns(), ld);
  o.input = testing::RandomTensor({c.batch, g.channels, g.height, g.width}, rng);
  o.output = testing::RandomTensor({c.batch, c.cout, g.out_h(), g.out_w()}, rng);
  const bool weight_is_output = c.role == Role::kGradWeight, input_is_output = c.role == Role::kGradInput;
  const bool fill_written_nan = c.beta == 0.0f;

  float* w = o.weight_storage.data<float>();
  for (int64_t co = 0; co < c.cout; ++co) {
    for (int64_t j = 0; j < ld; ++j) {
      float& v = w[co * ld + j];
      const bool slack = j >= c.columns();
      const bool kept = !slack && c.MapKept(j / area);
      if (weight_is_output) {
        if (!kept)
          v = kSentinel;
        else if (fill_written_nan)
          v = std::nanf("");
      } else if (!kept) {
        v = std::nanf("");
      }
    }
  }
  float* x = o.input.data<float>();
  for (int64_t n = 0; n < c.batch; ++n) {
    for (int64_t ch = 0; ch < g.channels; ++ch) {
      float* plane = x + (n * g.channels + ch) * g.in_plane();
      const bool kept = c.MapKept(ch);
      for (int64_t i = 0; i < g.in_plane(); ++i) {
        if (input_is_output) {
          if (!kept)
            plane[i] = kSentinel;
          else if (fill_written_nan)
            plane[i] = std::nanf("");
        } else if (!kept) {
          plane[i] = std::nanf("");
        }
      }
    }
  }
  if (c.role == Role::kForward && fill_written_nan) o.output.Fill(std::nanf(""));
  return o;
}

// Which elements of C's storage the role writes (kept entries) and how many terms each sums.
std::vector<bool> WrittenMask(const ConvCase& c) {
  const ConvGeometry& g = c.g;
  std::vector<bool> written;
  switch (c.role) {
    case Role::kForward:
      written.assign(static_cast<size_t>(c.batch * c.cout * c.plane()), true);
      break;
    case Role::kGradWeight: {
      const int64_t ld = c.columns() + c.w_slack;
      for (int64_t co = 0; co < c.cout; ++co)
        for (int64_t j = 0; j < ld; ++j) written.push_back(j < c.columns() && c.MapKept(j / g.kernel_area()));
      break;
    }
    case Role::kGradInput:
      for (int64_t n = 0; n < c.batch; ++n)
        for (int64_t ch = 0; ch < g.channels; ++ch)
          for (int64_t i = 0; i < g.in_plane(); ++i) written.push_back(c.MapKept(ch));
      break;
  }
  return written;
}

int64_t TermsPerEntry(const ConvCase& c) {
  switch (c.role) {
    case Role::kForward:
      return c.kept_maps() * c.g.kernel_area();
    case Role::kGradWeight:
      return c.batch * c.plane();
    case Role::kGradInput:
      return c.cout * c.g.kernel_area();
  }
  return 1;
}

// Written entries within rounding of `want`; every other element bit for bit as `before`.
void CheckOutput(const ConvCase& c, const std::vector<float>& got, const std::vector<float>& want,
                 const std::vector<float>& before, const char* what) {
  const std::vector<bool> written = WrittenMask(c);
  REQUIRE(got.size() == written.size());
  REQUIRE(want.size() == written.size());
  const double atol = 2e-6 * static_cast<double>(TermsPerEntry(c)) * std::max(1.0f, std::fabs(c.alpha));
  for (size_t i = 0; i < got.size(); ++i) {
    if (written[i]) {
      const double tol = atol + 1e-4 * std::fabs(static_cast<double>(want[i]));
      if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol)) {
        FAIL_CHECK(what << ": element " << i << " got " << got[i] << ", want " << want[i] << " (tol " << tol << ")");
        return;
      }
    } else if (std::memcmp(&got[i], &before[i], sizeof(float)) != 0) {
      FAIL_CHECK(what << ": element " << i << " must stay untouched: " << before[i] << " became " << got[i]);
      return;
    }
  }
}

// The same call computed from tested primitives: im2col of the whole batch, a plain MatMul per
// image on views (with the selection as a plain K / N / M channel set), col2im of the whole batch.
void RunExplicit(const ConvCase& c, const Operands& o) {
  const ConvGeometry& g = c.g;
  const int64_t plane = c.plane(), rows = c.kept_maps() * g.kernel_area(), wide = c.batch * plane;
  std::optional<DimSelection> sel;
  if (c.maps) sel = DimSelection{ColumnsOf(*c.maps, g.kernel_area()), c.columns()};
  const Tensor col = Tensor::Empty({rows, wide});
  auto image = [&](const Tensor& t, int64_t n, int64_t channels) {
    return t.MatrixView(n * channels * plane, channels, plane, plane);
  };
  switch (c.role) {
    case Role::kForward: {
      REQUIRE(Im2ColBatch(o.input, g, c.maps_or_null(), col).ok());
      MatMulAttr attr;
      attr.alpha = c.alpha;
      attr.beta = c.beta;
      if (sel) attr.k = DimSelection{sel->pattern, sel->extent, Layout::kFull, Layout::kPacked, Layout::kFull};
      for (int64_t n = 0; n < c.batch; ++n)
        REQUIRE(MatMul(o.weight, col.MatrixView(n * plane, rows, plane, wide), image(o.output, n, c.cout), attr).ok());
      break;
    }
    case Role::kGradWeight: {
      REQUIRE(Im2ColBatch(o.input, g, c.maps_or_null(), col).ok());
      MatMulAttr attr;
      attr.trans_b = true;
      attr.alpha = c.alpha;
      if (sel) attr.n = DimSelection{sel->pattern, sel->extent, Layout::kFull, Layout::kPacked, Layout::kFull};
      for (int64_t n = 0; n < c.batch; ++n) {
        attr.beta = n == 0 ? c.beta : 1.0f;
        REQUIRE(MatMul(image(o.output, n, c.cout), col.MatrixView(n * plane, rows, plane, wide), o.weight, attr).ok());
      }
      break;
    }
    case Role::kGradInput: {
      MatMulAttr attr;
      attr.trans_a = true;
      attr.alpha = c.alpha;
      if (sel) attr.m = DimSelection{sel->pattern, sel->extent, Layout::kFull, Layout::kFull, Layout::kPacked};
      for (int64_t n = 0; n < c.batch; ++n)
        REQUIRE(MatMul(o.weight, image(o.output, n, c.cout), col.MatrixView(n * plane, rows, plane, wide), attr).ok());
      REQUIRE(Col2ImBatch(col, g, c.maps_or_null(), o.input, c.beta).ok());
      break;
    }
  }
}

// Runs one case: reference vs explicit, then ops::MatMul (the first supporting implementation) vs the
// reference at 1, 2 and 3 threads.
void CheckCase(const ConvCase& c, Rng& rng) {
  INFO(Describe(c));
  const Operands o = MakeOperands(c, rng);
  const std::vector<float> before = o.c_storage().ToVector();
  auto reset = [&] { REQUIRE(o.c_storage().CopyFrom(Tensor::FromVector(o.c_storage().shape(), before)).ok()); };
  const MatMulAttr attr = AttrOf(c);

  RunExplicit(c, o);
  const std::vector<float> explicit_result = o.c_storage().ToVector();

  reset();
  auto args = MakeMatMulArgs(o.a(), o.b(), o.c(), attr);
  REQUIRE(args.ok());
  ReferenceMatMulImpl()->Run(*args);
  const std::vector<float> reference = o.c_storage().ToVector();
  CheckOutput(c, reference, explicit_result, before, "reference vs explicit");

  for (int threads : {1, 2, 3}) {
    INFO("threads " << threads);
    reset();
    {
      const TeamSize team(threads);
      REQUIRE(MatMul(o.a(), o.b(), o.c(), attr).ok());
    }
    CheckOutput(c, o.c_storage().ToVector(), reference, before, "MatMul vs reference");
  }
}

TEST_CASE("implicit conv MatMul: every role against the reference and im2col + MatMul + col2im",
          "[ops][matmul][implicit_conv]") {
  Rng rng(20261127);
  int64_t index = 0;
  for (Role role : {Role::kForward, Role::kGradWeight, Role::kGradInput}) {
    for (int64_t kernel : {1, 3, 5}) {
      for (int64_t stride : {1, 2}) {
        for (int64_t pad : {0, 1}) {
          for (int64_t batch : {1, 5}) {
            for (bool select : {false, true}) {
              ConvCase c;
              c.role = role;
              const int64_t odd[] = {1, 3, 5};
              const int64_t cin = odd[Uniform(rng, 0, 2)];
              const int64_t min_side = std::max<int64_t>(1, kernel - 2 * pad);
              c.g = ConvGeometry::Square(cin, min_side + Uniform(rng, 0, 5), 1, kernel, stride, pad);
              c.g.width = min_side + Uniform(rng, 0, 6);
              c.batch = batch;
              c.cout = odd[Uniform(rng, 0, 2)] + 2;
              if (select) {
                ChannelSet maps;
                for (int64_t ch = 0; ch < cin; ++ch)
                  if (Uniform(rng, 0, 1) == 1) maps.kept.push_back(ch);
                if (maps.kept.empty()) maps.kept.push_back(Uniform(rng, 0, cin - 1));
                c.maps = maps;
              }
              // alpha and beta cycle so every role meets each pair.
              c.alpha = index % 2 == 0 ? 1.0f : 1.75f;
              const float betas[] = {0.0f, 1.0f, -0.5f};
              c.beta = betas[(index / 2) % 3];
              c.w_slack = index % 4 == 3 ? 3 : 0;
              ++index;
              CheckCase(c, rng);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("implicit conv MatMul: batches that do not split evenly over the threads", "[ops][matmul][implicit_conv]") {
  Rng rng(7);
  for (Role role : {Role::kForward, Role::kGradWeight, Role::kGradInput}) {
    for (int64_t batch : {2, 3, 7}) {
      ConvCase c;
      c.role = role;
      c.g = ConvGeometry::Square(4, 7, 6, 3, 1, 1);
      c.batch = batch;
      c.cout = 6;
      c.maps = ChannelSet{{0, 2, 3}};
      c.alpha = 0.5f;
      c.beta = batch == 3 ? 0.0f : 1.0f;
      CheckCase(c, rng);
    }
  }
}

TEST_CASE("implicit conv MatMul: a selection that keeps no map", "[ops][matmul][implicit_conv]") {
  Rng rng(11);
  for (Role role : {Role::kForward, Role::kGradWeight, Role::kGradInput}) {
    ConvCase c;
    c.role = role;
    c.g = ConvGeometry::Square(3, 5, 5, 3, 1, 1);
    c.batch = 3;
    c.cout = 4;
    c.maps = ChannelSet{};
    c.beta = 0.5f;
    INFO(Describe(c));
    for (const MatMulImpl* impl : {ReferenceMatMulImpl(), BlasMatMulImpl()}) {
      INFO(impl->name());
      const Operands o = MakeOperands(c, rng);
      const std::vector<float> before = o.c_storage().ToVector();
      auto args = MakeMatMulArgs(o.a(), o.b(), o.c(), AttrOf(c));
      REQUIRE(args.ok());
      REQUIRE(impl->Supports(*args).ok());
      impl->Run(*args);
      // The forward's empty sum leaves beta * y; the backward roles write nothing.
      std::vector<float> want = before;
      if (role == Role::kForward)
        for (float& v : want) v *= c.beta;
      CHECK(testing::BitwiseEqual(o.c_storage().ToVector(), want));
    }
  }
}

TEST_CASE("implicit conv MatMul: FLOP counts cover every image and only the kept maps",
          "[ops][matmul][implicit_conv]") {
  const ConvGeometry g = ConvGeometry::Square(3, 8, 8, 3, 1, 1);  // 8x8 out, 27 columns
  const Tensor w = Tensor::Zeros({4, 27}), x = Tensor::Zeros({5, 3, 8, 8}), y = Tensor::Zeros({5, 4, 8, 8});
  MatMulAttr attr;
  attr.conv = ImplicitConv{Role::kForward, g};
  auto args = MakeMatMulArgs(w, x, y, attr);
  REQUIRE(args.ok());
  CHECK(args->M == 4);
  CHECK(args->N == 64);
  CHECK(args->K == 27);
  CHECK(args->batch == 5);
  CHECK(DenseFlops(*args) == 2 * 4 * 64 * 27 * 5);
  CHECK(ExecutedFlops(*args) == 2 * 4 * 64 * 27 * 5);

  attr.k = DimSelection{ColumnsOf(ChannelSet{{0, 2}}, 9), 27};
  args = MakeMatMulArgs(w, x, y, attr);
  REQUIRE(args.ok());
  CHECK(DenseFlops(*args) == 2 * 4 * 64 * 27 * 5);
  CHECK(ExecutedFlops(*args) == 2 * 4 * 64 * 18 * 5);

  // The backward roles: same extents, permuted.
  MatMulAttr grad_weight;
  grad_weight.conv = ImplicitConv{Role::kGradWeight, g};
  grad_weight.n = DimSelection{ColumnsOf(ChannelSet{{1}}, 9), 27};
  const Tensor dw = Tensor::Zeros({4, 27});
  args = MakeMatMulArgs(y, x, dw, grad_weight);
  REQUIRE(args.ok());
  CHECK((args->M == 4 && args->N == 27 && args->K == 64));
  CHECK(ExecutedFlops(*args) == 2 * 4 * 9 * 64 * 5);

  MatMulAttr grad_input;
  grad_input.conv = ImplicitConv{Role::kGradInput, g};
  const Tensor dx = Tensor::Zeros({5, 3, 8, 8});
  args = MakeMatMulArgs(w, y, dx, grad_input);
  REQUIRE(args.ok());
  CHECK((args->M == 27 && args->N == 64 && args->K == 4));
  CHECK(ExecutedFlops(*args) == 2 * 27 * 64 * 4 * 5);
  CHECK_THAT(grad_input.ToString(), Catch::Contains("implicit conv grad-input") && Catch::Contains("C=3 H=8 W=8"));
}

TEST_CASE("implicit conv MatMul: validation errors name the role and the shapes", "[ops][matmul][implicit_conv]") {
  const ConvGeometry g = ConvGeometry::Square(32, 28, 28, 3, 1, 1);
  const Tensor w = Tensor::Zeros({64, 288}), x = Tensor::Zeros({2, 32, 28, 28}), y = Tensor::Zeros({2, 64, 28, 28});
  MatMulAttr attr;
  attr.conv = ImplicitConv{Role::kForward, g};
  REQUIRE(MakeMatMulArgs(w, x, y, attr).ok());
  auto error = [](const Tensor& a, const Tensor& b, const Tensor& c, const MatMulAttr& at) {
    auto args = MakeMatMulArgs(a, b, c, at);
    REQUIRE_FALSE(args.ok());
    return args.status().message();
  };
  using Catch::Contains;

  CHECK_THAT(error(Tensor::Zeros({64, 287}), x, y, attr), Contains("implicit conv forward") &&
                                                              Contains("W [64, 287] needs 32*3*3 = 288 columns") &&
                                                              Contains("x [2, 32, 28, 28]"));
  CHECK_THAT(error(w, Tensor::Zeros({2, 31, 28, 28}), y, attr),
             Contains("x must be [B, 32, 28, 28]") && Contains("x [2, 31, 28, 28]"));
  CHECK_THAT(error(w, x, Tensor::Zeros({3, 64, 28, 28}), attr),
             Contains("y must be [2, 64, 28, 28]") && Contains("y [3, 64, 28, 28]"));
  CHECK_THAT(error(w, Tensor::Zeros({2, 32 * 28 * 28}), y, attr), Contains("x must be 4-D"));

  MatMulAttr transposed = attr;
  transposed.trans_a = true;
  CHECK_THAT(error(w, x, y, transposed), Contains("trans_a and trans_b must be false") && Contains("W [64, 288]"));

  MatMulAttr wrong_dim = attr;
  wrong_dim.m = DimSelection{ChannelSet{{0, 1}}, 64};
  CHECK_THAT(error(w, x, y, wrong_dim),
             Contains("only the im2col dimension K may carry a selection") && Contains("y [2, 64, 28, 28]"));

  MatMulAttr partial_block = attr;
  partial_block.k = DimSelection{ChannelSet{{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18}}, 288};
  CHECK_THAT(error(w, x, y, partial_block), Contains("whole block") && Contains("W [64, 288]"));

  MatMulAttr row_pattern = attr;
  row_pattern.k = DimSelection{RowPattern{9, 18, 0}, 288};
  CHECK_THAT(error(w, x, y, row_pattern), Contains("must be a channel set") && Contains("x [2, 32, 28, 28]"));

  MatMulAttr packed = attr;
  packed.k = DimSelection{ColumnsOf(ChannelSet{{3}}, 9), 288, Layout::kFull, Layout::kPacked, Layout::kFull};
  CHECK_THAT(error(w, x, y, packed), Contains("Full in every operand"));

  MatMulAttr tiled = attr;
  tiled.tile = TileSelection{TilePattern{8, 8, 2, 0}, Dim::kM, Dim::kK};
  CHECK_THAT(error(w, x, y, tiled), Contains("tile pattern"));

  MatMulAttr grad_weight;
  grad_weight.conv = ImplicitConv{Role::kGradWeight, g};
  CHECK_THAT(error(y, x, Tensor::Zeros({64, 289}), grad_weight),
             Contains("implicit conv grad-weight") && Contains("dW [64, 289] needs 32*3*3 = 288"));
  MatMulAttr grad_input;
  grad_input.conv = ImplicitConv{Role::kGradInput, g};
  CHECK_THAT(error(w, Tensor::Zeros({2, 64, 27, 28}), x, grad_input), Contains("implicit conv grad-input") &&
                                                                          Contains("dy must be [2, 64, 28, 28]") &&
                                                                          Contains("dy [2, 64, 27, 28]"));

  MatMulAttr bad_geometry = attr;
  bad_geometry.conv->geometry.stride_h = 0;
  CHECK_THAT(error(w, x, y, bad_geometry), Contains("stride") && Contains("W [64, 288]"));
}

}  // namespace
}  // namespace sieve::ops
