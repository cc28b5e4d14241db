// The zoo benchmark's view of a net (zoo_model.h): rate overrides, the dropout a net uses, the PyTorch peer's
// layer list and optimizer, and synthetic batches.
#include "tools/bench/zoo_model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <type_traits>
#include <variant>
#include <vector>

#include "framework/tensor.h"
#include "tools/bench/bench_util.h"

namespace sieve::bench {
namespace {

using graph::Layer;

// A finite double as JSON: the shortest of 15-17 significant digits that reads back as the same value.
std::string Number(double v) {
  char buf[32];
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string Quoted(const std::string& s) { return "\"" + JsonEscape(s) + "\""; }

std::string ShapeJson(const Shape& shape) {
  std::string json = "[";
  for (size_t i = 0; i < shape.size(); ++i) json += (i ? ", " : "") + std::to_string(shape[i]);
  return json + "]";
}

const char* Bool(bool b) { return b ? "true" : "false"; }

// The one Input and the one Label layer of a training network.
struct Endpoints {
  const Layer* input = nullptr;
  const Layer* label = nullptr;
};

StatusOr<Endpoints> FindEndpoints(const graph::Network& network) {
  Endpoints ends;
  for (const Layer& layer : network.layers()) {
    const bool input = std::holds_alternative<graph::InputSpec>(layer.spec);
    const bool label = std::holds_alternative<graph::LabelSpec>(layer.spec);
    if (!input && !label) continue;
    const Layer*& slot = input ? ends.input : ends.label;
    SIEVE_ENSURE(slot == nullptr, StatusCode::kInvalidArgument,
                 "the net has two " << (input ? "Input" : "Label") << " layers, '" << slot->name << "' and '"
                                    << layer.name << "'; the benchmark feeds one of each");
    SIEVE_ENSURE(layer.outputs.size() == 1, StatusCode::kInvalidArgument,
                 DescribeLayer(layer) << " writes " << layer.outputs.size() << " blobs, not one");
    slot = &layer;
  }
  SIEVE_ENSURE(ends.input != nullptr, StatusCode::kInvalidArgument, "the net has no Input layer");
  SIEVE_ENSURE(ends.label != nullptr, StatusCode::kInvalidArgument, "the net has no Label layer");
  return ends;
}

// The JSON fields after "name" of one chain layer, or an error naming it.
StatusOr<std::string> ChainLayerJson(const Layer& layer) {
  std::ostringstream os;
  bool known = true;
  std::visit(
      [&](const auto& spec) {
        using T = std::decay_t<decltype(spec)>;
        if constexpr (std::is_same_v<T, graph::FullyConnectedSpec>) {
          os << "\"type\": \"fc\", \"units\": " << spec.units << ", \"axis\": " << spec.axis
             << ", \"bias\": " << Bool(spec.bias);
        } else if constexpr (std::is_same_v<T, graph::Conv2dSpec>) {
          os << "\"type\": \"conv\", \"filters\": " << spec.filters << ", \"kernel\": " << spec.kernel
             << ", \"stride\": " << spec.stride << ", \"pad\": " << spec.pad << ", \"bias\": " << Bool(spec.bias);
        } else if constexpr (std::is_same_v<T, graph::PoolSpec>) {
          os << "\"type\": \"" << (spec.kind == graph::PoolSpec::Kind::kMax ? "maxpool" : "avgpool")
             << "\", \"kernel\": " << spec.kernel << ", \"stride\": " << spec.stride << ", \"pad\": " << spec.pad
             << ", \"ceil_mode\": " << Bool(spec.ceil_mode);
        } else if constexpr (std::is_same_v<T, graph::ActivationSpec>) {
          os << "\"type\": \"" << ops::ActivationName(spec.kind) << "\"";
        } else if constexpr (std::is_same_v<T, graph::DropoutSpec>) {
          os << "\"type\": \"dropout\", \"p\": " << Number(spec.rate)
             << ", \"channel\": " << Bool(graph::IsChannelDropout(spec.kind));
        } else if constexpr (std::is_same_v<T, graph::LstmSpec>) {
          os << "\"type\": \"lstm\", \"units\": " << spec.units << ", \"layers\": " << spec.layers
             << ", \"return_sequences\": " << Bool(spec.return_sequences);
        } else if constexpr (std::is_same_v<T, graph::EmbeddingSpec>) {
          os << "\"type\": \"embedding\", \"vocab\": " << spec.vocab << ", \"dim\": " << spec.dim;
        } else if constexpr (std::is_same_v<T, graph::FlattenSpec>) {
          os << "\"type\": \"flatten\"";
        } else if constexpr (std::is_same_v<T, graph::ReshapeSpec>) {
          os << "\"type\": \"reshape\", \"shape\": " << ShapeJson(spec.shape);
        } else if constexpr (std::is_same_v<T, graph::SoftmaxCrossEntropySpec>) {
          os << "\"type\": \"softmax_loss\"";
          if (spec.ignore_label) os << ", \"ignore_label\": " << *spec.ignore_label;
        } else {
          known = false;
        }
      },
      layer.spec);
  SIEVE_ENSURE(known, StatusCode::kInvalidArgument,
               DescribeLayer(layer) << " has no counterpart in the PyTorch peer's layer list");
  return os.str();
}

}  // namespace

graph::Network WithDropoutRate(const graph::Network& network, double rate) {
  graph::Network out;
  for (graph::Layer layer : network.layers()) {
    if (auto* dropout = std::get_if<graph::DropoutSpec>(&layer.spec)) dropout->rate = rate;
    out.Add(std::move(layer));
  }
  return out;
}

graph::Network WithoutDropoutWarmup(const graph::Network& network) {
  graph::Network out;
  for (graph::Layer layer : network.layers()) {
    if (auto* dropout = std::get_if<graph::DropoutSpec>(&layer.spec)) dropout->warmup_iterations = 0;
    out.Add(std::move(layer));
  }
  return out;
}

std::string NetDropout::KindName() const { return kind ? graph::DropoutKindName(*kind) : "dense"; }

StatusOr<NetDropout> DescribeDropout(const graph::Network& network) {
  NetDropout result;
  const Layer* first = nullptr;
  for (const Layer& layer : network.layers()) {
    const auto* dropout = std::get_if<graph::DropoutSpec>(&layer.spec);
    if (dropout == nullptr) continue;
    if (first == nullptr) {
      first = &layer;
      result.kind = dropout->kind;
      result.rate = dropout->rate;
      result.fixed_family = dropout->family == graph::PatternFamily::kFixed;
    }
    SIEVE_ENSURE(dropout->kind == *result.kind, StatusCode::kInvalidArgument,
                 "the Dropout layers '" << first->name << "' (" << graph::DropoutKindName(*result.kind) << ") and '"
                                        << layer.name << "' (" << graph::DropoutKindName(dropout->kind)
                                        << ") differ in kind; a zoo variant uses one kind");
    ++result.sites;
    if (graph::IsChannelDropout(dropout->kind))
      result.warmup_iterations = std::max(result.warmup_iterations, dropout->warmup_iterations);
  }
  return result;
}

StatusOr<std::string> PeerLayersJson(const graph::Network& network, bool carry_state) {
  SIEVE_ASSIGN_OR_RETURN(const Endpoints ends, FindEndpoints(network));
  const auto& input = std::get<graph::InputSpec>(ends.input->spec);
  const auto& label = std::get<graph::LabelSpec>(ends.label->spec);
  const std::string& label_blob = ends.label->outputs[0];
  std::string chain = ends.input->outputs[0];
  std::string layers;
  const Layer* loss = nullptr;
  for (const Layer& layer : network.layers()) {
    if (&layer == ends.input || &layer == ends.label || std::holds_alternative<graph::AccuracySpec>(layer.spec))
      continue;
    SIEVE_ENSURE(loss == nullptr, StatusCode::kInvalidArgument,
                 DescribeLayer(layer) << " follows the loss layer '" << loss->name
                                      << "'; the PyTorch peer's model is a chain that ends in its one loss");
    const bool is_loss = std::holds_alternative<graph::SoftmaxCrossEntropySpec>(layer.spec);
    SIEVE_ENSURE(!layer.inputs.empty() && layer.inputs[0] == chain, StatusCode::kInvalidArgument,
                 DescribeLayer(layer) << " reads '" << (layer.inputs.empty() ? "" : layer.inputs[0]) << "', not '"
                                      << chain
                                      << "' (the blob the layer before it wrote); the PyTorch peer's model is a chain");
    if (is_loss) {
      SIEVE_ENSURE(layer.inputs.size() == 2 && layer.inputs[1] == label_blob, StatusCode::kInvalidArgument,
                   DescribeLayer(layer) << " must read the chain's logits and the label blob '" << label_blob << "'");
      loss = &layer;
    } else {
      SIEVE_ENSURE(layer.inputs.size() == 1 && layer.outputs.size() == 1, StatusCode::kInvalidArgument,
                   DescribeLayer(layer) << " reads " << layer.inputs.size() << " and writes " << layer.outputs.size()
                                        << " blobs; a chain layer reads one and writes one");
      chain = layer.outputs[0];
    }
    SIEVE_ASSIGN_OR_RETURN(const std::string fields, ChainLayerJson(layer));
    layers += (layers.empty() ? "" : ", ") + std::string("{\"name\": ") + Quoted(layer.name) + ", " + fields + "}";
  }
  SIEVE_ENSURE(loss != nullptr, StatusCode::kInvalidArgument,
               "the net has no SoftmaxWithLoss layer; the PyTorch peer trains on a softmax cross-entropy loss");
  return std::string("{\"kind\": \"layers\", \"input\": {\"shape\": ") + ShapeJson(input.shape) + ", \"dtype\": \"" +
         (input.dtype == DType::kInt32 ? "int32" : "float32") +
         "\"}, \"label\": {\"shape\": " + ShapeJson(label.shape) + "}, \"carry_state\": " + Bool(carry_state) +
         ", \"layers\": [" + layers + "]}";
}

std::string PeerOptimizerJson(const runtime::SolverConfig& solver) {
  const char* kind = solver.type == ops::SolverType::kAdam       ? "adam"
                     : solver.type == ops::SolverType::kNesterov ? "nesterov"
                                                                 : "sgd";
  std::string json = std::string("{\"kind\": \"") + kind + "\", \"lr\": " + Number(solver.lr.base_lr) +
                     ", \"momentum\": " + Number(solver.momentum) +
                     ", \"weight_decay\": " + Number(solver.weight_decay) +
                     ", \"clip_gradients\": " + Number(solver.clip_gradients);
  if (solver.type == ops::SolverType::kAdam)
    json += ", \"beta2\": " + Number(solver.momentum2) + ", \"eps\": " + Number(solver.delta);
  return json + "}";
}

StatusOr<runtime::Batch> SyntheticBatch(const graph::Network& network, int64_t batch, uint64_t seed) {
  SIEVE_ENSURE(batch >= 1, StatusCode::kInvalidArgument, "batch must be at least 1, got " << batch);
  SIEVE_ASSIGN_OR_RETURN(const Endpoints ends, FindEndpoints(network));
  const auto& input = std::get<graph::InputSpec>(ends.input->spec);
  const auto& label = std::get<graph::LabelSpec>(ends.label->spec);
  const std::string& input_blob = ends.input->outputs[0];

  // Token ids need the vocabulary of the Embedding that reads them; labels the classes of the loss's logits.
  int64_t vocab = 0, classes = 0;
  const Layer* loss = nullptr;
  for (const Layer& layer : network.layers()) {
    if (const auto* embedding = std::get_if<graph::EmbeddingSpec>(&layer.spec);
        embedding != nullptr && !layer.inputs.empty() && layer.inputs[0] == input_blob)
      vocab = embedding->vocab;
    if (std::holds_alternative<graph::SoftmaxCrossEntropySpec>(layer.spec) && loss == nullptr) loss = &layer;
  }
  SIEVE_ENSURE(input.dtype != DType::kInt32 || vocab > 0, StatusCode::kInvalidArgument,
               "the int32 Input layer '" << ends.input->name
                                         << "' is read by no Embedding layer: no vocabulary to draw token ids from");
  SIEVE_ENSURE(loss != nullptr && !loss->inputs.empty(), StatusCode::kInvalidArgument,
               "the net has no SoftmaxWithLoss layer to draw labels for");
  for (const Layer& layer : network.layers()) {
    if (&layer == loss) break;
    const auto* fc = std::get_if<graph::FullyConnectedSpec>(&layer.spec);
    const bool writes_logits = !layer.outputs.empty() && layer.outputs[0] == loss->inputs[0];
    if (writes_logits) classes = fc != nullptr ? fc->units : 0;
  }
  SIEVE_ENSURE(classes > 0, StatusCode::kInvalidArgument,
               "the logits '" << loss->inputs[0] << "' of the loss layer '" << loss->name
                              << "' do not come from a FullyConnected layer: no class count to draw labels from");

  std::mt19937_64 rng(seed);
  Shape feature_shape = {batch};
  feature_shape.insert(feature_shape.end(), input.shape.begin(), input.shape.end());
  Shape label_shape = {batch};
  label_shape.insert(label_shape.end(), label.shape.begin(), label.shape.end());
  runtime::Batch out;
  out.features = Tensor::Empty(feature_shape, input.dtype);
  out.labels = Tensor::Empty(label_shape, DType::kInt32);
  if (input.dtype == DType::kInt32) {
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab - 1));
    int32_t* ids = out.features.data<int32_t>();
    for (int64_t i = 0; i < out.features.numel(); ++i) ids[i] = id(rng);
  } else {
    std::normal_distribution<float> value(0.0f, 1.0f);
    float* values = out.features.data<float>();
    for (int64_t i = 0; i < out.features.numel(); ++i) values[i] = value(rng);
  }
  std::uniform_int_distribution<int32_t> class_of(0, static_cast<int32_t>(classes - 1));
  int32_t* labels = out.labels.data<int32_t>();
  for (int64_t i = 0; i < out.labels.numel(); ++i) labels[i] = class_of(rng);
  return out;
}

}  // namespace sieve::bench
