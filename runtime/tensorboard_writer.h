// TensorBoard event files: the `events.out.tfevents.<unix time>.<host>` file that `sieve train` writes in its
// run folder beside metrics.jsonl (runtime/train_loop.h), read by TensorBoard as any TensorFlow run.
//
// The file is a sequence of TFRecords, each
//   uint64 length | uint32 masked CRC-32C of the length's 8 bytes | data | uint32 masked CRC-32C of the data
// (all little-endian), whose data is a serialized tensorflow.Event (proto/tensorboard_event.proto). The first
// event carries file_version "brain.Event:2"; the others a Summary of scalars or of one histogram.
//
// Not here: which values are written when (the training loop), reading the files back (TensorBoard itself,
// tests/interop/test_tensorboard.py).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/status.h"

namespace sieve::runtime {

/// The CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `bytes`, as TFRecord files use.
uint32_t Crc32c(std::string_view bytes);

/// TFRecord's masked CRC: the CRC-32C rotated right by 15 bits plus 0xA282EAD8.
uint32_t MaskedCrc32c(std::string_view bytes);

/// `data` framed as one TFRecord (see the file comment).
std::string TfRecord(std::string_view data);

/// A histogram as TensorBoard's HistogramProto holds it: bucket i counts the values in
/// (bucket_limit[i - 1], bucket_limit[i]], the first bucket everything up to bucket_limit[0].
struct HistogramBuckets {
  double min = 0.0, max = 0.0, num = 0.0, sum = 0.0, sum_squares = 0.0;
  std::vector<double> bucket_limit;
  std::vector<double> bucket;
};

/// `values` in `buckets` equal-width buckets from their minimum to their maximum (one bucket when all are
/// equal, none when there are no values). `buckets` must be at least 1.
HistogramBuckets MakeHistogram(std::span<const double> values, int buckets);

/// One scalar of a summary: TensorBoard plots `value` under `tag` (stored as a float, as TensorBoard does).
using TaggedScalar = std::pair<std::string, double>;

/// Appends events to a new event file. Every write is flushed, so TensorBoard sees a run while it trains.
class TensorBoardWriter {
 public:
  /// Creates `events.out.tfevents.<unix time>.<host name>` in `folder` (which must exist; ".1", ".2", ...
  /// appended when another writer created that name) and writes the file_version event. UNAVAILABLE names the
  /// file when it cannot be created.
  static StatusOr<std::unique_ptr<TensorBoardWriter>> Create(const std::string& folder);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  /// One event at `step` holding all `scalars`.
  Status WriteScalars(int64_t step, std::span<const TaggedScalar> scalars);
  /// One event at `step` holding the histogram of `values` under `tag` (MakeHistogram with `buckets`).
  Status WriteHistogram(int64_t step, std::string_view tag, std::span<const double> values, int buckets = 30);

  /// The event file's path.
  const std::string& path() const { return path_; }

 private:
  TensorBoardWriter(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}
  // Frames and appends one serialized Event, then flushes.
  Status Append(const std::string& event);

  std::string path_;
  std::FILE* file_;
};

}  // namespace sieve::runtime
