// Validation and device dispatch of the per-channel statistics (channel_stats.h).
#include "ops/kernels/channel_stats.h"

#include <string>

#include "ops/check.h"

namespace sieve::ops {

namespace {

Status CheckFloat(const char* op, const char* name, const Tensor& t) {
  SIEVE_ENSURE(t.dtype() == DType::kFloat32 && t.is_contiguous(), StatusCode::kInvalidArgument,
               op << ": " << name << " must be a contiguous float32 tensor; got " << t.ToString());
  return Status::Ok();
}

Status CheckOut(const char* op, const Tensor& out, int64_t kept, const Tensor& like) {
  SIEVE_RETURN_IF_ERROR(CheckFloat(op, "out", out));
  SIEVE_ENSURE(out.rank() == 1 && out.dim(0) == kept, StatusCode::kInvalidArgument,
               op << ": out must be [" << kept << "] (one value per kept channel); got " << ShapeToString(out.shape()));
  SIEVE_ENSURE(out.device() == like.device(), StatusCode::kInvalidArgument,
               op << ": out and the input are on different devices: " << out.ToString() << ", " << like.ToString());
  SIEVE_ENSURE(!Overlaps(out, like), StatusCode::kInvalidArgument, op << ": out overlaps the input");
  return Status::Ok();
}

StatusOr<int64_t> CheckChannels(const char* op, const ChannelSet* channels, int64_t num_channels) {
  if (channels == nullptr) return num_channels;
  const std::string why = ValidatePattern(IndexPattern(*channels), num_channels);
  SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument,
               op << ": kept channels of " << num_channels << " channels: " << why);
  return static_cast<int64_t>(channels->kept.size());
}

}  // namespace

Status ChannelMeanAbs(const Tensor& x, const ChannelSet* channels, const Tensor& out) {
  constexpr const char* kOp = "ChannelMeanAbs";
  SIEVE_RETURN_IF_ERROR(CheckFloat(kOp, "x", x));
  SIEVE_ENSURE(x.rank() == 4 && x.dim(0) >= 1 && x.dim(1) >= 1 && x.dim(2) * x.dim(3) >= 1,
               StatusCode::kInvalidArgument, kOp << ": x must be a non-empty NCHW [B, C, H, W]; got " << x.ToString());
  SIEVE_ASSIGN_OR_RETURN(const int64_t kept, CheckChannels(kOp, channels, x.dim(1)));
  SIEVE_RETURN_IF_ERROR(CheckOut(kOp, out, kept, x));
  const int64_t plane = x.dim(2) * x.dim(3);
#ifdef SIEVE_WITH_CUDA
  if (x.device().is_cuda()) {
    cuda::ChannelMeanAbs(x.data<float>(), x.dim(0), x.dim(1), plane, channels, out.data<float>());
    return Status::Ok();
  }
#endif
  cpu::ChannelMeanAbs(x.data<float>(), x.dim(0), x.dim(1), plane, channels, out.data<float>());
  return Status::Ok();
}

Status ChannelBlockDot(const Tensor& w, const Tensor& dw, int64_t group, const ChannelSet* channels,
                       const Tensor& out) {
  constexpr const char* kOp = "ChannelBlockDot";
  SIEVE_RETURN_IF_ERROR(CheckFloat(kOp, "w", w));
  SIEVE_RETURN_IF_ERROR(CheckFloat(kOp, "dw", dw));
  SIEVE_ENSURE(group >= 1 && w.rank() == 2 && w.dim(1) % group == 0 && w.dim(1) >= group, StatusCode::kInvalidArgument,
               kOp << ": w must be 2-D [rows, C * " << group << "] (group " << group << "); got " << w.ToString());
  SIEVE_ENSURE(dw.shape() == w.shape() && dw.device() == w.device(), StatusCode::kInvalidArgument,
               kOp << ": dw must have w's shape and device; w is " << w.ToString() << ", dw " << dw.ToString());
  const int64_t num_channels = w.dim(1) / group;
  SIEVE_ASSIGN_OR_RETURN(const int64_t kept, CheckChannels(kOp, channels, num_channels));
  SIEVE_RETURN_IF_ERROR(CheckOut(kOp, out, kept, w));
  SIEVE_ENSURE(!Overlaps(out, dw), StatusCode::kInvalidArgument, kOp << ": out overlaps dw");
#ifdef SIEVE_WITH_CUDA
  if (w.device().is_cuda()) {
    cuda::ChannelBlockDot(w.data<float>(), dw.data<float>(), w.dim(0), num_channels, group, channels,
                          out.data<float>());
    return Status::Ok();
  }
#endif
  cpu::ChannelBlockDot(w.data<float>(), dw.data<float>(), w.dim(0), num_channels, group, channels, out.data<float>());
  return Status::Ok();
}

}  // namespace sieve::ops
