// TensorBoard event files (tensorboard_writer.h): CRC-32C, TFRecord framing, histograms, and the writer.
#include "runtime/tensorboard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "framework/file_io.h"
#include "proto/tensorboard_event.pb.h"

namespace sieve::runtime {

namespace {

// The byte-at-a-time table of the reflected Castagnoli polynomial.
constexpr std::array<uint32_t, 256> kCrc32cTable = [] {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
    table[i] = crc;
  }
  return table;
}();

double WallTime() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

uint32_t Crc32c(std::string_view bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) crc = kCrc32cTable[(crc ^ static_cast<uint8_t>(c)) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t MaskedCrc32c(std::string_view bytes) {
  const uint32_t crc = Crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

std::string TfRecord(std::string_view data) {
  ByteWriter out;
  out.Put(static_cast<uint64_t>(data.size()));
  out.Put(MaskedCrc32c(out.bytes()));
  out.PutArray(data.data(), data.size());
  out.Put(MaskedCrc32c(data));
  return out.Take();
}

HistogramBuckets MakeHistogram(std::span<const double> values, int buckets) {
  SIEVE_CHECK(buckets >= 1, "a histogram needs at least one bucket; got " << buckets);
  HistogramBuckets histogram;
  if (values.empty()) return histogram;
  const auto [low, high] = std::minmax_element(values.begin(), values.end());
  histogram.min = *low;
  histogram.max = *high;
  histogram.num = static_cast<double>(values.size());
  const int count = histogram.min == histogram.max ? 1 : buckets;
  const double width = (histogram.max - histogram.min) / count;
  for (int i = 0; i + 1 < count; ++i) histogram.bucket_limit.push_back(histogram.min + width * (i + 1));
  histogram.bucket_limit.push_back(histogram.max);
  histogram.bucket.assign(static_cast<size_t>(count), 0.0);
  for (const double value : values) {
    histogram.sum += value;
    histogram.sum_squares += value * value;
    const auto limit = std::lower_bound(histogram.bucket_limit.begin(), histogram.bucket_limit.end(), value);
    histogram.bucket[static_cast<size_t>(limit - histogram.bucket_limit.begin())] += 1.0;
  }
  return histogram;
}

StatusOr<std::unique_ptr<TensorBoardWriter>> TensorBoardWriter::Create(const std::string& folder) {
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string base = folder + "/events.out.tfevents." + std::to_string(seconds) + "." + HostName();
  // A second writer in the same folder and second gets ".1", ".2", ...: never an existing file.
  std::string path = base;
  int fd = -1, error = 0;
  for (int suffix = 1; suffix <= 1000; ++suffix) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    error = errno;
    if (fd >= 0 || error != EEXIST) break;
    path = base + "." + std::to_string(suffix);
  }
  SIEVE_ENSURE(fd >= 0, StatusCode::kUnavailable,
               "cannot create the TensorBoard event file '" << path << "': " << std::strerror(error));
  std::FILE* file = ::fdopen(fd, "wb");
  if (file == nullptr) {
    error = errno;
    ::close(fd);
    return Status(StatusCode::kUnavailable,
                  "cannot open the TensorBoard event file '" + path + "': " + std::strerror(error));
  }
  std::unique_ptr<TensorBoardWriter> writer(new TensorBoardWriter(path, file));
  tensorflow::Event event;
  event.set_wall_time(WallTime());
  event.set_file_version("brain.Event:2");
  SIEVE_RETURN_IF_ERROR(writer->Append(event.SerializeAsString()));
  return writer;
}

TensorBoardWriter::~TensorBoardWriter() { std::fclose(file_); }

Status TensorBoardWriter::WriteScalars(int64_t step, std::span<const TaggedScalar> scalars) {
  tensorflow::Event event;
  event.set_wall_time(WallTime());
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    tensorflow::Summary::Value* entry = event.mutable_summary()->add_value();
    entry->set_tag(tag);
    entry->set_simple_value(static_cast<float>(value));
  }
  return Append(event.SerializeAsString());
}

Status TensorBoardWriter::WriteHistogram(int64_t step, std::string_view tag, std::span<const double> values,
                                         int buckets) {
  const HistogramBuckets histogram = MakeHistogram(values, buckets);
  tensorflow::Event event;
  event.set_wall_time(WallTime());
  event.set_step(step);
  tensorflow::Summary::Value* entry = event.mutable_summary()->add_value();
  entry->set_tag(std::string(tag));
  tensorflow::HistogramProto* proto = entry->mutable_histo();
  proto->set_min(histogram.min);
  proto->set_max(histogram.max);
  proto->set_num(histogram.num);
  proto->set_sum(histogram.sum);
  proto->set_sum_squares(histogram.sum_squares);
  for (const double limit : histogram.bucket_limit) proto->add_bucket_limit(limit);
  for (const double count : histogram.bucket) proto->add_bucket(count);
  return Append(event.SerializeAsString());
}

Status TensorBoardWriter::Append(const std::string& event) {
  const std::string record = TfRecord(event);
  SIEVE_ENSURE(std::fwrite(record.data(), 1, record.size(), file_) == record.size() && std::fflush(file_) == 0,
               StatusCode::kUnavailable,
               "cannot write to the TensorBoard event file '" << path_ << "': " << std::strerror(errno));
  return Status::Ok();
}

}  // namespace sieve::runtime
