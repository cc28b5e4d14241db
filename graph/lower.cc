// Lower: the checks every layer shares (names, blob counts, blob existence and in-place rules,
// which layers may read a row- or tile-dropped blob), the dispatch to the per-kind lowering
// functions in graph/lower/, the final verification, and the LowerContext helpers those functions
// build with.
#include "graph/lower.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "framework/suggest.h"
#include "graph/lower/lower_context.h"
#include "graph/verify.h"

namespace sieve::graph {

// ---------------------------------------------------------------------------------------------
// LowerContext

std::string LowerContext::Name(const Layer& layer, std::string_view what) {
  std::string name = layer.name;
  name += '.';
  name += what;
  return name;
}

ValueId LowerContext::Input(const Layer& layer, int index) const {
  SIEVE_CHECK(index >= 0 && index < static_cast<int>(layer.inputs.size()), DescribeLayer(layer) << ": input " << index);
  return net_.blobs.at(layer.inputs[index]);
}

void LowerContext::SetOutput(const Layer& layer, int index, ValueId value) {
  SIEVE_CHECK(index >= 0 && index < static_cast<int>(layer.outputs.size()), DescribeLayer(layer)
                                                                                << ": output " << index);
  net_.blobs[layer.outputs[index]] = value;
  dropped_.erase(layer.outputs[index]);
}

const Layer* LowerContext::LaterReader(const std::set<std::string>& blobs) const {
  if (network_ == nullptr) return nullptr;
  std::set<std::string> holding = blobs;  // the blobs that still hold their current value
  for (int i = position_ + 1; i < network_->size() && !holding.empty(); ++i) {
    const Layer& later = network_->layers()[i];
    for (const std::string& blob : later.inputs)
      if (holding.contains(blob)) return &later;
    for (const std::string& blob : later.outputs) holding.erase(blob);
  }
  return nullptr;
}

void LowerContext::MarkDropped(const Layer& layer, int index, DroppedBlob mark) {
  SIEVE_CHECK(index >= 0 && index < static_cast<int>(layer.outputs.size()), DescribeLayer(layer)
                                                                                << ": output " << index);
  dropped_[layer.outputs[index]] = std::move(mark);
}

const DroppedBlob* LowerContext::Dropped(const Layer& layer, int index) const {
  SIEVE_CHECK(index >= 0 && index < static_cast<int>(layer.inputs.size()), DescribeLayer(layer) << ": input " << index);
  const auto it = dropped_.find(layer.inputs[index]);
  return it == dropped_.end() ? nullptr : &it->second;
}

std::string LowerContext::DescribeInput(const Layer& layer, int index) const {
  const Value& v = value(Input(layer, index));
  std::string text =
      DescribeLayer(layer) + ": input '" + layer.inputs[index] + "' has shape " + ShapeToString(v.planned);
  if (v.dtype != DType::kFloat32) text += std::string(" (") + DTypeName(v.dtype) + ")";
  return text;
}

Shape LowerContext::BatchShape(const Shape& per_sample) const {
  Shape shape{options_.batch};
  shape.insert(shape.end(), per_sample.begin(), per_sample.end());
  return shape;
}

ValueId LowerContext::AddValue(const Layer& layer, std::string_view what, Shape shape, ValueRole role, DType dtype) {
  return graph().AddValue(Name(layer, what), role, std::move(shape), dtype);
}

ValueId LowerContext::AddInput(const Layer& layer, std::string_view what, Shape shape, DType dtype) {
  const ValueId id = AddValue(layer, what, std::move(shape), ValueRole::kInput, dtype);
  net_.inputs.push_back(id);
  return id;
}

ValueId LowerContext::AddLabel(const Layer& layer, std::string_view what, Shape shape) {
  const ValueId id = AddValue(layer, what, std::move(shape), ValueRole::kLabel, DType::kInt32);
  net_.labels.push_back(id);
  return id;
}

ValueId LowerContext::DeclareParam(const Layer& layer, std::string_view what, Shape shape,
                                   const runtime::ParamSpec& spec) {
  const ValueId id = graph().AddParam(Name(layer, what), shape);
  net_.params.push_back(ParamDecl{.name = Name(layer, what), .shape = std::move(shape), .spec = spec, .value = id});
  return id;
}

NodeId LowerContext::Emit(const Layer& layer, OpKind kind, std::string_view step, std::vector<ValueId> inputs,
                          std::vector<ValueId> outputs, NodeAttr attr, std::vector<SiteUse> sites) {
  return graph().AddNode(kind, Name(layer, step), std::move(inputs), std::move(outputs), std::move(attr),
                         Phase::kForward, std::move(sites));
}

bool LowerContext::IsContiguous(ValueId id) const {
  const Value& v = value(id);
  return !v.view || v.view->strides.empty() || v.view->strides == ContiguousStrides(v.planned);
}

ValueId LowerContext::Contiguous(const Layer& layer, ValueId id, std::string_view what) {
  if (IsContiguous(id)) return id;
  const Value& v = value(id);
  const ValueId copy = AddValue(layer, what, v.planned, ValueRole::kActivation, v.dtype);
  Emit(layer, OpKind::kCopy, what, {id}, {copy});
  return copy;
}

ValueId LowerContext::Reshape(const Layer& layer, ValueId id, Shape shape, std::string_view what) {
  SIEVE_CHECK_EQ(ShapeNumel(shape), ShapeNumel(value(id).planned),
                 DescribeLayer(layer) << ": reshape to " << ShapeToString(shape));
  if (shape == value(id).planned) return id;
  const ValueId dense = Contiguous(layer, id, std::string(what) + ".dense");
  return graph().AddView(Name(layer, what), value(dense).role, std::move(shape), dense);
}

// ---------------------------------------------------------------------------------------------
// Lower

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;

// How many blobs a kind reads and writes.
struct BlobCounts {
  int inputs = 1;
  int min_outputs = 1;
  int max_outputs = 1;
};
BlobCounts CountsOf(const InputSpec&) { return {.inputs = 0}; }
BlobCounts CountsOf(const LabelSpec&) { return {.inputs = 0}; }
BlobCounts CountsOf(const SoftmaxCrossEntropySpec&) { return {.inputs = 2, .min_outputs = 0, .max_outputs = 1}; }
BlobCounts CountsOf(const AccuracySpec&) { return {.inputs = 2, .min_outputs = 0, .max_outputs = 0}; }
template <typename Spec>
BlobCounts CountsOf(const Spec&) {
  return {};
}

std::string Plural(int n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

// The checks before a layer's own function runs: its name, its blob counts, its input blobs
// exist, and each output blob is new or rewritten in place.
Status CheckLayerBlobs(const Layer& layer, int position, const std::set<std::string>& earlier_layers,
                       const std::map<std::string, std::string>& blob_writer) {
  SIEVE_ENSURE(!layer.name.empty(), kInvalid,
               "layer #" << position << " (" << LayerKindName(layer.spec) << ") has no name");
  SIEVE_ENSURE(!earlier_layers.contains(layer.name), kInvalid,
               DescribeLayer(layer) << ": an earlier layer has the same name");
  const BlobCounts counts = std::visit([](const auto& spec) { return CountsOf(spec); }, layer.spec);
  const int inputs = static_cast<int>(layer.inputs.size());
  const int outputs = static_cast<int>(layer.outputs.size());
  SIEVE_ENSURE(inputs == counts.inputs, kInvalid,
               DescribeLayer(layer) << ": reads " << Plural(inputs, "blob") << ", " << LayerKindName(layer.spec)
                                    << " takes " << counts.inputs);
  SIEVE_ENSURE(
      outputs >= counts.min_outputs && outputs <= counts.max_outputs, kInvalid,
      DescribeLayer(layer) << ": writes " << Plural(outputs, "blob") << ", " << LayerKindName(layer.spec) << " writes "
                           << (counts.min_outputs == counts.max_outputs
                                   ? std::to_string(counts.max_outputs)
                                   : std::to_string(counts.min_outputs) + " or " + std::to_string(counts.max_outputs)));
  std::vector<std::string> known;
  for (const auto& [blob, writer] : blob_writer) known.push_back(blob);
  for (const std::string& blob : layer.inputs) {
    SIEVE_ENSURE(blob_writer.contains(blob), StatusCode::kNotFound,
                 DescribeLayer(layer) << ": input blob '" << blob << "' is not written by an earlier layer"
                                      << NearestSuffix(blob, known));
  }
  std::set<std::string> written;
  for (const std::string& blob : layer.outputs) {
    SIEVE_ENSURE(!blob.empty(), kInvalid, DescribeLayer(layer) << ": an output blob has no name");
    SIEVE_ENSURE(written.insert(blob).second, kInvalid, DescribeLayer(layer) << ": writes blob '" << blob << "' twice");
    const auto it = blob_writer.find(blob);
    const bool in_place = std::find(layer.inputs.begin(), layer.inputs.end(), blob) != layer.inputs.end();
    SIEVE_ENSURE(it == blob_writer.end() || in_place, kInvalid,
                 DescribeLayer(layer) << ": output blob '" << blob << "' is already written by layer '" << it->second
                                      << "' (only a layer that reads a blob may rewrite it, in place)");
  }
  return Status::Ok();
}

// Only FullyConnected layers (and Lstm layers, for row sites) apply a row or tile site's pattern
// to their GEMMs, and only Conv2d layers a channel site's; any other reader of a dropped blob would
// see the undropped (or packed) value.
Status CheckDroppedReaders(const Layer& layer, const LowerContext& ctx) {
  for (int i = 0; i < static_cast<int>(layer.inputs.size()); ++i) {
    const DroppedBlob* mark = ctx.Dropped(layer, i);
    if (mark == nullptr) continue;
    if (ctx.graph().site(mark->site).kind == SiteKind::kChannel) {  // feature-map dropout (SPEC 3)
      SIEVE_ENSURE(std::holds_alternative<Conv2dSpec>(layer.spec), kInvalid,
                   DescribeLayer(layer) << ": input blob '" << layer.inputs[i] << "' is the output of feature-map "
                                        << "dropout layer '" << mark->layer << "', which only Conv2d layers can read");
      continue;
    }
    const bool row = ctx.graph().site(mark->site).kind == SiteKind::kRow;
    const bool fc = std::holds_alternative<FullyConnectedSpec>(layer.spec);
    const bool lstm = std::holds_alternative<LstmSpec>(layer.spec);
    SIEVE_ENSURE(fc || (row && lstm), kInvalid,
                 DescribeLayer(layer) << ": input blob '" << layer.inputs[i] << "' is the output of "
                                      << (row ? "row" : "tile") << " dropout layer '" << mark->layer << "', which only "
                                      << (row ? "FullyConnected and Lstm layers" : "FullyConnected layers")
                                      << " can read");
  }
  return Status::Ok();
}

Status LowerLayer(const Layer& layer, LowerContext& ctx) {
  return std::visit(
      [&](const auto& spec) -> Status {
        using T = std::decay_t<decltype(spec)>;
        if constexpr (std::is_same_v<T, InputSpec>) {
          return LowerInput(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, LabelSpec>) {
          return LowerLabel(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, FullyConnectedSpec>) {
          return LowerFullyConnected(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, Conv2dSpec>) {
          return LowerConv2d(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, PoolSpec>) {
          return LowerPool(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, ActivationSpec>) {
          return LowerActivation(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, DropoutSpec>) {
          return LowerDropout(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, LstmSpec>) {
          return LowerLstm(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, EmbeddingSpec>) {
          return LowerEmbedding(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, FlattenSpec>) {
          return LowerFlatten(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, ReshapeSpec>) {
          return LowerReshape(layer, spec, ctx);
        } else if constexpr (std::is_same_v<T, SoftmaxCrossEntropySpec>) {
          return LowerSoftmaxCrossEntropy(layer, spec, ctx);
        } else {
          static_assert(std::is_same_v<T, AccuracySpec>, "a LayerSpec alternative without a lowering");
          return LowerAccuracy(layer, spec, ctx);
        }
      },
      layer.spec);
}

}  // namespace

StatusOr<LoweredNet> Lower(const Network& network, const LowerOptions& options) {
  SIEVE_ENSURE(options.batch >= 1, kInvalid, "Lower: the batch size must be >= 1, got " << options.batch);
  LoweredNet net;
  LowerContext ctx(net, options, &network);
  std::set<std::string> earlier_layers;
  std::map<std::string, std::string> blob_writer;  // blob -> the layer that last wrote it
  for (int i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layers()[i];
    SIEVE_RETURN_IF_ERROR(CheckLayerBlobs(layer, i, earlier_layers, blob_writer));
    SIEVE_RETURN_IF_ERROR(CheckDroppedReaders(layer, ctx));
    ctx.set_position(i);
    SIEVE_RETURN_IF_ERROR(LowerLayer(layer, ctx));
    for (const std::string& blob : layer.outputs) {
      SIEVE_CHECK(net.blobs.contains(blob), DescribeLayer(layer) << " did not bind its output blob '" << blob << "'");
      blob_writer[blob] = layer.name;
    }
    earlier_layers.insert(layer.name);
  }
  if (Status st = Verify(net.graph); !st.ok())
    return SIEVE_ERROR(StatusCode::kInternal, "Lower: the lowered graph fails verification: " << st.message());
  return net;
}

}  // namespace sieve::graph
