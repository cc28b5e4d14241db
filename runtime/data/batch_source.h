// BatchSource: where a Trainer's mini-batches come from. A classification BatchLoader over a Dataset
// is one; a language-model stream over a token corpus is another. A source delivers batches
// epoch after epoch without end, and its position can be saved and restored (checkpoints).
#pragma once

#include <cstdint>
#include <string>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::runtime {

/// Where a source stands: the batch that Next() returns next.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;             // index of the batch within its epoch
  std::string ToString() const;  // "epoch 3, batch 17"
  friend bool operator==(const LoaderPosition&, const LoaderPosition&) = default;
};

/// One mini-batch on the host: `features` [rows, ...] (float32 values or int32 token ids) and int32
/// `labels` [rows, ...] (one per example, or one per time step). rows is the batch size, or fewer for
/// the last batch of an epoch.
struct Batch {
  Tensor features;
  Tensor labels;
  LoaderPosition position;  // which batch this is
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// The batch at position(), then advances by one batch (after the last batch of epoch e comes
  /// batch 0 of epoch e + 1).
  virtual Batch Next() = 0;
  /// The position of the batch the next Next() returns.
  virtual LoaderPosition position() const = 0;
  /// Makes `position` the next batch; INVALID_ARGUMENT for a position outside the source.
  virtual Status Seek(LoaderPosition position) = 0;
  virtual int64_t batches_per_epoch() const = 0;
};

}  // namespace sieve::runtime
