// Tests for Dataset and the Fashion-MNIST loader: validation, normalisation, a miniature
// Fashion-MNIST written on the fly, its error messages, and the real data set ("[data]").
#include "runtime/data/dataset.h"

#include <unistd.h>
#include <zlib.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("sieve_dataset_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Sets an environment variable for one scope, then restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string IdxFile(uint8_t type_code, const std::vector<uint32_t>& dims, const std::string& data) {
  std::string out = {'\0', '\0', static_cast<char>(type_code), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((d >> shift) & 0xFF));
  }
  return out + data;
}

void WriteFile(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) > 0);
    REQUIRE(gzclose(file) == Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
  }
}

// A miniature Fashion-MNIST: `n` images whose pixel (k, r, c) is (k * 31 + r * 7 + c * 3) % 256, and
// labels k % 10; gzip-compressed for the train split, plain for the test split.
struct MiniFashionMnist {
  static constexpr int64_t kPixels = 28 * 28;
  TempDir dir;
  int64_t n;

  explicit MiniFashionMnist(int64_t examples) : n(examples) {
    Write(Split::kTrain, Images(), Labels());
    Write(Split::kTest, Images(), Labels());
  }
  static uint8_t Pixel(int64_t k, int64_t r, int64_t c) { return static_cast<uint8_t>((k * 31 + r * 7 + c * 3) % 256); }
  std::string Images() const {
    std::string data;
    for (int64_t k = 0; k < n; ++k) {
      for (int64_t p = 0; p < kPixels; ++p) data.push_back(static_cast<char>(Pixel(k, p / 28, p % 28)));
    }
    return IdxFile(0x08, {static_cast<uint32_t>(n), 28, 28}, data);
  }
  std::string Labels() const {
    std::string data;
    for (int64_t k = 0; k < n; ++k) data.push_back(static_cast<char>(k % 10));
    return IdxFile(0x08, {static_cast<uint32_t>(n)}, data);
  }
  std::string ImagesPath(Split split) const {
    return dir.File(split == Split::kTrain ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte");
  }
  std::string LabelsPath(Split split) const {
    return dir.File(split == Split::kTrain ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte");
  }
  void Write(Split split, const std::string& images, const std::string& labels) const {
    WriteFile(ImagesPath(split), images, split == Split::kTrain);
    WriteFile(LabelsPath(split), labels, split == Split::kTrain);
  }
};

Dataset MakeDataset(const std::vector<float>& features, int64_t d, const std::vector<int32_t>& labels,
                    int64_t classes) {
  const auto n = static_cast<int64_t>(labels.size());
  Tensor label_tensor = Tensor::Empty({n}, DType::kInt32);
  std::copy(labels.begin(), labels.end(), label_tensor.data<int32_t>());
  auto dataset = Dataset::Create(Tensor::FromVector({n, d}, features), label_tensor, classes);
  REQUIRE(dataset.ok());
  return *dataset;
}

TEST_CASE("Dataset::Create validates shapes, types and labels", "[runtime][dataset]") {
  Tensor labels = Tensor::Zeros({3}, DType::kInt32);
  auto ok = Dataset::Create(Tensor::Zeros({3, 4}), labels, 2);
  REQUIRE(ok.ok());
  CHECK(ok->size() == 3);
  CHECK(ok->feature_dim() == 4);
  CHECK(ok->num_classes() == 2);

  auto rank = Dataset::Create(Tensor::Zeros({3, 2, 2}), labels, 2);
  REQUIRE_FALSE(rank.ok());
  CHECK_THAT(rank.status().message(), Catch::Contains("[N, D]") && Catch::Contains("float32[3, 2, 2]"));
  auto float_labels = Dataset::Create(Tensor::Zeros({3, 4}), Tensor::Zeros({3}), 2);
  REQUIRE_FALSE(float_labels.ok());
  CHECK_THAT(float_labels.status().message(), Catch::Contains("int32 [N]") && Catch::Contains("float32[3]"));
  auto count = Dataset::Create(Tensor::Zeros({4, 4}), labels, 2);
  REQUIRE_FALSE(count.ok());
  CHECK_THAT(count.status().message(), Catch::Contains("[4, 4]") && Catch::Contains("[3]"));
  auto strided = Dataset::Create(Tensor::Zeros({3, 8}).Slice(1, 0, 8, 2), labels, 2);
  REQUIRE_FALSE(strided.ok());
  CHECK_THAT(strided.status().message(), Catch::Contains("contiguous"));
  auto classes = Dataset::Create(Tensor::Zeros({3, 4}), labels, 0);
  REQUIRE_FALSE(classes.ok());
  CHECK_THAT(classes.status().message(), Catch::Contains("num_classes = 0"));
  labels.data<int32_t>()[2] = 5;
  auto range = Dataset::Create(Tensor::Zeros({3, 4}), labels, 5);
  REQUIRE_FALSE(range.ok());
  CHECK(range.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(range.status().message(), Catch::Contains("label 5 of example 2 is outside [0, 5)"));
}

TEST_CASE("Dataset normalisation statistics and transform", "[runtime][dataset]") {
  // Values around 1000 with spread 1: a one-pass sum of squares would lose the variance here.
  const std::vector<float> values = {1000.0f, 1001.0f, 1002.0f, 1003.0f, 999.0f, 1001.0f};
  Dataset dataset = MakeDataset(values, 3, {0, 1}, 2);
  const Normalization stats = dataset.ComputeNormalization();
  double mean = 0.0, var = 0.0;
  for (float v : values) mean += v / 6.0;
  for (float v : values) var += (v - mean) * (v - mean) / 6.0;
  CHECK(stats.mean == Approx(mean).epsilon(1e-12));
  CHECK(stats.std == Approx(std::sqrt(var)).epsilon(1e-9));

  Dataset alias = dataset;  // a handle: shares the storage
  REQUIRE(dataset.Normalize(stats).ok());
  const float* x = alias.row(0);
  for (size_t i = 0; i < values.size(); ++i) {
    CHECK(x[i] == Approx((values[i] - mean) / std::sqrt(var)).epsilon(0).margin(1e-6));
  }
  const Normalization after = dataset.ComputeNormalization();
  CHECK(after.mean == Approx(0.0).epsilon(0).margin(1e-6));
  CHECK(after.std == Approx(1.0).epsilon(1e-6));

  for (const Normalization& bad :
       {Normalization{0.0, 0.0}, Normalization{0.0, -1.0}, Normalization{NAN, 1.0}, Normalization{0.0, INFINITY}}) {
    Status s = dataset.Normalize(bad);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("finite positive std"));
  }
}

TEST_CASE("LoadFashionMnist reads a miniature Fashion-MNIST, gzip or plain", "[runtime][dataset]") {
  MiniFashionMnist mini(13);
  for (Split split : {Split::kTrain, Split::kTest}) {
    INFO(SplitName(split));
    auto raw = LoadFashionMnist(mini.dir.path().string(), split, std::nullopt);
    REQUIRE(raw.ok());
    REQUIRE(raw->size() == 13);
    REQUIRE(raw->feature_dim() == 784);
    CHECK(raw->num_classes() == 10);
    for (int64_t k = 0; k < 13; ++k) {
      CHECK(raw->label(k) == k % 10);
      for (int64_t p = 0; p < 784; p += 37) {
        CHECK(raw->row(k)[p] == static_cast<float>(MiniFashionMnist::Pixel(k, p / 28, p % 28) / 255.0));
      }
    }

    auto normalised = LoadFashionMnist(mini.dir.path().string(), split);
    REQUIRE(normalised.ok());
    const Normalization n = kFashionMnistNormalization;
    for (int64_t k = 0; k < 13; ++k) {
      for (int64_t p = 0; p < 784; ++p) {
        const double pixel = MiniFashionMnist::Pixel(k, p / 28, p % 28) / 255.0;
        REQUIRE(normalised->row(k)[p] == Approx((pixel - n.mean) / n.std).epsilon(0).margin(1e-6));
      }
    }
    // Normalising in the loader and afterwards agree.
    REQUIRE(raw->Normalize(n).ok());
    const std::vector<float> a = raw->features().ToVector(), b = normalised->features().ToVector();
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).epsilon(0).margin(1e-6));
  }
}

TEST_CASE("Fashion-MNIST features reshape to image and sequence views without a copy", "[runtime][dataset]") {
  MiniFashionMnist mini(3);
  auto dataset = LoadFashionMnist(mini.dir.path().string(), Split::kTrain, std::nullopt);
  REQUIRE(dataset.ok());
  auto sequences = dataset->features().Reshape({3, 28, 28});
  auto images = dataset->features().Reshape({3, 1, 28, 28});
  REQUIRE(sequences.ok());
  REQUIRE(images.ok());
  CHECK(sequences->SharesStorageWith(dataset->features()));
  // Time step r of sequence k is image row r.
  const float* s = sequences->data<float>();
  CHECK(s[2 * 784 + 5 * 28 + 9] == static_cast<float>(MiniFashionMnist::Pixel(2, 5, 9) / 255.0));
  CHECK(images->stride(1) == 784);
  CHECK(images->stride(2) == 28);
}

TEST_CASE("SIEVE_DATA_DIR overrides the Fashion-MNIST directory", "[runtime][dataset]") {
  MiniFashionMnist mini(4);
  {
    ScopedEnv env("SIEVE_DATA_DIR", mini.dir.path().string());
    CHECK(FashionMnistDefaultDir() == mini.dir.path().string());
    auto dataset = LoadFashionMnist("", Split::kTest);
    REQUIRE(dataset.ok());
    CHECK(dataset->size() == 4);
  }
  {
    ScopedEnv env("SIEVE_DATA_DIR", "");
    CHECK(FashionMnistDefaultDir() == "/usr/share/datasets/fashion-mnist");
  }
}

TEST_CASE("LoadFashionMnist errors name the file", "[runtime][dataset]") {
  MiniFashionMnist mini(5);
  const std::string dir = mini.dir.path().string();
  SECTION("missing directory names the Debian package") {
    auto result = LoadFashionMnist(mini.dir.File("absent"), Split::kTrain);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kNotFound);
    CHECK_THAT(result.status().message(), Catch::Contains(mini.dir.File("absent/train-images-idx3-ubyte.gz")) &&
                                              Catch::Contains("dataset-fashion-mnist") &&
                                              Catch::Contains("/usr/share/datasets/fashion-mnist/") &&
                                              Catch::Contains("SIEVE_DATA_DIR"));
  }
  SECTION("label and image counts disagree") {
    MiniFashionMnist other(6);
    WriteFile(mini.LabelsPath(Split::kTest), other.Labels(), false);
    auto result = LoadFashionMnist(dir, Split::kTest);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(result.status().message(), Catch::StartsWith(mini.LabelsPath(Split::kTest) + " has 6 labels but " +
                                                            mini.ImagesPath(Split::kTest) + " has 5 images"));
  }
  SECTION("images of the wrong element type") {
    WriteFile(mini.ImagesPath(Split::kTrain), IdxFile(0x0C, {5, 28, 28}, std::string(5 * 784 * 4, '\0')), true);
    auto result = LoadFashionMnist(dir, Split::kTrain);
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.status().message(), Catch::StartsWith(mini.ImagesPath(Split::kTrain) + ": expected uint8") &&
                                              Catch::Contains("file has int32 5x28x28"));
  }
  SECTION("images of the wrong size") {
    WriteFile(mini.ImagesPath(Split::kTrain), IdxFile(0x08, {5, 27, 28}, std::string(5 * 27 * 28, '\0')), true);
    auto result = LoadFashionMnist(dir, Split::kTrain);
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.status().message(), Catch::Contains("Nx28x28, file has uint8 5x27x28"));
  }
  SECTION("labels of the wrong element type") {
    WriteFile(mini.LabelsPath(Split::kTest), IdxFile(0x09, {5}, std::string(5, '\1')), false);
    auto result = LoadFashionMnist(dir, Split::kTest);
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.status().message(),
               Catch::StartsWith(mini.LabelsPath(Split::kTest) + ": expected uint8 labels N, file has int8 5"));
  }
  SECTION("a label outside the ten classes") {
    WriteFile(mini.LabelsPath(Split::kTest), IdxFile(0x08, {5}, std::string("\0\1\2\12\4", 5)), false);
    auto result = LoadFashionMnist(dir, Split::kTest);
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.status().message(),
               Catch::StartsWith(mini.LabelsPath(Split::kTest) + ": label 10 of example 3 is outside [0, 10)"));
  }
  SECTION("a truncated image file") {
    const std::string images = mini.Images();
    WriteFile(mini.ImagesPath(Split::kTrain), images.substr(0, images.size() - 100), true);
    auto result = LoadFashionMnist(dir, Split::kTrain);
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.status().message(),
               Catch::StartsWith(mini.ImagesPath(Split::kTrain) + ": truncated: header says 5x28x28 uint8 = 3920"));
  }
  SECTION("a bad normalisation fails before reading") {
    auto result = LoadFashionMnist(mini.dir.File("absent"), Split::kTrain, Normalization{0.5, 0.0});
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("The real Fashion-MNIST loads with balanced classes", "[runtime][data]") {
  const std::string dir = FashionMnistDefaultDir();
  if (!fs::exists(dir)) {
    WARN("Fashion-MNIST not found in " << dir << " (Debian package dataset-fashion-mnist); skipped");
    return;
  }
  auto train = LoadFashionMnist(dir, Split::kTrain, std::nullopt);
  REQUIRE(train.ok());
  auto test = LoadFashionMnist(dir, Split::kTest);
  REQUIRE(test.ok());
  CHECK(train->size() == 60000);
  CHECK(test->size() == 10000);
  CHECK(train->feature_dim() == 784);
  CHECK(test->feature_dim() == 784);
  for (const auto& [dataset, per_class] : {std::pair{&*train, 6000}, std::pair{&*test, 1000}}) {
    std::array<int64_t, 10> counts{};
    for (int64_t i = 0; i < dataset->size(); ++i) ++counts[static_cast<size_t>(dataset->label(i))];
    for (int64_t c : counts) CHECK(c == per_class);
  }
  // The documented default normalisation is the training set's own statistics.
  const Normalization stats = train->ComputeNormalization();
  CHECK(stats.mean == Approx(kFashionMnistNormalization.mean).epsilon(0).margin(1e-7));
  CHECK(stats.std == Approx(kFashionMnistNormalization.std).epsilon(0).margin(1e-7));
  REQUIRE(train->Normalize(kFashionMnistNormalization).ok());
  const Normalization after = train->ComputeNormalization();
  CHECK(after.mean == Approx(0.0).epsilon(0).margin(1e-6));
  CHECK(after.std == Approx(1.0).epsilon(0).margin(1e-6));
}

}  // namespace
}  // namespace sieve::runtime
