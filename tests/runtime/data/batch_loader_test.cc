// Tests for BatchLoader: epoch orders (permutation, reproducible, different per epoch, unbiased),
// prefetched batches against a synchronous reference, restoring a position, and shutdown mid-epoch.
#include "runtime/data/batch_loader.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <numeric>
#include <thread>
#include <vector>

namespace sieve::runtime {
namespace {

// Example i has features i * 1000 + j (exact in float) and label i % classes, so every row says
// which example it is.
Dataset MakeDataset(int64_t n, int64_t d, int64_t classes = 7) {
  Tensor features = Tensor::Empty({n, d});
  Tensor labels = Tensor::Empty({n}, DType::kInt32);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) features.data<float>()[i * d + j] = static_cast<float>(i * 1000 + j);
    labels.data<int32_t>()[i] = static_cast<int32_t>(i % classes);
  }
  auto dataset = Dataset::Create(features, labels, classes);
  REQUIRE(dataset.ok());
  return *dataset;
}

std::unique_ptr<BatchLoader> MakeLoader(const Dataset& dataset, const BatchLoaderOptions& options,
                                        LoaderPosition start = {}) {
  auto loader = BatchLoader::Create(dataset, options, start);
  REQUIRE(loader.ok());
  return std::move(loader).value();
}

struct HostBatch {
  std::vector<float> features;
  std::vector<int32_t> labels;
  LoaderPosition position;
  friend bool operator==(const HostBatch&, const HostBatch&) = default;
};

HostBatch ToHost(const Batch& batch) {
  const auto* labels = batch.labels.data<int32_t>();
  return {batch.features.ToVector(), std::vector<int32_t>(labels, labels + batch.labels.numel()), batch.position};
}

// The synchronous reference: the batch at `position`, gathered row by row from EpochOrder.
HostBatch ReferenceBatch(const Dataset& dataset, const BatchLoaderOptions& options, LoaderPosition position) {
  const std::vector<int64_t> order = EpochOrder(dataset.size(), options.seed, position.epoch, options.shuffle);
  const int64_t begin = position.batch * options.batch_size;
  const int64_t end = std::min(begin + options.batch_size, dataset.size());
  HostBatch batch;
  batch.position = position;
  for (int64_t k = begin; k < end; ++k) {
    const int64_t i = order[static_cast<size_t>(k)];
    batch.features.insert(batch.features.end(), dataset.row(i), dataset.row(i) + dataset.feature_dim());
    batch.labels.push_back(dataset.label(i));
  }
  return batch;
}

std::vector<HostBatch> Take(BatchLoader& loader, int count) {
  std::vector<HostBatch> out;
  for (int k = 0; k < count; ++k) out.push_back(ToHost(loader.Next()));
  return out;
}

TEST_CASE("EpochOrder is a reproducible permutation that changes every epoch", "[runtime][batch_loader]") {
  for (int64_t size : {1, 2, 7, 1000}) {
    INFO("size " << size);
    std::vector<int64_t> identity(static_cast<size_t>(size));
    std::iota(identity.begin(), identity.end(), int64_t{0});
    CHECK(EpochOrder(size, 5, 3, false) == identity);
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      std::vector<int64_t> order = EpochOrder(size, 5, epoch, true);
      CHECK(order == EpochOrder(size, 5, epoch, true));
      std::sort(order.begin(), order.end());
      CHECK(order == identity);
    }
  }
  std::vector<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 5; ++epoch) orders.push_back(EpochOrder(1000, 5, epoch, true));
  orders.push_back(EpochOrder(1000, 6, 0, true));
  for (size_t a = 0; a < orders.size(); ++a) {
    for (size_t b = a + 1; b < orders.size(); ++b) CHECK(orders[a] != orders[b]);
  }
  // Pinned: checkpoints of earlier runs resume into these exact orders.
  CHECK(EpochOrder(10, 42, 0, true) == std::vector<int64_t>{6, 8, 9, 7, 4, 5, 1, 3, 0, 2});
}

TEST_CASE("EpochOrder places every index uniformly", "[runtime][batch_loader]") {
  // Where index 0 lands over 6000 epochs of a 6-element order: 1000 per slot expected, binomial
  // standard deviation ~29; 150 is over five of them, so only a biased shuffle fails.
  std::vector<int> counts(6, 0);
  for (int64_t epoch = 0; epoch < 6000; ++epoch) {
    const std::vector<int64_t> order = EpochOrder(6, 1, epoch, true);
    ++counts[static_cast<size_t>(std::find(order.begin(), order.end(), 0) - order.begin())];
  }
  for (int c : counts) CHECK(std::abs(c - 1000) < 150);
}

TEST_CASE("Prefetched batches equal the synchronous reference", "[runtime][batch_loader]") {
  const Dataset dataset = MakeDataset(103, 5);
  for (bool shuffle : {true, false}) {
    for (bool drop_last : {false, true}) {
      for (int depth : {0, 1, 2, 5}) {
        BatchLoaderOptions options;
        options.batch_size = 10;
        options.seed = 99;
        options.shuffle = shuffle;
        options.drop_last = drop_last;
        options.prefetch_depth = depth;
        INFO("shuffle " << shuffle << ", drop_last " << drop_last << ", depth " << depth);
        auto loader = MakeLoader(dataset, options);
        const int64_t per_epoch = drop_last ? 10 : 11;
        REQUIRE(loader->batches_per_epoch() == per_epoch);
        for (int64_t epoch = 0; epoch < 3; ++epoch) {
          std::vector<int64_t> seen;
          for (int64_t b = 0; b < per_epoch; ++b) {
            REQUIRE(loader->position() == LoaderPosition{epoch, b});
            const Batch batch = loader->Next();
            CHECK(batch.features.is_contiguous());
            CHECK(batch.labels.dtype() == DType::kInt32);
            const int64_t rows = b == 10 ? 3 : 10;
            REQUIRE(batch.features.shape() == Shape{rows, 5});
            REQUIRE(batch.labels.shape() == Shape{rows});
            const HostBatch host = ToHost(batch);
            REQUIRE(host == ReferenceBatch(dataset, options, {epoch, b}));
            for (int64_t r = 0; r < rows; ++r) seen.push_back(static_cast<int64_t>(host.features[r * 5]) / 1000);
          }
          // An epoch visits every example once (all but the dropped remainder with drop_last).
          std::sort(seen.begin(), seen.end());
          CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
          CHECK(static_cast<int64_t>(seen.size()) == (drop_last ? 100 : 103));
        }
      }
    }
  }
}

TEST_CASE("Same seed gives the same batches, another seed other batches", "[runtime][batch_loader]") {
  const Dataset dataset = MakeDataset(50, 3);
  BatchLoaderOptions options;
  options.batch_size = 8;
  options.seed = 7;
  auto a = MakeLoader(dataset, options);
  auto b = MakeLoader(dataset, options);
  options.seed = 8;
  auto c = MakeLoader(dataset, options);
  const std::vector<HostBatch> from_a = Take(*a, 15);
  CHECK(from_a == Take(*b, 15));
  CHECK(from_a != Take(*c, 15));
}

TEST_CASE("A restored position continues exactly", "[runtime][batch_loader]") {
  const Dataset dataset = MakeDataset(61, 4);
  BatchLoaderOptions options;
  options.batch_size = 9;  // 7 batches per epoch, the last of 7 rows
  options.seed = 2024;
  for (int depth : {0, 2}) {
    INFO("depth " << depth);
    options.prefetch_depth = depth;
    auto original = MakeLoader(dataset, options);
    Take(*original, 12);
    const LoaderPosition saved = original->position();
    CHECK(saved == LoaderPosition{1, 5});
    const std::vector<HostBatch> continuation = Take(*original, 20);

    // A new run resuming from a checkpoint.
    auto resumed = MakeLoader(dataset, options, saved);
    CHECK(resumed->position() == saved);
    CHECK(Take(*resumed, 20) == continuation);

    // The same loader sent back, with batches of the old stream already queued.
    REQUIRE(original->Seek(saved).ok());
    CHECK(original->position() == saved);
    CHECK(Take(*original, 20) == continuation);
    REQUIRE(original->Seek({0, 0}).ok());
    CHECK(ToHost(original->Next()) == ReferenceBatch(dataset, options, {0, 0}));
    REQUIRE(original->Seek({1000, 6}).ok());
    CHECK(ToHost(original->Next()) == ReferenceBatch(dataset, options, {1000, 6}));
    CHECK(original->position() == LoaderPosition{1001, 0});

    for (LoaderPosition bad :
         {LoaderPosition{0, 7}, LoaderPosition{-1, 0}, LoaderPosition{0, -1}, LoaderPosition{kMaxEpochs, 0}}) {
      Status s = original->Seek(bad);
      CHECK(s.code() == StatusCode::kInvalidArgument);
      CHECK_THAT(s.message(), Catch::Contains(bad.ToString()) && Catch::Contains("7 batches of 9"));
    }
    CHECK(original->position() == LoaderPosition{1001, 0});
  }
}

TEST_CASE("Seek while the thread is assembling a batch drops that batch", "[runtime][batch_loader]") {
  // Batches of a few MB take the thread long enough that a Seek right after Next() usually lands
  // while it is copying the next one, which then belongs to the abandoned stream.
  const Dataset dataset = MakeDataset(2048, 784);
  BatchLoaderOptions options;
  options.batch_size = 1024;
  options.seed = 11;
  auto loader = MakeLoader(dataset, options);
  for (int64_t k = 0; k < 60; ++k) {
    const LoaderPosition target{(k * 7) % 5, (k * 3) % 2};
    loader->Next();
    REQUIRE(loader->Seek(target).ok());
    const Batch batch = loader->Next();
    REQUIRE(batch.position == target);
    REQUIRE(ToHost(batch) == ReferenceBatch(dataset, options, target));
  }
}

TEST_CASE("BatchLoader::Create rejects impossible settings", "[runtime][batch_loader]") {
  const Dataset dataset = MakeDataset(5, 2);
  BatchLoaderOptions options;
  options.batch_size = 0;
  auto zero = BatchLoader::Create(dataset, options);
  REQUIRE_FALSE(zero.ok());
  CHECK_THAT(zero.status().message(), Catch::Contains("batch_size >= 1, got 0"));
  options.batch_size = 6;
  options.drop_last = true;
  auto none = BatchLoader::Create(dataset, options);
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.status().message(), Catch::Contains("5 examples, batch_size is 6"));
  options.drop_last = false;
  options.prefetch_depth = -1;
  CHECK_FALSE(BatchLoader::Create(dataset, options).ok());
  options.prefetch_depth = 2;
  auto start = BatchLoader::Create(dataset, options, {0, 1});
  REQUIRE_FALSE(start.ok());
  CHECK_THAT(start.status().message(), Catch::Contains("epoch 0, batch 1"));
  auto empty = BatchLoader::Create(MakeDataset(0, 2), options);
  REQUIRE_FALSE(empty.ok());
  CHECK_THAT(empty.status().message(), Catch::Contains("non-empty"));
  // One batch of 6 rows holding all 5 examples.
  auto small = BatchLoader::Create(dataset, options);
  REQUIRE(small.ok());
  CHECK((*small)->Next().features.shape() == Shape{5, 2});
}

TEST_CASE("Destroying a loader mid-epoch stops its thread promptly", "[runtime][batch_loader]") {
  // Big enough that the thread is often caught mid-batch. The trials run on their own thread so that
  // a shutdown that hangs fails here instead of stalling the suite; Catch2 assertions are not
  // thread-safe, so that thread only records what it saw.
  const Dataset dataset = MakeDataset(1024, 784);
  BatchLoaderOptions options;
  options.batch_size = 256;
  struct Held {
    uint64_t seed;
    HostBatch batch;
  };
  std::promise<std::vector<Held>> promise;
  std::future<std::vector<Held>> result = promise.get_future();
  std::thread trials([dataset, options, promise = std::move(promise)]() mutable {
    std::vector<Held> held;
    for (int trial = 0; trial < 60; ++trial) {
      options.seed = static_cast<uint64_t>(trial);
      options.prefetch_depth = 1 + trial % 3;
      Batch last;
      {
        auto loader = BatchLoader::Create(dataset, options);
        SIEVE_CHECK_OK(loader.status());
        for (int k = 0; k < trial % 4; ++k) last = (*loader)->Next();
        if (trial % 5 == 0) SIEVE_CHECK_OK((*loader)->Seek({3, 2}));
      }
      // Read after the loader is gone: a batch owns its storage.
      if (last.features.defined()) held.push_back({options.seed, ToHost(last)});
    }
    promise.set_value(std::move(held));
  });
  if (result.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    trials.detach();
    FAIL("destroying BatchLoaders did not finish within 60 s");
  }
  trials.join();
  const std::vector<Held> held = result.get();
  CHECK(held.size() == 45);
  for (const Held& h : held) {
    options.seed = h.seed;
    CHECK(h.batch == ReferenceBatch(dataset, options, h.batch.position));
  }
}

}  // namespace
}  // namespace sieve::runtime
