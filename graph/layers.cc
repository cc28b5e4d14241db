// The layer graph: kind names, layer descriptions for messages, and Network's list of layers.
#include "graph/layers.h"

#include <cmath>
#include <string>
#include <utility>
#include <variant>

namespace sieve::graph {

namespace {
// One overload per LayerSpec alternative, so a new alternative without a name fails to compile.
const char* KindName(const InputSpec&) { return "Input"; }
const char* KindName(const LabelSpec&) { return "Label"; }
const char* KindName(const FullyConnectedSpec&) { return "FullyConnected"; }
const char* KindName(const Conv2dSpec&) { return "Conv2d"; }
const char* KindName(const PoolSpec&) { return "Pool"; }
const char* KindName(const ActivationSpec&) { return "Activation"; }
const char* KindName(const DropoutSpec&) { return "Dropout"; }
const char* KindName(const LstmSpec&) { return "Lstm"; }
const char* KindName(const EmbeddingSpec&) { return "Embedding"; }
const char* KindName(const FlattenSpec&) { return "Flatten"; }
const char* KindName(const ReshapeSpec&) { return "Reshape"; }
const char* KindName(const SoftmaxCrossEntropySpec&) { return "SoftmaxCrossEntropy"; }
const char* KindName(const AccuracySpec&) { return "Accuracy"; }
}  // namespace

const char* DropoutKindName(DropoutSpec::Kind kind) {
  switch (kind) {
    case DropoutSpec::Kind::kBernoulli:
      return "bernoulli";
    case DropoutSpec::Kind::kRow:
      return "row";
    case DropoutSpec::Kind::kTile:
      return "tile";
    case DropoutSpec::Kind::kSensitivity:
      return "sensitivity";
    case DropoutSpec::Kind::kRandomChannel:
      return "random_channel";
  }
  return "?";
}

int64_t ChannelsDropped(double rate, int64_t channels) {
  const double product = rate * static_cast<double>(channels);
  return static_cast<int64_t>(std::ceil(product - 1e-9));
}

const char* LayerKindName(const LayerSpec& spec) {
  return std::visit([](const auto& s) { return KindName(s); }, spec);
}

std::string DescribeLayer(const Layer& layer) {
  return "layer '" + layer.name + "' (" + LayerKindName(layer.spec) + ")";
}

Network& Network::Add(Layer layer) {
  layers_.push_back(std::move(layer));
  return *this;
}

}  // namespace sieve::graph
