// Parameter initialisers: name tables, spec validation, Caffe's fan arithmetic, and the fills.
#include "runtime/params/initializer.h"

#include <cmath>
#include <iterator>
#include <sstream>
#include <vector>

#include "ops/kernels/random_fill.h"

namespace sieve::runtime {

namespace {

constexpr const char* kInitTypeNames[] = {"constant", "uniform", "gaussian", "xavier", "msra"};
static_assert(std::size(kInitTypeNames) == static_cast<size_t>(InitType::kCount));
constexpr const char* kVarianceNormNames[] = {"FAN_IN", "FAN_OUT", "AVERAGE"};
static_assert(std::size(kVarianceNormNames) == static_cast<size_t>(VarianceNorm::kCount));

template <size_t N>
std::string JoinNames(const char* const (&names)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) out += (i ? ", " : "") + std::string(names[i]);
  return out;
}

bool AllFinite(std::initializer_list<float> values) {
  for (float v : values) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// Tensor::Fill is host-only; other devices get the value through a host staging buffer, which is
// fine for initialisation (once per run, and constants are mostly biases).
void FillConstant(const Tensor& t, float value) {
  if (t.device().is_cpu()) {
    Tensor(t).Fill(value);
    return;
  }
  const std::vector<float> host(static_cast<size_t>(t.numel()), value);
  CopyBytes(t.raw_data(), t.device(), host.data(), Device::CPU(), t.nbytes());
}

}  // namespace

const char* InitTypeName(InitType type) {
  SIEVE_CHECK(type < InitType::kCount, "init type " << static_cast<int>(type));
  return kInitTypeNames[static_cast<int>(type)];
}

StatusOr<InitType> ParseInitType(std::string_view name) {
  for (size_t i = 0; i < std::size(kInitTypeNames); ++i) {
    if (name == kInitTypeNames[i]) return static_cast<InitType>(i);
  }
  if (name == "kaiming") return InitType::kMsra;
  return SIEVE_ERROR(StatusCode::kInvalidArgument, "unknown filler type '" << name << "'; valid types are "
                                                                           << JoinNames(kInitTypeNames)
                                                                           << " (and kaiming, another name for msra)");
}

const char* VarianceNormName(VarianceNorm norm) {
  SIEVE_CHECK(norm < VarianceNorm::kCount, "variance norm " << static_cast<int>(norm));
  return kVarianceNormNames[static_cast<int>(norm)];
}

StatusOr<VarianceNorm> ParseVarianceNorm(std::string_view name) {
  for (size_t i = 0; i < std::size(kVarianceNormNames); ++i) {
    if (name == kVarianceNormNames[i]) return static_cast<VarianceNorm>(i);
  }
  return SIEVE_ERROR(StatusCode::kInvalidArgument,
                     "unknown variance_norm '" << name << "'; valid values are " << JoinNames(kVarianceNormNames));
}

InitSpec InitSpec::Constant(float value) {
  InitSpec spec;
  spec.type = InitType::kConstant;
  spec.value = value;
  return spec;
}

InitSpec InitSpec::Uniform(float min, float max) {
  InitSpec spec;
  spec.type = InitType::kUniform;
  spec.min = min;
  spec.max = max;
  return spec;
}

InitSpec InitSpec::Gaussian(float mean, float std) {
  InitSpec spec;
  spec.type = InitType::kGaussian;
  spec.mean = mean;
  spec.std = std;
  return spec;
}

InitSpec InitSpec::Xavier(VarianceNorm norm) {
  InitSpec spec;
  spec.type = InitType::kXavier;
  spec.variance_norm = norm;
  return spec;
}

InitSpec InitSpec::Msra(VarianceNorm norm) {
  InitSpec spec;
  spec.type = InitType::kMsra;
  spec.variance_norm = norm;
  return spec;
}

std::string InitSpecToString(const InitSpec& spec) {
  std::ostringstream os;
  os << InitTypeName(spec.type) << "(";
  switch (spec.type) {
    case InitType::kConstant:
      os << spec.value;
      break;
    case InitType::kUniform:
      os << spec.min << ", " << spec.max;
      break;
    case InitType::kGaussian:
      os << spec.mean << ", " << spec.std;
      break;
    default:  // xavier, msra
      os << VarianceNormName(spec.variance_norm);
      break;
  }
  os << ")";
  return os.str();
}

Status ValidateInitSpec(const InitSpec& spec) {
  SIEVE_ENSURE(spec.type < InitType::kCount, StatusCode::kInvalidArgument,
               "unknown filler type " << static_cast<int>(spec.type));
  switch (spec.type) {
    case InitType::kConstant:
      SIEVE_ENSURE(std::isfinite(spec.value), StatusCode::kInvalidArgument,
                   "constant filler needs a finite value, got " << spec.value);
      break;
    case InitType::kUniform:
      SIEVE_ENSURE(AllFinite({spec.min, spec.max, spec.max - spec.min}) && spec.min <= spec.max,
                   StatusCode::kInvalidArgument,
                   "uniform filler needs finite min <= max, got " << InitSpecToString(spec));
      break;
    case InitType::kGaussian:
      SIEVE_ENSURE(AllFinite({spec.mean, spec.std}) && spec.std >= 0.0f, StatusCode::kInvalidArgument,
                   "gaussian filler needs a finite mean and a finite std >= 0, got " << InitSpecToString(spec));
      break;
    default:  // xavier, msra
      SIEVE_ENSURE(spec.variance_norm < VarianceNorm::kCount, StatusCode::kInvalidArgument,
                   InitTypeName(spec.type)
                       << " filler has an unknown variance_norm " << static_cast<int>(spec.variance_norm));
      break;
  }
  return Status::Ok();
}

Fans ComputeFans(const Shape& shape) {
  for (int64_t d : shape) SIEVE_CHECK(d > 0, "fans of shape " << ShapeToString(shape) << " with an empty axis");
  const int64_t count = ShapeNumel(shape);
  Fans fans;
  fans.fan_in = count / (shape.empty() ? 1 : shape[0]);
  fans.fan_out = count / (shape.size() < 2 ? 1 : shape[1]);
  return fans;
}

double VarianceNormFan(const Fans& fans, VarianceNorm norm) {
  switch (norm) {
    case VarianceNorm::kFanIn:
      return static_cast<double>(fans.fan_in);
    case VarianceNorm::kFanOut:
      return static_cast<double>(fans.fan_out);
    case VarianceNorm::kAverage:
      return (static_cast<double>(fans.fan_in) + static_cast<double>(fans.fan_out)) / 2.0;
    default:
      SIEVE_CHECK(false, "variance norm " << static_cast<int>(norm));
      return 0.0;
  }
}

Status Initialize(const Tensor& t, const InitSpec& spec, const RandomStream& stream) {
  SIEVE_RETURN_IF_ERROR(ValidateInitSpec(spec));
  SIEVE_ENSURE(t.dtype() == DType::kFloat32 && t.is_contiguous(), StatusCode::kInvalidArgument,
               "filler " << InitSpecToString(spec) << " needs a contiguous float32 tensor, got " << t.ToString()
                         << " with strides " << ShapeToString(t.strides()));
  if (t.numel() == 0) return Status::Ok();
  switch (spec.type) {
    case InitType::kConstant:
      FillConstant(t, spec.value);
      return Status::Ok();
    case InitType::kUniform:
      return ops::FillUniform(t, spec.min, spec.max, stream);
    case InitType::kGaussian:
      return ops::FillNormal(t, spec.mean, spec.std, stream);
    case InitType::kXavier: {
      // Caffe: scale = sqrt(3 / n), computed here in double and rounded once.
      const float scale =
          static_cast<float>(std::sqrt(3.0 / VarianceNormFan(ComputeFans(t.shape()), spec.variance_norm)));
      return ops::FillUniform(t, -scale, scale, stream);
    }
    default: {  // kMsra
      const float std =
          static_cast<float>(std::sqrt(2.0 / VarianceNormFan(ComputeFans(t.shape()), spec.variance_norm)));
      return ops::FillNormal(t, 0.0f, std, stream);
    }
  }
}

}  // namespace sieve::runtime
