// Tests of runtime/tensorboard_writer.h: CRC-32C against published vectors, the TFRecord framing, histograms
// against a naive count, and an event file parsed back record by record. (TensorBoard itself reads the files of a
// real run in tests/interop/test_tensorboard.py.)
#include "runtime/tensorboard_writer.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "framework/file_io.h"
#include "proto/tensorboard_event.pb.h"
#include "tests/testing/temp_dir.h"

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

// Splits an event file into its records, checking each record's framing; fails the test on a bad one.
std::vector<std::string> ReadRecords(const std::string& bytes) {
  std::vector<std::string> records;
  ByteReader reader(bytes);
  while (reader.remaining() > 0) {
    const size_t start = reader.offset();
    uint64_t length = 0;
    uint32_t length_crc = 0, data_crc = 0;
    REQUIRE(reader.Get(length));
    REQUIRE(reader.Get(length_crc));
    CHECK(length_crc == MaskedCrc32c(std::string_view(bytes).substr(start, 8)));
    std::string data(length, '\0');
    REQUIRE(reader.GetArray(data.data(), length));
    REQUIRE(reader.Get(data_crc));
    CHECK(data_crc == MaskedCrc32c(data));
    records.push_back(std::move(data));
  }
  return records;
}

TEST_CASE("Crc32c matches the published Castagnoli check values", "[tensorboard]") {
  // The standard check value and the vectors of RFC 3720 appendix B.4 (iSCSI).
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(Crc32c(std::string(32, '\xFF')) == 0x62A8AB43u);
  std::string ascending(32, '\0'), descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[static_cast<size_t>(i)] = static_cast<char>(i);
    descending[static_cast<size_t>(i)] = static_cast<char>(31 - i);
  }
  CHECK(Crc32c(ascending) == 0x46DD794Eu);
  CHECK(Crc32c(descending) == 0x113FDB5Cu);
  CHECK(Crc32c("") == 0u);
}

TEST_CASE("MaskedCrc32c and TfRecord match TensorBoard's record writer", "[tensorboard]") {
  // Values computed by tensorboard.summary.writer.record_writer.masked_crc32c (tensorboard 2.20).
  CHECK(MaskedCrc32c("123456789") == 0xC78AB0E5u);
  const std::string record = TfRecord("123456789");
  REQUIRE(record.size() == 8 + 4 + 9 + 4);
  uint64_t length = 0;
  uint32_t length_crc = 0, data_crc = 0;
  std::memcpy(&length, record.data(), 8);
  std::memcpy(&length_crc, record.data() + 8, 4);
  std::memcpy(&data_crc, record.data() + 21, 4);
  CHECK(length == 9);
  CHECK(length_crc == 0x3971F937u);
  CHECK(record.substr(12, 9) == "123456789");
  CHECK(data_crc == 0xC78AB0E5u);
}

TEST_CASE("MakeHistogram counts every value in its bucket like a naive scan", "[tensorboard]") {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(2.0, 3.0);
  std::vector<double> values(1000);
  for (double& v : values) v = normal(rng);
  values[10] = values[11];  // a repeated value
  const HistogramBuckets h = MakeHistogram(values, 17);
  REQUIRE(h.bucket_limit.size() == 17);
  REQUIRE(h.bucket.size() == 17);
  double sum = 0.0, squares = 0.0, low = values[0], high = values[0];
  std::vector<double> naive(17, 0.0);
  for (const double v : values) {
    sum += v;
    squares += v * v;
    low = std::min(low, v);
    high = std::max(high, v);
    size_t i = 0;
    while (!(v <= h.bucket_limit[i])) ++i;  // the first bucket whose upper edge holds v
    naive[i] += 1.0;
  }
  CHECK(h.min == low);
  CHECK(h.max == high);
  CHECK(h.num == 1000.0);
  CHECK(h.sum == Approx(sum).epsilon(1e-12));
  CHECK(h.sum_squares == Approx(squares).epsilon(1e-12));
  CHECK(h.bucket == naive);
  CHECK(h.bucket_limit.back() == high);
  for (size_t i = 1; i < h.bucket_limit.size(); ++i) {
    CHECK(h.bucket_limit[i] - h.bucket_limit[i - 1] == Approx((high - low) / 17).epsilon(1e-9));
  }

  const std::vector<double> same(5, 0.25);
  const HistogramBuckets one = MakeHistogram(same, 30);
  CHECK(one.bucket_limit == std::vector<double>{0.25});
  CHECK(one.bucket == std::vector<double>{5.0});
  CHECK(MakeHistogram({}, 30).bucket.empty());
}

TEST_CASE("TensorBoardWriter writes a version event then scalar and histogram events", "[tensorboard]") {
  TempDir dir;
  StatusOr<std::unique_ptr<TensorBoardWriter>> writer = TensorBoardWriter::Create(dir.path.string());
  REQUIRE(writer.ok());
  const std::string name = fs::path((*writer)->path()).filename().string();
  CHECK(name.rfind("events.out.tfevents.", 0) == 0);
  CHECK(fs::path((*writer)->path()).parent_path() == dir.path);

  const std::vector<TaggedScalar> scalars = {{"train/loss", 0.75}, {"train/lr", 0.01}};
  REQUIRE((*writer)->WriteScalars(3, scalars).ok());
  const std::vector<double> values = {1.0, 2.0, 2.0, 5.0};
  REQUIRE((*writer)->WriteHistogram(4, "sensitivity/conv2.drop.site", values, 4).ok());

  // Flushed after each write: readable while the writer is open.
  StatusOr<std::string> bytes = ReadFileBytes((*writer)->path(), "event file");
  REQUIRE(bytes.ok());
  const std::vector<std::string> records = ReadRecords(*bytes);
  REQUIRE(records.size() == 3);
  tensorflow::Event version, scalar_event, histogram_event;
  REQUIRE(version.ParseFromString(records[0]));
  REQUIRE(scalar_event.ParseFromString(records[1]));
  REQUIRE(histogram_event.ParseFromString(records[2]));

  CHECK(version.file_version() == "brain.Event:2");
  CHECK(version.wall_time() > 1.6e9);
  CHECK(scalar_event.step() == 3);
  REQUIRE(scalar_event.summary().value_size() == 2);
  CHECK(scalar_event.summary().value(0).tag() == "train/loss");
  CHECK(scalar_event.summary().value(0).simple_value() == 0.75f);
  CHECK(scalar_event.summary().value(1).tag() == "train/lr");
  CHECK(scalar_event.summary().value(1).simple_value() == 0.01f);
  CHECK(scalar_event.wall_time() >= version.wall_time());

  CHECK(histogram_event.step() == 4);
  REQUIRE(histogram_event.summary().value_size() == 1);
  const tensorflow::Summary::Value& entry = histogram_event.summary().value(0);
  CHECK(entry.tag() == "sensitivity/conv2.drop.site");
  REQUIRE(entry.has_histo());
  CHECK(entry.histo().min() == 1.0);
  CHECK(entry.histo().max() == 5.0);
  CHECK(entry.histo().num() == 4.0);
  CHECK(entry.histo().sum() == 10.0);
  CHECK(entry.histo().sum_squares() == 34.0);
  CHECK(std::vector<double>(entry.histo().bucket_limit().begin(), entry.histo().bucket_limit().end()) ==
        std::vector<double>{2.0, 3.0, 4.0, 5.0});
  CHECK(std::vector<double>(entry.histo().bucket().begin(), entry.histo().bucket().end()) ==
        std::vector<double>{3.0, 0.0, 0.0, 1.0});
}

TEST_CASE("TensorBoardWriters of one folder and second write separate files", "[tensorboard]") {
  TempDir dir;
  std::vector<std::unique_ptr<TensorBoardWriter>> writers;
  for (int i = 0; i < 3; ++i) {
    StatusOr<std::unique_ptr<TensorBoardWriter>> writer = TensorBoardWriter::Create(dir.path.string());
    REQUIRE(writer.ok());
    writers.push_back(std::move(*writer));
  }
  const std::vector<TaggedScalar> scalar = {{"train/loss", 1.0}};
  for (auto& writer : writers) REQUIRE(writer->WriteScalars(1, scalar).ok());
  CHECK(writers[0]->path() != writers[1]->path());
  CHECK(writers[1]->path() != writers[2]->path());
  CHECK(writers[0]->path() != writers[2]->path());
  for (const auto& writer : writers) {
    StatusOr<std::string> bytes = ReadFileBytes(writer->path(), "event file");
    REQUIRE(bytes.ok());
    CHECK(ReadRecords(*bytes).size() == 2);  // its own version event and scalar event only
  }
}

TEST_CASE("TensorBoardWriter names the file it cannot create", "[tensorboard]") {
  StatusOr<std::unique_ptr<TensorBoardWriter>> writer = TensorBoardWriter::Create("/nonexistent/sieve/run");
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.status().code() == StatusCode::kUnavailable);
  CHECK(writer.status().message().find("/nonexistent/sieve/run/events.out.tfevents.") != std::string::npos);
}

}  // namespace
}  // namespace sieve::runtime
