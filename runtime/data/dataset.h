// In-memory classification datasets: float features [N, D] and int32 labels [N] on the host,
// with feature normalisation, and the Fashion-MNIST loader built on the IDX reader. Mini-batching
// and shuffling are not here; they are batch_loader.h's job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::runtime {

/// Feature normalisation x -> (x - mean) / std.
struct Normalization {
  double mean = 0.0;
  double std = 1.0;
};

/// N examples, each a row of D float features and an int32 class label in [0, num_classes).
/// Like a Tensor, a Dataset is a handle: copies share the feature and label storage.
class Dataset {
 public:
  Dataset() = default;

  /// `features`: CPU float32 [N, D], contiguous; `labels`: CPU int32 [N], contiguous, each label
  /// in [0, num_classes). Returns INVALID_ARGUMENT naming the shapes or the offending label.
  static StatusOr<Dataset> Create(Tensor features, Tensor labels, int64_t num_classes);

  int64_t size() const { return features_.dim(0); }
  int64_t feature_dim() const { return features_.dim(1); }
  int64_t num_classes() const { return num_classes_; }
  const Tensor& features() const { return features_; }
  const Tensor& labels() const { return labels_; }
  /// The D features of example i.
  const float* row(int64_t i) const { return features_.data<float>() + i * feature_dim(); }
  int32_t label(int64_t i) const { return labels_.data<int32_t>()[i]; }

  /// Mean and (population) standard deviation over all N x D feature values, accumulated in double.
  Normalization ComputeNormalization() const;
  /// Applies x -> (x - mean) / std to every feature in place. The storage is shared, so every copy of
  /// this Dataset sees the change: normalise before handing the dataset to a BatchLoader.
  /// Returns INVALID_ARGUMENT unless std is finite and positive and mean finite.
  Status Normalize(const Normalization& normalization);

 private:
  Tensor features_ = Tensor::Empty({0, 0});
  Tensor labels_ = Tensor::Empty({0}, DType::kInt32);
  int64_t num_classes_ = 0;
};

enum class Split : uint8_t { kTrain, kTest, kCount };
/// "train", "test".
const char* SplitName(Split split);

/// Fashion-MNIST: 28x28 greyscale images of 10 clothing classes, 60000 for training, 10000 for test.
inline constexpr int64_t kFashionMnistRows = 28;
inline constexpr int64_t kFashionMnistCols = 28;
inline constexpr int64_t kFashionMnistClasses = 10;

/// Mean and population standard deviation of all 47,040,000 pixels of the Fashion-MNIST training
/// images after scaling to [0, 1] (computed exactly from the pixel histogram of
/// train-images-idx3-ubyte.gz; the "[data]" test recomputes them). Both splits are normalised with
/// the training statistics, as usual, so the test set sees the transform the model was trained under.
inline constexpr Normalization kFashionMnistNormalization{0.2860405969887955, 0.3530242445149226};

/// Where the Fashion-MNIST files live: $SIEVE_DATA_DIR when set and non-empty, else
/// /usr/share/datasets/fashion-mnist (the Debian package dataset-fashion-mnist installs them there).
std::string FashionMnistDefaultDir();

/// Loads one split of Fashion-MNIST from `dir` (empty: FashionMnistDefaultDir()), which holds
/// {train,t10k}-{images-idx3,labels-idx1}-ubyte, each gzip-compressed (".gz") or plain.
///
/// Features are float [N, 784]: each pixel scaled to [0, 1], then normalised with `normalization`
/// (std::nullopt leaves the [0, 1] values). Labels are int32 [N] in [0, 10). The rows are row-major
/// 28x28 images: a sequence model views the features as [N, 28, 28] (28 time steps of 28 pixels)
/// and a convolution as [N, 1, 28, 28], both by Reshape, without a copy.
///
/// Errors name the file: NOT_FOUND says which Debian package provides the data; DATA_LOSS for a
/// malformed IDX file (see ReadIdx), for images that are not uint8 [N, 28, 28], labels that are not
/// uint8 [N] in [0, 10), or image and label files that disagree on N.
StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split,
                                   std::optional<Normalization> normalization = kFashionMnistNormalization);

}  // namespace sieve::runtime
