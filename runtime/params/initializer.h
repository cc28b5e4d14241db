// Parameter initialisers with Caffe's filler semantics (BVLC/caffe include/caffe/filler.hpp):
// constant, uniform, gaussian, xavier and msra (Kaiming), drawn from Sieve's counter-based Philox
// streams through ops::FillUniform / ops::FillNormal, so a fill is a pure function of (spec, shape,
// seed, stream id) and comes out the same on every run and on CPU and CUDA. This file chooses the
// distribution; it does not decide which stream a parameter uses (ParamArena does) and it has none
// of Caffe's sparse or positive-unitball fillers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "framework/rng.h"
#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::runtime {

enum class InitType : uint8_t { kConstant, kUniform, kGaussian, kXavier, kMsra, kCount };
/// "constant", "uniform", "gaussian", "xavier", "msra" (Caffe's filler type names).
const char* InitTypeName(InitType type);
/// Parses a filler type name; "kaiming" is accepted as another name for "msra". An unknown name
/// returns INVALID_ARGUMENT listing the valid ones.
StatusOr<InitType> ParseInitType(std::string_view name);

/// Which fan the xavier and msra fillers scale by (Caffe's FillerParameter.variance_norm).
enum class VarianceNorm : uint8_t { kFanIn, kFanOut, kAverage, kCount };
/// "FAN_IN", "FAN_OUT", "AVERAGE" (Caffe's enum value names).
const char* VarianceNormName(VarianceNorm norm);
/// Parses a variance_norm name; an unknown name returns INVALID_ARGUMENT listing the valid ones.
StatusOr<VarianceNorm> ParseVarianceNorm(std::string_view name);

/// How to fill one parameter: Caffe's FillerParameter with its defaults (constant 0). Only the fields
/// of the chosen type are read.
struct InitSpec {
  InitType type = InitType::kConstant;
  float value = 0.0f;  // constant
  float min = 0.0f;    // uniform: [min, max]
  float max = 1.0f;
  float mean = 0.0f;  // gaussian
  float std = 1.0f;
  VarianceNorm variance_norm = VarianceNorm::kFanIn;  // xavier, msra

  static InitSpec Constant(float value);
  static InitSpec Uniform(float min, float max);
  static InitSpec Gaussian(float mean, float std);
  /// Uniform in [-sqrt(3 / n), sqrt(3 / n)] with n the fan chosen by `norm`: variance 1 / n.
  static InitSpec Xavier(VarianceNorm norm = VarianceNorm::kFanIn);
  /// Gaussian with mean 0 and std sqrt(2 / n), n the fan chosen by `norm` (He et al. 2015).
  static InitSpec Msra(VarianceNorm norm = VarianceNorm::kFanIn);
};

/// "constant(0.1)", "uniform(-1, 1)", "gaussian(0, 0.01)", "xavier(FAN_IN)", "msra(AVERAGE)".
std::string InitSpecToString(const InitSpec& spec);
/// INVALID_ARGUMENT unless the fields the spec's type reads are finite, min <= max and std >= 0.
Status ValidateInitSpec(const InitSpec& spec);

/// Fan-in and fan-out of a parameter as Caffe computes them from its blob shape: fan_in =
/// count / shape[0] (the inputs of one output unit) and fan_out = count / shape[1]; an absent axis
/// counts as 1 (Caffe's legacy num / channels), so a bias [N] has fan_in 1 and fan_out N. An FC
/// weight [out, in] thus has fan_in = in and fan_out = out; a conv weight [Cout, Cin, k, k] has
/// fan_in = Cin k^2 and fan_out = Cout k^2.
struct Fans {
  int64_t fan_in = 1;
  int64_t fan_out = 1;
};
/// The fans of `shape`; requires every extent positive (SIEVE_CHECK).
Fans ComputeFans(const Shape& shape);
/// The n that xavier and msra divide by: fan_in, fan_out, or (fan_in + fan_out) / 2 (not rounded).
double VarianceNormFan(const Fans& fans, VarianceNorm norm);

/// Fills `t` (contiguous float32, any device) per `spec`, drawing element i from element i of
/// `stream`. Constant fills draw nothing. Xavier and msra take their fans from t's shape. An empty
/// tensor is left alone. Errors: an invalid spec, or a tensor FillUniform / FillNormal refuses;
/// messages name the spec and the shape.
Status Initialize(const Tensor& t, const InitSpec& spec, const RandomStream& stream);

}  // namespace sieve::runtime
