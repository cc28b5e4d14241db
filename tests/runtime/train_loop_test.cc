// Tests of the solver-driven training loop (runtime/train_loop.h) and its log (runtime/train_log.h):
// Caffe's schedule of tests, display lines and snapshots; stop and snapshot requests; an exact resume
// through the loop; a language model's perplexity against a brute-force mean token loss; the line prefix,
// durations, metrics lines and the progress line; the batch sources of net files and their errors.
#include "runtime/train_loop.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "graph/sequential.h"
#include "runtime/checkpoint.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/text_corpus.h"
#include "runtime/data/token_stream.h"
#include "tests/testing/temp_dir.h"

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// 40 examples of 16 features in 4 classes (the class shifts one block of features): 5 batches of 8.
Dataset TinyData() {
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  std::vector<float> features(40 * 16);
  Tensor labels = Tensor::Empty({40}, DType::kInt32);
  for (int i = 0; i < 40; ++i) {
    labels.data<int32_t>()[i] = i % 4;
    for (int j = 0; j < 16; ++j) features[i * 16 + j] = noise(rng) + (j / 4 == i % 4 ? 1.5f : 0.0f);
  }
  StatusOr<Dataset> data = Dataset::Create(Tensor::FromVector({40, 16}, features), labels, 4);
  REQUIRE(data.ok());
  return *data;
}

// An MLP with row dropout (searched patterns) and Bernoulli dropout, and its trainer.
std::unique_ptr<Trainer> TinyTrainer() {
  graph::Sequential mlp({16});
  mlp.Add(graph::FullyConnected(32)).Add(graph::ReLU()).Add(graph::RowDropout(0.5));
  mlp.Add(graph::FullyConnected(16)).Add(graph::ReLU()).Add(graph::Dropout(0.3));
  mlp.Add(graph::FullyConnected(4));
  StatusOr<graph::Network> network = mlp.Build();
  REQUIRE(network.ok());
  TrainerOptions options;
  options.batch_size = 8;
  options.seed = 11;
  options.solver.lr.base_lr = 0.05f;
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(*network, options);
  INFO(trainer.status().ToString());
  REQUIRE(trainer.ok());
  return std::move(trainer).value();
}

std::unique_ptr<BatchLoader> Loader(const Dataset& data, bool train) {
  BatchLoaderOptions options;
  options.batch_size = 8;
  options.seed = 11;
  options.shuffle = train;
  options.drop_last = train;
  StatusOr<std::unique_ptr<BatchLoader>> loader = BatchLoader::Create(data, options);
  REQUIRE(loader.ok());
  return std::move(loader).value();
}

std::unique_ptr<TrainLog> FileLog(const TempDir& dir, const std::string& name) {
  StatusOr<std::unique_ptr<TrainLog>> log = TrainLog::Open({.console = nullptr,
                                                            .log_path = (dir.path / (name + ".log")).string(),
                                                            .metrics_path = (dir.path / (name + ".jsonl")).string()});
  REQUIRE(log.ok());
  return std::move(log).value();
}

SolverFile Solver(const TempDir& dir, int64_t max_iter) {
  SolverFile solver;
  solver.max_iter = max_iter;
  solver.snapshot_prefix = (dir.path / "snaps" / "tiny").string();  // the folder does not exist yet
  return solver;
}

int Count(const std::vector<std::string>& lines, const std::string& needle) {
  int n = 0;
  for (const std::string& line : lines) n += line.find(needle) != std::string::npos;
  return n;
}

TEST_CASE("the train loop follows Caffe's schedule of tests and display lines and snapshots", "[cli]") {
  TempDir dir;
  const Dataset data = TinyData();
  std::unique_ptr<Trainer> trainer = TinyTrainer();
  std::unique_ptr<BatchLoader> train = Loader(data, true);
  std::unique_ptr<BatchLoader> test = Loader(data, false);
  TrainLoopOptions options;
  options.solver = Solver(dir, 7);
  options.solver.test_interval = 3;
  options.solver.test_iter = 2;
  options.solver.test_initialization = false;
  options.solver.display = 2;
  options.solver.snapshot = 3;
  std::unique_ptr<TrainLog> log = FileLog(dir, "run");
  StatusOr<TrainLoopResult> result = RunTrainLoop(*trainer, *train, test.get(), options, *log);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  CHECK(result->iteration == 7);
  CHECK_FALSE(result->stopped);
  CHECK(result->last_snapshot == SnapshotPath(options.solver.snapshot_prefix, 7));
  REQUIRE(result->test.has_value());
  CHECK(result->test->examples == 16);  // test_iter 2 batches of 8
  log.reset();

  const std::vector<std::string> lines = Lines(ReadAll(dir.path / "run.log"));
  // Tests at 3 and 6 (test_interval), and the final one at 7; none at 0 (test_initialization false).
  CHECK(Count(lines, "Testing net") == 3);
  CHECK(Count(lines, "Iteration 3, Testing net (#0)") == 1);
  CHECK(Count(lines, "Iteration 6, Testing net (#0)") == 1);
  CHECK(Count(lines, "Iteration 7, Testing net (#0)") == 1);
  CHECK(Count(lines, "Iteration 0, Testing") == 0);
  CHECK(Count(lines, "Test net output #0: accuracy = ") == 3);
  // Display every 2 iterations, Caffe-style.
  const std::regex display(R"(^I\d{4} \d\d:\d\d:\d\d\.\d{3} train_loop\.cc:\d+\] Iteration (\d+), loss = \d+\.\d{4}, )"
                           R"(lr = 0\.05, [0-9.]+ iter/s, ETA \w+$)");
  std::vector<int> displayed;
  for (const std::string& line : lines) {
    std::smatch m;
    if (std::regex_match(line, m, display)) displayed.push_back(std::stoi(m[1]));
  }
  CHECK(displayed == std::vector<int>{2, 4, 6});
  // Snapshots every 3 and after training, in the folder the loop created.
  for (int it : {3, 6, 7}) CHECK(fs::exists(SnapshotPath(options.solver.snapshot_prefix, it)));
  CHECK(Count(lines, "Optimization Done.") == 1);

  // One metrics line per training iteration and per test pass.
  const std::vector<std::string> metrics = Lines(ReadAll(dir.path / "run.jsonl"));
  REQUIRE(metrics.size() == 10);
  CHECK(Count(metrics, "\"phase\":\"train\"") == 7);
  CHECK(Count(metrics, "\"phase\":\"test\"") == 3);
  CHECK(metrics[0].rfind("{\"iteration\":1,\"phase\":\"train\",\"loss\":", 0) == 0);
  CHECK(metrics[0].find("\"lr\":0.0500000007") != std::string::npos);
  CHECK(metrics[0].find("\"flop_ratio\":") != std::string::npos);
  CHECK(metrics[3].rfind("{\"iteration\":3,\"phase\":\"test\"", 0) == 0);
  // A classifier has no perplexity.
  CHECK_FALSE(HasPerTokenLoss(trainer->eval_graph()));
  CHECK(Count(metrics, "perplexity") == 0);
  CHECK(Count(lines, "Test net output #2") == 0);
}

TEST_CASE("the train loop snapshots on request and stops on request and resumes exactly", "[cli]") {
  TempDir dir;
  const Dataset data = TinyData();
  // The uninterrupted run: 12 iterations (two epochs and a bit, so the resumed part crosses an epoch).
  std::vector<double> losses;
  {
    std::unique_ptr<Trainer> trainer = TinyTrainer();
    std::unique_ptr<BatchLoader> train = Loader(data, true);
    TrainLoopOptions options;
    options.solver = Solver(dir, 12);
    options.on_iteration = [&](int64_t, const StepResult& step) { losses.push_back(step.loss); };
    std::unique_ptr<TrainLog> log = FileLog(dir, "full");
    REQUIRE(RunTrainLoop(*trainer, *train, nullptr, options, *log).ok());
  }
  REQUIRE(losses.size() == 12);

  // A run asked for a snapshot after iteration 2 (it continues) and to stop after iteration 7.
  LoopControl control;
  TrainLoopResult stopped;
  {
    std::unique_ptr<Trainer> trainer = TinyTrainer();
    std::unique_ptr<BatchLoader> train = Loader(data, true);
    TrainLoopOptions options;
    options.solver = Solver(dir, 12);
    options.solver.snapshot_prefix = (dir.path / "stop").string();
    options.control = &control;
    options.on_iteration = [&](int64_t iteration, const StepResult&) {
      if (iteration == 2) control.snapshot = true;
      if (iteration == 7) control.stop = true;
    };
    std::unique_ptr<TrainLog> log = FileLog(dir, "stopped");
    StatusOr<TrainLoopResult> result = RunTrainLoop(*trainer, *train, nullptr, options, *log);
    REQUIRE(result.ok());
    stopped = *result;
  }
  CHECK(stopped.stopped);
  CHECK(stopped.iteration == 7);
  CHECK(fs::exists(SnapshotPath((dir.path / "stop").string(), 2)));
  CHECK(stopped.last_snapshot == SnapshotPath((dir.path / "stop").string(), 7));
  CHECK(Count(Lines(ReadAll(dir.path / "stopped.log")), "Stopped at iteration 7 on request") == 1);
  CHECK_FALSE(control.stop);  // the loop consumed the requests
  CHECK_FALSE(control.snapshot);

  // Resuming from the stop snapshot gives the uninterrupted run's losses, bit for bit.
  std::vector<double> resumed;
  {
    std::unique_ptr<Trainer> trainer = TinyTrainer();
    std::unique_ptr<BatchLoader> train = Loader(data, true);
    StatusOr<SnapshotInfo> info = RestoreSnapshot(*trainer, train.get(), stopped.last_snapshot);
    INFO(info.status().ToString());
    REQUIRE(info.ok());
    CHECK(info->iteration == 7);
    TrainLoopOptions options;
    options.solver = Solver(dir, 12);
    options.on_iteration = [&](int64_t, const StepResult& step) { resumed.push_back(step.loss); };
    std::unique_ptr<TrainLog> log = FileLog(dir, "resumed");
    REQUIRE(RunTrainLoop(*trainer, *train, nullptr, options, *log).ok());
  }
  REQUIRE(resumed.size() == 5);
  for (size_t i = 0; i < resumed.size(); ++i) {
    INFO("iteration " << 8 + i);
    CHECK(resumed[i] == losses[7 + i]);
  }
}

constexpr int64_t kLmVocab = 11, kLmSteps = 5, kLmStreams = 3, kLmRowLength = 23;  // 4 windows per row

// Embedding 6 -> LSTM 8 (sequences) -> a classifier per step over the vocabulary: a loss per token.
graph::Network TinyLanguageModel() {
  graph::Sequential lm({kLmSteps}, DType::kInt32, {kLmSteps});
  graph::FullyConnectedSpec per_step = graph::FullyConnected(kLmVocab);
  per_step.axis = 2;
  lm.Add(graph::Embedding(kLmVocab, 6)).Add(graph::Lstm(8, 1, true)).Add(per_step);
  StatusOr<graph::Network> network = lm.Build();
  REQUIRE(network.ok());
  return *network;
}

// kLmStreams rows of kLmRowLength token ids, a noisy cycle through the vocabulary.
Tensor LmTokens(uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor tokens = Tensor::Empty({kLmStreams * kLmRowLength}, DType::kInt32);
  for (int64_t i = 0; i < tokens.numel(); ++i)
    tokens.data<int32_t>()[i] = static_cast<int32_t>((i * 3 + rng() % 4) % kLmVocab);
  return tokens;
}

std::vector<double> ParamValues(const Trainer& trainer, const std::string& name) {
  StatusOr<Tensor> param = trainer.params().param(name);
  INFO(param.status().ToString());
  REQUIRE(param.ok());
  const float* data = param->data<float>();
  return std::vector<double>(data, data + param->numel());
}

// The mean cross-entropy per token of the TinyLanguageModel over the windows a TokenStream makes of `tokens`,
// computed naively in double from the trainer's weights: every row one sequence of `scored` predictions (input
// token t, label token t + 1), its state carried over the whole row, or zeroed every `reset_every` tokens when
// that is > 0 (as an evaluation that did not carry the state from window to window would).
double BruteForceTokenLoss(const Trainer& trainer, const Tensor& tokens, int64_t scored, int64_t reset_every) {
  const std::vector<double> embed = ParamValues(trainer, "embed1.w"), w = ParamValues(trainer, "lstm1.l0.w"),
                            u = ParamValues(trainer, "lstm1.l0.u"), b = ParamValues(trainer, "lstm1.l0.b"),
                            fc_w = ParamValues(trainer, "fc1.w"), fc_b = ParamValues(trainer, "fc1.b");
  const int64_t dim = static_cast<int64_t>(embed.size()) / kLmVocab, units = static_cast<int64_t>(b.size()) / 4;
  const auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  double loss_sum = 0.0;
  for (int64_t row = 0; row < kLmStreams; ++row) {
    const int32_t* text = tokens.data<int32_t>() + row * kLmRowLength;
    std::vector<double> h(units, 0.0), c(units, 0.0), preact(4 * units);
    for (int64_t t = 0; t < scored; ++t) {
      if (reset_every > 0 && t % reset_every == 0) {
        std::fill(h.begin(), h.end(), 0.0);
        std::fill(c.begin(), c.end(), 0.0);
      }
      const double* x = embed.data() + text[t] * dim;
      for (int64_t g = 0; g < 4 * units; ++g) {
        double sum = b[g];
        for (int64_t k = 0; k < dim; ++k) sum += w[g * dim + k] * x[k];
        for (int64_t k = 0; k < units; ++k) sum += u[g * units + k] * h[k];
        preact[g] = sum;
      }
      for (int64_t j = 0; j < units; ++j) {  // gates i, f, g, o
        const double i = sigmoid(preact[j]), f = sigmoid(preact[units + j]), g = std::tanh(preact[2 * units + j]),
                     o = sigmoid(preact[3 * units + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * std::tanh(c[j]);
      }
      std::vector<double> logits(kLmVocab);
      for (int64_t v = 0; v < kLmVocab; ++v) {
        logits[v] = fc_b[v];
        for (int64_t k = 0; k < units; ++k) logits[v] += fc_w[v * units + k] * h[k];
      }
      const double top = *std::max_element(logits.begin(), logits.end());
      double total = 0.0;
      for (double logit : logits) total += std::exp(logit - top);
      loss_sum += top + std::log(total) - logits[text[t + 1]];
    }
  }
  return loss_sum / static_cast<double>(kLmStreams * scored);
}

// The number after "\"name\":" in a metrics line.
double JsonField(const std::string& line, const std::string& name) {
  const size_t at = line.find("\"" + name + "\":");
  REQUIRE(at != std::string::npos);
  return std::stod(line.substr(at + name.size() + 3));
}

TEST_CASE("a language model's test pass logs the perplexity of its mean loss over every token", "[cli]") {
  TempDir dir;
  const graph::Network network = TinyLanguageModel();
  TrainerOptions trainer_options{.batch_size = kLmStreams, .seed = 7, .carry_state = true};
  trainer_options.solver.type = ops::SolverType::kAdam;
  trainer_options.solver.lr.base_lr = 0.02f;
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(network, trainer_options);
  INFO(trainer.status().ToString());
  REQUIRE(trainer.ok());
  CHECK(HasPerTokenLoss((*trainer)->eval_graph()));
  CHECK(HasPerTokenLoss((*trainer)->train_graph()));

  const Tensor train_tokens = LmTokens(1), test_tokens = LmTokens(2);
  StatusOr<std::unique_ptr<TokenStream>> train =
      TokenStream::Create(train_tokens, {.batch = kLmStreams, .steps = kLmSteps});
  StatusOr<std::unique_ptr<TokenStream>> test =
      TokenStream::Create(test_tokens, {.batch = kLmStreams, .steps = kLmSteps});
  REQUIRE(train.ok());
  REQUIRE(test.ok());
  REQUIRE((*test)->batches_per_epoch() == 4);
  TrainLoopOptions options;
  options.solver = Solver(dir, 6);
  options.solver.test_interval = 3;
  options.solver.test_iter = 100;  // more than the split has: the pass is the whole split
  std::vector<double> train_losses;
  options.on_iteration = [&](int64_t, const StepResult& step) { train_losses.push_back(step.loss); };
  std::unique_ptr<TrainLog> log = FileLog(dir, "lm");
  StatusOr<TrainLoopResult> result = RunTrainLoop(**trainer, **train, test->get(), options, *log);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  log.reset();
  REQUIRE(result->test.has_value());
  const int64_t scored = 4 * kLmSteps;  // per row: 4 windows of 5 predictions; the last 2 tokens are left out
  CHECK(result->test->examples == kLmStreams * scored);

  // The test loss is the mean over every token of the split, each row read as one stream.
  const double brute = BruteForceTokenLoss(**trainer, test_tokens, scored, 0);
  CHECK(result->test->loss == Approx(brute).epsilon(1e-6));
  // Sanity: zeroing the state at every window changes the mean by far more than that tolerance (1.8e-3 of it).
  CHECK(std::abs(BruteForceTokenLoss(**trainer, test_tokens, scored, kLmSteps) - brute) > 1e-3);

  const std::vector<std::string> metrics = Lines(ReadAll(dir.path / "lm.jsonl"));
  REQUIRE(metrics.size() == 6 + 3);  // test passes at 0 (test_initialization) and 3, and the final one at 6
  int train_lines = 0;
  for (const std::string& line : metrics) {
    INFO(line);
    const double perplexity = JsonField(line, "perplexity");
    CHECK(perplexity == Approx(std::exp(JsonField(line, "loss"))).epsilon(1e-8));
    if (line.find("\"phase\":\"train\"") != std::string::npos) {
      REQUIRE(train_lines < static_cast<int>(train_losses.size()));
      CHECK(perplexity == Approx(std::exp(train_losses[train_lines++])).epsilon(1e-8));
    }
  }
  CHECK(train_lines == 6);
  CHECK(JsonField(metrics.back(), "perplexity") == Approx(std::exp(brute)).epsilon(1e-5));
  const std::vector<std::string> lines = Lines(ReadAll(dir.path / "lm.log"));
  CHECK(Count(lines, "    Test net output #2: perplexity = ") == 3);
  char final_line[64];
  std::snprintf(final_line, sizeof(final_line), "Test net output #2: perplexity = %.2f", std::exp(result->test->loss));
  CHECK(Count(lines, final_line) >= 1);

  // TensorBoard gets the same numbers under "train/perplexity" and "test/perplexity".
  const std::string events = ReadAll(result->tensorboard_events);
  CHECK(events.find("train/perplexity") != std::string::npos);
  CHECK(events.find("test/perplexity") != std::string::npos);
}

TEST_CASE("the train loop refuses a trainer at max_iter and a test interval without test data", "[cli]") {
  TempDir dir;
  const Dataset data = TinyData();
  std::unique_ptr<Trainer> trainer = TinyTrainer();
  std::unique_ptr<BatchLoader> train = Loader(data, true);
  std::unique_ptr<TrainLog> log = FileLog(dir, "refused");
  TrainLoopOptions options;
  options.solver = Solver(dir, 1);
  options.solver.test_interval = 1;
  options.solver.test_iter = 1;
  StatusOr<TrainLoopResult> no_test = RunTrainLoop(*trainer, *train, nullptr, options, *log);
  CHECK(no_test.status().code() == StatusCode::kInvalidArgument);
  options.solver.test_interval = 0;
  REQUIRE(RunTrainLoop(*trainer, *train, nullptr, options, *log).ok());
  StatusOr<TrainLoopResult> again = RunTrainLoop(*trainer, *train, nullptr, options, *log);
  CHECK(again.status().code() == StatusCode::kFailedPrecondition);
  CHECK(again.status().message().find("not fewer than max_iter = 1") != std::string::npos);
}

TEST_CASE("train log lines and durations and metrics lines", "[cli]") {
  const std::string prefix = LogLinePrefix('I', std::chrono::system_clock::now(), "/a/b/train_loop.cc", 88);
  CHECK(std::regex_match(prefix, std::regex(R"(I\d{4} \d\d:\d\d:\d\d\.\d{3} train_loop\.cc:88\] )")));
  CHECK(FormatDuration(0.4) == "0s");
  CHECK(FormatDuration(45.9) == "45s");
  CHECK(FormatDuration(80) == "1m20s");
  CHECK(FormatDuration(7380) == "2h03m");
  CHECK(FormatDuration(3 * 86400 + 4 * 3600 + 5) == "3d04h");
  CHECK(FormatDuration(std::numeric_limits<double>::infinity()) == "0s");

  const double loss = 0.1 + 0.2;  // not exactly representable in fewer than 17 digits
  const std::string line = MetricsJson({.iteration = 5,
                                        .phase = "train",
                                        .loss = loss,
                                        .accuracy = 0.5,
                                        .lr = 0.01,
                                        .step_ms = 12.5,
                                        .flop_ratio = 0.25,
                                        .wall_s = 1.5});
  CHECK(line ==
        "{\"iteration\":5,\"phase\":\"train\",\"loss\":0.30000000000000004,\"accuracy\":0.5,\"lr\":0.01,"
        "\"step_ms\":12.5,\"flop_ratio\":0.25,\"wall_s\":1.5}");
  CHECK(std::stod("0.30000000000000004") == loss);
  const std::string test = MetricsJson({.iteration = 3, .phase = "test", .loss = std::nan(""), .accuracy = 1});
  CHECK(test == "{\"iteration\":3,\"phase\":\"test\",\"loss\":null,\"accuracy\":1,\"wall_s\":0}");
}

TEST_CASE("the progress line redraws in place on a terminal and is left out when piped", "[cli]") {
  for (bool terminal : {true, false}) {
    std::FILE* console = std::tmpfile();
    REQUIRE(console != nullptr);
    {
      StatusOr<std::unique_ptr<TrainLog>> log = TrainLog::Open({.console = console, .progress = terminal});
      REQUIRE(log.ok());
      (*log)->Progress("Iteration 1/10");
      (*log)->Info("a line");
    }
    std::rewind(console);
    std::string text(4096, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), console));
    std::fclose(console);
    INFO(text);
    CHECK((text.find("\r\033[KIteration 1/10") != std::string::npos) == terminal);
    CHECK((text.find('\r') != std::string::npos) == terminal);
    CHECK(text.find("] a line\n") != std::string::npos);
  }
}

TEST_CASE("net data sources open by the Input's shape and name what provides missing data", "[cli]") {
  TempDir dir;
  const std::string classifier =
      "layer { name: 'label' type: 'Label' top: 'label' }\n"
      "layer { name: 'fc' type: 'FullyConnected' bottom: 'data' top: 'fc' fully_connected_param { num_output: 3 } }\n"
      "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'fc' bottom: 'label' }\n";
  const std::string language_model =
      "layer { name: 'label' type: 'Label' top: 'label' label_param { shape { dim: 8 } } }\n"
      "layer { name: 'emb' type: 'Embedding' bottom: 'data' top: 'emb' embedding_param { input_dim: 21 num_output: 4 } "
      "}\n"
      "layer { name: 'fc' type: 'FullyConnected' bottom: 'emb' top: 'fc' fully_connected_param { num_output: 21 axis: "
      "2 } }\n"
      "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'fc' bottom: 'label' }\n";
  const auto net = [&](const std::string& input, const std::string& source) {
    const bool tokens = input.find("INT32") != std::string::npos;
    StatusOr<NetConfig> config =
        ParseNetConfig("layer { name: 'data' type: 'Input' top: 'data' input_param { " + input + " batch_size: 4 " +
                           source + " } }\n" + (tokens ? language_model : classifier),
                       NetPhase::kTrain, "net.prototxt");
    INFO(config.status().ToString());
    REQUIRE(config.ok());
    return *config;
  };
  const std::string missing = (dir.path / "absent").string();
  StatusOr<std::unique_ptr<BatchSource>> absent =
      OpenNetSource(net("shape { dim: 1 dim: 28 dim: 28 }", "source { fashion_mnist { dir: '" + missing + "' } }"),
                    NetPhase::kTrain, 4, 1);
  CHECK(absent.status().code() == StatusCode::kNotFound);
  CHECK(absent.status().message().find("dataset-fashion-mnist") != std::string::npos);
  StatusOr<std::unique_ptr<BatchSource>> wrong =
      OpenNetSource(net("shape { dim: 100 }", "source { fashion_mnist { } }"), NetPhase::kTrain, 4, 1);
  CHECK(wrong.status().code() == StatusCode::kInvalidArgument);
  CHECK(wrong.status().message().find("Input layer 'data' (per-sample shape [100], float32)") != std::string::npos);
  StatusOr<std::unique_ptr<BatchSource>> no_corpus =
      OpenNetSource(net("shape { dim: 8 } dtype: INT32", "source { text_corpus { dir: '" + missing + "' } }"),
                    NetPhase::kTrain, 4, 1);
  CHECK(no_corpus.status().code() == StatusCode::kNotFound);
  CHECK(no_corpus.status().message().find("prepare_austen.sh") != std::string::npos);

  // A generated corpus: token windows of the Input's length, the split by the phase.
  REQUIRE(WriteTextCorpus((dir.path / "corpus").string(), GenerateTinyCorpus(200, 3)).ok());
  const NetConfig lm =
      net("shape { dim: 8 } dtype: INT32", "source { text_corpus { dir: '" + (dir.path / "corpus").string() + "' } }");
  CHECK(IsStatefulSource(lm));
  StatusOr<std::unique_ptr<BatchSource>> stream = OpenNetSource(lm, NetPhase::kTest, 4, 1);
  INFO(stream.status().ToString());
  REQUIRE(stream.ok());
  const Batch batch = (*stream)->Next();
  CHECK(batch.features.shape() == Shape{4, 8});
  CHECK(batch.labels.shape() == Shape{4, 8});
  StatusOr<std::unique_ptr<BatchSource>> first = FirstBatches(**stream, 1);
  REQUIRE(first.ok());
  CHECK((*first)->batches_per_epoch() == 1);
  CHECK((*stream)->position() == LoaderPosition{});
}

}  // namespace
}  // namespace sieve::runtime
