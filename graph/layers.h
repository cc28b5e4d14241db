// The layer graph users build: a Network is an ordered list of Layers, Caffe style. Each layer
// names the blobs it reads and the blobs it writes; a blob is produced by an earlier layer (or
// rewritten in place by a layer that reads and writes the same name, as Caffe's ReLU does).
// Shapes are per sample: the batch size is chosen when the network is lowered (lower.h).
//
// This file only describes networks. It does not check them (Lower does, naming the layer) and
// it knows nothing of the MatMul IR the layers become (graph/lower.h, graph/lower/*.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "framework/tensor.h"
#include "ops/kernels/activation.h"
#include "runtime/params/param_arena.h"

namespace sieve::graph {

/// A batch input. `shape` is per sample: {784}, {1, 28, 28}, {28, 28} (T x features) or {35}
/// int32 tokens; the lowered value is [B, ...shape].
struct InputSpec {
  Shape shape;
  DType dtype = DType::kFloat32;
};

/// Integer class labels: one per sample ({}) or one per time step ({T}); the lowered value is
/// int32 [B, ...shape].
struct LabelSpec {
  Shape shape = {};
};

/// Y = X W^T + b with W [units, K]. The input is [B, K], or [B, ...] flattened from axis 1.
struct FullyConnectedSpec {
  int64_t units = 0;
  bool bias = true;
  runtime::ParamSpec weight{.init = runtime::InitSpec::Xavier()};
  runtime::ParamSpec bias_param{};
};

/// A 2-D convolution over NCHW input [B, Cin, H, W] with a square kernel, zero padding, one
/// stride for both axes and no dilation. The weight is declared as the GEMM's [filters,
/// Cin*kernel*kernel] matrix.
struct Conv2dSpec {
  int64_t filters = 0;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t pad = 0;
  bool bias = true;
  runtime::ParamSpec weight{.init = runtime::InitSpec::Msra()};
  runtime::ParamSpec bias_param{};
};

/// Max or average pooling over NCHW input with a square window (ops::ConvGeometry; `ceil_mode`
/// rounds the output size up as Caffe does).
struct PoolSpec {
  enum class Kind { kMax, kAvg } kind = Kind::kMax;
  int64_t kernel = 2;
  int64_t stride = 2;
  int64_t pad = 0;
  bool ceil_mode = false;
};

/// A pointwise activation; the output has the input's shape.
struct ActivationSpec {
  ops::Activation kind = ops::Activation::kReLU;
};

/// Element-wise (Bernoulli) dropout with drop probability `rate`, scaled by 1 / (1 - rate); only
/// in training graphs (an evaluation graph passes the input through).
struct DropoutSpec {
  double rate = 0.5;
};

/// A stack of `layers` LSTMs over batch-first input [B, T, X]; the output is [B, T, units] with
/// `return_sequences`, else the last step's [B, units]. The forget gate's bias starts at
/// `forget_bias`.
struct LstmSpec {
  int64_t units = 0;
  int layers = 1;
  bool return_sequences = false;
  runtime::ParamSpec weight{.init = runtime::InitSpec::Uniform(-0.08f, 0.08f)};
  runtime::ParamSpec bias_param{};
  float forget_bias = 1.0f;
};

/// A lookup table [vocab, dim]: int32 [B, ...] indices -> float32 [B, ..., dim].
struct EmbeddingSpec {
  int64_t vocab = 0;
  int64_t dim = 0;
  runtime::ParamSpec weight{.init = runtime::InitSpec::Uniform(-0.1f, 0.1f)};
};

/// [B, ...] -> [B, product of the rest].
struct FlattenSpec {};

/// [B, ...] -> [B, ...shape]; `shape` is per sample and may hold one -1, inferred from the
/// element count.
struct ReshapeSpec {
  Shape shape;
};

/// Softmax cross-entropy loss. Inputs: logits [B, ..., C] and int32 labels [B, ...] (the logits'
/// shape without its last axis). Rows whose label is `ignore_label` do not count. The optional
/// output blob is the probabilities [rows, C].
struct SoftmaxCrossEntropySpec {
  float loss_weight = 1.0f;
  std::optional<int32_t> ignore_label;
};

/// Classification accuracy, an evaluation metric that is never differentiated. Inputs as
/// SoftmaxCrossEntropy's; no output blob.
struct AccuracySpec {};

/// What a layer computes; the alternative decides the kind (LayerKindName).
using LayerSpec =
    std::variant<InputSpec, LabelSpec, FullyConnectedSpec, Conv2dSpec, PoolSpec, ActivationSpec, DropoutSpec, LstmSpec,
                 EmbeddingSpec, FlattenSpec, ReshapeSpec, SoftmaxCrossEntropySpec, AccuracySpec>;

/// One layer: its unique name, what it computes, and the blobs it reads and writes.
struct Layer {
  std::string name;
  LayerSpec spec;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
};

/// "Input", "Label", "FullyConnected", "Conv2d", "Pool", "Activation", "Dropout", "Lstm",
/// "Embedding", "Flatten", "Reshape", "SoftmaxCrossEntropy", "Accuracy".
const char* LayerKindName(const LayerSpec& spec);

/// "layer 'fc2' (FullyConnected)", for messages.
std::string DescribeLayer(const Layer& layer);

/// The layers of a network, in execution order.
class Network {
 public:
  /// Appends a layer; nothing is checked until the network is lowered.
  Network& Add(Layer layer);

  const std::vector<Layer>& layers() const { return layers_; }
  int size() const { return static_cast<int>(layers_.size()); }

 private:
  std::vector<Layer> layers_;
};

}  // namespace sieve::graph
