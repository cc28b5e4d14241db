// Dataset validation and normalisation, and the Fashion-MNIST loader.
#include "runtime/data/dataset.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "runtime/data/idx.h"

namespace sieve::runtime {

namespace {

constexpr const char* kFashionMnistPackageDir = "/usr/share/datasets/fashion-mnist";

// The path of `base` in `dir`, preferring the gzip-compressed file the package ships.
StatusOr<std::string> FindIdxFile(const std::string& dir, const std::string& base) {
  const std::filesystem::path gz = std::filesystem::path(dir) / (base + ".gz");
  const std::filesystem::path plain = std::filesystem::path(dir) / base;
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz.string();
  if (std::filesystem::exists(plain, ec)) return plain.string();
  return SIEVE_ERROR(StatusCode::kNotFound,
                     gz.string() << ": no such file (nor " << plain.string()
                                 << "). Fashion-MNIST comes with the Debian package dataset-fashion-mnist, which "
                                    "installs it under "
                                 << kFashionMnistPackageDir
                                 << "/; to read it from elsewhere, set SIEVE_DATA_DIR to the directory holding "
                                    "the four {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] files");
}

Status ValidateNormalization(const Normalization& normalization) {
  SIEVE_ENSURE(std::isfinite(normalization.mean) && std::isfinite(normalization.std) && normalization.std > 0.0,
               StatusCode::kInvalidArgument,
               "normalisation needs a finite mean and a finite positive std, got mean "
                   << normalization.mean << ", std " << normalization.std);
  return Status::Ok();
}

}  // namespace

StatusOr<Dataset> Dataset::Create(Tensor features, Tensor labels, int64_t num_classes) {
  SIEVE_ENSURE(features.device().is_cpu() && features.dtype() == DType::kFloat32 && features.rank() == 2 &&
                   features.is_contiguous(),
               StatusCode::kInvalidArgument,
               "dataset features must be a contiguous CPU float32 [N, D] tensor, got " << features.ToString());
  SIEVE_ENSURE(
      labels.device().is_cpu() && labels.dtype() == DType::kInt32 && labels.rank() == 1 && labels.is_contiguous(),
      StatusCode::kInvalidArgument,
      "dataset labels must be a contiguous CPU int32 [N] tensor, got " << labels.ToString());
  SIEVE_ENSURE(labels.dim(0) == features.dim(0), StatusCode::kInvalidArgument,
               "dataset has features " << ShapeToString(features.shape()) << " but labels "
                                       << ShapeToString(labels.shape()) << "; expected one label per row");
  SIEVE_ENSURE(num_classes >= 1, StatusCode::kInvalidArgument,
               "dataset needs at least one class, got num_classes = " << num_classes);
  const int32_t* label = labels.data<int32_t>();
  for (int64_t i = 0; i < labels.dim(0); ++i) {
    SIEVE_ENSURE(label[i] >= 0 && label[i] < num_classes, StatusCode::kInvalidArgument,
                 "label " << label[i] << " of example " << i << " is outside [0, " << num_classes << ")");
  }
  Dataset dataset;
  dataset.features_ = std::move(features);
  dataset.labels_ = std::move(labels);
  dataset.num_classes_ = num_classes;
  return dataset;
}

Normalization Dataset::ComputeNormalization() const {
  const int64_t n = features_.numel();
  if (n == 0) return {};
  const float* x = features_.data<float>();
  // Two passes: the one-pass sum of squares loses the variance to cancellation when the mean is large.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double squares = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i] - mean;
    squares += d * d;
  }
  return {mean, std::sqrt(squares / static_cast<double>(n))};
}

Status Dataset::Normalize(const Normalization& normalization) {
  SIEVE_RETURN_IF_ERROR(ValidateNormalization(normalization));
  // In double: a float mean near large features would cost the result most of its digits.
  const double mean = normalization.mean;
  const double inv_std = 1.0 / normalization.std;
  float* x = features_.data<float>();
  const int64_t n = features_.numel();
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((x[i] - mean) * inv_std);
  return Status::Ok();
}

const char* SplitName(Split split) {
  static constexpr const char* kNames[] = {"train", "test"};
  static_assert(std::size(kNames) == static_cast<size_t>(Split::kCount), "every Split needs a name");
  return kNames[static_cast<int>(split)];
}

std::string FashionMnistDefaultDir() {
  const char* env = std::getenv("SIEVE_DATA_DIR");
  return env != nullptr && env[0] != '\0' ? std::string(env) : std::string(kFashionMnistPackageDir);
}

StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split, std::optional<Normalization> normalization) {
  const Normalization norm = normalization.value_or(Normalization{});
  SIEVE_RETURN_IF_ERROR(ValidateNormalization(norm));
  const std::string root = dir.empty() ? FashionMnistDefaultDir() : dir;
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  SIEVE_ASSIGN_OR_RETURN(const std::string images_path, FindIdxFile(root, prefix + "-images-idx3-ubyte"));
  SIEVE_ASSIGN_OR_RETURN(const std::string labels_path, FindIdxFile(root, prefix + "-labels-idx1-ubyte"));
  SIEVE_ASSIGN_OR_RETURN(const IdxArray images, ReadIdx(images_path));
  SIEVE_ASSIGN_OR_RETURN(const IdxArray labels, ReadIdx(labels_path));

  const bool images_ok = images.type() == IdxType::kUInt8 && images.dims.size() == 3 &&
                         images.dims[1] == kFashionMnistRows && images.dims[2] == kFashionMnistCols;
  SIEVE_ENSURE(images_ok, StatusCode::kDataLoss,
               images_path << ": expected uint8 images Nx" << kFashionMnistRows << "x" << kFashionMnistCols
                           << ", file has " << IdxTypeName(images.type()) << " " << images.DimsString());
  SIEVE_ENSURE(labels.type() == IdxType::kUInt8 && labels.dims.size() == 1, StatusCode::kDataLoss,
               labels_path << ": expected uint8 labels N, file has " << IdxTypeName(labels.type()) << " "
                           << labels.DimsString());
  const int64_t n = images.dims[0];
  SIEVE_ENSURE(labels.dims[0] == n, StatusCode::kDataLoss,
               labels_path << " has " << labels.dims[0] << " labels but " << images_path << " has " << n
                           << " images; the two files of a split must agree");

  const auto& label_bytes = std::get<std::vector<uint8_t>>(labels.values);
  Tensor label_tensor = Tensor::Empty({n}, DType::kInt32);
  int32_t* label_out = label_tensor.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    SIEVE_ENSURE(label_bytes[i] < kFashionMnistClasses, StatusCode::kDataLoss,
                 labels_path << ": label " << int{label_bytes[i]} << " of example " << i << " is outside [0, "
                             << kFashionMnistClasses << ")");
    label_out[i] = label_bytes[i];
  }

  // One table lookup per pixel applies the scaling and the normalisation together.
  std::array<float, 256> table;
  for (int v = 0; v < 256; ++v) table[v] = static_cast<float>((v / 255.0 - norm.mean) / norm.std);
  const int64_t dim = kFashionMnistRows * kFashionMnistCols;
  Tensor features = Tensor::Empty({n, dim});
  const auto& pixels = std::get<std::vector<uint8_t>>(images.values);
  float* out = features.data<float>();
  for (int64_t i = 0; i < n * dim; ++i) out[i] = table[pixels[i]];

  return Dataset::Create(std::move(features), std::move(label_tensor), kFashionMnistClasses);
}

}  // namespace sieve::runtime
