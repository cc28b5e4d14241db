// The layer graph users build: a Network is an ordered list of Layers, Caffe style. Each layer
// names the blobs it reads and the blobs it writes; a blob is produced by an earlier layer (or
// rewritten in place by a layer that reads and writes the same name, as Caffe's ReLU does).
// Shapes are per sample: the batch size is chosen when the network is lowered (lower.h).
//
// This file only describes networks. It does not check them (Lower does, naming the layer) and
// it does not build the MatMul IR the layers become (graph/lower.h, graph/lower/*.cc); it only
// borrows the IR's dropout settings (ScaleMode, PatternFamily) for DropoutSpec.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "framework/tensor.h"
#include "graph/ir.h"
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
  /// Caffe's InnerProduct axis: the axes before it index rows (one product each), the axes from it
  /// on are flattened into the K features. 1: [B, ...] -> [B, units]; 2 on [B, T, H]: a per-time-step
  /// projection [B, T, units].
  int axis = 1;
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

/// Dropout with drop rate `rate`, only in training graphs (an evaluation graph passes the input
/// through). Five kinds:
///   kBernoulli      element-wise, a fresh mask per sample, scaled by 1 / (1 - rate);
///   kRow            approximate random dropout over the units of the input's last axis (SPEC 2.2):
///                   one row pattern per mini-batch. The layers that read the output must be
///                   FullyConnected (input [B, units]) or Lstm (input [B, T, units]); they use only
///                   the kept columns of their weights. When the input comes straight from a
///                   FullyConnected layer (through its bias and activations) that nothing else
///                   reads, that layer computes only the kept units;
///   kTile           approximate random DropConnect (SPEC 2.3): tile patterns over the weight of the
///                   FullyConnected layers that read the output, which must be the only readers;
///   kSensitivity    sensitivity-aware feature-map dropout (SPEC 3) of the NCHW input of the
///                   Conv2d that reads the output: each iteration ceil(rate * Cin) input maps are
///                   dropped, sampled without replacement with probability proportional to
///                   softmax(-S_c / temperature) of the maps' normalised sensitivities
///                   (graph/sensitivity_pass.h); the conv's im2col and GEMMs shrink, kept maps are
///                   scaled by Cin / (Cin - dropped). Never on the network input;
///   kRandomChannel  the same with uniformly chosen maps (the ablation baseline).
/// `scaling` .. `shuffle_every_epochs` are for the row and tile kinds; the fields after them for
/// the channel kinds (kSensitivity, kRandomChannel).
struct DropoutSpec {
  double rate = 0.5;
  enum class Kind : uint8_t { kBernoulli, kRow, kTile, kSensitivity, kRandomChannel } kind = Kind::kBernoulli;
  ScaleMode scaling = ScaleMode::kPattern;          ///< per-pattern 1/(1-r) or nominal 1/(1-p) (SPEC 2.4)
  PatternFamily family = PatternFamily::kSearched;  ///< searched distribution, or one fixed dp
  int64_t max_period = 16;                          ///< D: row / tile dp <= D; Tmax of generalized (k, T)
  bool generalized = false;                         ///< row: (k, T) patterns with T <= max_period
  int64_t tile_rows = 32, tile_cols = 32;           ///< tile: the tile shape over the weight [units, K]
  /// Row: permute the producing FullyConnected layer's units every this many epochs (SPEC 2.5
  /// beyond; runtime/unit_shuffle.h); 0 = never. Needs the producer to shrink (see kRow).
  int64_t shuffle_every_epochs = 0;
  /// kSensitivity: the temperature of the drop probabilities softmax(-S_c / temperature), S_c the
  /// sensitivities divided by their mean; larger is closer to uniform, 0 always drops the least
  /// sensitive maps. Must be >= 0.
  double temperature = 1.0;
  /// Channel kinds: the first this many training iterations run dense (every map kept); the
  /// sensitivity estimates still learn from them.
  int64_t warmup_iterations = 0;
  /// kSensitivity: the weight of the newest observation in the running (EMA) importance and
  /// sensitivity estimates, in (0, 1].
  double ema_weight = 0.1;
};
/// "bernoulli", "row", "tile", "sensitivity", "random_channel".
const char* DropoutKindName(DropoutSpec::Kind kind);
/// True for kSensitivity and kRandomChannel, the kinds that drop a conv's input feature maps.
inline bool IsChannelDropout(DropoutSpec::Kind kind) {
  return kind == DropoutSpec::Kind::kSensitivity || kind == DropoutSpec::Kind::kRandomChannel;
}
/// The maps a channel kind drops of `channels` per iteration: ceil(rate * channels), with the product
/// rounded to 1e-9 first, so that 0.3 * 10 drops 3, not 4.
int64_t ChannelsDropped(double rate, int64_t channels);

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
