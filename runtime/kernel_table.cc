// RunKernel: one case per op kind, calling the ops:: kernel with the node's tensors and attribute.
// The kernels validate their operands (shapes, devices, patterns) and dispatch on the device, so
// both backends share this table; errors are prefixed with the node.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <variant>

#include "framework/memory.h"
#include "ops/kernels/activation.h"
#include "ops/kernels/add.h"
#include "ops/kernels/bias.h"
#include "ops/kernels/dropout.h"
#include "ops/kernels/gather_scatter.h"
#include "ops/kernels/index_rows.h"
#include "ops/kernels/lstm_gates.h"
#include "ops/kernels/pooling.h"
#include "ops/kernels/softmax_xent.h"
#include "ops/matmul/matmul.h"
#include "runtime/backend.h"

namespace sieve::runtime {

namespace {

using graph::OpKind;

// Same first element and strides: an in-place call.
bool SameLocation(const Tensor& a, const Tensor& b) {
  return a.SharesStorageWith(b) && a.offset() == b.offset() && a.strides() == b.strides();
}

// dst = src for kernels that update their output in place (bias adds). Contiguous tensors copy
// as bytes; 2-D views with a leading dimension through the gather kernel (a strided copy).
Status CopyInto(const Tensor& src, const Tensor& dst) {
  if (SameLocation(src, dst)) return Status::Ok();
  if (src.is_contiguous() && dst.is_contiguous()) return dst.CopyFrom(src);
  SIEVE_ENSURE(src.rank() == 2 && dst.rank() == 2, StatusCode::kUnimplemented,
               "copying " << src.ToString() << " into " << dst.ToString()
                          << " needs contiguous tensors or 2-D views with a leading dimension");
  return ops::GatherSubmatrix(src, std::nullopt, std::nullopt, dst);
}

ops::SoftmaxXentOptions XentOptions(const graph::SoftmaxXentAttr& attr) {
  ops::SoftmaxXentOptions options;
  options.ignore_label = attr.ignore_label;
  return options;
}

ops::DropoutAttr BernoulliOf(const NodeCall& call) {
  const auto& attr = std::get<graph::DropoutAttr>(call.node.attr);
  return ops::DropoutAttr{
      attr.rate,
      RandomStream{call.seed, MakeStreamId(StreamKind::kDropout, static_cast<uint64_t>(graph::Index(attr.site)),
                                           static_cast<uint64_t>(call.iteration))}};
}

// Zero fills of at least this many bytes are split over the OpenMP team: a weight gradient that a
// compacted GEMM writes only in part starts from a zero fill of the whole buffer every step
// (graph/autodiff.h, AccumulationBase; 23 MB per step in `sieve-bench mlp --ard`), and one thread's
// stores leave the other cores idle and reach less of the memory bandwidth than the team's.
constexpr size_t kParallelZeroMinBytes = size_t{1} << 18;
// Each thread's piece is a multiple of this many bytes: a cache-line-aligned buffer (the arena's) is
// split at line boundaries, so no two threads write into one line.
constexpr size_t kZeroPieceAlign = 64;

// memset(dst, 0, bytes) on the host, in one contiguous piece per thread of the team when large.
void ZeroHostBytes(void* dst, size_t bytes) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (bytes < kParallelZeroMinBytes || threads < 2) {
    std::memset(dst, 0, bytes);
    return;
  }
  const size_t per_thread = (bytes + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  const size_t piece = (per_thread + kZeroPieceAlign - 1) / kZeroPieceAlign * kZeroPieceAlign;
  char* const bytes_at = static_cast<char*>(dst);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const size_t begin = std::min(bytes, static_cast<size_t>(t) * piece);
    const size_t end = std::min(bytes, begin + piece);
    if (end > begin) std::memset(bytes_at + begin, 0, end - begin);
  }
}

Status Fill(const Tensor& y, float value) {
  if (value == 0.0f && y.is_contiguous()) {
    if (y.device().is_cpu()) {
      ZeroHostBytes(y.raw_data(), y.nbytes());
    } else {
      ZeroBytes(y.raw_data(), y.device(), y.nbytes());
    }
    return Status::Ok();
  }
  SIEVE_ENSURE(y.device().is_cpu() && y.dtype() == DType::kFloat32, StatusCode::kUnimplemented,
               "filling " << y.ToString() << " with " << value << ": only zero fills of contiguous tensors run on "
                          << DeviceTypeName(y.device().type));
  if (y.is_contiguous()) {
    y.Fill(value);
    return Status::Ok();
  }
  SIEVE_ENSURE(y.rank() == 2 && y.stride(1) == 1, StatusCode::kUnimplemented, "filling the strided " << y.ToString());
  for (int64_t r = 0; r < y.dim(0); ++r) y.MatrixView(r * y.stride(0), 1, y.dim(1), y.dim(1)).Fill(value);
  return Status::Ok();
}

Status Dispatch(const NodeCall& call) {
  const graph::Node& n = call.node;
  const auto& in = call.inputs;
  const auto& out = call.outputs;
  switch (n.kind) {
    case OpKind::kMatMul:
      return ops::MatMul(in[0], in[1], out[0], std::get<ops::MatMulAttr>(n.attr));
    case OpKind::kGather: {
      const auto& attr = std::get<graph::GatherAttr>(n.attr);
      return ops::GatherSubmatrix(in[0], attr.rows, attr.cols, out[0]);
    }
    case OpKind::kScatter: {
      const auto& attr = std::get<graph::ScatterAttr>(n.attr);
      return ops::ScatterSubmatrix(in[0], attr.rows, attr.cols, out[0], attr.beta);
    }
    case OpKind::kBiasAdd:
      SIEVE_RETURN_IF_ERROR(CopyInto(in[0], out[0]));
      return ops::AddBias(out[0], in[1], std::get<graph::BiasAttr>(n.attr).cols);
    case OpKind::kBiasBackward: {
      const auto& attr = std::get<graph::BiasAttr>(n.attr);
      return ops::BiasBackward(in[0], out[0], attr.beta, attr.cols);
    }
    case OpKind::kChannelBiasAdd:
      SIEVE_RETURN_IF_ERROR(CopyInto(in[0], out[0]));
      return ops::AddChannelBias(out[0], in[1]);
    case OpKind::kChannelBiasBackward:
      return ops::ChannelBiasBackward(in[0], out[0], std::get<graph::BiasAttr>(n.attr).beta);
    case OpKind::kActivation:
      return ops::ActivationForward(std::get<graph::ActivationAttr>(n.attr).kind, in[0], out[0]);
    case OpKind::kActivationBackward:
      return ops::ActivationBackward(std::get<graph::ActivationAttr>(n.attr).kind, in[0], in[1], out[0]);
    case OpKind::kSoftmaxXent: {
      SIEVE_ASSIGN_OR_RETURN(
          const ops::SoftmaxXentStats stats,
          ops::SoftmaxXentForward(in[0], in[1], out[0], XentOptions(std::get<graph::SoftmaxXentAttr>(n.attr))));
      if (call.stats) *call.stats = stats;
      return Status::Ok();
    }
    case OpKind::kSoftmaxXentBackward: {
      const auto& attr = std::get<graph::SoftmaxXentAttr>(n.attr);
      return ops::SoftmaxXentBackward(in[0], in[1], out[0], attr.loss_weight, XentOptions(attr));
    }
    case OpKind::kMaxPool:
      return ops::MaxPoolForward(in[0], std::get<graph::PoolAttr>(n.attr).geometry, out[0], out[1]);
    case OpKind::kMaxPoolBackward: {
      const auto& attr = std::get<graph::PoolAttr>(n.attr);
      return ops::MaxPoolBackward(in[0], in[1], attr.geometry, out[0], attr.beta);
    }
    case OpKind::kAvgPool:
      return ops::AvgPoolForward(in[0], std::get<graph::PoolAttr>(n.attr).geometry, out[0]);
    case OpKind::kAvgPoolBackward: {
      const auto& attr = std::get<graph::PoolAttr>(n.attr);
      return ops::AvgPoolBackward(in[0], attr.geometry, out[0], attr.beta);
    }
    case OpKind::kDropout:
      return ops::DropoutForward(in[0], out[0], BernoulliOf(call));
    case OpKind::kDropoutBackward:
      return ops::DropoutBackward(in[0], out[0], BernoulliOf(call));
    case OpKind::kIndexRows:
      return ops::GatherRows(in[0], in[1], out[0]);
    case OpKind::kScatterAddRows:
      return ops::ScatterAddRows(in[0], in[1], out[0]);
    case OpKind::kLstmGates:
      return ops::LstmGatesForward(in[0], in[1], out[0], out[1], out[2]);
    case OpKind::kLstmGatesBackward:
      return ops::LstmGatesBackward(in[0], in[1], in[2], &in[3], &in[4], out[0], out[1]);
    case OpKind::kFill:
      return Fill(out[0], std::get<graph::FillAttr>(n.attr).value);
    case OpKind::kCopy:
      return CopyInto(in[0], out[0]);
    case OpKind::kAdd:
      return ops::Add(in[0], in[1], out[0]);
    case OpKind::kCount:
      break;
  }
  return SIEVE_ERROR(StatusCode::kUnimplemented, "no kernel for " << graph::OpKindName(n.kind));
}

}  // namespace

Status RunKernel(const NodeCall& call) {
  Status st = Dispatch(call);
  if (st.ok()) return st;
  return Status(st.code(), graph::DescribeNode(call.node) + ": " + st.message());
}

}  // namespace sieve::runtime
