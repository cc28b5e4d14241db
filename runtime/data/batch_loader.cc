// BatchLoader: epoch orders, batch assembly, and the prefetch thread with its bounded queue.
#include "runtime/data/batch_loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <sstream>

#include "framework/rng.h"

namespace sieve::runtime {

std::string LoaderPosition::ToString() const {
  std::ostringstream os;
  os << "epoch " << epoch << ", batch " << batch;
  return os.str();
}

std::vector<int64_t> EpochOrder(int64_t size, uint64_t seed, int64_t epoch, bool shuffle) {
  if (shuffle) return RandomPermutation(size, {seed, MakeStreamId(StreamKind::kData, 0, static_cast<uint64_t>(epoch))});
  std::vector<int64_t> order(static_cast<size_t>(size));
  std::iota(order.begin(), order.end(), int64_t{0});
  return order;
}

StatusOr<std::unique_ptr<BatchLoader>> BatchLoader::Create(Dataset dataset, const BatchLoaderOptions& options,
                                                           LoaderPosition start) {
  const int64_t n = dataset.size();
  SIEVE_ENSURE(n > 0, StatusCode::kInvalidArgument,
               "batch loader needs a non-empty dataset, got features " << dataset.features().ToString());
  SIEVE_ENSURE(options.batch_size >= 1, StatusCode::kInvalidArgument,
               "batch loader needs batch_size >= 1, got " << options.batch_size);
  SIEVE_ENSURE(!options.drop_last || n >= options.batch_size, StatusCode::kInvalidArgument,
               "batch loader with drop_last has no full batch: dataset has " << n << " examples, batch_size is "
                                                                             << options.batch_size);
  SIEVE_ENSURE(options.prefetch_depth >= 0, StatusCode::kInvalidArgument,
               "batch loader needs prefetch_depth >= 0, got " << options.prefetch_depth);
  const int64_t batches =
      options.drop_last ? n / options.batch_size : (n + options.batch_size - 1) / options.batch_size;
  // The thread starts only after the start position is valid, so a failed Create leaves none behind.
  std::unique_ptr<BatchLoader> loader(new BatchLoader(std::move(dataset), options, batches));
  SIEVE_RETURN_IF_ERROR(loader->ValidatePosition(start));
  loader->next_ = start;
  loader->produce_ = start;
  if (options.prefetch_depth > 0) loader->worker_ = std::thread(&BatchLoader::Prefetch, loader.get());
  return loader;
}

BatchLoader::BatchLoader(Dataset dataset, const BatchLoaderOptions& options, int64_t batches_per_epoch)
    : dataset_(std::move(dataset)), options_(options), batches_per_epoch_(batches_per_epoch) {}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  drained_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Status BatchLoader::ValidatePosition(const LoaderPosition& position) const {
  SIEVE_ENSURE(
      position.epoch >= 0 && position.epoch < kMaxEpochs && position.batch >= 0 && position.batch < batches_per_epoch_,
      StatusCode::kInvalidArgument,
      "batch loader position (" << position.ToString() << ") is outside the data: epochs are 0 to " << kMaxEpochs - 1
                                << ", each of " << batches_per_epoch_ << " batches of " << options_.batch_size
                                << " from " << dataset_.size() << " examples");
  return Status::Ok();
}

LoaderPosition BatchLoader::Following(const LoaderPosition& position) const {
  if (position.batch + 1 < batches_per_epoch_) return {position.epoch, position.batch + 1};
  return {position.epoch + 1, 0};
}

Batch BatchLoader::Assemble(const LoaderPosition& position, OrderCache& cache) const {
  if (cache.epoch != position.epoch) {
    cache.order = EpochOrder(dataset_.size(), options_.seed, position.epoch, options_.shuffle);
    cache.epoch = position.epoch;
  }
  const int64_t begin = position.batch * options_.batch_size;
  const int64_t rows = std::min(options_.batch_size, dataset_.size() - begin);
  const int64_t dim = dataset_.feature_dim();
  Batch batch{Tensor::Empty({rows, dim}), Tensor::Empty({rows}, DType::kInt32), position};
  float* features = batch.features.data<float>();
  int32_t* labels = batch.labels.data<int32_t>();
  const size_t row_bytes = static_cast<size_t>(dim) * sizeof(float);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t example = cache.order[static_cast<size_t>(begin + r)];
    std::memcpy(features + r * dim, dataset_.row(example), row_bytes);
    labels[r] = dataset_.label(example);
  }
  return batch;
}

Batch BatchLoader::Next() {
  if (options_.prefetch_depth == 0) {
    Batch batch = Assemble(next_, consumer_cache_);
    next_ = Following(next_);
    return batch;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  filled_.wait(lock, [this] { return !queue_.empty(); });
  Batch batch = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  drained_.notify_one();
  SIEVE_CHECK(batch.position == next_,
              "prefetched " << batch.position.ToString() << " but the consumer is at " << next_.ToString());
  next_ = Following(next_);
  return batch;
}

Status BatchLoader::Seek(LoaderPosition position) {
  SIEVE_RETURN_IF_ERROR(ValidatePosition(position));
  next_ = position;
  if (options_.prefetch_depth == 0) return Status::Ok();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    produce_ = position;
    ++generation_;
  }
  drained_.notify_one();
  return Status::Ok();
}

void BatchLoader::Prefetch() {
  OrderCache cache;
  const auto depth = static_cast<size_t>(options_.prefetch_depth);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    drained_.wait(lock, [&] { return stop_ || queue_.size() < depth; });
    if (stop_) return;
    const LoaderPosition position = produce_;
    const uint64_t generation = generation_;
    // Assemble without the lock so that Next() can take queued batches meanwhile.
    lock.unlock();
    Batch batch = Assemble(position, cache);
    lock.lock();
    if (stop_) return;
    // A Seek() while this batch was assembled moved the stream; the batch belongs to the old one.
    if (generation != generation_) continue;
    queue_.push_back(std::move(batch));
    produce_ = Following(position);
    filled_.notify_one();
  }
}

}  // namespace sieve::runtime
