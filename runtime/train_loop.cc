// The training loop of `sieve train` (train_loop.h) and the batch sources of net files.
#include "runtime/train_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/checkpoint.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/dataset.h"
#include "runtime/data/text_corpus.h"
#include "runtime/data/token_stream.h"
#include "runtime/tensorboard_writer.h"

namespace sieve::runtime {

namespace {

// The first `batches` batches of another source, as a source of its own.
class FirstBatchesSource final : public BatchSource {
 public:
  FirstBatchesSource(BatchSource& source, int64_t batches) : source_(source), batches_(batches) {}
  Batch Next() override { return source_.Next(); }
  LoaderPosition position() const override { return source_.position(); }
  Status Seek(LoaderPosition position) override { return source_.Seek(position); }
  int64_t batches_per_epoch() const override { return batches_; }

 private:
  BatchSource& source_;
  int64_t batches_;
};

// printf into a string of any length (the lines carry paths).
std::string Format(const char* format, auto... args) {
  std::string text(static_cast<size_t>(std::snprintf(nullptr, 0, format, args...)), '\0');
  std::snprintf(text.data(), text.size() + 1, format, args...);
  return text;
}

// The Input layer a net's data feeds: the one that gave the batch size or source, else the first.
const graph::Layer* DataLayer(const NetConfig& net) {
  const graph::Layer* first = nullptr;
  for (const graph::Layer& layer : net.network.layers()) {
    if (!std::holds_alternative<graph::InputSpec>(layer.spec)) continue;
    if (layer.name == net.data_layer) return &layer;
    if (!first) first = &layer;
  }
  return first;
}

// The test pass: `batches` batches (0: the whole split) from the start of `test`.
StatusOr<EvalResult> TestPass(Trainer& trainer, BatchSource& test, int64_t batches) {
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<BatchSource> first,
                         FirstBatches(test, batches > 0 ? batches : test.batches_per_epoch()));
  return trainer.Evaluate(*first);
}

// Each patterned site's drop rate this iteration, from the patterns the passes set: the dropped share of the
// units (row) or input maps (channel) and the pattern's 1 - 1/dp (tile). Bernoulli sites draw their masks on
// the device and have no pattern to read; a site without a pattern drops nothing.
std::vector<std::pair<std::string, double>> AchievedDropRates(const graph::Graph& graph) {
  std::vector<std::pair<std::string, double>> rates;
  for (const graph::DropoutSite& site : graph.sites()) {
    if (site.kind == graph::SiteKind::kBernoulli) continue;
    double rate = 0.0;
    if (site.pattern) {
      const double width = static_cast<double>(site.width);
      if (const auto* row = std::get_if<ops::RowPattern>(&*site.pattern)) {
        rate = 1.0 - static_cast<double>(row->KeptCount(site.width)) / width;
      } else if (const auto* tile = std::get_if<ops::TilePattern>(&*site.pattern)) {
        rate = 1.0 - 1.0 / static_cast<double>(tile->dp);
      } else {
        rate = 1.0 - static_cast<double>(std::get<ops::ChannelSet>(*site.pattern).kept.size()) / width;
      }
    }
    rates.emplace_back(site.name, rate);
  }
  return rates;
}

// A metrics line as TensorBoard scalars: "<phase>/<field>" for every field but the iteration and the wall
// time, "<phase>/drop_rate/<site>" for the drop rates.
std::vector<TaggedScalar> TensorBoardScalars(const MetricsRecord& record) {
  const std::string prefix = record.phase + "/";
  std::vector<TaggedScalar> scalars = {{prefix + "loss", record.loss}, {prefix + "accuracy", record.accuracy}};
  const auto optional = [&](const char* name, const std::optional<double>& value) {
    if (value) scalars.emplace_back(prefix + name, *value);
  };
  optional("perplexity", record.perplexity);
  optional("lr", record.lr);
  optional("step_ms", record.step_ms);
  optional("flop_ratio", record.flop_ratio);
  optional("examples_per_s", record.examples_per_s);
  for (const auto& [site, rate] : record.drop_rates) scalars.emplace_back(prefix + "drop_rate/" + site, rate);
  return scalars;
}

}  // namespace

std::string SnapshotPath(const std::string& prefix, int64_t iteration) {
  return prefix + "_iter_" + std::to_string(iteration) + ".sievestate";
}

StatusOr<std::unique_ptr<BatchSource>> FirstBatches(BatchSource& source, int64_t batches) {
  SIEVE_ENSURE(batches >= 1, StatusCode::kInvalidArgument, "a test pass needs at least one batch; got " << batches);
  SIEVE_RETURN_IF_ERROR(source.Seek({}));
  return std::unique_ptr<BatchSource>(
      std::make_unique<FirstBatchesSource>(source, std::min(batches, source.batches_per_epoch())));
}

StatusOr<TrainLoopResult> RunTrainLoop(Trainer& trainer, BatchSource& train, BatchSource* test,
                                       const TrainLoopOptions& options, TrainLog& log) {
  const SolverFile& solver = options.solver;
  const int64_t max_iter = solver.max_iter;
  const int64_t start = trainer.iteration();
  SIEVE_ENSURE(start < max_iter, StatusCode::kFailedPrecondition,
               "the trainer has done " << start << " iterations, not fewer than max_iter = " << max_iter
                                       << ": there is nothing to train");
  SIEVE_ENSURE(test != nullptr || solver.test_interval == 0, StatusCode::kInvalidArgument,
               "test_interval = " << solver.test_interval << " needs a test source");
  TrainLoopResult result;
  int64_t snapshot_iteration = -1;
  // A language model's perplexity per token; nothing for other nets.
  const bool per_token = HasPerTokenLoss(trainer.eval_graph());
  const auto perplexity = [per_token](double loss) -> std::optional<double> {
    if (!per_token) return std::nullopt;
    return std::exp(loss);
  };

  std::unique_ptr<TensorBoardWriter> events;
  if (const std::string& metrics = log.options().metrics_path; !metrics.empty()) {
    const std::string folder = std::filesystem::path(metrics).parent_path().string();
    SIEVE_ASSIGN_OR_RETURN(events, TensorBoardWriter::Create(folder.empty() ? "." : folder));
    result.tensorboard_events = events->path();
  }
  // One metrics line, to the metrics file and as scalars to the event file.
  const auto metrics = [&](const MetricsRecord& record) -> Status {
    SIEVE_RETURN_IF_ERROR(log.Metrics(record));
    if (!events) return Status::Ok();
    const std::vector<TaggedScalar> scalars = TensorBoardScalars(record);
    return events->WriteScalars(record.iteration, scalars);
  };

  const auto snapshot = [&](int64_t iteration) -> Status {
    const std::string path = SnapshotPath(solver.snapshot_prefix, iteration);
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    std::error_code error;
    if (!folder.empty()) std::filesystem::create_directories(folder, error);
    SIEVE_ENSURE(!error, StatusCode::kUnavailable,
                 "cannot create the snapshot folder '" << folder.string() << "': " << error.message());
    log.Info("Snapshotting to " + path);
    SIEVE_RETURN_IF_ERROR(SaveSnapshot(trainer, &train, path));
    log.Info("Snapshot written: " + path);
    result.last_snapshot = path;
    snapshot_iteration = iteration;
    return Status::Ok();
  };
  const auto run_test = [&](int64_t iteration) -> Status {
    log.Info(Format("Iteration %lld, Testing net (#0)", static_cast<long long>(iteration)));
    const auto begin = std::chrono::steady_clock::now();
    SIEVE_ASSIGN_OR_RETURN(result.test, TestPass(trainer, *test, solver.test_iter));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
    log.Info(Format("    Test net output #0: accuracy = %.4f", result.test->accuracy));
    log.Info(Format("    Test net output #1: loss = %.4f", result.test->loss));
    const std::optional<double> test_perplexity = perplexity(result.test->loss);
    if (test_perplexity) log.Info(Format("    Test net output #2: perplexity = %.2f", *test_perplexity));
    return metrics({.iteration = iteration,
                    .phase = "test",
                    .loss = result.test->loss,
                    .accuracy = result.test->accuracy,
                    .perplexity = test_perplexity,
                    .step_ms = ms});
  };
  const auto requested = [&](std::atomic<bool>& flag) { return flag.exchange(false); };

  using Clock = std::chrono::steady_clock;
  // The rate covers the training iterations since the previous display line, test passes excluded.
  double window_seconds = 0.0;
  int64_t window_iterations = 0;
  int64_t iteration = start;
  log.Info(Format("Solving from iteration %lld to max_iter %lld", static_cast<long long>(start),
                  static_cast<long long>(max_iter)));
  while (iteration < max_iter) {
    if (test && solver.test_interval > 0 && iteration % solver.test_interval == 0 &&
        (iteration > 0 || solver.test_initialization)) {
      SIEVE_RETURN_IF_ERROR(run_test(iteration));
    }
    const auto begin = Clock::now();
    const Batch batch = train.Next();
    SIEVE_ASSIGN_OR_RETURN(const StepResult step, trainer.Step(batch.features, batch.labels));
    if (train.position().batch == 0) SIEVE_RETURN_IF_ERROR(trainer.FinishEpoch());
    const double step_ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
    iteration = trainer.iteration();
    window_seconds += step_ms / 1000.0;
    ++window_iterations;
    const double flop_ratio = step.dense_flops > 0 ? static_cast<double>(step.executed_flops) / step.dense_flops : 1.0;
    const double examples = batch.features.shape().empty() ? 0.0 : static_cast<double>(batch.features.shape()[0]);
    SIEVE_RETURN_IF_ERROR(metrics({.iteration = iteration,
                                   .phase = "train",
                                   .loss = step.loss,
                                   .accuracy = step.accuracy,
                                   .perplexity = perplexity(step.loss),
                                   .lr = step.lr,
                                   .step_ms = step_ms,
                                   .flop_ratio = flop_ratio,
                                   .examples_per_s = examples / (step_ms / 1000.0),
                                   .drop_rates = AchievedDropRates(trainer.train_graph())}));
    const bool display = solver.display > 0 && iteration % solver.display == 0;
    if (events && display) {
      for (const graph::ChannelEstimates& estimates : trainer.channel_dropout().Estimates()) {
        SIEVE_RETURN_IF_ERROR(
            events->WriteHistogram(iteration, "sensitivity/" + estimates.site, estimates.sensitivity));
      }
    }
    const double rate = static_cast<double>(window_iterations) / window_seconds;
    const std::string eta = FormatDuration(static_cast<double>(max_iter - iteration) / rate);
    if (display) {
      log.Info(Format("Iteration %lld, loss = %.4f, lr = %g, %.1f iter/s, ETA %s", static_cast<long long>(iteration),
                      step.loss, static_cast<double>(step.lr), rate, eta.c_str()));
      window_seconds = 0.0;
      window_iterations = 0;
    } else {
      log.Progress(Format("Iteration %lld/%lld, loss = %.4f, %.1f iter/s, ETA %s", static_cast<long long>(iteration),
                          static_cast<long long>(max_iter), step.loss, rate, eta.c_str()));
    }
    if (options.on_iteration) options.on_iteration(iteration, step);

    const bool stop = options.control && requested(options.control->stop);
    const bool asked = options.control && requested(options.control->snapshot);
    if (stop || asked || (solver.snapshot > 0 && iteration % solver.snapshot == 0)) {
      SIEVE_RETURN_IF_ERROR(snapshot(iteration));
    }
    if (stop) {
      log.Info(Format("Stopped at iteration %lld on request; resume with --snapshot %s",
                      static_cast<long long>(iteration), result.last_snapshot.c_str()));
      result.stopped = true;
      break;
    }
  }
  result.iteration = iteration;
  if (result.stopped) return result;
  if (solver.snapshot_after_train && snapshot_iteration != iteration) SIEVE_RETURN_IF_ERROR(snapshot(iteration));
  if (test) SIEVE_RETURN_IF_ERROR(run_test(iteration));
  log.Info("Optimization Done.");
  return result;
}

bool HasPerTokenLoss(const graph::Graph& graph) {
  int losses = 0;
  bool unit_weight = false;
  for (const graph::Node& node : graph.nodes()) {
    if (node.kind != graph::OpKind::kSoftmaxXent) continue;
    const float weight = std::get<graph::SoftmaxXentAttr>(node.attr).loss_weight;
    if (weight == 0.0f) continue;  // an Accuracy layer's node of its own
    ++losses;
    unit_weight = weight == 1.0f;
  }
  if (losses != 1 || !unit_weight) return false;
  return std::ranges::any_of(graph.values(), [](const graph::Value& value) {
    return value.role == graph::ValueRole::kLabel && !value.view && value.planned.size() >= 2;
  });
}

bool IsStatefulSource(const NetConfig& net) { return net.source.kind == DataSourceKind::kTextCorpus; }

StatusOr<std::unique_ptr<BatchSource>> OpenNetSource(const NetConfig& net, NetPhase phase, int64_t batch_size,
                                                     uint64_t seed) {
  const graph::Layer* layer = DataLayer(net);
  SIEVE_ENSURE(layer != nullptr, StatusCode::kInvalidArgument,
               "the net '" << net.name << "' has no Input layer in phase " << NetPhaseName(phase));
  const auto& input = std::get<graph::InputSpec>(layer->spec);
  const std::string described = "Input layer '" + layer->name + "' (per-sample shape " + ShapeToString(input.shape) +
                                ", " + DTypeName(input.dtype) + ")";
  DataSource source = net.source;
  if (source.kind == DataSourceKind::kNone) {
    SIEVE_ENSURE(input.dtype == DType::kFloat32 && ShapeNumel(input.shape) == kFashionMnistRows * kFashionMnistCols,
                 StatusCode::kInvalidArgument,
                 "the " << described << " names no data source and does not take Fashion-MNIST images; give it "
                        << "input_param.source (fashion_mnist or text_corpus)");
    source.kind = DataSourceKind::kFashionMnist;
  }
  switch (source.kind) {
    case DataSourceKind::kFashionMnist: {
      SIEVE_ENSURE(input.dtype == DType::kFloat32 && ShapeNumel(input.shape) == kFashionMnistRows * kFashionMnistCols,
                   StatusCode::kInvalidArgument,
                   "Fashion-MNIST gives 784 float32 values per image (shape [784] flat, [28, 28] rows or [1, 28, 28]); "
                   "the "
                       << described << " does not hold them");
      const Split split = phase == NetPhase::kTrain ? Split::kTrain : Split::kTest;
      SIEVE_ASSIGN_OR_RETURN(Dataset data, LoadFashionMnist(source.dir, split));
      BatchLoaderOptions loader;
      loader.batch_size = batch_size;
      loader.seed = seed;
      loader.shuffle = phase == NetPhase::kTrain;
      loader.drop_last = phase == NetPhase::kTrain;
      SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<BatchLoader> batches, BatchLoader::Create(std::move(data), loader));
      return std::unique_ptr<BatchSource>(std::move(batches));
    }
    case DataSourceKind::kTextCorpus: {
      SIEVE_ENSURE(input.dtype == DType::kInt32 && input.shape.size() == 1, StatusCode::kInvalidArgument,
                   "a text corpus gives int32 token ids, one window of tokens per sample (shape [steps]); the "
                       << described << " does not take them");
      SIEVE_ASSIGN_OR_RETURN(TextCorpus corpus, TextCorpus::Load(source.dir, source.level));
      const CorpusSplit split = phase == NetPhase::kTrain ? CorpusSplit::kTrain : CorpusSplit::kTest;
      SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<TokenStream> stream,
                             TokenStream::Create(corpus.tokens(split), {.batch = batch_size, .steps = input.shape[0]}));
      return std::unique_ptr<BatchSource>(std::move(stream));
    }
    case DataSourceKind::kNone:
    case DataSourceKind::kCount:
      break;
  }
  return SIEVE_ERROR(StatusCode::kInternal, "unhandled data source kind " << DataSourceKindName(source.kind));
}

}  // namespace sieve::runtime
