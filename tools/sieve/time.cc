// `sieve time`: per-layer forward and backward time of a net's training step, with its configured
// dropout against the dense baseline (every dropout layer made Bernoulli at the same rate: the full
// GEMMs a conventional framework computes), and the executed / dense MatMul FLOP ratio per layer.
//
// Each timed iteration runs Trainer::Step (which draws the iteration's patterns and updates the
// weights), then runs the same training graph, with those patterns, once more on a profiling
// executor that synchronises after every node (runtime/executor.h NodeProfile); a node belongs to the
// layer whose name prefixes it ("fc1.matmul", "fc1.matmul.dgrad"). The inputs are zeros: timing does
// not need the data. Caffe's `caffe time` is the model.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "graph/ir.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"
#include "tools/sieve/cli.h"
#include "tools/sieve/verbs.h"

namespace sieve::cli {
namespace {

// The smallest per-layer time the table prints (it prints ms to 3 decimals).
constexpr double kTimeResolutionMs = 5e-4;

// Per layer, summed over the timed iterations.
struct LayerTime {
  double forward_ms = 0.0, backward_ms = 0.0;
  int64_t executed_flops = 0, dense_flops = 0;
};

struct Profile {
  std::vector<std::string> order;  // layers in network order, then "(other)" when used
  std::map<std::string, LayerTime> layers;
  double step_ms = 0.0, passes_ms = 0.0, update_ms = 0.0;  // per iteration, from StepResult
};

// The layer of a node: the longest layer name that prefixes the node's name up to a '.'.
std::string LayerOf(const std::string& node, const graph::Network& network) {
  std::string best;
  for (const graph::Layer& layer : network.layers()) {
    const std::string& name = layer.name;
    if (name.size() > best.size() && node.size() > name.size() && node.compare(0, name.size(), name) == 0 &&
        node[name.size()] == '.')
      best = name;
  }
  return best.empty() ? "(other)" : best;
}

// A profiling executor over the trainer's training graph, its leaves bound to the trainer's
// parameters and gradients and to zero inputs.
StatusOr<std::unique_ptr<runtime::Executor>> ProfilingExecutor(runtime::Trainer& trainer) {
  const graph::Graph& graph = trainer.train_graph();
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Executor> exec,
                         runtime::Executor::Create(graph, trainer.options().device));
  const std::string suffix = ".grad";
  for (const graph::Value& v : graph.values()) {
    // Gradients of parameters are written by the backward but live in the trainer's arena.
    if ((!graph::IsLeafRole(v.role) && v.role != graph::ValueRole::kParamGrad) || v.view) continue;
    Tensor buffer;
    if (v.role == graph::ValueRole::kParam) {
      SIEVE_ASSIGN_OR_RETURN(buffer, trainer.params().param(v.name));
    } else if (v.role == graph::ValueRole::kParamGrad && v.name.size() > suffix.size() && v.name.ends_with(suffix) &&
               trainer.params().IndexOf(v.name.substr(0, v.name.size() - suffix.size())).ok()) {
      SIEVE_ASSIGN_OR_RETURN(buffer, trainer.params().grad(v.name.substr(0, v.name.size() - suffix.size())));
    } else {
      buffer = Tensor::Zeros(v.planned, v.dtype, trainer.options().device);
    }
    SIEVE_RETURN_IF_ERROR(exec->Bind(v.id, buffer));
  }
  return exec;
}

StatusOr<Profile> TimeNetwork(const graph::Network& network, const runtime::TrainerOptions& options, int64_t warmup,
                              int64_t iterations) {
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Trainer> trainer, runtime::Trainer::Create(network, options));
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Executor> exec, ProfilingExecutor(*trainer));
  const graph::Graph& graph = trainer->train_graph();
  // Zero batches of the shapes the training graph's data and label inputs take.
  Tensor features, labels;
  for (const graph::Value& v : graph.values()) {
    if (v.view) continue;
    if (v.role == graph::ValueRole::kLabel && !labels.defined()) labels = Tensor::Zeros(v.planned, DType::kInt32);
  }
  const graph::Layer* input = nullptr;
  for (const graph::Layer& layer : network.layers()) {
    if (!input && std::holds_alternative<graph::InputSpec>(layer.spec)) input = &layer;
  }
  SIEVE_ENSURE(input != nullptr && labels.defined(), StatusCode::kInvalidArgument,
               "the network needs an Input and a Label layer to be timed");
  const auto& spec = std::get<graph::InputSpec>(input->spec);
  Shape shape = {options.batch_size};
  shape.insert(shape.end(), spec.shape.begin(), spec.shape.end());
  features = Tensor::Zeros(shape, spec.dtype);

  Profile profile;
  for (const graph::Layer& layer : network.layers()) profile.order.push_back(layer.name);
  runtime::NodeProfile nodes;
  for (int64_t i = 0; i < warmup + iterations; ++i) {
    SIEVE_ASSIGN_OR_RETURN(const runtime::StepResult step, trainer->Step(features, labels));
    SIEVE_RETURN_IF_ERROR(exec->Run({.iteration = trainer->iteration() - 1, .seed = options.seed, .profile = &nodes}));
    if (i < warmup) continue;
    profile.step_ms += step.passes_ms + step.catch_up_ms + step.graph_ms + step.update_ms;
    profile.passes_ms += step.passes_ms;
    profile.update_ms += step.update_ms;
    for (const graph::Node& node : graph.nodes()) {
      const std::string layer = LayerOf(node.name, network);
      if (layer == "(other)" && !profile.layers.count(layer)) profile.order.push_back(layer);
      LayerTime& t = profile.layers[layer];
      const size_t n = graph::Index(node.id);
      (node.phase == graph::Phase::kForward ? t.forward_ms : t.backward_ms) += nodes.ms[n];
      t.executed_flops += nodes.flops[n].executed;
      t.dense_flops += nodes.flops[n].dense;
    }
  }
  const double scale = 1.0 / static_cast<double>(iterations);
  profile.step_ms *= scale;
  profile.passes_ms *= scale;
  profile.update_ms *= scale;
  for (auto& [name, t] : profile.layers) {
    t.forward_ms *= scale;
    t.backward_ms *= scale;
  }
  return profile;
}

// The network with every dropout layer made Bernoulli at its rate; false when nothing changed.
bool MakeDense(graph::Network& network) {
  graph::Network dense;
  bool changed = false;
  for (graph::Layer layer : network.layers()) {
    if (auto* drop = std::get_if<graph::DropoutSpec>(&layer.spec);
        drop && drop->kind != graph::DropoutSpec::Kind::kBernoulli) {
      *drop = graph::DropoutSpec{.rate = drop->rate};
      changed = true;
    }
    dense.Add(layer);
  }
  network = dense;
  return changed;
}

void PrintProfile(const Profile& configured, const Profile* dense, const std::string& title) {
  std::printf("\n%s (ms per iteration; FLOP ratio = executed / dense MatMul FLOPs of the layer)\n", title.c_str());
  std::printf("%-16s %10s %10s", "layer", "forward", "backward");
  if (dense) std::printf(" %10s %10s %8s", "dense fwd", "dense bwd", "speedup");
  std::printf(" %10s\n", "FLOP ratio");
  LayerTime total, total_dense;
  // Both nets have the same layers (names), so the configured net's order covers both.
  const auto find = [](const Profile* profile, const std::string& name) {
    if (!profile) return LayerTime{};
    auto it = profile->layers.find(name);
    return it == profile->layers.end() ? LayerTime{} : it->second;
  };
  for (const std::string& name : configured.order) {
    const LayerTime t = find(&configured, name);
    const LayerTime base = find(dense, name);
    if (t.forward_ms + t.backward_ms + base.forward_ms + base.backward_ms == 0.0) continue;
    std::printf("%-16s %10.3f %10.3f", name.c_str(), t.forward_ms, t.backward_ms);
    total.forward_ms += t.forward_ms;
    total.backward_ms += t.backward_ms;
    total.executed_flops += t.executed_flops;
    total.dense_flops += t.dense_flops;
    if (dense) {
      total_dense.forward_ms += base.forward_ms;
      total_dense.backward_ms += base.backward_ms;
      std::printf(" %10.3f %10.3f", base.forward_ms, base.backward_ms);
      // A layer the configured run does not execute (an ARD dropout layer, folded into the MatMuls' patterns)
      // shows 0.000 ms: a ratio to it says nothing.
      const double ms = t.forward_ms + t.backward_ms;
      if (ms < kTimeResolutionMs) {
        std::printf(" %8s", "-");
      } else {
        std::printf(" %7.2fx", (base.forward_ms + base.backward_ms) / ms);
      }
    }
    if (t.dense_flops > 0) {
      std::printf(" %10.3f\n", static_cast<double>(t.executed_flops) / static_cast<double>(t.dense_flops));
    } else {
      std::printf(" %10s\n", "-");
    }
  }
  std::printf("%-16s %10.3f %10.3f", "total (graph)", total.forward_ms, total.backward_ms);
  if (dense) {
    std::printf(
        " %10.3f %10.3f %7.2fx", total_dense.forward_ms, total_dense.backward_ms,
        (total_dense.forward_ms + total_dense.backward_ms) / std::max(total.forward_ms + total.backward_ms, 1e-9));
  }
  std::printf(" %10.3f\n", total.dense_flops > 0 ? static_cast<double>(total.executed_flops) / total.dense_flops : 1.0);
  std::printf("whole step (Trainer::Step, not profiled): %.3f ms", configured.step_ms);
  if (dense)
    std::printf(" (dense %.3f ms, %.2fx)", dense->step_ms, dense->step_ms / std::max(configured.step_ms, 1e-9));
  std::printf("; of it pattern passes %.3f ms, solver update %.3f ms\n", configured.passes_ms, configured.update_ms);
}

int RunTime(const Verb& verb, const Args& args) {
  StatusOr<Device> device = DeviceFromArgs(args, Device::CPU());
  if (!device.ok()) return UsageError(verb, UserMessage(device.status()));
  int64_t iterations = 20;
  if (args.Has("iterations")) {
    StatusOr<int64_t> n = args.GetInt("iterations", 1, 1000000);
    if (!n.ok()) return UsageError(verb, UserMessage(n.status()));
    iterations = *n;
  }
  StatusOr<Model> model = ReadModel(args.Get("model"), DefaultSolver(), *device);
  if (!model.ok()) return Fail(verb, model.status());
  constexpr int64_t kWarmup = 2;
  StatusOr<Profile> configured = TimeNetwork(model->train_net.network, model->options, kWarmup, iterations);
  if (!configured.ok()) return Fail(verb, configured.status());
  graph::Network dense_network = model->train_net.network;
  std::optional<Profile> dense;
  if (MakeDense(dense_network)) {
    StatusOr<Profile> timed = TimeNetwork(dense_network, model->options, kWarmup, iterations);
    if (!timed.ok()) return Fail(verb, timed.status());
    dense = *timed;
  }
  std::printf("sieve time: %s, batch %lld, %s, %lld iterations after %lld warm-up\n", args.Get("model").c_str(),
              static_cast<long long>(model->options.batch_size), device->ToString().c_str(),
              static_cast<long long>(iterations), static_cast<long long>(kWarmup));
  if (!dense) std::printf("(every dropout layer of the net is Bernoulli: the configured net is the dense baseline)\n");
  PrintProfile(*configured, dense ? &*dense : nullptr,
               dense ? "configured dropout vs dense (Bernoulli at the same rates)" : "dense");
  return kExitOk;
}

}  // namespace

const Verb kTimeVerb{
    .name = "time",
    .summary = "per-layer forward and backward time, configured dropout vs dense, FLOP ratios",
    .usage = "sieve time --model FILE [--iterations N] [--gpu N]",
    .description =
        "Times the training graph of the net's TRAIN phase on zero inputs, node by node (the device is\n"
        "synchronised after every node), grouped by layer; the dense baseline is the same net with every\n"
        "row, tile or channel dropout layer made Bernoulli at its rate.",
    .flags = {{"model", "FILE", "the net file (protobuf text; docs/model_files.md)"},
              {"iterations", "N", "timed iterations (default 20, after 2 warm-up iterations)"},
              {"gpu", "N", "time on CUDA device N"}},
    .required = {"model"},
    .run = RunTime};

}  // namespace sieve::cli
