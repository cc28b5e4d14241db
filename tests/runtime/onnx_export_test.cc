// Tests of the ONNX export (runtime/export/onnx_export.h): the structure of the exported ModelProto for
// each layer family (operators, attributes, names, the dynamic batch axis, dropout removed), the weights
// as initializers (the LSTM gate blocks reordered to ONNX's i, o, f, c with a zero recurrent bias, the conv
// weight as [F, C, k, k]), and the errors: a pool ONNX cannot express, no output, an opset outside the
// range, weights of another network. Running the models against Sieve's own inference is
// tests/interop/test_onnx.py (onnxruntime).
#include "runtime/export/onnx_export.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "framework/file_io.h"
#include "onnx/onnx.pb.h"
#include "runtime/trainer.h"

namespace sieve::runtime {
namespace {

using graph::Layer;

graph::Network MlpNetwork(int64_t hidden) {
  graph::Network net;
  net.Add({"data", graph::InputSpec{.shape = {6}}, {}, {"data"}});
  net.Add({"label", graph::LabelSpec{}, {}, {"label"}});
  net.Add({"fc1", graph::FullyConnectedSpec{.units = hidden}, {"data"}, {"fc1"}});
  net.Add({"relu1", graph::ActivationSpec{.kind = ops::Activation::kReLU}, {"fc1"}, {"fc1"}});  // in place
  net.Add({"drop1", graph::DropoutSpec{.rate = 0.5}, {"fc1"}, {"drop1"}});
  net.Add({"fc2", graph::FullyConnectedSpec{.units = 3, .bias = false}, {"drop1"}, {"fc2"}});
  net.Add({"loss", graph::SoftmaxCrossEntropySpec{}, {"fc2", "label"}, {}});
  net.Add({"accuracy", graph::AccuracySpec{}, {"fc2", "label"}, {}});
  return net;
}

std::unique_ptr<Trainer> MakeTrainer(const graph::Network& net) {
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(net, {.batch_size = 2, .seed = 7});
  REQUIRE(trainer.ok());
  return std::move(*trainer);
}

onnx::ModelProto Export(const graph::Network& net, const ParamArena& params, const OnnxExportOptions& options = {}) {
  StatusOr<std::string> bytes = ExportOnnx(net, params, options);
  INFO(bytes.status().ToString());
  REQUIRE(bytes.ok());
  onnx::ModelProto model;
  REQUIRE(model.ParseFromString(*bytes));
  return model;
}

std::vector<std::string> OpTypes(const onnx::GraphProto& graph) {
  std::vector<std::string> ops;
  for (const onnx::NodeProto& node : graph.node()) ops.push_back(node.op_type());
  return ops;
}

const onnx::TensorProto& Initializer(const onnx::GraphProto& graph, const std::string& name) {
  for (const onnx::TensorProto& t : graph.initializer())
    if (t.name() == name) return t;
  FAIL("no initializer " << name);
  return graph.initializer(0);
}

std::vector<int64_t> Dims(const onnx::TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

std::vector<float> Floats(const onnx::TensorProto& t) {
  REQUIRE(t.data_type() == onnx::TensorProto::FLOAT);
  std::vector<float> values(t.raw_data().size() / sizeof(float));
  std::memcpy(values.data(), t.raw_data().data(), t.raw_data().size());
  return values;
}

const onnx::AttributeProto& Attr(const onnx::NodeProto& node, const std::string& name) {
  for (const onnx::AttributeProto& a : node.attribute())
    if (a.name() == name) return a;
  FAIL("node " << node.name() << " has no attribute " << name);
  return node.attribute(0);
}

// "batch" followed by the fixed extents, as a value's shape reads.
std::vector<std::string> ShapeOf(const onnx::ValueInfoProto& info) {
  std::vector<std::string> dims;
  for (const onnx::TensorShapeProto_Dimension& d : info.type().tensor_type().shape().dim())
    dims.push_back(d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return dims;
}

std::vector<float> ParamValues(const Trainer& trainer, const std::string& name) {
  StatusOr<Tensor> param = trainer.params().param(name);
  REQUIRE(param.ok());
  return param->ToVector();
}

TEST_CASE("ONNX export of an MLP has Gemm nodes without dropout and the trained weights", "[onnx]") {
  const graph::Network net = MlpNetwork(4);
  std::unique_ptr<Trainer> trainer = MakeTrainer(net);
  const onnx::ModelProto model = Export(net, trainer->params(), {.opset = 17, .graph_name = "mlp"});
  CHECK(model.ir_version() == 8);
  REQUIRE(model.opset_import_size() == 1);
  CHECK(model.opset_import(0).domain().empty());
  CHECK(model.opset_import(0).version() == 17);
  const onnx::GraphProto& g = model.graph();
  CHECK(g.name() == "mlp");
  CHECK(OpTypes(g) == std::vector<std::string>{"Gemm", "Relu", "Gemm", "Softmax"});
  REQUIRE(g.input_size() == 1);
  CHECK(g.input(0).name() == "data");
  CHECK(g.input(0).type().tensor_type().elem_type() == onnx::TensorProto::FLOAT);
  CHECK(ShapeOf(g.input(0)) == std::vector<std::string>{"batch", "6"});
  REQUIRE(g.output_size() == 1);
  CHECK(g.output(0).name() == "loss.prob");
  CHECK(ShapeOf(g.output(0)) == std::vector<std::string>{"batch", "3"});

  // The in-place ReLU writes a new tensor; the second Gemm reads it (the dropout is gone) and has no bias.
  const onnx::NodeProto& relu = g.node(1);
  CHECK(relu.input(0) == g.node(0).output(0));
  CHECK(relu.output(0) != relu.input(0));
  const onnx::NodeProto& fc2 = g.node(2);
  CHECK(fc2.input_size() == 2);
  CHECK(fc2.input(0) == relu.output(0));
  CHECK(Attr(fc2, "transB").i() == 1);
  CHECK(g.node(3).input(0) == fc2.output(0));
  CHECK(Attr(g.node(3), "axis").i() == -1);

  CHECK(Dims(Initializer(g, "fc1.w")) == std::vector<int64_t>{4, 6});
  CHECK(Floats(Initializer(g, "fc1.w")) == ParamValues(*trainer, "fc1.w"));
  CHECK(Floats(Initializer(g, "fc1.b")) == ParamValues(*trainer, "fc1.b"));
  CHECK(Floats(Initializer(g, "fc2.w")) == ParamValues(*trainer, "fc2.w"));
  CHECK(g.initializer_size() == 3);
}

TEST_CASE("ONNX export of an LSTM reorders the gate blocks to i o f c", "[onnx]") {
  constexpr int64_t kSteps = 3, kFeatures = 2, kHidden = 2;
  graph::Network net;
  net.Add({"data", graph::InputSpec{.shape = {kSteps, kFeatures}}, {}, {"data"}});
  net.Add({"label", graph::LabelSpec{}, {}, {"label"}});
  net.Add({"lstm", graph::LstmSpec{.units = kHidden, .layers = 2}, {"data"}, {"lstm"}});
  net.Add({"fc", graph::FullyConnectedSpec{.units = 3}, {"lstm"}, {"fc"}});
  net.Add({"loss", graph::SoftmaxCrossEntropySpec{}, {"fc", "label"}, {"prob"}});
  std::unique_ptr<Trainer> trainer = MakeTrainer(net);
  const onnx::ModelProto model = Export(net, trainer->params());
  const onnx::GraphProto& g = model.graph();
  CHECK(OpTypes(g) == std::vector<std::string>{"Transpose", "LSTM", "Squeeze", "LSTM", "Squeeze", "Gemm", "Softmax"});
  CHECK(Attr(g.node(0), "perm").ints_size() == 3);
  CHECK(Attr(g.node(1), "hidden_size").i() == kHidden);
  // The top layer's last h (Y_h [1, B, H]) is squeezed on axis 0 and feeds the Gemm.
  CHECK(g.node(4).input(0) == g.node(3).output(1));
  CHECK(g.node(5).input(0) == g.node(4).output(0));
  CHECK(g.output(0).name() == "prob");

  for (const std::string layer : {"l0", "l1"}) {
    const int64_t width = layer == "l0" ? kFeatures : kHidden;
    const std::vector<float> w = ParamValues(*trainer, "lstm." + layer + ".w");
    const std::vector<float> b = ParamValues(*trainer, "lstm." + layer + ".b");
    const onnx::TensorProto& onnx_w = Initializer(g, "lstm." + layer + ".w");
    CHECK(Dims(onnx_w) == std::vector<int64_t>{1, 4 * kHidden, width});
    CHECK(Dims(Initializer(g, "lstm." + layer + ".u")) == std::vector<int64_t>{1, 4 * kHidden, kHidden});
    const std::vector<float> ow = Floats(onnx_w);
    const std::vector<float> ob = Floats(Initializer(g, "lstm." + layer + ".b"));
    REQUIRE(ob.size() == static_cast<size_t>(8 * kHidden));
    const int64_t sieve_block[4] = {0, 3, 1, 2};  // ONNX i, o, f, c = Sieve i, o, f, g
    for (int64_t j = 0; j < 4; ++j) {
      for (int64_t r = 0; r < kHidden; ++r) {
        const int64_t onnx_row = j * kHidden + r, sieve_row = sieve_block[j] * kHidden + r;
        for (int64_t c = 0; c < width; ++c) CHECK(ow[onnx_row * width + c] == w[sieve_row * width + c]);
        CHECK(ob[onnx_row] == b[sieve_row]);
        CHECK(ob[4 * kHidden + onnx_row] == 0.0f);  // Rb
      }
    }
  }
  // The forget block starts at forget_bias 1: ONNX's third block.
  CHECK(Floats(Initializer(g, "lstm.l0.b"))[2 * kHidden] == 1.0f);
}

TEST_CASE("ONNX export of an embedding language model projects every step with Reshape and Gemm", "[onnx]") {
  graph::Network net;
  net.Add({"tokens", graph::InputSpec{.shape = {5}, .dtype = DType::kInt32}, {}, {"tokens"}});
  net.Add({"label", graph::LabelSpec{.shape = {5}}, {}, {"label"}});
  net.Add({"embed", graph::EmbeddingSpec{.vocab = 7, .dim = 3}, {"tokens"}, {"embed"}});
  net.Add({"lstm", graph::LstmSpec{.units = 4, .return_sequences = true}, {"embed"}, {"lstm"}});
  net.Add({"drop", graph::DropoutSpec{.rate = 0.3, .kind = graph::DropoutSpec::Kind::kRow}, {"lstm"}, {"drop"}});
  net.Add({"decoder", graph::FullyConnectedSpec{.units = 7, .axis = 2}, {"drop"}, {"decoder"}});
  net.Add({"loss", graph::SoftmaxCrossEntropySpec{}, {"decoder", "label"}, {}});
  std::unique_ptr<Trainer> trainer = MakeTrainer(net);
  const onnx::GraphProto g = Export(net, trainer->params()).graph();
  CHECK(OpTypes(g) == std::vector<std::string>{"Gather", "Transpose", "LSTM", "Squeeze", "Transpose", "Reshape",
                                               "Gemm", "Reshape", "Softmax"});
  CHECK(g.input(0).type().tensor_type().elem_type() == onnx::TensorProto::INT32);
  CHECK(ShapeOf(g.input(0)) == std::vector<std::string>{"batch", "5"});
  CHECK(ShapeOf(g.output(0)) == std::vector<std::string>{"batch", "5", "7"});
  CHECK(g.node(0).input(0) == "embed.w");
  CHECK(g.node(0).input(1) == "tokens");
  CHECK(Floats(Initializer(g, "embed.w")) == ParamValues(*trainer, "embed.w"));
  const auto int64s = [&](const std::string& name) {
    const onnx::TensorProto& t = Initializer(g, name);
    REQUIRE(t.data_type() == onnx::TensorProto::INT64);
    std::vector<int64_t> v(t.raw_data().size() / sizeof(int64_t));
    std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
    return v;
  };
  CHECK(int64s(g.node(5).input(1)) == std::vector<int64_t>{-1, 4});
  CHECK(int64s(g.node(7).input(1)) == std::vector<int64_t>{-1, 5, 7});
}

TEST_CASE("ONNX export of a CNN writes Conv and pooling attributes and the conv weight as F C k k", "[onnx]") {
  graph::Network net;
  net.Add({"data", graph::InputSpec{.shape = {2, 7, 7}}, {}, {"data"}});
  net.Add({"label", graph::LabelSpec{}, {}, {"label"}});
  net.Add({"conv", graph::Conv2dSpec{.filters = 3, .kernel = 3, .stride = 2, .pad = 1}, {"data"}, {"conv"}});
  net.Add({"tanh", graph::ActivationSpec{.kind = ops::Activation::kTanh}, {"conv"}, {"tanh"}});
  net.Add({"pool", graph::PoolSpec{.kind = graph::PoolSpec::Kind::kAvg, .kernel = 3, .stride = 2, .ceil_mode = true},
           {"tanh"}, {"pool"}});
  net.Add({"max", graph::PoolSpec{.kernel = 2, .stride = 1}, {"pool"}, {"max"}});
  net.Add({"sig", graph::ActivationSpec{.kind = ops::Activation::kSigmoid}, {"max"}, {"sig"}});
  net.Add({"flat", graph::FlattenSpec{}, {"sig"}, {"flat"}});
  net.Add({"shape", graph::ReshapeSpec{.shape = {-1, 1}}, {"flat"}, {"shape"}});
  net.Add({"fc", graph::FullyConnectedSpec{.units = 2}, {"shape"}, {"fc"}});
  net.Add({"loss", graph::SoftmaxCrossEntropySpec{}, {"fc", "label"}, {}});
  std::unique_ptr<Trainer> trainer = MakeTrainer(net);
  const onnx::GraphProto g = Export(net, trainer->params()).graph();
  CHECK(OpTypes(g) == std::vector<std::string>{"Conv", "Tanh", "AveragePool", "MaxPool", "Sigmoid", "Flatten",
                                               "Reshape", "Flatten", "Gemm", "Softmax"});
  const onnx::NodeProto& conv = g.node(0);
  CHECK(conv.input_size() == 3);
  CHECK(std::vector<int64_t>(Attr(conv, "kernel_shape").ints().begin(), Attr(conv, "kernel_shape").ints().end()) ==
        std::vector<int64_t>{3, 3});
  CHECK(Attr(conv, "strides").ints(0) == 2);
  CHECK(Attr(conv, "pads").ints_size() == 4);
  CHECK(Attr(conv, "pads").ints(3) == 1);
  CHECK(Dims(Initializer(g, "conv.w")) == std::vector<int64_t>{3, 2, 3, 3});
  CHECK(Floats(Initializer(g, "conv.w")) == ParamValues(*trainer, "conv.w"));
  // 4x4 conv output, window 3 stride 2 in ceil mode: 2x2, the last window inside the image.
  const onnx::NodeProto& avg = g.node(2);
  CHECK(Attr(avg, "ceil_mode").i() == 1);
  CHECK(Attr(avg, "count_include_pad").i() == 1);
  CHECK(Attr(g.node(3), "strides").ints(0) == 1);
  CHECK(Attr(g.node(5), "axis").i() == 1);
}

TEST_CASE("ONNX export refuses a ceil-mode pool whose last window starts in the padding naming it", "[onnx]") {
  graph::Network net;
  net.Add({"data", graph::InputSpec{.shape = {1, 5, 5}}, {}, {"data"}});
  net.Add({"label", graph::LabelSpec{}, {}, {"label"}});
  // Padded extent 7, window 2, stride 2, ceil: ONNX counts ceil(5 / 2) + 1 = 4 windows, the fourth
  // starting at padded position 6, the right padding; Sieve drops it (3).
  net.Add({"pool1", graph::PoolSpec{.kernel = 2, .stride = 2, .pad = 1, .ceil_mode = true}, {"data"}, {"pool1"}});
  net.Add({"flat", graph::FlattenSpec{}, {"pool1"}, {"flat"}});
  net.Add({"fc", graph::FullyConnectedSpec{.units = 2}, {"flat"}, {"fc"}});
  net.Add({"loss", graph::SoftmaxCrossEntropySpec{}, {"fc", "label"}, {}});
  std::unique_ptr<Trainer> trainer = MakeTrainer(net);
  StatusOr<std::string> bytes = ExportOnnx(net, trainer->params());
  REQUIRE_FALSE(bytes.ok());
  CHECK(bytes.status().code() == StatusCode::kUnimplemented);
  CHECK_THAT(bytes.status().message(), Catch::Contains("layer 'pool1' (Pool) cannot be exported to ONNX") &&
                                           Catch::Contains("output 3x3") && Catch::Contains("output 4x4") &&
                                           Catch::Contains("[1, 1, 5, 5]"));
}

TEST_CASE("ONNX export errors name the opset the parameter and the missing output", "[onnx]") {
  const graph::Network net = MlpNetwork(4);
  std::unique_ptr<Trainer> trainer = MakeTrainer(net);
  StatusOr<std::string> bytes = ExportOnnx(net, trainer->params(), {.opset = 12});
  REQUIRE_FALSE(bytes.ok());
  CHECK_THAT(bytes.status().message(), Catch::Contains("opset 12 is outside the exporter's range [13, 21]"));

  // Weights of a network whose fc1 is wider.
  std::unique_ptr<Trainer> other = MakeTrainer(MlpNetwork(5));
  bytes = ExportOnnx(net, other->params());
  REQUIRE_FALSE(bytes.ok());
  CHECK_THAT(bytes.status().message(), Catch::Contains("layer 'fc1' (FullyConnected): parameter 'fc1.w'") &&
                                           Catch::Contains("[5, 6]") && Catch::Contains("[4, 6]"));

  // A parameter the weights do not have.
  graph::Network renamed;
  for (Layer layer : net.layers()) {
    if (layer.name == "fc2") layer.name = "fc9";
    renamed.Add(layer);
  }
  bytes = ExportOnnx(renamed, trainer->params());
  REQUIRE_FALSE(bytes.ok());
  CHECK(bytes.status().code() == StatusCode::kNotFound);
  CHECK_THAT(bytes.status().message(), Catch::Contains("fc9.w"));

  graph::Network no_loss;
  for (const Layer& layer : net.layers())
    if (layer.name != "loss" && layer.name != "accuracy") no_loss.Add(layer);
  bytes = ExportOnnx(no_loss, trainer->params());
  REQUIRE_FALSE(bytes.ok());
  CHECK_THAT(bytes.status().message(), Catch::Contains("no SoftmaxCrossEntropy layer"));
}

TEST_CASE("ONNX export to a file writes the model bytes", "[onnx]") {
  const graph::Network net = MlpNetwork(4);
  std::unique_ptr<Trainer> trainer = MakeTrainer(net);
  const std::string path = (std::filesystem::temp_directory_path() / "sieve_onnx_export_test.onnx").string();
  REQUIRE(ExportOnnxFile(net, trainer->params(), path, {.opset = 21}).ok());
  StatusOr<std::string> bytes = ReadFileBytes(path, "ONNX model");
  REQUIRE(bytes.ok());
  onnx::ModelProto model;
  REQUIRE(model.ParseFromString(*bytes));
  CHECK(model.ir_version() == 10);
  CHECK(model.opset_import(0).version() == 21);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sieve::runtime
