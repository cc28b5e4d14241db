// The Trainer (trainer.h): lowering, binding, the training step, Fit, Evaluate and weight files.
#include "runtime/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <variant>

#include "framework/file_io.h"
#include "framework/logging.h"
#include "framework/memory.h"
#include "graph/autodiff.h"
#include "graph/pattern_pass.h"
#include "graph/sensitivity_pass.h"
#include "ops/kernels/gather_scatter.h"
#include "runtime/data/batch_loader.h"
#include "runtime/unit_shuffle.h"

namespace sieve::runtime {

namespace {

using graph::ValueId;

// The label a padded evaluation row carries: the ignore label every softmax node of the graph
// shares, after giving -1 (never a class) to the nodes that had none.
StatusOr<int32_t> SetPaddingLabel(graph::Graph& graph) {
  std::set<int32_t> labels;
  for (const graph::Node& node : graph.nodes()) {
    if (node.kind != graph::OpKind::kSoftmaxXent) continue;
    auto& attr = std::get<graph::SoftmaxXentAttr>(graph.mutable_node(node.id).attr);
    if (!attr.ignore_label) attr.ignore_label = -1;
    labels.insert(*attr.ignore_label);
  }
  SIEVE_ENSURE(labels.size() <= 1, StatusCode::kInvalidArgument,
               "the loss layers ignore different labels; evaluation cannot pad a partial batch");
  return labels.empty() ? -1 : *labels.begin();
}

double WeightedLoss(const graph::Graph& graph, const Executor& exec, const std::vector<graph::LossHead>& losses) {
  double loss = 0.0;
  for (const graph::LossHead& head : losses)
    loss += std::get<graph::SoftmaxXentAttr>(graph.node(head.node).attr).loss_weight * exec.Stats(head.node).loss();
  return loss;
}

// The node whose statistics give the accuracy: the first metric, else the first loss.
graph::NodeId AccuracyNode(const graph::LoweredNet& net) {
  return net.metrics.empty() ? net.losses.front().node : net.metrics.front().node;
}

}  // namespace

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const graph::Network& network, TrainerOptions options) {
  SIEVE_ENSURE(options.batch_size >= 1, StatusCode::kInvalidArgument,
               "batch_size " << options.batch_size << " must be at least 1");
  if (options.eval_batch_size == 0) options.eval_batch_size = options.batch_size;
  SIEVE_ENSURE(options.eval_batch_size >= 1, StatusCode::kInvalidArgument,
               "eval_batch_size " << options.eval_batch_size << " must be at least 1");
  SIEVE_ASSIGN_OR_RETURN(Solver solver, Solver::Create(options.solver));
  std::unique_ptr<Trainer> t(new Trainer(std::move(options), std::move(solver)));
  const TrainerOptions& opt = t->options_;

  SIEVE_ASSIGN_OR_RETURN(t->train_, graph::Lower(network, {.batch = opt.batch_size, .training = true}));
  SIEVE_ASSIGN_OR_RETURN(t->eval_, graph::Lower(network, {.batch = opt.eval_batch_size, .training = false}));
  SIEVE_ENSURE(!t->train_.losses.empty(), StatusCode::kInvalidArgument,
               "the network has no loss layer (SoftmaxCrossEntropy) to train");
  std::vector<graph::NodeId> loss_nodes;
  for (const graph::LossHead& head : t->train_.losses) loss_nodes.push_back(head.node);
  SIEVE_ASSIGN_OR_RETURN(const graph::Gradients grads,
                         graph::AppendBackward(t->train_.graph, loss_nodes, t->train_.custom_gradients));
  t->grads_ = grads.params;

  for (const graph::ParamDecl& p : t->train_.params) SIEVE_RETURN_IF_ERROR(t->arena_.Register(p.name, p.shape, p.spec));
  SIEVE_RETURN_IF_ERROR(t->arena_.Finalize(opt.device, opt.solver.type));
  SIEVE_RETURN_IF_ERROR(t->arena_.Initialize(opt.seed));

  graph::MemoryPlanOptions train_plan;
  for (const auto& [final_state, initial] : t->train_.state_carry) train_plan.keep_alive.push_back(final_state);
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<graph::SensitivityDropPass> channel_drop,
                         graph::MakeSensitivityDropPass(t->train_.graph, graph::ChannelSiteConfigs(network)));
  for (const ValueId observed : channel_drop->ObservedValues()) train_plan.keep_alive.push_back(observed);
  graph::MemoryPlanOptions eval_plan;
  for (const auto& [final_state, initial] : t->eval_.state_carry) eval_plan.keep_alive.push_back(final_state);
  SIEVE_ASSIGN_OR_RETURN(t->train_exec_, Executor::Create(t->train_.graph, opt.device, train_plan));
  SIEVE_ASSIGN_OR_RETURN(t->eval_exec_, Executor::Create(t->eval_.graph, opt.device, eval_plan));
  SIEVE_RETURN_IF_ERROR(t->BindAll(t->train_, *t->train_exec_, t->train_feeds_, true));
  SIEVE_RETURN_IF_ERROR(t->BindAll(t->eval_, *t->eval_exec_, t->eval_feeds_, false));
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<graph::PatternSamplingPass> sampling,
                         graph::MakePatternSamplingPass(t->train_.graph, opt.search));
  t->sampling_ = sampling.get();
  std::vector<std::unique_ptr<graph::Pass>> choose_patterns;
  choose_patterns.push_back(std::move(sampling));
  t->channel_drop_ = channel_drop.get();
  choose_patterns.push_back(std::move(channel_drop));
  t->pipeline_ = graph::MakeIterationPipeline(std::move(choose_patterns));
  if (opt.defer_updates != DeferMode::kOff && opt.device.is_cpu()) {
    std::vector<DeferredParam> deferred = FindDeferrableParams(t->train_.graph);
    if (!deferred.empty()) {
      std::string names;
      for (const DeferredParam& p : deferred) names += (names.empty() ? "" : ", ") + p.name;
      SIEVE_ASSIGN_OR_RETURN(t->deferred_, DeferredUpdates::Create(t->solver_, t->arena_, std::move(deferred),
                                                                   t->iteration_, opt.defer_updates));
      SIEVE_LOG_INFO("trainer: updates of dropped rows and tiles deferred ({}) for {}",
                     DeferModeName(opt.defer_updates), names);
    }
  }
  SIEVE_LOG_INFO("trainer: {} parameters ({} floats) on {}; training arena {:.1f} MiB (unshared {:.1f} MiB)",
                 t->arena_.size(), t->arena_.param_elements(), opt.device.ToString(),
                 t->train_exec_->plan().arena_bytes / 1048576.0, t->train_exec_->plan().unshared_bytes / 1048576.0);
  return t;
}

Status Trainer::BindAll(const graph::LoweredNet& net, Executor& exec, Feeds& feeds, bool training) {
  const graph::Graph& g = net.graph;
  for (const graph::ParamDecl& p : net.params) {
    SIEVE_ASSIGN_OR_RETURN(const Tensor param, arena_.param(p.name));
    SIEVE_ENSURE(param.shape() == p.shape, StatusCode::kInternal,
                 "parameter '" << p.name << "' is " << ShapeToString(p.shape) << " in the "
                               << (training ? "training" : "evaluation") << " graph but "
                               << ShapeToString(param.shape()) << " in the arena");
    SIEVE_RETURN_IF_ERROR(exec.Bind(p.value, param));
  }
  if (training) {
    for (const auto& [param, grad] : grads_) {
      SIEVE_ASSIGN_OR_RETURN(const Tensor buffer, arena_.grad(g.value(param).name));
      SIEVE_RETURN_IF_ERROR(exec.Bind(grad, buffer));
    }
  }
  std::set<ValueId> initial_states;
  for (const auto& [final_state, initial] : net.state_carry) initial_states.insert(initial);
  std::vector<ValueId> data_inputs;
  for (ValueId input : net.inputs) {
    const graph::Value& v = g.value(input);
    Tensor buffer = Tensor::Zeros(v.planned, v.dtype, options_.device);
    SIEVE_RETURN_IF_ERROR(exec.Bind(input, buffer));
    if (initial_states.count(input)) {
      feeds.states.emplace_back(input, buffer);
    } else {
      data_inputs.push_back(input);
      feeds.data = input;
      feeds.data_buffer = buffer;
    }
  }
  SIEVE_ENSURE(data_inputs.size() == 1 && net.labels.size() == 1, StatusCode::kInvalidArgument,
               "the Trainer feeds one data input and one label input; the network has "
                   << data_inputs.size() << " data input(s) and " << net.labels.size() << " label input(s)");
  feeds.label = net.labels.front();
  const graph::Value& label = g.value(feeds.label);
  feeds.label_buffer = Tensor::Zeros(label.planned, DType::kInt32, options_.device);
  return exec.Bind(feeds.label, feeds.label_buffer);
}

Status Trainer::LoadBatch(Feeds& feeds, const Tensor& features, const Tensor& labels, int32_t pad_label) const {
  const int64_t batch = feeds.data_buffer.dim(0);
  const int64_t per_example = feeds.data_buffer.numel() / batch;
  const int64_t labels_per_example = feeds.label_buffer.numel() / batch;
  const DType dtype = feeds.data_buffer.dtype();
  const int64_t rows = features.rank() > 0 ? features.dim(0) : 0;
  SIEVE_ENSURE(features.device().is_cpu() && features.dtype() == dtype && features.is_contiguous() && rows >= 1 &&
                   rows <= batch && features.numel() == rows * per_example,
               StatusCode::kInvalidArgument,
               "batch features " << features.ToString() << " do not fit the input "
                                 << ShapeToString(feeds.data_buffer.shape()) << ": need contiguous host "
                                 << DTypeName(dtype) << " rows of " << per_example << " values, at most " << batch
                                 << " rows");
  SIEVE_ENSURE(labels.device().is_cpu() && labels.dtype() == DType::kInt32 && labels.is_contiguous() &&
                   labels.numel() == rows * labels_per_example,
               StatusCode::kInvalidArgument,
               "batch labels " << labels.ToString() << " do not fit the label input "
                               << ShapeToString(feeds.label_buffer.shape()) << ": need " << rows * labels_per_example
                               << " contiguous host int32 labels");
  const Device device = options_.device;
  CopyBytes(feeds.data_buffer.raw_data(), device, features.raw_data(), Device::CPU(), features.nbytes());
  CopyBytes(feeds.label_buffer.raw_data(), device, labels.raw_data(), Device::CPU(), labels.nbytes());
  if (rows < batch) {  // padding: zero inputs, labels the losses ignore
    const size_t element = DTypeSize(dtype);
    ZeroBytes(static_cast<char*>(feeds.data_buffer.raw_data()) + features.nbytes(), device,
              static_cast<size_t>((batch - rows) * per_example) * element);
    const std::vector<int32_t> padding(static_cast<size_t>((batch - rows) * labels_per_example), pad_label);
    CopyBytes(feeds.label_buffer.data<int32_t>() + labels.numel(), device, padding.data(), Device::CPU(),
              padding.size() * sizeof(int32_t));
  }
  return Status::Ok();
}

Status Trainer::CarryState() {
  for (const auto& [final_state, initial] : train_.state_carry) {
    SIEVE_ASSIGN_OR_RETURN(const Tensor from, train_exec_->Get(final_state));
    SIEVE_ASSIGN_OR_RETURN(const Tensor to, train_exec_->Get(initial));
    SIEVE_RETURN_IF_ERROR(ops::GatherSubmatrix(from, std::nullopt, std::nullopt, to));
  }
  return Status::Ok();
}

StatusOr<StepResult> Trainer::Step(const Tensor& features, const Tensor& labels) {
  SIEVE_ENSURE(features.rank() > 0 && features.dim(0) == options_.batch_size, StatusCode::kInvalidArgument,
               "a training batch has batch_size = " << options_.batch_size << " rows; got features "
                                                    << features.ToString());
  SIEVE_RETURN_IF_ERROR(LoadBatch(train_feeds_, features, labels, 0));
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  graph::PassContext context{.iteration = iteration_, .seed = options_.seed, .options = options_.passes};
  SIEVE_RETURN_IF_ERROR(pipeline_.Run(train_.graph, context));
  const auto sampled = Clock::now();
  // What this iteration's patterns keep must carry every update before the graph reads it.
  if (deferred_) SIEVE_RETURN_IF_ERROR(deferred_->CatchUpKept(arena_, train_.graph, iteration_));
  const auto caught_up = Clock::now();
  SIEVE_RETURN_IF_ERROR(train_exec_->Run({.iteration = iteration_, .seed = options_.seed}));
  SIEVE_RETURN_IF_ERROR(channel_drop_->Observe(train_.graph, [this](ValueId v) { return train_exec_->Get(v); }));
  const auto ran = Clock::now();
  SIEVE_ASSIGN_OR_RETURN(const StepReport report, deferred_ ? deferred_->Step(arena_, train_.graph, iteration_)
                                                            : solver_.Step(arena_, iteration_));
  const auto updated = Clock::now();
  if (options_.carry_state) SIEVE_RETURN_IF_ERROR(CarryState());
  ++iteration_;
  StepResult result;
  result.loss = WeightedLoss(train_.graph, *train_exec_, train_.losses);
  result.accuracy = train_exec_->Stats(AccuracyNode(train_)).accuracy();
  result.lr = report.lr;
  result.executed_flops = train_exec_->flops().executed;
  result.dense_flops = train_exec_->flops().dense;
  auto ms = [](Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
  };
  result.passes_ms = ms(start, sampled);
  result.catch_up_ms = ms(sampled, caught_up);
  result.graph_ms = ms(caught_up, ran);
  result.update_ms = ms(ran, updated);
  return result;
}

StatusOr<std::vector<EpochReport>> Trainer::Fit(const Dataset& train, const FitOptions& options) {
  BatchLoaderOptions loader_options;
  loader_options.batch_size = options_.batch_size;
  loader_options.seed = options_.seed;
  loader_options.drop_last = true;
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<BatchLoader> loader, BatchLoader::Create(train, loader_options));
  return Fit(*loader, options);
}

StatusOr<std::vector<EpochReport>> Trainer::Fit(BatchSource& train, const FitOptions& options) {
  SIEVE_ENSURE(options.epochs >= 0, StatusCode::kInvalidArgument, "epochs " << options.epochs << " is negative");
  BatchSource* loader = &train;
  std::vector<EpochReport> reports;
  using Clock = std::chrono::steady_clock;
  // The progress line's rate covers the iterations since the previous line, training time only.
  double window_seconds = 0.0;
  int64_t window_iterations = 0;
  for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    EpochReport report;
    report.epoch = epoch;
    double loss_sum = 0.0, accuracy_sum = 0.0;
    const int64_t batches = loader->batches_per_epoch() - loader->position().batch;
    const auto start = Clock::now();
    auto window_start = start;
    for (int64_t b = 0; b < batches; ++b) {
      const Batch batch = loader->Next();
      SIEVE_ASSIGN_OR_RETURN(const StepResult step, Step(batch.features, batch.labels));
      loss_sum += step.loss;
      accuracy_sum += step.accuracy;
      ++window_iterations;
      if (options.display > 0 && iteration_ % options.display == 0) {
        const auto now = Clock::now();
        window_seconds += std::chrono::duration<double>(now - window_start).count();
        window_start = now;
        SIEVE_LOG_INFO("iteration {} ({:.1f} it/s): loss = {:.4f}, accuracy = {:.4f}, lr = {:g}", iteration_,
                       static_cast<double>(window_iterations) / window_seconds, step.loss, step.accuracy, step.lr);
        window_seconds = 0.0;
        window_iterations = 0;
      }
    }
    window_seconds += std::chrono::duration<double>(Clock::now() - window_start).count();
    report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    report.iterations = iteration_;
    report.train_loss = batches > 0 ? loss_sum / static_cast<double>(batches) : 0.0;
    report.train_accuracy = batches > 0 ? accuracy_sum / static_cast<double>(batches) : 0.0;
    SIEVE_RETURN_IF_ERROR(FinishEpoch());
    if (options.eval) {
      SIEVE_ASSIGN_OR_RETURN(report.eval, Evaluate(*options.eval));
      SIEVE_LOG_INFO("epoch {}/{}: train loss {:.4f} accuracy {:.4f} | test loss {:.4f} accuracy {:.4f} | {:.1f} s",
                     epoch, options.epochs, report.train_loss, report.train_accuracy, report.eval->loss,
                     report.eval->accuracy, report.seconds);
    } else {
      SIEVE_LOG_INFO("epoch {}/{}: train loss {:.4f} accuracy {:.4f} | {:.1f} s", epoch, options.epochs,
                     report.train_loss, report.train_accuracy, report.seconds);
    }
    reports.push_back(report);
    if (options.on_epoch && !options.on_epoch(report)) break;
  }
  return reports;
}

StatusOr<EvalResult> Trainer::Evaluate(const Dataset& data) {
  const int64_t per_example = eval_feeds_.data_buffer.numel() / options_.eval_batch_size;
  SIEVE_ENSURE(data.feature_dim() == per_example, StatusCode::kInvalidArgument,
               "the dataset has " << data.feature_dim() << " features per example; the network's input "
                                  << ShapeToString(eval_feeds_.data_buffer.shape()) << " takes " << per_example);
  BatchLoaderOptions in_order;
  in_order.batch_size = options_.eval_batch_size;
  in_order.shuffle = false;
  in_order.prefetch_depth = 0;
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<BatchLoader> loader, BatchLoader::Create(data, in_order));
  return Evaluate(*loader);
}

StatusOr<EvalResult> Trainer::Evaluate(BatchSource& source) {
  SIEVE_RETURN_IF_ERROR(SyncWeights());
  SIEVE_ASSIGN_OR_RETURN(const int32_t pad_label, SetPaddingLabel(eval_.graph));
  for (auto& [value, buffer] : eval_feeds_.states) ZeroBytes(buffer.raw_data(), buffer.device(), buffer.nbytes());
  double loss_sum = 0.0;
  int64_t counted = 0, correct = 0;
  const graph::NodeId accuracy_node = AccuracyNode(eval_);
  for (int64_t b = 0; b < source.batches_per_epoch(); ++b) {
    const Batch batch = source.Next();
    SIEVE_RETURN_IF_ERROR(LoadBatch(eval_feeds_, batch.features, batch.labels, pad_label));
    SIEVE_RETURN_IF_ERROR(eval_exec_->Run({.iteration = iteration_, .seed = options_.seed}));
    // Weighted by the counted rows, so padded rows change nothing.
    const ops::SoftmaxXentStats& accuracy = eval_exec_->Stats(accuracy_node);
    loss_sum += WeightedLoss(eval_.graph, *eval_exec_, eval_.losses) * static_cast<double>(accuracy.counted);
    counted += accuracy.counted;
    correct += accuracy.correct;
    if (options_.carry_state) {
      for (const auto& [final_state, initial] : eval_.state_carry) {
        SIEVE_ASSIGN_OR_RETURN(const Tensor from, eval_exec_->Get(final_state));
        SIEVE_ASSIGN_OR_RETURN(const Tensor to, eval_exec_->Get(initial));
        SIEVE_RETURN_IF_ERROR(ops::GatherSubmatrix(from, std::nullopt, std::nullopt, to));
      }
    }
  }
  EvalResult result;
  result.examples = counted;
  result.loss = counted > 0 ? loss_sum / static_cast<double>(counted) : 0.0;
  result.accuracy = counted > 0 ? static_cast<double>(correct) / static_cast<double>(counted) : 0.0;
  return result;
}

Status Trainer::SyncWeights() { return deferred_ ? deferred_->CatchUpAll(arena_, iteration_) : Status::Ok(); }

Status Trainer::SaveWeights(const std::string& path) {
  SIEVE_RETURN_IF_ERROR(SyncWeights());
  std::string bytes(kWeightsMagic, sizeof(kWeightsMagic));
  auto put = [&bytes](const void* data, size_t n) { bytes.append(static_cast<const char*>(data), n); };
  const auto count = static_cast<uint32_t>(arena_.size());
  put(&count, sizeof(count));
  for (const ParamEntry& p : arena_) {
    const auto name_size = static_cast<uint32_t>(p.name.size());
    const auto rank = static_cast<uint32_t>(p.shape.size());
    put(&name_size, sizeof(name_size));
    put(p.name.data(), p.name.size());
    put(&rank, sizeof(rank));
    put(p.shape.data(), p.shape.size() * sizeof(int64_t));
    const std::vector<float> values = p.param.ToVector();
    put(values.data(), values.size() * sizeof(float));
  }
  const uint32_t crc = Crc32(bytes);
  put(&crc, sizeof(crc));
  return WriteFileAtomically(path, bytes, "weights");
}

Status Trainer::LoadWeights(const std::string& path) {
  SIEVE_ASSIGN_OR_RETURN(const std::string bytes, ReadFileBytes(path, "weights"));
  SIEVE_ENSURE(bytes.size() >= sizeof(kWeightsMagic) + 8 &&
                   std::memcmp(bytes.data(), kWeightsMagic, sizeof(kWeightsMagic)) == 0,
               StatusCode::kDataLoss, "'" << path << "' is not a Sieve weights file");
  uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof(stored_crc), sizeof(stored_crc));
  const size_t body = bytes.size() - sizeof(stored_crc);
  SIEVE_ENSURE(Crc32(std::string_view(bytes).substr(0, body)) == stored_crc,
               StatusCode::kDataLoss, "'" << path << "' is corrupt (checksum mismatch)");
  size_t at = sizeof(kWeightsMagic);
  auto take = [&](void* out, size_t n) {
    if (at + n > body) return false;
    std::memcpy(out, bytes.data() + at, n);
    at += n;
    return true;
  };
  uint32_t count = 0;
  take(&count, sizeof(count));
  std::map<std::string, std::pair<Shape, std::vector<float>>> stored;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t name_size = 0, rank = 0;
    std::string name;
    bool ok = take(&name_size, sizeof(name_size)) && name_size < (1u << 16);
    if (ok) {
      name.resize(name_size);
      ok = take(name.data(), name_size) && take(&rank, sizeof(rank)) && rank <= 8;
    }
    Shape shape(ok ? rank : 0);
    ok = ok && take(shape.data(), rank * sizeof(int64_t));
    int64_t numel = 1;
    for (int64_t d : shape) ok = ok && d >= 0 && (numel *= d) <= static_cast<int64_t>(body);
    std::vector<float> values(ok ? static_cast<size_t>(numel) : 0);
    ok = ok && take(values.data(), values.size() * sizeof(float));
    SIEVE_ENSURE(ok, StatusCode::kDataLoss, "'" << path << "' is truncated in parameter " << i + 1 << " of " << count);
    stored[name] = {std::move(shape), std::move(values)};
  }
  for (const ParamEntry& p : arena_) {
    auto it = stored.find(p.name);
    SIEVE_ENSURE(it != stored.end(), StatusCode::kNotFound,
                 "'" << path << "' has no parameter '" << p.name << "' of shape " << ShapeToString(p.shape));
    SIEVE_ENSURE(it->second.first == p.shape, StatusCode::kInvalidArgument,
                 "'" << path << "': parameter '" << p.name << "' is " << ShapeToString(it->second.first)
                     << " in the file but " << ShapeToString(p.shape) << " in the network");
  }
  // The optimizer state of deferred rows catches up first; the loaded weights are then current.
  SIEVE_RETURN_IF_ERROR(SyncWeights());
  for (const ParamEntry& p : arena_) {
    const std::vector<float>& values = stored[p.name].second;
    CopyBytes(p.param.raw_data(), p.param.device(), values.data(), Device::CPU(), values.size() * sizeof(float));
  }
  for (const auto& [name, entry] : stored)
    if (!arena_.IndexOf(name).ok()) SIEVE_LOG_WARN("'{}': parameter '{}' is not in the network; ignored", path, name);
  Synchronize(arena_.device());
  return Status::Ok();
}

Status Trainer::FinishEpoch() {
  if (!train_.unit_shuffles.empty()) {
    // Shuffling moves rows with their optimizer state, so deferred rows catch up first.
    SIEVE_RETURN_IF_ERROR(SyncWeights());
    SIEVE_RETURN_IF_ERROR(ShuffleScheduledUnits(train_, arena_, options_.seed, epochs_finished_ + 1).status());
  }
  ++epochs_finished_;
  return Status::Ok();
}

// One section of ExportState: its name and the version written, how to write it, and how to check a stored
// section (of any version up to `version`): the returned function applies it and cannot fail.
struct Trainer::StatePart {
  std::string name;
  uint32_t version = 1;
  std::function<std::string()> save;
  std::function<StatusOr<std::function<void()>>(const StateSection&)> check;
};

std::vector<Trainer::StatePart> Trainer::StateParts() {
  std::vector<StatePart> parts;
  // The random streams are counter-based (framework/rng.h): (seed, iteration) places every dropout, pattern,
  // shuffle and data stream; the epochs finished number the next unit shuffle.
  parts.push_back(
      {"progress", 1,
       [this] {
         ByteWriter out;
         out.Put(iteration_);
         out.Put(options_.seed);
         out.Put(epochs_finished_);
         return out.Take();
       },
       [this](const StateSection& section) -> StatusOr<std::function<void()>> {
         ByteReader in(section.bytes);
         int64_t iteration = 0, epochs = 0;
         uint64_t seed = 0;
         const bool read = in.Get(iteration) && in.Get(seed) && in.Get(epochs) && in.remaining() == 0;
         SIEVE_ENSURE(read && iteration >= 0 && iteration < (int64_t{1} << 32) && epochs >= 0, StatusCode::kDataLoss,
                      "state section 'progress' is malformed (iteration " << iteration << ", epochs " << epochs << ")");
         return std::function<void()>([this, iteration, seed, epochs] {
           iteration_ = iteration;
           options_.seed = seed;
           epochs_finished_ = epochs;
           if (deferred_) deferred_->MarkCurrent(iteration);
         });
       }});
  parts.push_back({"carried_state", 1,
                   [this] {
                     ByteWriter out;
                     out.Put(static_cast<uint32_t>(train_feeds_.states.size()));
                     for (const auto& [value, buffer] : train_feeds_.states) {
                       out.PutString(train_.graph.value(value).name);
                       out.Put(static_cast<uint32_t>(buffer.rank()));
                       out.PutArray(buffer.shape().data(), buffer.shape().size());
                       const std::vector<float> values = buffer.ToVector();
                       out.PutArray(values.data(), values.size());
                     }
                     return out.Take();
                   },
                   [this](const StateSection& section) -> StatusOr<std::function<void()>> {
                     ByteReader in(section.bytes);
                     uint32_t count = 0;
                     in.Get(count);
                     SIEVE_ENSURE(in.ok() && count == train_feeds_.states.size(), StatusCode::kInvalidArgument,
                                  "state section 'carried_state' holds " << count << " carried states; the network has "
                                                                         << train_feeds_.states.size());
                     std::vector<std::vector<float>> stored(count);
                     for (uint32_t i = 0; i < count; ++i) {
                       const Tensor& buffer = train_feeds_.states[i].second;
                       const std::string& name = train_.graph.value(train_feeds_.states[i].first).name;
                       std::string stored_name;
                       uint32_t rank = 0;
                       const bool read = in.GetString(stored_name) && in.Get(rank) && rank <= 8;
                       Shape shape(read ? rank : 0);
                       in.GetArray(shape.data(), shape.size());
                       SIEVE_ENSURE(read && in.ok(), StatusCode::kDataLoss,
                                    "state section 'carried_state' is truncated in state " << i + 1 << " of " << count);
                       SIEVE_ENSURE(stored_name == name && shape == buffer.shape(), StatusCode::kInvalidArgument,
                                    "carried state " << i + 1 << " is '" << stored_name << "' " << ShapeToString(shape)
                                                     << " in the state but '" << name << "' "
                                                     << ShapeToString(buffer.shape()) << " in the network");
                       stored[i].resize(static_cast<size_t>(buffer.numel()));
                       SIEVE_ENSURE(in.GetArray(stored[i].data(), stored[i].size()), StatusCode::kDataLoss,
                                    "state section 'carried_state' is truncated in '" << name << "'");
                     }
                     SIEVE_ENSURE(in.remaining() == 0, StatusCode::kDataLoss,
                                  "state section 'carried_state' has " << in.remaining() << " bytes after its states");
                     return std::function<void()>([this, stored = std::move(stored)] {
                       for (size_t i = 0; i < stored.size(); ++i) {
                         const Tensor& buffer = train_feeds_.states[i].second;
                         CopyBytes(buffer.raw_data(), buffer.device(), stored[i].data(), Device::CPU(),
                                   stored[i].size() * sizeof(float));
                       }
                     });
                   }});
  // The distributions are searched again when a trainer is made; a resume is exact only if the search gives
  // the same tables, so they are stored and compared.
  parts.push_back({"pattern_search", 1,
                   [this] {
                     ByteWriter out;
                     out.Put(static_cast<uint32_t>(sampling_->sites().size()));
                     for (const graph::SiteDistribution& site : sampling_->sites()) {
                       out.PutString(site.site_name);
                       out.Put(static_cast<uint32_t>(site.result->candidates.size()));
                       for (size_t c = 0; c < site.result->candidates.size(); ++c) {
                         out.Put(site.result->candidates[c].keep);
                         out.Put(site.result->candidates[c].period);
                         out.Put(site.result->probabilities[c]);
                       }
                     }
                     return out.Take();
                   },
                   [this](const StateSection& section) -> StatusOr<std::function<void()>> {
                     const std::vector<graph::SiteDistribution>& sites = sampling_->sites();
                     ByteReader in(section.bytes);
                     uint32_t count = 0;
                     in.Get(count);
                     SIEVE_ENSURE(in.ok() && count == sites.size(), StatusCode::kInvalidArgument,
                                  "state section 'pattern_search' holds "
                                      << count << " row and tile sites; the network has " << sites.size());
                     for (const graph::SiteDistribution& site : sites) {
                       std::string name;
                       uint32_t candidates = 0;
                       in.GetString(name);
                       in.Get(candidates);
                       bool same = in.ok() && name == site.site_name && candidates == site.result->candidates.size();
                       for (uint32_t c = 0; in.ok() && c < candidates; ++c) {
                         graph::PatternCandidate candidate;
                         double probability = 0.0;
                         in.Get(candidate.keep);
                         in.Get(candidate.period);
                         in.Get(probability);
                         same = same && candidate == site.result->candidates[c] &&
                                probability == site.result->probabilities[c];
                       }
                       SIEVE_ENSURE(in.ok(), StatusCode::kDataLoss, "state section 'pattern_search' is truncated");
                       SIEVE_ENSURE(same, StatusCode::kInvalidArgument,
                                    "the pattern distribution of site '"
                                        << site.site_name << "' differs from the stored one ('" << name << "', "
                                        << candidates << " candidates): the site or the search "
                                        << "settings changed, so training would not continue exactly");
                     }
                     SIEVE_ENSURE(in.remaining() == 0, StatusCode::kDataLoss,
                                  "state section 'pattern_search' has " << in.remaining() << " bytes after its sites");
                     return std::function<void()>([] {});
                   }});
  // The running importance and sensitivity of every channel-dropout site's input maps (SPEC 3): they pick the
  // dropped maps, so a resume without them would not continue exactly.
  parts.push_back({"channel_estimates", 1, [this] { return graph::EncodeEstimates(channel_drop_->Estimates()); },
                   [this](const StateSection& section) -> StatusOr<std::function<void()>> {
                     SIEVE_ASSIGN_OR_RETURN(std::vector<graph::ChannelEstimates> estimates,
                                            graph::DecodeEstimates(section.bytes));
                     SIEVE_RETURN_IF_ERROR(channel_drop_->CheckEstimates(estimates));
                     return std::function<void()>([this, estimates = std::move(estimates)] {
                       SIEVE_CHECK(channel_drop_->RestoreEstimates(estimates).ok(), "checked estimates failed to restore");
                     });
                   }});
  return parts;
}

StatusOr<std::vector<StateSection>> Trainer::ExportState() {
  std::vector<StateSection> sections;
  for (const StatePart& part : StateParts()) sections.push_back({part.name, part.version, part.save()});
  return sections;
}

Status Trainer::ImportState(const std::vector<StateSection>& sections) {
  const std::vector<StatePart> parts = StateParts();
  std::string known;
  for (const StatePart& part : parts) known += (known.empty() ? "" : ", ") + part.name;
  std::map<std::string, const StateSection*> by_name;
  for (const StateSection& section : sections) {
    SIEVE_ENSURE(std::any_of(parts.begin(), parts.end(), [&](const StatePart& p) { return p.name == section.name; }),
                 StatusCode::kUnimplemented,
                 "state section '" << section.name << "' is unknown to this build (it reads " << known << ")");
    SIEVE_ENSURE(by_name.emplace(section.name, &section).second, StatusCode::kDataLoss,
                 "state section '" << section.name << "' appears twice");
  }
  std::vector<std::function<void()>> apply;
  for (const StatePart& part : parts) {
    const auto it = by_name.find(part.name);
    SIEVE_ENSURE(it != by_name.end(), StatusCode::kInvalidArgument, "the state has no section '" << part.name << "'");
    SIEVE_ENSURE(it->second->version <= part.version, StatusCode::kUnimplemented,
                 "state section '" << part.name << "' has version " << it->second->version
                                   << "; this build reads versions up to " << part.version);
    SIEVE_ASSIGN_OR_RETURN(std::function<void()> change, part.check(*it->second));
    apply.push_back(std::move(change));
  }
  for (const std::function<void()>& change : apply) change();
  Synchronize(arena_.device());
  return Status::Ok();
}

}  // namespace sieve::runtime
