// MatMul argument validation, FLOP accounting and dispatch over the implementation lists.
#include "ops/matmul/matmul.h"

#include <array>
#include <sstream>

#include "framework/logging.h"
#include "ops/check.h"
#include "ops/matmul/implicit_conv.h"

namespace sieve::ops {

namespace {

constexpr const char* kDimNames[] = {"M", "N", "K"};
static_assert(std::size(kDimNames) == static_cast<size_t>(Dim::kCount));

// Does operand ('a', 'b', 'c') span dimension d?
bool Spans(char operand, Dim d) {
  switch (operand) {
    case 'a':
      return d == Dim::kM || d == Dim::kK;
    case 'b':
      return d == Dim::kK || d == Dim::kN;
    default:
      return d == Dim::kM || d == Dim::kN;
  }
}

Layout LayoutOf(const DimSelection& s, char operand) { return operand == 'a' ? s.a : operand == 'b' ? s.b : s.c; }

// The (row-dimension, col-dimension) of an operand's storage.
std::array<Dim, 2> StoredDims(char operand, const MatMulAttr& attr) {
  switch (operand) {
    case 'a':
      return attr.trans_a ? std::array{Dim::kK, Dim::kM} : std::array{Dim::kM, Dim::kK};
    case 'b':
      return attr.trans_b ? std::array{Dim::kN, Dim::kK} : std::array{Dim::kK, Dim::kN};
    default:
      return {Dim::kM, Dim::kN};
  }
}

// Kept (i, j) pairs of a tile pattern over an R x C grid of elements.
int64_t KeptTilePairs(const TilePattern& p, int64_t rows, int64_t cols) {
  int64_t pairs = 0;
  for (int64_t a = 0; a * p.tile_rows < rows; ++a) {
    const int64_t h = std::min(p.tile_rows, rows - a * p.tile_rows);
    int64_t width = 0;
    for (int64_t c = 0; c * p.tile_cols < cols; ++c)
      if (p.TileKept(a, c)) width += std::min(p.tile_cols, cols - c * p.tile_cols);
    pairs += h * width;
  }
  return pairs;
}

}  // namespace

const char* DimName(Dim dim) { return kDimNames[static_cast<int>(dim)]; }

std::string MatMulAttr::ToString() const {
  std::ostringstream os;
  os << "MatMul(" << (trans_a ? "A^T" : "A") << "·" << (trans_b ? "B^T" : "B") << ", alpha=" << alpha
     << ", beta=" << beta;
  for (Dim d : {Dim::kM, Dim::kN, Dim::kK}) {
    if (const auto& s = selection(d)) {
      os << ", " << DimName(d) << ":" << PatternToString(s->pattern) << "/" << s->extent;
    }
  }
  if (tile) os << ", " << tile->pattern.ToString() << " on " << DimName(tile->rows) << "x" << DimName(tile->cols);
  if (conv) os << ", implicit conv " << ConvRoleName(conv->role) << " " << conv->geometry.ToString();
  os << ")";
  return os.str();
}

int64_t MatMulArgs::Kept(Dim d) const {
  const int64_t dense = d == Dim::kM ? M : d == Dim::kN ? N : K;
  const auto& s = attr.selection(d);
  return s ? KeptCount(s->pattern, dense) : dense;
}

int64_t MatMulArgs::StoredExtent(Dim d, char operand) const {
  const auto& s = attr.selection(d);
  if (s && LayoutOf(*s, operand) == Layout::kPacked) return Kept(d);
  return d == Dim::kM ? M : d == Dim::kN ? N : K;
}

StatusOr<MatMulArgs> MakeMatMulArgs(const Tensor& a, const Tensor& b, const Tensor& c, const MatMulAttr& attr) {
  if (attr.conv) {
    MatMulArgs args{a, b, c, attr};
    SIEVE_RETURN_IF_ERROR(ValidateImplicitConv(a, b, c, attr, args));
    return args;
  }
  const std::array<std::pair<char, const Tensor*>, 3> operands = {{{'a', &a}, {'b', &b}, {'c', &c}}};
  auto shapes = [&] {
    return "A " + ShapeToString(a.shape()) + (attr.trans_a ? "^T" : "") + ", B " + ShapeToString(b.shape()) +
           (attr.trans_b ? "^T" : "") + ", C " + ShapeToString(c.shape());
  };
  for (const auto& [name, t] : operands) {
    SIEVE_ENSURE(t->rank() == 2, StatusCode::kInvalidArgument,
                 "MatMul operand " << name << " must be 2-D; got " << shapes());
    SIEVE_ENSURE(t->dtype() == DType::kFloat32, StatusCode::kUnimplemented,
                 "MatMul supports float32; operand " << name << " is " << t->ToString());
    SIEVE_ENSURE(
        t->device() == c.device(), StatusCode::kInvalidArgument,
        "MatMul operands on different devices: " << a.ToString() << ", " << b.ToString() << ", " << c.ToString());
    SIEVE_ENSURE(IsMatrixView(*t), StatusCode::kInvalidArgument,
                 "MatMul operand " << name << " needs unit column stride and leading dimension >= columns; got "
                                   << "strides " << ShapeToString(t->strides()) << " for "
                                   << ShapeToString(t->shape()));
  }
  SIEVE_ENSURE(!Overlaps(c, a) && !Overlaps(c, b), StatusCode::kInvalidArgument,
               "MatMul output C overlaps an input; " << shapes());

  MatMulArgs args{a, b, c, attr};
  // Resolve the dense extent of each dimension and check every operand against it.
  for (Dim d : {Dim::kM, Dim::kN, Dim::kK}) {
    const auto& sel = attr.selection(d);
    int64_t dense = -1;
    if (sel) {
      const std::string why = ValidatePattern(sel->pattern, sel->extent);
      SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument,
                   "MatMul dimension " << DimName(d) << ": " << why << "; " << shapes());
      SIEVE_ENSURE(sel->extent >= 0, StatusCode::kInvalidArgument, "negative extent for " << DimName(d));
      dense = sel->extent;
      SIEVE_ENSURE(!attr.tile || (attr.tile->rows != d && attr.tile->cols != d), StatusCode::kInvalidArgument,
                   "dimension " << DimName(d) << " carries both a tile pattern and an index selection");
    }
    const int64_t kept = sel ? KeptCount(sel->pattern, dense) : -1;
    for (const auto& [name, t] : operands) {
      if (!Spans(name, d)) continue;
      const auto dims = StoredDims(name, attr);
      const int64_t stored = dims[0] == d ? t->dim(0) : t->dim(1);
      if (sel && LayoutOf(*sel, name) == Layout::kPacked) {
        SIEVE_ENSURE(stored == kept, StatusCode::kInvalidArgument,
                     "MatMul dimension " << DimName(d) << " is packed in operand " << name << " and keeps " << kept
                                         << " of " << dense << " but the operand has " << stored << "; " << shapes());
      } else if (dense < 0) {
        dense = stored;
      } else {
        SIEVE_ENSURE(stored == dense, StatusCode::kInvalidArgument,
                     "MatMul dimension " << DimName(d) << " mismatch: operand " << name << " has " << stored
                                         << ", expected " << dense << "; " << shapes());
      }
    }
    (d == Dim::kM ? args.M : d == Dim::kN ? args.N : args.K) = dense;
  }
  if (attr.tile) {
    const std::string why = ValidatePattern(attr.tile->pattern);
    SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument, "MatMul tile selection: " << why << "; " << shapes());
    SIEVE_ENSURE(attr.tile->rows != attr.tile->cols, StatusCode::kInvalidArgument,
                 "tile pattern needs two distinct dimensions, got " << DimName(attr.tile->rows) << " twice");
  }
  return args;
}

int64_t DenseFlops(const MatMulArgs& args) { return 2 * args.M * args.N * args.K * args.batch; }

int64_t ExecutedFlops(const MatMulArgs& args) {
  // An implicit convolution carries no tile pattern (validated); its GEMM runs once per image.
  if (!args.attr.tile) return 2 * args.Kept(Dim::kM) * args.Kept(Dim::kN) * args.Kept(Dim::kK) * args.batch;
  const TileSelection& t = *args.attr.tile;
  auto dense = [&](Dim d) { return d == Dim::kM ? args.M : d == Dim::kN ? args.N : args.K; };
  Dim third = Dim::kM;
  for (Dim d : {Dim::kM, Dim::kN, Dim::kK})
    if (d != t.rows && d != t.cols) third = d;
  return 2 * args.Kept(third) * KeptTilePairs(t.pattern, dense(t.rows), dense(t.cols));
}

const std::vector<const MatMulImpl*>& MatMulImpls(DeviceType type) {
  static const std::vector<const MatMulImpl*> cpu = {BlasMatMulImpl(), ReferenceMatMulImpl()};
#ifdef SIEVE_WITH_CUDA
  static const std::vector<const MatMulImpl*> cuda = {CublasMatMulImpl()};
#else
  static const std::vector<const MatMulImpl*> cuda = {};
#endif
  return type == DeviceType::kCPU ? cpu : cuda;
}

const MatMulImpl* FindMatMulImpl(std::string_view name) {
  for (DeviceType type : {DeviceType::kCPU, DeviceType::kCUDA})
    for (const MatMulImpl* impl : MatMulImpls(type))
      if (impl->name() == name) return impl;
  return nullptr;
}

Status MatMul(const Tensor& a, const Tensor& b, const Tensor& c, const MatMulAttr& attr) {
  SIEVE_ASSIGN_OR_RETURN(MatMulArgs args, MakeMatMulArgs(a, b, c, attr));
  std::string declined;
  for (const MatMulImpl* impl : MatMulImpls(c.device().type)) {
    const Status supported = impl->Supports(args);
    if (supported.ok()) {
      impl->Run(args);
      return Status::Ok();
    }
    SIEVE_LOG_DEBUG("matmul: {} declines {}: {}", impl->name(), attr.ToString(), supported.message());
    declined += std::string("; ") + std::string(impl->name()) + ": " + supported.message();
  }
  return SIEVE_ERROR(StatusCode::kUnimplemented, "no MatMul implementation on " << c.device().ToString() << " runs "
                                                                                << attr.ToString() << declined);
}

}  // namespace sieve::ops
