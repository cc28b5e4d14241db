// ONNX export of a Network's inference graph (onnx_export.h): one pass over the layers that emits
// ONNX nodes and initializers, with each layer's input shapes taken from graph::Lower of the network
// up to that layer (batch 1, evaluation graph), so that the exporter checks nothing Lower does not.
#include "runtime/export/onnx_export.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/file_io.h"
#include "graph/lower.h"
#include "onnx/onnx.pb.h"
#include "ops/kernels/im2col.h"

namespace sieve::runtime {
namespace {

using graph::Layer;

// Sieve's LSTM gate blocks are (i, f, g, o); ONNX's are (i, o, f, c): ONNX block j is Sieve block
// kOnnxGateFromSieve[j].
constexpr std::array<int64_t, 4> kOnnxGateFromSieve = {0, 3, 1, 2};

// The IR version that goes with an opset (onnx/helper.py's VERSION_TABLE).
int64_t IrVersionFor(int64_t opset) {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

void AddInt(onnx::NodeProto* node, const std::string& name, int64_t value) {
  onnx::AttributeProto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(value);
}

void AddInts(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) attr->add_ints(v);
}

// Fills `info` as a tensor of `elem_type` whose first axis is the dynamic "batch" and the rest
// `shape` without its first (batch) axis.
void SetBatchedType(onnx::ValueInfoProto* info, const std::string& name, int elem_type, const Shape& shape) {
  info->set_name(name);
  onnx::TypeProto_Tensor* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  onnx::TensorShapeProto* dims = tensor->mutable_shape();
  dims->add_dim()->set_dim_param("batch");
  for (size_t i = 1; i < shape.size(); ++i) dims->add_dim()->set_dim_value(shape[i]);
}

// Builds the GraphProto: nodes, initializers, and the map from blob names to ONNX tensor names.
class Exporter {
 public:
  Exporter(const ParamArena& params, onnx::GraphProto* graph) : params_(params), graph_(graph) {}

  // Emits `layer`, whose input blobs have the (batch 1) shapes `in_shapes` and whose outputs have
  // `out_shapes`.
  Status Emit(const Layer& layer, const std::vector<Shape>& in_shapes, const std::vector<Shape>& out_shapes) {
    return std::visit(
        [&](const auto& spec) -> Status {
          using Spec = std::decay_t<decltype(spec)>;
          if constexpr (std::is_same_v<Spec, graph::InputSpec>) return EmitInput(layer, spec, out_shapes[0]);
          else if constexpr (std::is_same_v<Spec, graph::LabelSpec> || std::is_same_v<Spec, graph::AccuracySpec>)
            return Status::Ok();
          else if constexpr (std::is_same_v<Spec, graph::FullyConnectedSpec>)
            return EmitFullyConnected(layer, spec, in_shapes[0], out_shapes[0]);
          else if constexpr (std::is_same_v<Spec, graph::Conv2dSpec>) return EmitConv(layer, spec, in_shapes[0]);
          else if constexpr (std::is_same_v<Spec, graph::PoolSpec>) return EmitPool(layer, spec, in_shapes[0]);
          else if constexpr (std::is_same_v<Spec, graph::ActivationSpec>) return EmitActivation(layer, spec);
          else if constexpr (std::is_same_v<Spec, graph::DropoutSpec>) {
            Bind(layer.outputs[0], Current(layer.inputs[0]));
            return Status::Ok();
          }
          else if constexpr (std::is_same_v<Spec, graph::LstmSpec>) return EmitLstm(layer, spec, in_shapes[0]);
          else if constexpr (std::is_same_v<Spec, graph::EmbeddingSpec>) return EmitEmbedding(layer, spec);
          else if constexpr (std::is_same_v<Spec, graph::FlattenSpec>) {
            onnx::NodeProto* node = Node("Flatten", layer.name, {Current(layer.inputs[0])}, {Fresh(layer.outputs[0])});
            AddInt(node, "axis", 1);
            Bind(layer.outputs[0], node->output(0));
            return Status::Ok();
          }
          else if constexpr (std::is_same_v<Spec, graph::ReshapeSpec>) {
            std::vector<int64_t> dims = {0};  // 0: the input's batch
            dims.insert(dims.end(), out_shapes[0].begin() + 1, out_shapes[0].end());
            const std::string shape = ConstInt64(layer.name + ".shape", dims);
            Bind(layer.outputs[0],
                 Node("Reshape", layer.name, {Current(layer.inputs[0]), shape}, {Fresh(layer.outputs[0])})->output(0));
            return Status::Ok();
          }
          else if constexpr (std::is_same_v<Spec, graph::SoftmaxCrossEntropySpec>)
            return EmitSoftmax(layer, in_shapes[0]);
          else
            static_assert(sizeof(Spec) == 0, "a layer kind the ONNX exporter does not handle");
        },
        layer.spec);
  }

  int outputs() const { return graph_->output_size(); }

 private:
  // The ONNX tensor that holds `blob` now (Lower has checked that an earlier layer writes it).
  const std::string& Current(const std::string& blob) const { return tensors_.at(blob); }
  void Bind(const std::string& blob, const std::string& tensor) { tensors_[blob] = tensor; }

  // `wanted` when no ONNX tensor has that name yet (a blob's first writer), else a new name from it.
  std::string Fresh(const std::string& wanted) {
    std::string name = wanted;
    for (int i = 1; !used_.insert(name).second; ++i) name = wanted + "_" + std::to_string(i);
    return name;
  }

  onnx::NodeProto* Node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs) {
    onnx::NodeProto* node = graph_->add_node();
    node->set_op_type(op);
    node->set_name(Fresh(name));
    for (const std::string& in : inputs) node->add_input(in);
    for (const std::string& out : outputs) node->add_output(out);
    return node;
  }

  std::string ConstFloat(const std::string& wanted, const std::vector<int64_t>& dims, const std::vector<float>& data) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(Fresh(wanted));
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
    return t->name();
  }

  std::string ConstInt64(const std::string& wanted, const std::vector<int64_t>& data) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(Fresh(wanted));
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(data.size()));
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(int64_t)));
    return t->name();
  }

  // The host values of parameter `name`, which the layer declares with `shape`.
  StatusOr<std::vector<float>> Weights(const Layer& layer, const std::string& name, const Shape& shape) const {
    SIEVE_ASSIGN_OR_RETURN(const sieve::Tensor param, params_.param(name));
    SIEVE_ENSURE(param.shape() == shape && param.dtype() == DType::kFloat32, StatusCode::kInvalidArgument,
                 DescribeLayer(layer) << ": parameter '" << name << "' is " << param.ToString()
                                      << " in the weights, but the network declares float32" << ShapeToString(shape));
    return param.Clone(Device::CPU()).ToVector();
  }

  Status EmitInput(const Layer& layer, const graph::InputSpec& spec, const Shape& shape) {
    const std::string name = Fresh(layer.outputs[0]);
    const int elem = spec.dtype == DType::kInt32 ? onnx::TensorProto::INT32 : onnx::TensorProto::FLOAT;
    SetBatchedType(graph_->add_input(), name, elem, shape);
    Bind(layer.outputs[0], name);
    return Status::Ok();
  }

  Status EmitFullyConnected(const Layer& layer, const graph::FullyConnectedSpec& spec, const Shape& in,
                            const Shape& out) {
    int64_t k = 1;
    for (size_t i = static_cast<size_t>(spec.axis); i < in.size(); ++i) k *= in[i];
    std::string x = Current(layer.inputs[0]);
    const bool rows = spec.axis > 1;  // Caffe axis: one product per (batch, ...lead) row
    if (in.size() > 2 && !rows) {
      onnx::NodeProto* flat = Node("Flatten", layer.name + ".flatten", {x}, {Fresh(layer.name + ".flat")});
      AddInt(flat, "axis", 1);
      x = flat->output(0);
    } else if (rows) {
      const std::string shape = ConstInt64(layer.name + ".rows.shape", {-1, k});
      x = Node("Reshape", layer.name + ".rows", {x, shape}, {Fresh(layer.name + ".rows")})->output(0);
    }
    SIEVE_ASSIGN_OR_RETURN(const std::vector<float> w, Weights(layer, layer.name + ".w", {spec.units, k}));
    std::vector<std::string> inputs = {x, ConstFloat(layer.name + ".w", {spec.units, k}, w)};
    if (spec.bias) {
      SIEVE_ASSIGN_OR_RETURN(const std::vector<float> b, Weights(layer, layer.name + ".b", {spec.units}));
      inputs.push_back(ConstFloat(layer.name + ".b", {spec.units}, b));
    }
    const std::string gemm_out = Fresh(rows ? layer.name + ".gemm" : layer.outputs[0]);
    AddInt(Node("Gemm", layer.name, inputs, {gemm_out}), "transB", 1);
    std::string y = gemm_out;
    if (rows) {
      std::vector<int64_t> dims = {-1};  // the batch
      dims.insert(dims.end(), out.begin() + 1, out.end());
      const std::string shape = ConstInt64(layer.name + ".out.shape", dims);
      y = Node("Reshape", layer.name + ".unrows", {gemm_out, shape}, {Fresh(layer.outputs[0])})->output(0);
    }
    Bind(layer.outputs[0], y);
    return Status::Ok();
  }

  Status EmitConv(const Layer& layer, const graph::Conv2dSpec& spec, const Shape& in) {
    const int64_t cin = in[1], k = spec.kernel;
    SIEVE_ASSIGN_OR_RETURN(const std::vector<float> w, Weights(layer, layer.name + ".w", {spec.filters, cin * k * k}));
    // Row o of the GEMM weight is filter o in (c, ki, kj) order: ONNX's [filters, Cin, k, k].
    std::vector<std::string> inputs = {Current(layer.inputs[0]),
                                       ConstFloat(layer.name + ".w", {spec.filters, cin, k, k}, w)};
    if (spec.bias) {
      SIEVE_ASSIGN_OR_RETURN(const std::vector<float> b, Weights(layer, layer.name + ".b", {spec.filters}));
      inputs.push_back(ConstFloat(layer.name + ".b", {spec.filters}, b));
    }
    onnx::NodeProto* node = Node("Conv", layer.name, inputs, {Fresh(layer.outputs[0])});
    AddInts(node, "kernel_shape", {k, k});
    AddInts(node, "strides", {spec.stride, spec.stride});
    AddInts(node, "pads", {spec.pad, spec.pad, spec.pad, spec.pad});
    Bind(layer.outputs[0], node->output(0));
    return Status::Ok();
  }

  Status EmitPool(const Layer& layer, const graph::PoolSpec& spec, const Shape& in) {
    ops::ConvGeometry g = ops::ConvGeometry::Square(in[1], in[2], in[3], spec.kernel, spec.stride, spec.pad);
    g.ceil_mode = spec.ceil_mode;
    if (spec.ceil_mode) {
      // ONNX's ceil-mode size keeps a last window that starts in the padding; Sieve drops it.
      const auto onnx_extent = [&](int64_t extent) {
        return (extent + 2 * spec.pad - spec.kernel + spec.stride - 1) / spec.stride + 1;
      };
      SIEVE_ENSURE(onnx_extent(in[2]) == g.out_h() && onnx_extent(in[3]) == g.out_w(), StatusCode::kUnimplemented,
                   DescribeLayer(layer) << " cannot be exported to ONNX: in ceil mode over input "
                                        << ShapeToString(in) << " (kernel " << spec.kernel << ", stride " << spec.stride
                                        << ", pad " << spec.pad << ") its last window starts in the padding; Sieve "
                                        << "drops that window (output " << g.out_h() << "x" << g.out_w()
                                        << "), ONNX's ceil mode keeps it (output " << onnx_extent(in[2]) << "x"
                                        << onnx_extent(in[3]) << ")");
    }
    const bool max = spec.kind == graph::PoolSpec::Kind::kMax;
    onnx::NodeProto* node =
        Node(max ? "MaxPool" : "AveragePool", layer.name, {Current(layer.inputs[0])}, {Fresh(layer.outputs[0])});
    AddInts(node, "kernel_shape", {spec.kernel, spec.kernel});
    AddInts(node, "strides", {spec.stride, spec.stride});
    AddInts(node, "pads", {spec.pad, spec.pad, spec.pad, spec.pad});
    if (spec.ceil_mode) AddInt(node, "ceil_mode", 1);
    if (!max) AddInt(node, "count_include_pad", 1);  // Caffe's divisor (ops/kernels/pooling.h)
    Bind(layer.outputs[0], node->output(0));
    return Status::Ok();
  }

  Status EmitActivation(const Layer& layer, const graph::ActivationSpec& spec) {
    const char* op = nullptr;
    switch (spec.kind) {
      case ops::Activation::kReLU: op = "Relu"; break;
      case ops::Activation::kTanh: op = "Tanh"; break;
      case ops::Activation::kSigmoid: op = "Sigmoid"; break;
      case ops::Activation::kCount: break;
    }
    SIEVE_ENSURE(op != nullptr, StatusCode::kUnimplemented,
                 DescribeLayer(layer) << " cannot be exported to ONNX: unknown activation "
                                      << static_cast<int>(spec.kind));
    Bind(layer.outputs[0], Node(op, layer.name, {Current(layer.inputs[0])}, {Fresh(layer.outputs[0])})->output(0));
    return Status::Ok();
  }

  // `param` [4H, width] (or [4H] with width 1) with its gate blocks in ONNX's order.
  static std::vector<float> OnnxGateOrder(const std::vector<float>& param, int64_t hidden, int64_t width) {
    std::vector<float> out(param.size());
    const int64_t block = hidden * width;
    for (int64_t j = 0; j < 4; ++j)
      std::copy_n(param.begin() + kOnnxGateFromSieve[j] * block, block, out.begin() + j * block);
    return out;
  }

  Status EmitLstm(const Layer& layer, const graph::LstmSpec& spec, const Shape& in) {
    const int64_t hidden = spec.units;
    const std::string p = layer.name + ".";
    // Batch-first [B, T, X] to ONNX's time-major [T, B, X].
    onnx::NodeProto* to_time =
        Node("Transpose", p + "time_major", {Current(layer.inputs[0])}, {Fresh(p + "time_major")});
    AddInts(to_time, "perm", {1, 0, 2});
    std::string x = to_time->output(0);
    int64_t width = in[2];
    std::string axis1;  // Squeeze's axes of Y, made when a layer's sequence is read
    for (int l = 0; l < spec.layers; ++l) {
      const std::string pl = p + "l" + std::to_string(l) + ".";
      SIEVE_ASSIGN_OR_RETURN(const std::vector<float> w, Weights(layer, pl + "w", {4 * hidden, width}));
      SIEVE_ASSIGN_OR_RETURN(const std::vector<float> u, Weights(layer, pl + "u", {4 * hidden, hidden}));
      SIEVE_ASSIGN_OR_RETURN(const std::vector<float> b, Weights(layer, pl + "b", {4 * hidden}));
      std::vector<float> bias = OnnxGateOrder(b, hidden, 1);  // Wb, then a zero Rb
      bias.resize(8 * hidden, 0.0f);
      const std::vector<std::string> inputs = {
          x, ConstFloat(pl + "w", {1, 4 * hidden, width}, OnnxGateOrder(w, hidden, width)),
          ConstFloat(pl + "u", {1, 4 * hidden, hidden}, OnnxGateOrder(u, hidden, hidden)),
          ConstFloat(pl + "b", {1, 8 * hidden}, bias)};
      onnx::NodeProto* lstm = Node("LSTM", pl + "lstm", inputs, {Fresh(pl + "y"), Fresh(pl + "y_h")});
      AddInt(lstm, "hidden_size", hidden);
      const bool top = l + 1 == spec.layers;
      if (top && !spec.return_sequences) {
        // The last step's h, Y_h [1, B, H] -> [B, H].
        Bind(layer.outputs[0],
             Node("Squeeze", p + "last", {lstm->output(1), ConstInt64(p + "axis0", {0})}, {Fresh(layer.outputs[0])})
                 ->output(0));
        return Status::Ok();
      }
      // Y [T, 1, B, H] -> [T, B, H].
      if (axis1.empty()) axis1 = ConstInt64(p + "axis1", {1});
      x = Node("Squeeze", pl + "seq", {lstm->output(0), axis1}, {Fresh(pl + "seq")})->output(0);
      width = hidden;
    }
    onnx::NodeProto* to_batch = Node("Transpose", p + "batch_major", {x}, {Fresh(layer.outputs[0])});
    AddInts(to_batch, "perm", {1, 0, 2});
    Bind(layer.outputs[0], to_batch->output(0));
    return Status::Ok();
  }

  Status EmitEmbedding(const Layer& layer, const graph::EmbeddingSpec& spec) {
    SIEVE_ASSIGN_OR_RETURN(const std::vector<float> table, Weights(layer, layer.name + ".w", {spec.vocab, spec.dim}));
    const std::string w = ConstFloat(layer.name + ".w", {spec.vocab, spec.dim}, table);
    onnx::NodeProto* node = Node("Gather", layer.name, {w, Current(layer.inputs[0])}, {Fresh(layer.outputs[0])});
    AddInt(node, "axis", 0);
    Bind(layer.outputs[0], node->output(0));
    return Status::Ok();
  }

  Status EmitSoftmax(const Layer& layer, const Shape& logits) {
    const std::string name = Fresh(layer.outputs.empty() ? layer.name + ".prob" : layer.outputs[0]);
    onnx::NodeProto* node = Node("Softmax", layer.name, {Current(layer.inputs[0])}, {name});
    AddInt(node, "axis", -1);
    SetBatchedType(graph_->add_output(), name, onnx::TensorProto::FLOAT, logits);
    if (!layer.outputs.empty()) Bind(layer.outputs[0], name);
    return Status::Ok();
  }

  const ParamArena& params_;
  onnx::GraphProto* graph_;
  std::map<std::string, std::string> tensors_;  // blob -> the ONNX tensor holding it now
  std::set<std::string> used_;                  // every ONNX name given so far
};

// The shapes (batch 1) of each layer's input and output blobs, from Lower of the network up to the layer.
StatusOr<std::vector<std::pair<std::vector<Shape>, std::vector<Shape>>>> LayerShapes(const graph::Network& network) {
  std::vector<std::pair<std::vector<Shape>, std::vector<Shape>>> shapes;
  std::map<std::string, Shape> blobs;
  graph::Network prefix;
  for (const Layer& layer : network.layers()) {
    std::vector<Shape> in;
    for (const std::string& blob : layer.inputs) in.push_back(blobs.count(blob) ? blobs.at(blob) : Shape{});
    prefix.Add(layer);
    SIEVE_ASSIGN_OR_RETURN(const graph::LoweredNet lowered, graph::Lower(prefix, {.batch = 1, .training = false}));
    std::vector<Shape> out;
    for (const std::string& blob : layer.outputs) {
      out.push_back(lowered.graph.value(lowered.blobs.at(blob)).planned);
      blobs[blob] = out.back();
    }
    shapes.emplace_back(std::move(in), std::move(out));
  }
  return shapes;
}

}  // namespace

StatusOr<std::string> ExportOnnx(const graph::Network& network, const ParamArena& params,
                                 const OnnxExportOptions& options) {
  SIEVE_ENSURE(options.opset >= kOnnxMinOpset && options.opset <= kOnnxMaxOpset, StatusCode::kInvalidArgument,
               "ONNX opset " << options.opset << " is outside the exporter's range [" << kOnnxMinOpset << ", "
                             << kOnnxMaxOpset << "]");
  SIEVE_ASSIGN_OR_RETURN(const auto shapes, LayerShapes(network));
  onnx::ModelProto model;
  model.set_ir_version(IrVersionFor(options.opset));
  model.set_producer_name("sieve");
  model.set_producer_version("0.1.0");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(options.graph_name.empty() ? "sieve" : options.graph_name);
  Exporter exporter(params, graph);
  for (int i = 0; i < network.size(); ++i)
    SIEVE_RETURN_IF_ERROR(exporter.Emit(network.layers()[i], shapes[i].first, shapes[i].second));
  SIEVE_ENSURE(exporter.outputs() > 0, StatusCode::kInvalidArgument,
               "the network has no SoftmaxCrossEntropy layer, so its ONNX graph would have no output");
  std::string bytes;
  SIEVE_ENSURE(model.SerializeToString(&bytes), StatusCode::kInternal, "the ONNX model could not be serialized");
  return bytes;
}

Status ExportOnnxFile(const graph::Network& network, const ParamArena& params, const std::string& path,
                      const OnnxExportOptions& options) {
  SIEVE_ASSIGN_OR_RETURN(const std::string bytes, ExportOnnx(network, params, options));
  return WriteFileAtomically(path, bytes, "ONNX model");
}

}  // namespace sieve::runtime
