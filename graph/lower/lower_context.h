// Private to the lowering (graph/lower.cc and graph/lower/*.cc): the LowerContext every per-kind
// lowering function writes through, and those functions' declarations.
//
// Lower (lower.cc) checks what is common to all layers before it calls a kind's function: the
// layer name, the number of input and output blobs, and that every input blob exists. The kind's
// function checks its settings and input shapes, emits its nodes and binds every output blob
// (SetOutput). Row and tile Dropout layers mark their output blobs (DroppedBlob), so that the
// layers reading them annotate their GEMMs; LaterReader lets a lowering look ahead at the layers
// still to come. It is not a public header: users call Lower (graph/lower.h).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/ir.h"
#include "graph/layers.h"
#include "graph/lower.h"
#include "runtime/params/param_arena.h"

namespace sieve::graph {

/// An output blob of a row or tile Dropout layer (approximate random dropout, SPEC 2): the layers
/// that read it apply the site's pattern to their GEMMs. The blob's value is the dropout's input
/// value, packed along its last axis (`packed`) when the producing FullyConnected layer computes
/// only the kept units.
struct DroppedBlob {
  SiteId site{};
  std::string layer;  ///< the Dropout layer
  bool packed = false;
};

/// The state of one lowering: the net being built, the blob map and the options.
class LowerContext {
 public:
  /// `network` (optional) is what LaterReader looks ahead in; Lower passes it and sets the
  /// position of each layer before lowering it (set_position).
  LowerContext(LoweredNet& net, const LowerOptions& options, const Network* network = nullptr)
      : net_(net), options_(options), network_(network) {}

  Graph& graph() { return net_.graph; }
  const Graph& graph() const { return net_.graph; }
  /// The whole result, for what the helpers below do not cover (custom gradients, state carry).
  LoweredNet& net() { return net_; }
  int64_t batch() const { return options_.batch; }
  bool training() const { return options_.training; }
  const Value& value(ValueId id) const { return net_.graph.value(id); }
  const Shape& shape(ValueId id) const { return net_.graph.value(id).planned; }
  /// [batch, ...per_sample].
  Shape BatchShape(const Shape& per_sample) const;

  /// "<layer>.<what>": the name of a value, node or site of the layer.
  static std::string Name(const Layer& layer, std::string_view what);

  /// The forward value of the layer's input blob `index` (Lower has checked it exists).
  ValueId Input(const Layer& layer, int index) const;
  /// Binds the layer's output blob `index` to `value` (and forgets a DroppedBlob mark the blob had).
  void SetOutput(const Layer& layer, int index, ValueId value);

  /// The position in the network of the layer being lowered.
  void set_position(int position) { position_ = position; }
  /// The first layer after the current one that reads one of `blobs` while it still holds the
  /// value it holds now (before a layer rewrites it), or nullptr. Without a network: nullptr.
  const Layer* LaterReader(const std::set<std::string>& blobs) const;

  /// Marks the layer's output blob `index` (bound already) as dropped by a row or tile site.
  void MarkDropped(const Layer& layer, int index, DroppedBlob mark);
  /// The mark of the layer's input blob `index`, or nullptr when it is not a dropped blob.
  const DroppedBlob* Dropped(const Layer& layer, int index) const;

  /// "layer 'fc2' (FullyConnected): input 'pool1' has shape [128, 6, 12, 12]" (with the dtype
  /// when it is not float32), the start of a message about input blob `index`; the caller
  /// appends "; " and what is wrong with it.
  std::string DescribeInput(const Layer& layer, int index) const;

  /// A new value "<layer>.<what>" with no producer yet (the next Emit that outputs it is).
  ValueId AddValue(const Layer& layer, std::string_view what, Shape shape, ValueRole role = ValueRole::kActivation,
                   DType dtype = DType::kFloat32);
  /// A batch input leaf "<layer>.<what>" (kInput), recorded in LoweredNet::inputs.
  ValueId AddInput(const Layer& layer, std::string_view what, Shape shape, DType dtype = DType::kFloat32);
  /// A label leaf "<layer>.<what>" (kLabel, int32), recorded in LoweredNet::labels.
  ValueId AddLabel(const Layer& layer, std::string_view what, Shape shape);
  /// A parameter "<layer>.<what>": the kParam leaf and its ParamDecl (in call order).
  ValueId DeclareParam(const Layer& layer, std::string_view what, Shape shape, const runtime::ParamSpec& spec);

  /// Appends the forward node "<layer>.<step>".
  NodeId Emit(const Layer& layer, OpKind kind, std::string_view step, std::vector<ValueId> inputs,
              std::vector<ValueId> outputs, NodeAttr attr = {}, std::vector<SiteUse> sites = {});

  /// True when `id` is stored densely in row-major order: not a view, or a view without strides
  /// or with the contiguous strides of its shape.
  bool IsContiguous(ValueId id) const;
  /// `id` itself when it is contiguous; otherwise a contiguous copy "<layer>.<what>" made by a
  /// Copy node "<layer>.<what>" (a strided LSTM step feeding a kernel that needs dense input).
  ValueId Contiguous(const Layer& layer, ValueId id, std::string_view what);
  /// A reading view "<layer>.<what>" of `id` with `shape` (same element count, no copy); `id` is
  /// made contiguous first. Returns `id` itself when the shape is already `shape`.
  ValueId Reshape(const Layer& layer, ValueId id, Shape shape, std::string_view what);

 private:
  LoweredNet& net_;
  LowerOptions options_;
  const Network* network_;
  int position_ = 0;
  std::map<std::string, DroppedBlob> dropped_;  // blob name -> its mark, while the blob holds that value
};

// One function per layer kind (graph/lower/<kind>.cc). Each checks the layer's settings and input
// shapes, emits its nodes and binds its output blobs.
Status LowerInput(const Layer& layer, const InputSpec& spec, LowerContext& ctx);
Status LowerLabel(const Layer& layer, const LabelSpec& spec, LowerContext& ctx);
Status LowerFullyConnected(const Layer& layer, const FullyConnectedSpec& spec, LowerContext& ctx);
Status LowerConv2d(const Layer& layer, const Conv2dSpec& spec, LowerContext& ctx);
Status LowerPool(const Layer& layer, const PoolSpec& spec, LowerContext& ctx);
Status LowerActivation(const Layer& layer, const ActivationSpec& spec, LowerContext& ctx);
Status LowerDropout(const Layer& layer, const DropoutSpec& spec, LowerContext& ctx);
/// graph/lower/lstm.cc (the kernels helper's): forward nodes plus the layer's CustomGradient.
Status LowerLstm(const Layer& layer, const LstmSpec& spec, LowerContext& ctx);
Status LowerEmbedding(const Layer& layer, const EmbeddingSpec& spec, LowerContext& ctx);
Status LowerFlatten(const Layer& layer, const FlattenSpec& spec, LowerContext& ctx);
Status LowerReshape(const Layer& layer, const ReshapeSpec& spec, LowerContext& ctx);
Status LowerSoftmaxCrossEntropy(const Layer& layer, const SoftmaxCrossEntropySpec& spec, LowerContext& ctx);
Status LowerAccuracy(const Layer& layer, const AccuracySpec& spec, LowerContext& ctx);

}  // namespace sieve::graph
