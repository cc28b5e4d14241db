// TokenStream: language-model batches for truncated backpropagation through time, as Zaremba et
// al.'s PTB reader makes them. A split's N token ids are cut into `batch` parallel streams of
// L = N / batch consecutive tokens (the last N mod batch tokens are left out); row b of the stream
// is tokens [b L, (b + 1) L). Batch i of an epoch is the window of `steps` tokens at offset i·steps in
// every stream: inputs [batch, steps] and, as labels, the same window one token later. An epoch has
// (L - 1) / steps batches, so consecutive batches continue each row exactly where the previous one
// stopped: with TrainerOptions::carry_state, the recurrent state flows along the text (stateful
// training). The next epoch starts again at the beginning of each row.
//
// It neither tokenises (text_corpus.h) nor shuffles: the order of a language model's text is its data.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "framework/status.h"
#include "framework/tensor.h"
#include "runtime/data/batch_source.h"

namespace sieve::runtime {

struct TokenStreamOptions {
  /// Parallel streams: the rows of every batch.
  int64_t batch = 20;
  /// Tokens per window (the truncated-BPTT length): the columns of every batch.
  int64_t steps = 35;
};

/// Delivers Batch{features: int32 [batch, steps] inputs, labels: int32 [batch, steps] next tokens},
/// epoch after epoch without end. Same tokens, options and start position -> same batches.
class TokenStream final : public BatchSource {
 public:
  /// `tokens`: CPU int32 [N], contiguous (a TextCorpus split); the stream shares its storage, which
  /// must not change while the stream runs. INVALID_ARGUMENT for another tensor, batch or steps < 1,
  /// too few tokens for one window per row (N / batch - 1 < steps; both numbers given), or a start
  /// position outside the epoch.
  static StatusOr<std::unique_ptr<TokenStream>> Create(Tensor tokens, const TokenStreamOptions& options,
                                                       LoaderPosition start = {});

  /// The batch at position(), then advances position() by one batch.
  Batch Next() override;
  /// The position of the batch the next Next() returns; store it in a checkpoint.
  LoaderPosition position() const override { return next_; }
  /// Makes `position` the next batch. INVALID_ARGUMENT for a negative epoch or a batch outside
  /// [0, batches_per_epoch()).
  Status Seek(LoaderPosition position) override;
  int64_t batches_per_epoch() const override { return batches_per_epoch_; }

  /// Tokens per row, L = N / batch.
  int64_t row_length() const { return row_length_; }
  const TokenStreamOptions& options() const { return options_; }

 private:
  TokenStream(Tensor tokens, const TokenStreamOptions& options, int64_t row_length)
      : tokens_(std::move(tokens)),
        options_(options),
        row_length_(row_length),
        batches_per_epoch_((row_length - 1) / options.steps) {}

  const Tensor tokens_;
  const TokenStreamOptions options_;
  const int64_t row_length_;
  const int64_t batches_per_epoch_;
  LoaderPosition next_;
};

}  // namespace sieve::runtime
