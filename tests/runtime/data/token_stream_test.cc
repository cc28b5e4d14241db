// Tests for TokenStream: exact windows of the parallel rows, labels one token ahead, rows continuing
// from batch to batch, Seek and start positions, errors; and end to end, a language model trained by
// the Trainer from a TokenStream over the generated tiny corpus.
#include "runtime/data/token_stream.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <vector>

#include "graph/sequential.h"
#include "runtime/data/text_corpus.h"
#include "runtime/trainer.h"

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;

// Token i is i itself, so every value says where it came from.
Tensor Iota(int64_t n) {
  Tensor tokens = Tensor::Empty({n}, DType::kInt32);
  std::iota(tokens.data<int32_t>(), tokens.data<int32_t>() + n, 0);
  return tokens;
}

std::unique_ptr<TokenStream> MakeStream(Tensor tokens, int64_t batch, int64_t steps, LoaderPosition start = {}) {
  auto stream = TokenStream::Create(std::move(tokens), {.batch = batch, .steps = steps}, start);
  REQUIRE(stream.ok());
  return std::move(stream).value();
}

int32_t At(const Tensor& t, int64_t row, int64_t column) { return t.data<int32_t>()[row * t.dim(1) + column]; }

std::vector<int32_t> Values(const Tensor& t) { return {t.data<int32_t>(), t.data<int32_t>() + t.numel()}; }

TEST_CASE("TokenStream windows are Zaremba's batchify", "[runtime][corpus]") {
  // 103 tokens in 4 rows of 25 (3 left out); (25 - 1) / 5 = 4 windows of 5 per epoch.
  auto stream = MakeStream(Iota(103), 4, 5);
  CHECK(stream->row_length() == 25);
  CHECK(stream->batches_per_epoch() == 4);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    for (int64_t i = 0; i < 4; ++i) {
      CHECK(stream->position() == LoaderPosition{epoch, i});
      const Batch batch = stream->Next();
      CHECK(batch.position == LoaderPosition{epoch, i});
      REQUIRE(batch.features.shape() == Shape{4, 5});
      REQUIRE(batch.labels.shape() == Shape{4, 5});
      CHECK(batch.features.dtype() == DType::kInt32);
      CHECK(batch.labels.dtype() == DType::kInt32);
      for (int64_t b = 0; b < 4; ++b) {
        for (int64_t t = 0; t < 5; ++t) {
          CHECK(At(batch.features, b, t) == b * 25 + i * 5 + t);
          CHECK(At(batch.labels, b, t) == b * 25 + i * 5 + t + 1);
        }
      }
    }
  }
  CHECK(stream->position() == LoaderPosition{2, 0});
}

TEST_CASE("TokenStream rows continue from batch to batch and labels are the next tokens", "[runtime][corpus]") {
  const CorpusText text = GenerateTinyCorpus(60, 5);
  const Vocabulary vocabulary = Vocabulary::Build(text.lines[0], TokenLevel::kChar, 0);
  const Tensor tokens = EncodeLines(text.lines[0], vocabulary, TokenLevel::kChar);
  const int64_t batch = 3, steps = 7;
  auto stream = MakeStream(tokens, batch, steps);
  const int64_t row_length = tokens.numel() / batch;
  // Concatenating an epoch's windows row by row rebuilds each row's text, and its labels the same
  // text one token later.
  std::vector<std::vector<int32_t>> inputs(batch), labels(batch);
  Batch previous = stream->Next();
  for (int64_t i = 1; i <= stream->batches_per_epoch(); ++i) {
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < steps; ++t) {
        inputs[b].push_back(At(previous.features, b, t));
        labels[b].push_back(At(previous.labels, b, t));
        if (t + 1 < steps) CHECK(At(previous.labels, b, t) == At(previous.features, b, t + 1));
      }
    }
    if (i == stream->batches_per_epoch()) break;
    const Batch next = stream->Next();
    for (int64_t b = 0; b < batch; ++b) CHECK(At(previous.labels, b, steps - 1) == At(next.features, b, 0));
    previous = next;
  }
  const int32_t* ids = tokens.data<int32_t>();
  const int64_t covered = stream->batches_per_epoch() * steps;
  for (int64_t b = 0; b < batch; ++b) {
    CHECK(inputs[b] == std::vector<int32_t>(ids + b * row_length, ids + b * row_length + covered));
    CHECK(labels[b] == std::vector<int32_t>(ids + b * row_length + 1, ids + b * row_length + covered + 1));
  }
}

TEST_CASE("TokenStream Seek and start positions reproduce the batches", "[runtime][corpus]") {
  const Tensor tokens = Iota(500);
  auto reference = MakeStream(tokens, 6, 4);  // 83 per row, 20 batches per epoch
  REQUIRE(reference->batches_per_epoch() == 20);
  std::map<std::pair<int64_t, int64_t>, std::vector<int32_t>> seen;
  for (int i = 0; i < 45; ++i) {
    const Batch batch = reference->Next();
    seen[{batch.position.epoch, batch.position.batch}] = Values(batch.features);
  }
  REQUIRE(reference->Seek({1, 13}).ok());
  CHECK(Values(reference->Next().features) == seen[{1, 13}]);
  CHECK(reference->position() == LoaderPosition{1, 14});
  auto resumed = MakeStream(tokens, 6, 4, {2, 3});
  CHECK(Values(resumed->Next().features) == seen[{2, 3}]);
  // The epoch does not change the windows: epoch 7 is epoch 0 again.
  REQUIRE(resumed->Seek({7, 5}).ok());
  CHECK(Values(resumed->Next().features) == seen[{0, 5}]);
}

TEST_CASE("TokenStream errors name the tokens, the sizes and the position", "[runtime][corpus]") {
  auto floats = TokenStream::Create(Tensor::Zeros({100}), {.batch = 2, .steps = 3});
  REQUIRE_FALSE(floats.ok());
  CHECK_THAT(floats.status().message(), Catch::Contains("contiguous CPU int32 [N] token ids"));
  CHECK_FALSE(TokenStream::Create(Tensor::Zeros({10, 10}, DType::kInt32), {.batch = 2, .steps = 3}).ok());
  CHECK_THAT(TokenStream::Create(Iota(100), {.batch = 0, .steps = 3}).status().message(),
             Catch::Contains("batch 0 and steps 3 must both be at least 1"));
  auto short_stream = TokenStream::Create(Iota(41), {.batch = 4, .steps = 10});
  REQUIRE_FALSE(short_stream.ok());
  CHECK(short_stream.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(short_stream.status().message(),
             Catch::Contains("41 tokens in 4 streams give 10 tokens per stream, which holds no window of 10 steps"));
  CHECK(TokenStream::Create(Iota(44), {.batch = 4, .steps = 10}).ok());
  CHECK_THAT(TokenStream::Create(Iota(44), {.batch = 4, .steps = 10}, {0, 1}).status().message(),
             Catch::Contains("position epoch 0, batch 1 is outside the stream"));
  auto stream = MakeStream(Iota(44), 4, 10);
  CHECK_FALSE(stream->Seek({-1, 0}).ok());
  CHECK_FALSE(stream->Seek({0, -1}).ok());
  CHECK(stream->position() == LoaderPosition{0, 0});
}

// The end-to-end check: an LSTM language model over the generated corpus, trained statefully through
// the Trainer with per-time-step labels, must get well below the perplexity of guessing (the
// vocabulary size) and of the best unigram model.
TEST_CASE("A stateful LSTM language model learns the tiny corpus", "[runtime][corpus][trainer]") {
  const fs::path dir = fs::temp_directory_path() / ("sieve_token_stream_test_" + std::to_string(::getpid()));
  REQUIRE(WriteTextCorpus(dir.string(), GenerateTinyCorpus(1000, 1)).ok());
  auto corpus = TextCorpus::Load(dir.string(), TokenLevel::kWord);
  fs::remove_all(dir);
  REQUIRE(corpus.ok());
  const int64_t vocabulary = corpus->vocabulary().size();
  REQUIRE(vocabulary == 21);

  // The unigram model's perplexity on the validation split (training frequencies).
  const Tensor& valid_tokens = corpus->tokens(CorpusSplit::kValid);
  double unigram_nll = 0.0;
  const double train_tokens = static_cast<double>(corpus->tokens(CorpusSplit::kTrain).numel());
  for (int64_t i = 0; i < valid_tokens.numel(); ++i) {
    const int32_t id = valid_tokens.data<int32_t>()[i];
    unigram_nll -= std::log(static_cast<double>(corpus->vocabulary().count(id)) / train_tokens);
  }
  const double unigram_perplexity = std::exp(unigram_nll / static_cast<double>(valid_tokens.numel()));

  const int64_t batch = 8, steps = 16;
  graph::Sequential lm({steps}, DType::kInt32, {steps});
  graph::FullyConnectedSpec per_step = graph::FullyConnected(vocabulary);
  per_step.axis = 2;
  lm.Add(graph::Embedding(vocabulary, 16)).Add(graph::Lstm(32, 1, true)).Add(per_step);
  auto network = lm.Build();
  REQUIRE(network.ok());
  TrainerOptions options;
  options.batch_size = batch;
  options.carry_state = true;
  options.solver.type = ops::SolverType::kAdam;
  options.solver.lr.base_lr = 0.01f;
  auto trainer = Trainer::Create(*network, options);
  INFO(trainer.status().ToString());
  REQUIRE(trainer.ok());

  auto train = TokenStream::Create(corpus->tokens(CorpusSplit::kTrain), {.batch = batch, .steps = steps});
  REQUIRE(train.ok());
  auto fit = (*trainer)->Fit(**train, {.epochs = 5, .display = 0});
  REQUIRE(fit.ok());
  CHECK((*trainer)->iteration() == 5 * (*train)->batches_per_epoch());

  auto valid = TokenStream::Create(valid_tokens, {.batch = batch, .steps = steps});
  REQUIRE(valid.ok());
  auto eval = (*trainer)->Evaluate(**valid);
  REQUIRE(eval.ok());
  CHECK(eval->examples == (*valid)->batches_per_epoch() * batch * steps);  // one per token
  const double perplexity = std::exp(eval->loss);
  INFO("iterations " << (*trainer)->iteration() << ", validation perplexity " << perplexity << ", unigram "
                     << unigram_perplexity << ", vocabulary " << vocabulary);
  CHECK(fit->front().train_loss > fit->back().train_loss);
  CHECK(perplexity < 4.0);
  CHECK(perplexity < 0.5 * unigram_perplexity);
}

}  // namespace
}  // namespace sieve::runtime
