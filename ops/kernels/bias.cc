// Validation and device dispatch of the Tensor-level bias kernels.
#include "ops/kernels/bias.h"

#include "ops/check.h"

#include <string>

namespace sieve::ops {

namespace {

Status CheckBiasVector(const char* op, const char* name, const Tensor& t, const Tensor& data) {
  SIEVE_ENSURE(t.rank() == 1 && t.dtype() == DType::kFloat32 && t.is_contiguous(), StatusCode::kInvalidArgument,
               op << ": " << name << " must be a 1-D contiguous float32 vector; got " << t.ToString()
                  << " with strides " << ShapeToString(t.strides()));
  SIEVE_ENSURE(t.device() == data.device(), StatusCode::kInvalidArgument,
               op << ": operands on different devices: " << data.ToString() << " and " << name << " " << t.ToString());
  return Status::Ok();
}

// Checks y (or dy) against the bias (or db) and the optional pattern.
Status CheckBias(const char* op, const Tensor& y, const char* y_name, const Tensor& bias, const char* bias_name,
                 const std::optional<IndexPattern>& cols) {
  SIEVE_RETURN_IF_ERROR(CheckMatrix(op, y_name, y, "[batch, features]"));
  SIEVE_RETURN_IF_ERROR(CheckBiasVector(op, bias_name, bias, y));
  const int64_t extent = bias.numel();
  if (cols) {
    const std::string why = ValidatePattern(*cols, extent);
    SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument,
                 op << ": pattern over the " << extent << " bias entries: " << why);
    const int64_t kept = KeptCount(*cols, extent);
    SIEVE_ENSURE(y.dim(1) == kept, StatusCode::kInvalidArgument,
                 op << ": " << y_name << " " << ShapeToString(y.shape()) << " is packed under "
                    << PatternToString(*cols) << ", which keeps " << kept << " of the " << extent << " entries of "
                    << bias_name << " " << ShapeToString(bias.shape()) << "; expected " << kept << " columns");
  } else {
    SIEVE_ENSURE(y.dim(1) == extent, StatusCode::kInvalidArgument,
                 op << ": " << y_name << " " << ShapeToString(y.shape()) << " needs " << extent << " columns to match "
                    << bias_name << " " << ShapeToString(bias.shape()));
  }
  SIEVE_ENSURE(!Overlaps(y, bias),
               StatusCode::kInvalidArgument, op << ": " << bias_name << " overlaps " << y_name << " in memory");
  return Status::Ok();
}

// A conv output as batch x channels rows of `spatial` floats, row (n, c) at (n*channels + c)*ld.
struct ChannelView {
  int64_t batch = 1, channels = 0, spatial = 0, ld = 0;
};

StatusOr<ChannelView> ChannelViewOf(const char* op, const char* name, const Tensor& t) {
  SIEVE_ENSURE(t.dtype() == DType::kFloat32, StatusCode::kUnimplemented,
               op << " supports float32; " << name << " is " << t.ToString());
  if (t.rank() == 2) {
    SIEVE_RETURN_IF_ERROR(CheckMatrix(op, name, t, "[channels, spatial]"));
    return ChannelView{1, t.dim(0), t.dim(1), t.stride(0)};
  }
  SIEVE_ENSURE(t.rank() == 3 || t.rank() == 4, StatusCode::kInvalidArgument,
               op << ": " << name << " must be [C, S], [N, C, S] or [N, C, H, W]; got " << ShapeToString(t.shape()));
  SIEVE_ENSURE(t.is_contiguous(), StatusCode::kInvalidArgument,
               op << ": " << name << " " << ShapeToString(t.shape()) << " must be contiguous; got strides "
                  << ShapeToString(t.strides()));
  const int64_t spatial = t.rank() == 3 ? t.dim(2) : t.dim(2) * t.dim(3);
  return ChannelView{t.dim(0), t.dim(1), spatial, spatial};
}

Status CheckChannelBias(const char* op, const ChannelView& v, const Tensor& y, const char* y_name, const Tensor& bias,
                        const char* bias_name) {
  SIEVE_RETURN_IF_ERROR(CheckBiasVector(op, bias_name, bias, y));
  SIEVE_ENSURE(bias.numel() == v.channels, StatusCode::kInvalidArgument,
               op << ": " << y_name << " " << ShapeToString(y.shape()) << " has " << v.channels << " channels but "
                  << bias_name << " is " << ShapeToString(bias.shape()));
  SIEVE_ENSURE(!Overlaps(y, bias),
               StatusCode::kInvalidArgument, op << ": " << bias_name << " overlaps " << y_name << " in memory");
  return Status::Ok();
}

// The answer for a GPU tensor in a CPU-only build (where none can be created, so only as a guard).
#ifndef SIEVE_WITH_CUDA
Status NoCuda(const char* op, const Tensor& t) {
  return SIEVE_ERROR(StatusCode::kUnimplemented, op << ": no kernel for " << t.ToString() << " in this build");
}
#endif

}  // namespace

Status AddBias(const Tensor& y, const Tensor& bias, const std::optional<IndexPattern>& cols) {
  SIEVE_RETURN_IF_ERROR(CheckBias("AddBias", y, "y", bias, "bias", cols));
  if (y.numel() == 0) return Status::Ok();
  const IndexPattern* pattern = cols ? &*cols : nullptr;
  if (y.device().is_cpu()) {
    cpu::AddBias(y.data<float>(), y.stride(0), y.dim(0), y.dim(1), bias.data<float>(), pattern);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::AddBias(y.data<float>(), y.stride(0), y.dim(0), y.dim(1), bias.data<float>(), pattern);
  return Status::Ok();
#else
  return NoCuda("AddBias", y);
#endif
}

Status BiasBackward(const Tensor& dy, const Tensor& db, float beta, const std::optional<IndexPattern>& cols) {
  SIEVE_RETURN_IF_ERROR(CheckBias("BiasBackward", dy, "dy", db, "db", cols));
  if (dy.dim(1) == 0) return Status::Ok();
  const IndexPattern* pattern = cols ? &*cols : nullptr;
  if (dy.device().is_cpu()) {
    cpu::BiasBackward(dy.data<float>(), dy.stride(0), dy.dim(0), dy.dim(1), db.data<float>(), beta, pattern);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::BiasBackward(dy.data<float>(), dy.stride(0), dy.dim(0), dy.dim(1), db.data<float>(), beta, pattern);
  return Status::Ok();
#else
  return NoCuda("BiasBackward", dy);
#endif
}

Status AddChannelBias(const Tensor& y, const Tensor& bias) {
  SIEVE_ASSIGN_OR_RETURN(const ChannelView v, ChannelViewOf("AddChannelBias", "y", y));
  SIEVE_RETURN_IF_ERROR(CheckChannelBias("AddChannelBias", v, y, "y", bias, "bias"));
  if (y.numel() == 0) return Status::Ok();
  if (y.device().is_cpu()) {
    cpu::AddChannelBias(y.data<float>(), v.ld, v.batch, v.channels, v.spatial, bias.data<float>());
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::AddChannelBias(y.data<float>(), v.ld, v.batch, v.channels, v.spatial, bias.data<float>());
  return Status::Ok();
#else
  return NoCuda("AddChannelBias", y);
#endif
}

Status ChannelBiasBackward(const Tensor& dy, const Tensor& db, float beta) {
  SIEVE_ASSIGN_OR_RETURN(const ChannelView v, ChannelViewOf("ChannelBiasBackward", "dy", dy));
  SIEVE_RETURN_IF_ERROR(CheckChannelBias("ChannelBiasBackward", v, dy, "dy", db, "db"));
  if (v.channels == 0) return Status::Ok();
  if (dy.device().is_cpu()) {
    cpu::ChannelBiasBackward(dy.data<float>(), v.ld, v.batch, v.channels, v.spatial, db.data<float>(), beta);
    return Status::Ok();
  }
#ifdef SIEVE_WITH_CUDA
  cuda::ChannelBiasBackward(dy.data<float>(), v.ld, v.batch, v.channels, v.spatial, db.data<float>(), beta);
  return Status::Ok();
#else
  return NoCuda("ChannelBiasBackward", dy);
#endif
}

}  // namespace sieve::ops
