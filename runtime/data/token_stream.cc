// TokenStream (token_stream.h): windows of parallel token streams for truncated BPTT.
#include "runtime/data/token_stream.h"

#include <algorithm>
#include <utility>

namespace sieve::runtime {

StatusOr<std::unique_ptr<TokenStream>> TokenStream::Create(Tensor tokens, const TokenStreamOptions& options,
                                                           LoaderPosition start) {
  SIEVE_ENSURE(
      tokens.device().is_cpu() && tokens.dtype() == DType::kInt32 && tokens.rank() == 1 && tokens.is_contiguous(),
      StatusCode::kInvalidArgument,
      "a token stream reads contiguous CPU int32 [N] token ids, got " << tokens.ToString());
  SIEVE_ENSURE(options.batch >= 1 && options.steps >= 1, StatusCode::kInvalidArgument,
               "token stream batch " << options.batch << " and steps " << options.steps << " must both be at least 1");
  const int64_t row_length = tokens.dim(0) / options.batch;
  SIEVE_ENSURE(row_length - 1 >= options.steps, StatusCode::kInvalidArgument,
               tokens.dim(0) << " tokens in " << options.batch << " streams give " << row_length
                             << " tokens per stream, which holds no window of " << options.steps
                             << " steps and its next tokens (that needs " << options.steps + 1 << ")");
  std::unique_ptr<TokenStream> stream(new TokenStream(std::move(tokens), options, row_length));
  SIEVE_RETURN_IF_ERROR(stream->Seek(start));
  return stream;
}

Batch TokenStream::Next() {
  const int64_t batch = options_.batch;
  const int64_t steps = options_.steps;
  Batch out;
  out.position = next_;
  out.features = Tensor::Empty({batch, steps}, DType::kInt32);
  out.labels = Tensor::Empty({batch, steps}, DType::kInt32);
  const int32_t* tokens = tokens_.data<int32_t>();
  int32_t* inputs = out.features.data<int32_t>();
  int32_t* labels = out.labels.data<int32_t>();
  for (int64_t b = 0; b < batch; ++b) {
    const int32_t* window = tokens + b * row_length_ + next_.batch * steps;
    std::copy(window, window + steps, inputs + b * steps);
    std::copy(window + 1, window + steps + 1, labels + b * steps);
  }
  if (++next_.batch == batches_per_epoch_) {
    next_.batch = 0;
    ++next_.epoch;
  }
  return out;
}

Status TokenStream::Seek(LoaderPosition position) {
  SIEVE_ENSURE(
      position.epoch >= 0 && position.batch >= 0 && position.batch < batches_per_epoch_, StatusCode::kInvalidArgument,
      "token stream position " << position.ToString() << " is outside the stream: epochs from 0, batches in [0, "
                               << batches_per_epoch_ << ")");
  next_ = position;
  return Status::Ok();
}

}  // namespace sieve::runtime
