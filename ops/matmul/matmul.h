// The MatMul primitive: the one GEMM every layer of Sieve lowers to, forward and backward.
//
//   C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C        (row-major storage)
//
// A MatMulAttr may select a subset of the indices of any GEMM dimension (M, N, K) with a row
// pattern or a channel set, and a tile pattern over a pair of dimensions. The result is defined
// for the kept indices only:
//
//   for kept m, kept n:  C[m, n] = alpha * sum_{kept k, (m,n,k) in a kept tile} A[m, k] B[k, n]
//                                  + beta * C[m, n]
//   entries of C at dropped m or n (or in a dropped tile of an (M, N) tile pattern) are not written.
//
// Each operand stores each selected dimension either Full (dense extent; kept index i lives at i)
// or Packed (only the kept indices, in ascending order). Packed outputs are how compacted
// activations stay compact between layers; Full operands with a strided row pattern along their
// leading (row) dimension are used as zero-copy views (leading dimension times the period), and
// anything else is gathered / scattered by the backend. Tile patterns require Full operands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"
#include "ops/kernels/im2col.h"
#include "ops/matmul/pattern.h"

namespace sieve::ops {

enum class Dim : uint8_t { kM, kN, kK, kCount };
const char* DimName(Dim dim);  // "M", "N", "K"

enum class Layout : uint8_t { kFull, kPacked };

/// Keeps a subset of one GEMM dimension.
struct DimSelection {
  IndexPattern pattern;
  int64_t extent = 0;  // the dense size of the dimension
  // How each operand spanning the dimension stores it: M spans A and C, N spans B and C,
  // K spans A and B. The entry of an operand that does not span the dimension is ignored.
  Layout a = Layout::kFull;
  Layout b = Layout::kFull;
  Layout c = Layout::kFull;
};

/// Keeps the tiles of a tile pattern laid over (rows-dimension index, cols-dimension index).
/// E.g. an FC forward Y = X W^T with the tile pattern on W (N x K) is {pattern, kN, kK}.
struct TileSelection {
  TilePattern pattern;
  Dim rows = Dim::kN;
  Dim cols = Dim::kK;
};

/// An implicit-GEMM convolution (cuDNN's IMPLICIT_GEMM): the MatMul is one GEMM per image of an NCHW
/// batch, one of whose operands is that image's im2col matrix (ops/kernels/im2col.h), built a piece at
/// a time by the implementation and never materialised for the whole batch. With col(x[n]) the
/// (Cin*kh*kw) x (Ho*Wo) column matrix of image n of x and t[n] image n of an NCHW tensor t viewed as
/// a C x (H*W) matrix, per role:
///
///   kForward     C[n] = alpha * A · col(B[n]) + beta * C[n]            A = W [Cout, Cin*kh*kw], B = x, C = y
///   kGradWeight  C    = alpha * sum_n A[n] · col(B[n])^T + beta * C    A = dy, B = x, C = dW [Cout, Cin*kh*kw]
///   kGradInput   C[n] = col2im(alpha * A^T · B[n]) + beta * C[n]       A = W, B = dy, C = dx
///
/// (col2im: the adjoint of im2col). M, N and K are one image's GEMM extents (kForward Cout, Ho*Wo,
/// Cin*kh*kw; kGradWeight Cout, Cin*kh*kw, Ho*Wo; kGradInput Cin*kh*kw, Ho*Wo, Cout); trans_a and
/// trans_b stay false (the role fixes the transposes). The im2col dimension (kForward K, kGradWeight
/// N, kGradInput M) alone may carry a selection: a ChannelSet keeping whole blocks of kh*kw indices
/// (kept map c keeps c*kh*kw ... c*kh*kw + kh*kw - 1, as a grouped channel use resolves), Full in every
/// operand. The column matrix is then built for the kept maps only; W's columns of dropped maps are
/// not read, dW's are not written, and dx's dropped maps are not written (as any Full output).
struct ImplicitConv {
  enum class Role : uint8_t { kForward, kGradWeight, kGradInput };
  Role role = Role::kForward;
  ConvGeometry geometry;  // one input image: channels = Cin, height, width, kernel, stride, pad
};

/// Typed attributes of one MatMul: transposes, scalars and the dropout annotation.
struct MatMulAttr {
  bool trans_a = false;  // A is stored K x M
  bool trans_b = false;  // B is stored N x K
  float alpha = 1.0f;    // the dropout scale folds in here (SPEC 2.4)
  float beta = 0.0f;
  std::optional<DimSelection> m, n, k;
  std::optional<TileSelection> tile;
  std::optional<ImplicitConv> conv;  // set: an implicit-GEMM convolution over a batch of images

  const std::optional<DimSelection>& selection(Dim d) const { return d == Dim::kM ? m : d == Dim::kN ? n : k; }
  bool is_dense() const { return !m && !n && !k && !tile; }
  std::string ToString() const;
};

/// A validated MatMul call: operands plus the dense extents of the three dimensions.
struct MatMulArgs {
  Tensor a, b, c;
  MatMulAttr attr;
  int64_t M = 0, N = 0, K = 0;  // dense extents (of one image's GEMM for an implicit convolution)
  int64_t batch = 1;             // images of an implicit convolution, else 1

  /// Kept count of dimension d (its dense extent when unselected).
  int64_t Kept(Dim d) const;
  /// Stored extent of dimension d in operand a/b/c (kept count if packed there, else dense).
  int64_t StoredExtent(Dim d, char operand) const;
};

/// Checks shapes, strides, devices and patterns; on success fills the dense extents.
/// Errors name both shapes and the offending dimension.
StatusOr<MatMulArgs> MakeMatMulArgs(const Tensor& a, const Tensor& b, const Tensor& c, const MatMulAttr& attr);

/// Floating-point operations this call really executes (2 per kept multiply-add, over every image
/// of an implicit convolution), and what the same GEMM costs dense.
int64_t ExecutedFlops(const MatMulArgs& args);
int64_t DenseFlops(const MatMulArgs& args);

/// One way to run a MatMul on one device type. Implementations are tried in order
/// (fast paths first, the reference last on the CPU); each that declines says why.
class MatMulImpl {
 public:
  virtual ~MatMulImpl() = default;
  virtual std::string_view name() const = 0;
  virtual DeviceType device_type() const = 0;
  /// OK if this implementation can run `args`; otherwise the reason it declines.
  virtual Status Supports(const MatMulArgs& args) const = 0;
  virtual void Run(const MatMulArgs& args) const = 0;
};

/// The ordered implementation list of a device type.
const std::vector<const MatMulImpl*>& MatMulImpls(DeviceType type);
/// The implementation called `name` ("reference", "blas", "cublas"), or nullptr.
const MatMulImpl* FindMatMulImpl(std::string_view name);

/// Runs C = alpha op(A) op(B) + beta C under the annotation, with the first implementation that
/// supports it. `c` is written through (tensors are handles). Errors: bad shapes or patterns
/// (naming both shapes), or no implementation on that device (listing each one's reason).
Status MatMul(const Tensor& a, const Tensor& b, const Tensor& c, const MatMulAttr& attr);

// Implementation singletons, one per file (matmul_ref.cc, matmul_cpu.cc, matmul_cuda.cu).
const MatMulImpl* ReferenceMatMulImpl();
const MatMulImpl* BlasMatMulImpl();
#ifdef SIEVE_WITH_CUDA
const MatMulImpl* CublasMatMulImpl();
#endif

}  // namespace sieve::ops
