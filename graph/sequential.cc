// The Sequential builder and the layer factories (sequential.h).
#include "graph/sequential.h"

#include <map>
#include <set>
#include <utility>
#include <variant>

namespace sieve::graph {

FullyConnectedSpec FullyConnected(int64_t units, bool bias) {
  FullyConnectedSpec spec;
  spec.units = units;
  spec.bias = bias;
  return spec;
}

Conv2dSpec Conv2d(int64_t filters, int64_t kernel, int64_t stride, int64_t pad) {
  Conv2dSpec spec;
  spec.filters = filters;
  spec.kernel = kernel;
  spec.stride = stride;
  spec.pad = pad;
  return spec;
}

PoolSpec MaxPool(int64_t kernel, int64_t stride) { return PoolSpec{PoolSpec::Kind::kMax, kernel, stride}; }
PoolSpec AvgPool(int64_t kernel, int64_t stride) { return PoolSpec{PoolSpec::Kind::kAvg, kernel, stride}; }
ActivationSpec ReLU() { return ActivationSpec{ops::Activation::kReLU}; }
ActivationSpec Tanh() { return ActivationSpec{ops::Activation::kTanh}; }
ActivationSpec Sigmoid() { return ActivationSpec{ops::Activation::kSigmoid}; }
DropoutSpec Dropout(double rate) { return DropoutSpec{.rate = rate}; }
DropoutSpec RowDropout(double rate) { return DropoutSpec{.rate = rate, .kind = DropoutSpec::Kind::kRow}; }

DropoutSpec TileDropout(double rate, int64_t tile_rows, int64_t tile_cols) {
  DropoutSpec spec{.rate = rate, .kind = DropoutSpec::Kind::kTile};
  spec.tile_rows = tile_rows;
  spec.tile_cols = tile_cols;
  return spec;
}

DropoutSpec SensitivityDropout(double rate, double temperature, int64_t warmup_iterations) {
  DropoutSpec spec{.rate = rate, .kind = DropoutSpec::Kind::kSensitivity};
  spec.temperature = temperature;
  spec.warmup_iterations = warmup_iterations;
  return spec;
}

DropoutSpec RandomChannelDropout(double rate, int64_t warmup_iterations) {
  DropoutSpec spec{.rate = rate, .kind = DropoutSpec::Kind::kRandomChannel};
  spec.warmup_iterations = warmup_iterations;
  return spec;
}

LstmSpec Lstm(int64_t units, int layers, bool return_sequences) {
  LstmSpec spec;
  spec.units = units;
  spec.layers = layers;
  spec.return_sequences = return_sequences;
  return spec;
}

EmbeddingSpec Embedding(int64_t vocab, int64_t dim) {
  EmbeddingSpec spec;
  spec.vocab = vocab;
  spec.dim = dim;
  return spec;
}

FlattenSpec Flatten() { return {}; }
ReshapeSpec Reshape(Shape per_sample_shape) { return ReshapeSpec{std::move(per_sample_shape)}; }

namespace {

// The stem of automatic names: "fc", "conv", "pool", "relu", "drop", ...
std::string NameStem(const LayerSpec& spec) {
  if (const auto* act = std::get_if<ActivationSpec>(&spec)) {
    switch (act->kind) {
      case ops::Activation::kReLU:
        return "relu";
      case ops::Activation::kTanh:
        return "tanh";
      default:
        return "sigmoid";
    }
  }
  return std::visit(
      [](const auto& s) -> std::string {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, FullyConnectedSpec>) return "fc";
        if constexpr (std::is_same_v<T, Conv2dSpec>) return "conv";
        if constexpr (std::is_same_v<T, PoolSpec>) return "pool";
        if constexpr (std::is_same_v<T, DropoutSpec>) return "drop";
        if constexpr (std::is_same_v<T, LstmSpec>) return "lstm";
        if constexpr (std::is_same_v<T, EmbeddingSpec>) return "embed";
        if constexpr (std::is_same_v<T, FlattenSpec>) return "flatten";
        if constexpr (std::is_same_v<T, ReshapeSpec>) return "reshape";
        return "layer";
      },
      spec);
}

bool IsEndpoint(const LayerSpec& spec) {
  return std::holds_alternative<InputSpec>(spec) || std::holds_alternative<LabelSpec>(spec) ||
         std::holds_alternative<SoftmaxCrossEntropySpec>(spec) || std::holds_alternative<AccuracySpec>(spec);
}

}  // namespace

Sequential::Sequential(Shape input_shape, DType dtype, Shape label_shape)
    : input_shape_(std::move(input_shape)), dtype_(dtype), label_shape_(std::move(label_shape)) {}

Sequential& Sequential::Add(LayerSpec spec, std::string name) {
  layers_.push_back(Entry{std::move(name), std::move(spec)});
  return *this;
}

StatusOr<Network> Sequential::Build() const {
  SIEVE_ENSURE(!layers_.empty(), StatusCode::kInvalidArgument, "a Sequential network needs at least one layer");
  Network net;
  net.Add(Layer{"data", InputSpec{input_shape_, dtype_}, {}, {"data"}});
  net.Add(Layer{"label", LabelSpec{label_shape_}, {}, {"label"}});
  std::map<std::string, int> counts;
  std::set<std::string> names = {"data", "label", "loss", "accuracy"};
  std::string previous = "data";
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Entry& entry = layers_[i];
    SIEVE_ENSURE(!IsEndpoint(entry.spec), StatusCode::kInvalidArgument,
                 "layer " << i + 1 << " of the Sequential network is a " << LayerKindName(entry.spec)
                          << " layer; Sequential adds the input, label, loss and accuracy layers itself");
    std::string name = entry.name;
    if (name.empty()) {
      const std::string stem = NameStem(entry.spec);
      do {
        name = stem + std::to_string(++counts[stem]);
      } while (names.count(name));
    }
    SIEVE_ENSURE(names.insert(name).second, StatusCode::kInvalidArgument,
                 "layer " << i + 1 << " of the Sequential network: the name '" << name << "' is already used");
    net.Add(Layer{name, entry.spec, {previous}, {name}});
    previous = name;
  }
  net.Add(Layer{"loss", SoftmaxCrossEntropySpec{}, {previous, "label"}, {}});
  net.Add(Layer{"accuracy", AccuracySpec{}, {previous, "label"}, {}});
  return net;
}

}  // namespace sieve::graph
