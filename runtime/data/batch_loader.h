// The mini-batch loader: walks a Dataset in seeded, reproducible epoch orders and assembles each
// batch on a background thread, a bounded queue ahead of the consumer, so that copying rows
// overlaps compute. Its position can be read and restored for checkpoints. It does not augment,
// move batches to a GPU, or shard across processes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"
#include "runtime/data/batch_source.h"
#include "runtime/data/dataset.h"

namespace sieve::runtime {

struct BatchLoaderOptions {
  int64_t batch_size = 128;
  uint64_t seed = 0;
  /// Visit the examples of each epoch in a seeded random order (else in dataset order).
  bool shuffle = true;
  /// Skip the last batch of an epoch when it is smaller than batch_size.
  bool drop_last = false;
  /// Batches the background thread assembles ahead of Next() (the depth of the bounded queue);
  /// 0 runs no thread and assembles each batch inside Next().
  int prefetch_depth = 2;
};

/// Epochs are numbered 0 to kMaxEpochs - 1 (the epoch is the iteration field of a random stream id).
inline constexpr int64_t kMaxEpochs = int64_t{1} << 32;

/// The order in which epoch `epoch` visits the indices [0, size): the identity without shuffling;
/// with it, the Fisher-Yates shuffle (for i = size-1 down to 1, swap i with j uniform in [0, i])
/// whose draws are the consecutive 64-bit words of the Philox stream
/// {seed, MakeStreamId(StreamKind::kData, 0, epoch)} (framework/rng.h; word k is element 2k in the
/// high half and 2k + 1 in the low half), made unbiased by rejection. So the order depends on
/// (seed, epoch) alone and is the same on every platform, in every run and after any resume.
std::vector<int64_t> EpochOrder(int64_t size, uint64_t seed, int64_t epoch, bool shuffle);

/// Delivers the batches of a Dataset one after another, epoch after epoch without end: after the
/// last batch of epoch e comes batch 0 of epoch e + 1 (read Batch::position or batches_per_epoch()
/// to see epoch boundaries). Same dataset, options and start position -> same batches.
///
/// One consumer thread calls Next(), position() and Seek(). The loader holds a copy of the Dataset
/// handle, so the data stays alive as long as the loader; the features must not be modified while
/// it runs. The destructor stops the background thread at any point, mid-epoch included, and
/// returns once it has joined.
class BatchLoader final : public BatchSource {
 public:
  /// Returns INVALID_ARGUMENT for an empty dataset, batch_size < 1, drop_last with fewer examples
  /// than one batch, prefetch_depth < 0, or a start position outside the epoch.
  static StatusOr<std::unique_ptr<BatchLoader>> Create(Dataset dataset, const BatchLoaderOptions& options,
                                                       LoaderPosition start = {});
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// The batch at position(), then advances position() by one batch. Blocks only while the
  /// background thread is still assembling it.
  Batch Next() override;
  /// The position of the batch the next Next() returns; store it in a checkpoint.
  LoaderPosition position() const override { return next_; }
  /// Makes `position` the next batch (restoring a checkpoint); batches assembled ahead are dropped.
  /// Returns INVALID_ARGUMENT for an epoch outside [0, kMaxEpochs) or a batch outside
  /// [0, batches_per_epoch()).
  Status Seek(LoaderPosition position) override;

  int64_t batches_per_epoch() const override { return batches_per_epoch_; }
  const Dataset& dataset() const { return dataset_; }
  const BatchLoaderOptions& options() const { return options_; }

 private:
  // The order of one epoch, kept while batches of that epoch are being assembled.
  struct OrderCache {
    int64_t epoch = -1;
    std::vector<int64_t> order;
  };

  BatchLoader(Dataset dataset, const BatchLoaderOptions& options, int64_t batches_per_epoch);
  Status ValidatePosition(const LoaderPosition& position) const;
  LoaderPosition Following(const LoaderPosition& position) const;
  Batch Assemble(const LoaderPosition& position, OrderCache& cache) const;
  void Prefetch();  // the background thread's loop

  const Dataset dataset_;
  const BatchLoaderOptions options_;
  const int64_t batches_per_epoch_;
  LoaderPosition next_;        // the consumer's position
  OrderCache consumer_cache_;  // used by Next() when prefetch_depth is 0

  std::mutex mutex_;
  std::condition_variable filled_;   // a batch was queued
  std::condition_variable drained_;  // the queue has room, the stream moved, or the loader stops
  std::deque<Batch> queue_;          // guarded by mutex_, like the three fields below
  LoaderPosition produce_;           // the next batch the background thread assembles
  uint64_t generation_ = 0;          // bumped by Seek(): batches of an older generation are dropped
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace sieve::runtime
