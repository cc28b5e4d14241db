// Tests for net files (runtime/config/net_config.h): every net under models/ parses and lowers in both
// phases; the zoo MLP is the C++ example's network exactly (same lowered graph, same parameters); each
// layer type's fields reach its spec; phase rules and data settings; every error class names the
// file, line, column, layer and field (and the nearest valid name); truncated and corrupted files fail
// with a message, never a crash.
#include "runtime/config/net_config.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "graph/dump.h"
#include "graph/lower.h"
#include "graph/sequential.h"
#include "runtime/config/solver_config.h"

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;

const fs::path kModels = fs::path(SIEVE_SOURCE_DIR) / "models";

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

NetConfig Parse(const std::string& text, NetPhase phase = NetPhase::kTrain) {
  StatusOr<NetConfig> config = ParseNetConfig(text, phase, "test.prototxt");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  return std::move(config).value();
}

// The message of a net that must fail, after checking it starts with the expected location.
std::string Error(const std::string& text, const std::string& location, NetPhase phase = NetPhase::kTrain) {
  StatusOr<NetConfig> config = ParseNetConfig(text, phase, "test.prototxt");
  REQUIRE_FALSE(config.ok());
  const std::string message = config.status().message();
  INFO(message);
  CHECK(message.rfind("test.prototxt:" + location + ": ", 0) == 0);
  return message;
}

// Line 1 the name, line 2 the input (per-sample shape `input`), line 3 the label, then `body`, then
// loss and accuracy on blob `logits`.
std::string Net(const std::string& body, const std::string& logits = "fc1", const std::string& input = "dim: 784") {
  std::string text = "name: \"t\"\n";
  text += "layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { " + input + " } } }\n";
  text += "layer { name: \"label\" type: \"Label\" top: \"label\" }\n";
  text += body;
  text += "layer { name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"" + logits + "\" bottom: \"label\" }\n";
  text += "layer { name: \"accuracy\" type: \"Accuracy\" bottom: \"" + logits + "\" bottom: \"label\" }\n";
  return text;
}

const std::string kFc1 =
    "layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
    "        fully_connected_param { num_output: 10 } }\n";

// Every layer type but LSTM and Embedding, with settings that differ from the defaults.
const std::string kConvNet = R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 784 } } }
    layer { name: "label" type: "Label" top: "label" }
    layer { name: "image" type: "Reshape" bottom: "data" top: "image"
            reshape_param { shape { dim: 1 dim: -1 dim: 28 } } }
    layer { name: "conv1" type: "Convolution" bottom: "image" top: "conv1"
            param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
            convolution_param { num_output: 8 kernel_size: 5 stride: 1 pad: 2
                                weight_filler { type: "gaussian" std: 0.01 }
                                bias_filler { type: "constant" value: 0.1 } } }
    layer { name: "tanh1" type: "TanH" bottom: "conv1" top: "tanh1" }
    layer { name: "pool1" type: "Pooling" bottom: "tanh1" top: "pool1"
            pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 ceil_mode: true } }
    layer { name: "sig1" type: "Sigmoid" bottom: "pool1" top: "sig1" }
    layer { name: "flat" type: "Flatten" bottom: "sig1" top: "flat" }
    layer { name: "fc1" type: "FullyConnected" bottom: "flat" top: "fc1"
            fully_connected_param { num_output: 10 bias_term: false
                                    weight_filler { type: "xavier" variance_norm: AVERAGE } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc1" bottom: "label" top: "prob"
            softmax_loss_param { loss_weight: 0.5 ignore_label: -1 } }
  )";

// A language model: per-step logits [5, 10] from one FC over the flattened sequence and a Reshape.
const std::string kLstmNet = R"(
    layer { name: "tokens" type: "Input" top: "tokens"
            input_param { shape { dim: 5 } dtype: INT32 batch_size: 20
                          source { text_corpus { dir: "../data/austen" level: CHAR } } } }
    layer { name: "next" type: "Label" top: "next" label_param { shape { dim: 5 } } }
    layer { name: "embed" type: "Embedding" bottom: "tokens" top: "embed"
            embedding_param { input_dim: 10 num_output: 4 weight_filler { type: "uniform" min: -0.05 max: 0.05 } } }
    layer { name: "lstm" type: "LSTM" bottom: "embed" top: "lstm"
            param { lr_mult: 1 } param { lr_mult: 1 decay_mult: 0 }
            lstm_param { num_output: 8 num_layers: 2 return_sequences: true forget_bias: 0.5 } }
    layer { name: "fc" type: "FullyConnected" bottom: "lstm" top: "fc" fully_connected_param { num_output: 50 } }
    layer { name: "logits" type: "Reshape" bottom: "fc" top: "logits" reshape_param { shape { dim: 5 dim: -1 } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "logits" bottom: "next" }
  )";

template <typename Spec>
const Spec& SpecOf(const graph::Network& net, const std::string& name) {
  for (const graph::Layer& layer : net.layers()) {
    if (layer.name == name) {
      REQUIRE(std::holds_alternative<Spec>(layer.spec));
      return std::get<Spec>(layer.spec);
    }
  }
  FAIL("no layer " << name);
  throw;
}

TEST_CASE("every net and solver file under models parses and lowers", "[proto][config]") {
  int nets = 0;
  int solvers = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(kModels)) {
    if (entry.path().extension() != ".prototxt") continue;
    const std::string path = entry.path().string();
    INFO(path);
    if (entry.path().filename().string().rfind("solver", 0) == 0) {
      StatusOr<SolverFile> solver = LoadSolverFile(path);
      INFO(solver.status().ToString());
      REQUIRE(solver.ok());
      CHECK(fs::exists(solver->net));
      ++solvers;
      continue;
    }
    for (NetPhase phase : {NetPhase::kTrain, NetPhase::kTest}) {
      StatusOr<NetConfig> config = LoadNetConfig(path, phase);
      INFO(NetPhaseName(phase) << ": " << config.status().ToString());
      REQUIRE(config.ok());
      CHECK(config->network.size() > 0);
    }
    ++nets;
  }
  CHECK(nets >= 1);
  CHECK(solvers >= 1);
}

// The same network through the file and through the C++ API: one lowering, one graph.
TEST_CASE("the zoo MLP file is the C++ example's network with row ARD dropout", "[proto][config]") {
  StatusOr<NetConfig> file = LoadNetConfig((kModels / "fashion_mlp" / "net.prototxt").string(), NetPhase::kTrain);
  REQUIRE(file.ok());
  CHECK(file->name == "fashion_mlp");
  CHECK(file->data_layer == "data");
  CHECK(file->batch_size == 128);
  CHECK(file->source.kind == DataSourceKind::kFashionMnist);
  CHECK(file->source.dir.empty());

  // The zoo's default dropout: row ARD at 0.5 from the searched distribution (models/fashion_mlp/README.md).
  const graph::DropoutSpec row = graph::RowDropout(0.5);
  graph::Sequential mlp({784});
  mlp.Add(graph::FullyConnected(2048)).Add(graph::ReLU()).Add(row);
  mlp.Add(graph::FullyConnected(2048)).Add(graph::ReLU()).Add(row);
  mlp.Add(graph::FullyConnected(10));
  StatusOr<graph::Network> code = mlp.Build();
  REQUIRE(code.ok());

  for (bool training : {true, false}) {
    INFO("training " << training);
    StatusOr<graph::LoweredNet> from_file = graph::Lower(file->network, {.batch = 128, .training = training});
    StatusOr<graph::LoweredNet> from_code = graph::Lower(*code, {.batch = 128, .training = training});
    REQUIRE(from_file.ok());
    REQUIRE(from_code.ok());
    CHECK(graph::DumpText(from_file->graph) == graph::DumpText(from_code->graph));
    REQUIRE(from_file->params.size() == from_code->params.size());
    for (size_t i = 0; i < from_file->params.size(); ++i) {
      const graph::ParamDecl& a = from_file->params[i];
      const graph::ParamDecl& b = from_code->params[i];
      INFO(a.name);
      CHECK(a.name == b.name);
      CHECK(a.shape == b.shape);
      CHECK(InitSpecToString(a.spec.init) == InitSpecToString(b.spec.init));
      CHECK(a.spec.lr_mult == b.spec.lr_mult);
      CHECK(a.spec.decay_mult == b.spec.decay_mult);
    }
  }
}

// Row and tile dropout through the file and through the factories lower to the same sites and GEMMs.
TEST_CASE("row and tile dropout files lower as the C++ factories do", "[proto][config]") {
  const auto mlp = [](const std::string& dropout) {
    return "layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 20 } } }\n"
           "layer { name: \"label\" type: \"Label\" top: \"label\" }\n"
           "layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\" "
           "fully_connected_param { num_output: 48 } }\n"
           "layer { name: \"relu1\" type: \"ReLU\" bottom: \"fc1\" top: \"relu1\" }\n"
           "layer { name: \"drop1\" type: \"Dropout\" bottom: \"relu1\" top: \"drop1\" dropout_param { " +
           dropout +
           " } }\n"
           "layer { name: \"fc2\" type: \"FullyConnected\" bottom: \"drop1\" top: \"fc2\" "
           "fully_connected_param { num_output: 10 } }\n"
           "layer { name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"fc2\" bottom: \"label\" }\n"
           "layer { name: \"accuracy\" type: \"Accuracy\" bottom: \"fc2\" bottom: \"label\" }\n";
  };
  graph::DropoutSpec row = graph::RowDropout(0.3);
  row.scaling = graph::ScaleMode::kNominal;
  row.family = graph::PatternFamily::kFixed;
  row.max_period = 8;
  row.generalized = true;
  row.shuffle_every_epochs = 2;
  graph::DropoutSpec tile = graph::TileDropout(0.5, 16, 8);
  const struct {
    std::string fields;
    graph::DropoutSpec spec;
  } cases[] = {
      {"dropout_ratio: 0.3 kind: ROW scaling: NOMINAL family: FIXED max_period: 8 generalized: true "
       "shuffle_every_epochs: 2",
       row},
      {"dropout_ratio: 0.5 kind: TILE tile_rows: 16 tile_cols: 8", tile},
  };
  for (const auto& c : cases) {
    INFO(c.fields);
    const NetConfig file = Parse(mlp(c.fields));
    const auto& spec = SpecOf<graph::DropoutSpec>(file.network, "drop1");
    CHECK(spec.rate == c.spec.rate);
    CHECK(spec.kind == c.spec.kind);
    CHECK(spec.scaling == c.spec.scaling);
    CHECK(spec.family == c.spec.family);
    CHECK(spec.max_period == c.spec.max_period);
    CHECK(spec.generalized == c.spec.generalized);
    CHECK(spec.tile_rows == c.spec.tile_rows);
    CHECK(spec.tile_cols == c.spec.tile_cols);
    CHECK(spec.shuffle_every_epochs == c.spec.shuffle_every_epochs);
    graph::Sequential code({20});
    code.Add(graph::FullyConnected(48)).Add(graph::ReLU()).Add(c.spec).Add(graph::FullyConnected(10));
    StatusOr<graph::Network> network = code.Build();
    REQUIRE(network.ok());
    StatusOr<graph::LoweredNet> from_file = graph::Lower(file.network, {.batch = 4, .training = true});
    StatusOr<graph::LoweredNet> from_code = graph::Lower(*network, {.batch = 4, .training = true});
    INFO(from_file.status().ToString());
    REQUIRE(from_file.ok());
    REQUIRE(from_code.ok());
    CHECK(from_file->graph.num_sites() == 1);
    CHECK(graph::DumpText(from_file->graph) == graph::DumpText(from_code->graph));
  }
}

TEST_CASE("a dropout setting for another kind is an error", "[proto][config]") {
  const auto drop = [](const std::string& fields) {
    return Net(kFc1 + "layer { name: \"d\" type: \"Dropout\" bottom: \"fc1\" top: \"d\"\n  dropout_param { " + fields +
               " } }\n");
  };
  std::string m = Error(drop("max_period: 4"), "7:19");
  CHECK(m.find("dropout_param.max_period is read by kind ROW and TILE only, and this layer's kind is BERNOULLI") !=
        std::string::npos);
  m = Error(drop("kind: ROW tile_rows: 8"), "7:29");
  CHECK(m.find("dropout_param.tile_rows is read by kind TILE only, and this layer's kind is ROW") != std::string::npos);
  m = Error(drop("kind: TILE generalized: true"), "7:30");
  CHECK(m.find("dropout_param.generalized is read by kind ROW only") != std::string::npos);
  m = Error(drop("kind: TILE tile_cols: 0"), "7:30");
  CHECK(m.find("dropout_param.tile_cols is 0; valid: >= 1") != std::string::npos);
  m = Error(drop("kind: ROW max_period: 0"), "7:29");
  CHECK(m.find("dropout_param.max_period is 0; valid: >= 1") != std::string::npos);
}

TEST_CASE("the zoo MLP solver has the example's settings", "[proto][config]") {
  const fs::path folder = kModels / "fashion_mlp";
  StatusOr<SolverFile> solver = LoadSolverFile((folder / "solver.prototxt").string());
  REQUIRE(solver.ok());
  CHECK(fs::equivalent(solver->net, folder / "net.prototxt"));
  CHECK(solver->solver.type == ops::SolverType::kSGD);
  CHECK(solver->solver.lr.type == LrPolicyType::kFixed);
  CHECK(solver->solver.lr.base_lr == 0.01f);
  CHECK(solver->solver.momentum == 0.9f);
  CHECK(solver->solver.weight_decay == 5e-4f);
  CHECK(solver->max_iter == 5 * (60000 / 128));
  CHECK(solver->test_interval == 60000 / 128);
  CHECK(solver->test_iter * 128 >= 10000);
  CHECK((solver->test_iter - 1) * 128 < 10000);
  CHECK(solver->random_seed == 1);
  CHECK(solver->device == Device::CPU());
}

TEST_CASE("each layer type's fields reach its spec", "[proto][config]") {
  const std::string& text = kConvNet;
  const NetConfig config = Parse(text);
  const graph::Network& net = config.network;
  CHECK(net.size() == 10);
  CHECK(SpecOf<graph::ReshapeSpec>(net, "image").shape == Shape{1, -1, 28});
  const auto& conv = SpecOf<graph::Conv2dSpec>(net, "conv1");
  CHECK(conv.filters == 8);
  CHECK(conv.kernel == 5);
  CHECK(conv.pad == 2);
  CHECK(conv.bias);
  CHECK(InitSpecToString(conv.weight.init) == InitSpecToString(InitSpec::Gaussian(0.0f, 0.01f)));
  CHECK(InitSpecToString(conv.bias_param.init) == InitSpecToString(InitSpec::Constant(0.1f)));
  CHECK(conv.bias_param.lr_mult == 2.0f);
  CHECK(conv.bias_param.decay_mult == 0.0f);
  CHECK(SpecOf<graph::ActivationSpec>(net, "tanh1").kind == ops::Activation::kTanh);
  CHECK(SpecOf<graph::ActivationSpec>(net, "sig1").kind == ops::Activation::kSigmoid);
  const auto& pool = SpecOf<graph::PoolSpec>(net, "pool1");
  CHECK(pool.kind == graph::PoolSpec::Kind::kAvg);
  CHECK(pool.kernel == 3);
  CHECK(pool.stride == 2);
  CHECK(pool.pad == 1);
  CHECK(pool.ceil_mode);
  const auto& fc = SpecOf<graph::FullyConnectedSpec>(net, "fc1");
  CHECK(fc.units == 10);
  CHECK_FALSE(fc.bias);
  CHECK(InitSpecToString(fc.weight.init) == InitSpecToString(InitSpec::Xavier(VarianceNorm::kAverage)));
  const auto& loss = SpecOf<graph::SoftmaxCrossEntropySpec>(net, "loss");
  CHECK(loss.loss_weight == 0.5f);
  CHECK(loss.ignore_label == -1);
  CHECK(net.layers().back().outputs == std::vector<std::string>{"prob"});
}

TEST_CASE("omitted fields take the C++ API's defaults", "[proto][config]") {
  const std::string text = R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 28 dim: 28 } } }
    layer { name: "label" type: "Label" top: "label" }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 } }
    layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" }
    layer { name: "drop1" type: "Dropout" bottom: "pool1" top: "drop1" }
    layer { name: "fc1" type: "FullyConnected" bottom: "drop1" top: "fc1" fully_connected_param { num_output: 10 } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc1" bottom: "label" }
  )";
  const NetConfig config = Parse(text);
  CHECK(config.data_layer.empty());
  CHECK(config.batch_size == 0);
  CHECK(config.source.kind == DataSourceKind::kNone);
  const graph::Network& net = config.network;
  const auto& input = SpecOf<graph::InputSpec>(net, "data");
  CHECK(input.dtype == DType::kFloat32);
  CHECK(SpecOf<graph::LabelSpec>(net, "label").shape.empty());
  const auto& conv = SpecOf<graph::Conv2dSpec>(net, "conv1");
  const graph::Conv2dSpec conv_default = graph::Conv2d(4, graph::Conv2dSpec{}.kernel);
  CHECK(conv.kernel == conv_default.kernel);
  CHECK(conv.stride == conv_default.stride);
  CHECK(conv.pad == conv_default.pad);
  CHECK(conv.bias == conv_default.bias);
  CHECK(InitSpecToString(conv.weight.init) == InitSpecToString(conv_default.weight.init));
  CHECK(InitSpecToString(conv.bias_param.init) == InitSpecToString(conv_default.bias_param.init));
  const auto& pool = SpecOf<graph::PoolSpec>(net, "pool1");
  CHECK(pool.kind == graph::PoolSpec{}.kind);
  CHECK(pool.kernel == graph::PoolSpec{}.kernel);
  CHECK(pool.stride == graph::PoolSpec{}.stride);
  CHECK(pool.ceil_mode == graph::PoolSpec{}.ceil_mode);
  CHECK(SpecOf<graph::DropoutSpec>(net, "drop1").rate == graph::DropoutSpec{}.rate);
  const auto& fc = SpecOf<graph::FullyConnectedSpec>(net, "fc1");
  CHECK(fc.bias == graph::FullyConnectedSpec{}.bias);
  CHECK(InitSpecToString(fc.weight.init) == InitSpecToString(graph::FullyConnectedSpec{}.weight.init));
  CHECK(fc.weight.lr_mult == 1.0f);
  const auto& loss = SpecOf<graph::SoftmaxCrossEntropySpec>(net, "loss");
  CHECK(loss.loss_weight == 1.0f);
  CHECK_FALSE(loss.ignore_label.has_value());
}

TEST_CASE("an LSTM language model with embedding and per-step labels", "[proto][config]") {
  const std::string& text = kLstmNet;
  StatusOr<NetConfig> config = ParseNetConfig(text, NetPhase::kTrain, "models/lm/net.prototxt");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->batch_size == 20);
  CHECK(config->source.kind == DataSourceKind::kTextCorpus);
  CHECK(config->source.level == TokenLevel::kChar);
  CHECK(config->source.dir == "models/data/austen");  // resolved against the net file's folder
  const auto& embed = SpecOf<graph::EmbeddingSpec>(config->network, "embed");
  CHECK(embed.vocab == 10);
  CHECK(embed.dim == 4);
  CHECK(InitSpecToString(embed.weight.init) == InitSpecToString(InitSpec::Uniform(-0.05f, 0.05f)));
  const auto& lstm = SpecOf<graph::LstmSpec>(config->network, "lstm");
  CHECK(lstm.units == 8);
  CHECK(lstm.layers == 2);
  CHECK(lstm.return_sequences);
  CHECK(lstm.forget_bias == 0.5f);
  CHECK(lstm.bias_param.decay_mult == 0.0f);
  CHECK(InitSpecToString(lstm.weight.init) == InitSpecToString(graph::LstmSpec{}.weight.init));
  CHECK(SpecOf<graph::LabelSpec>(config->network, "next").shape == Shape{5});
}

TEST_CASE("phase rules choose the layers and the data settings of each phase", "[proto][config]") {
  const std::string text = R"(
    layer { name: "data" type: "Input" top: "data" include { phase: TRAIN }
            input_param { shape { dim: 784 } batch_size: 64 source { fashion_mnist { dir: "/data/fm" } } } }
    layer { name: "data" type: "Input" top: "data" include { phase: TEST }
            input_param { shape { dim: 784 } batch_size: 1000 source { fashion_mnist { } } } }
    layer { name: "label" type: "Label" top: "label" }
    layer { name: "fc1" type: "FullyConnected" bottom: "data" top: "fc1" fully_connected_param { num_output: 10 } }
    layer { name: "drop" type: "Dropout" bottom: "fc1" top: "fc1d" exclude { phase: TEST } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc1" bottom: "label" }
    layer { name: "accuracy" type: "Accuracy" bottom: "fc1" bottom: "label" include { phase: TEST } }
  )";
  const NetConfig train = Parse(text, NetPhase::kTrain);
  const NetConfig test = Parse(text, NetPhase::kTest);
  std::vector<std::string> train_names, test_names;
  for (const graph::Layer& layer : train.network.layers()) train_names.push_back(layer.name);
  for (const graph::Layer& layer : test.network.layers()) test_names.push_back(layer.name);
  CHECK(train_names == std::vector<std::string>{"data", "label", "fc1", "drop", "loss"});
  CHECK(test_names == std::vector<std::string>{"data", "label", "fc1", "loss", "accuracy"});
  CHECK(train.batch_size == 64);
  CHECK(train.source.dir == "/data/fm");
  CHECK(test.batch_size == 1000);
  CHECK(test.source.dir.empty());
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("a misspelt field names its place and the nearest valid field", "[proto][config]") {
  std::string m = Error("name: \"t\"\nlayer {\n  nmae: \"fc1\"\n}\n", "3:3");
  CHECK(m.find("unknown field 'nmae' in LayerParameter") != std::string::npos);
  CHECK(m.find("nearest valid field: 'name'") != std::string::npos);

  m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
                "  fully_connected_param { num_outptu: 10 } }\n"),
            "5:27");
  CHECK(m.find("'num_outptu'") != std::string::npos);
  CHECK(m.find("nearest valid field: 'num_output'") != std::string::npos);

  // A field written one level too high says which messages hold it.
  m = Error("layer { name: \"fc1\" type: \"FullyConnected\" num_output: 10 }", "1:44");
  CHECK(m.find("'num_output' is a field of") != std::string::npos);
  CHECK(m.find("fully_connected_param") != std::string::npos);
}

TEST_CASE("a misspelt enum value names the field and the nearest valid value", "[proto][config]") {
  const std::string m = Error("layer { name: \"d\" type: \"Dropout\"\n  include { phase: TRIAN } }", "2:20");
  CHECK(m.find("unknown value 'TRIAN' of field 'phase'") != std::string::npos);
  CHECK(m.find("nearest valid value: 'TRAIN'") != std::string::npos);
}

TEST_CASE("a value of the wrong type and a syntax error name their place and field", "[proto][config]") {
  std::string m = Error("layer {\n  name: \"fc1\"\n  fully_connected_param { num_output: ten }\n}", "3:39");
  CHECK(m.find("num_output") != std::string::npos);
  m = Error("layer {\n  name: \"fc1\"\n  type: \"ReLU\"\n", "4:1");
  CHECK(m.find("Expected identifier, got the end of the text (after field 'type')") != std::string::npos);
  m = Error("layer { name: \"a\" name: \"b\" }", "1:19");
  CHECK(m.find("name") != std::string::npos);
}

TEST_CASE("an unknown layer type lists the known ones and the nearest", "[proto][config]") {
  const std::string m = Error("layer {\n  name: \"fc1\"\n  type: \"FullyConected\"\n}", "3:3");
  CHECK(m.find("layer 'fc1': unknown type 'FullyConected' (nearest: 'FullyConnected')") != std::string::npos);
  for (const std::string& type : NetLayerTypes()) CHECK(m.find(type) != std::string::npos);
  // Caffe's names and abbreviations lead to Sieve's types.
  CHECK(Error("layer { name: \"fc1\" type: \"InnerProduct\" }", "1:21").find("(nearest: 'FullyConnected')") !=
        std::string::npos);
  CHECK(Error("layer { name: \"c\" type: \"conv\" }", "1:19").find("(nearest: 'Convolution')") != std::string::npos);
}

TEST_CASE("missing and out-of-range values name the field and the valid range", "[proto][config]") {
  std::string m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\" }\n"), "4:1");
  CHECK(m.find("layer 'fc1' (FullyConnected): fully_connected_param.num_output is required") != std::string::npos);

  m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
                "  fully_connected_param { num_output: 0 } }\n"),
            "5:27");
  CHECK(m.find("fully_connected_param.num_output is 0; valid: >= 1") != std::string::npos);

  m = Error(Net(kFc1 + "layer { name: \"d\" type: \"Dropout\" bottom: \"fc1\" top: \"d\"\n"
                       "  dropout_param { dropout_ratio: 1 } }\n"),
            "7:19");
  CHECK(m.find("dropout_param.dropout_ratio is 1; valid: [0, 1)") != std::string::npos);

  m = Error(Net(kFc1, "fc1", "dim: 784 dim: 0"), "2:79");
  CHECK(m.find("input_param.shape.dim[1] is 0") != std::string::npos);

  m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
                "  fully_connected_param { num_output: 10 weight_filler { type: \"xavir\" } } }\n"),
            "5:58");
  CHECK(m.find("'xavir' is not a filler type (nearest: 'xavier')") != std::string::npos);

  m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
                "  fully_connected_param { num_output: 10 weight_filler { type: \"uniform\" min: 1 max: -1 } } }\n"),
            "5:42");
  CHECK(m.find("fully_connected_param.weight_filler: uniform filler needs finite min <= max") != std::string::npos);
  CHECK(m.find("net_config.cc") == std::string::npos);  // the wrapped message keeps its one source location

  m = Error(Net(kFc1 + "layer { name: \"pool\" type: \"Pooling\" bottom: \"fc1\" top: \"p\"\n"
                       "  pooling_param { stride: 0 } }\n"),
            "7:19");
  CHECK(m.find("pooling_param.stride is 0; valid: >= 1") != std::string::npos);
}

TEST_CASE("sizes too large to hold are refused before anything is allocated", "[proto][config]") {
  std::string m = Error(Net(kFc1, "fc1", "dim: 65536 dim: 65536"), "2:81");
  CHECK(m.find("input_param.shape has more than 2147483647 elements per sample") != std::string::npos);
  m = Error(Net(kFc1, "fc1", "dim: 3000000000"), "2:70");
  CHECK(m.find("input_param.shape has more than 2147483647 elements per sample") != std::string::npos);
  m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
                "  fully_connected_param { num_output: 3000000000 } }\n"),
            "5:27");
  CHECK(m.find("fully_connected_param.num_output is 3000000000; valid: <= 2147483647") != std::string::npos);
  m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
                "  fully_connected_param { num_output: 2000000000 } }\n",
                "fc1", "dim: 2000000000"),
            "4:1");
  CHECK(m.find("layer 'fc1': 'fc1.w' would have shape [2000000000, 2000000000], more than 2^40 elements") !=
        std::string::npos);
  // A layer whose output is too large is refused before a later layer computes with its size.
  m = Error(
      "layer { name: \"data\" type: \"Input\" top: \"data\"\n"
      "  input_param { shape { dim: 1 dim: 8 dim: 8 } batch_size: 2147483647 } }\n"
      "layer { name: \"conv\" type: \"Convolution\" bottom: \"data\" top: \"conv\"\n"
      "  convolution_param { num_output: 2147483647 kernel_size: 1 } }\n"
      "layer { name: \"flat\" type: \"Flatten\" bottom: \"conv\" top: \"flat\" }\n",
      "3:1");
  CHECK(m.find("layer 'conv': ") != std::string::npos);
  CHECK(m.find("more than 2^40 elements") != std::string::npos);
}

TEST_CASE("an LSTM too long to unroll is refused before it is lowered", "[proto][config]") {
  const std::string m = Error(Net("layer { name: \"lstm\" type: \"LSTM\" bottom: \"data\" top: \"lstm\"\n"
                                  "  lstm_param { num_output: 8 num_layers: 2 } }\n"
                                  "layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"lstm\" top: \"fc1\"\n"
                                  "  fully_connected_param { num_output: 10 } }\n",
                                  "fc1", "dim: 40000 dim: 3"),
                              "4:1");
  CHECK(m.find("layer 'lstm' (LSTM): input 'data' has shape [1, 40000, 3]: 40000 steps x 2 layers is more than the "
               "65536 steps") != std::string::npos);
}

TEST_CASE("layer-level mistakes name the layer", "[proto][config]") {
  // Another kind's settings.
  std::string m = Error(Net(kFc1 + "layer { name: \"r\" type: \"ReLU\" bottom: \"fc1\" top: \"r\"\n"
                                   "  dropout_param { dropout_ratio: 0.5 } }\n"),
                        "7:3");
  CHECK(m.find("layer 'r' (ReLU): ReLU layers do not read dropout_param") != std::string::npos);
  // More param blocks than parameters.
  m = Error(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"data\" top: \"fc1\"\n"
                "  param { lr_mult: 1 } param { lr_mult: 2 } param { lr_mult: 3 }\n"
                "  fully_connected_param { num_output: 10 } }\n"),
            "5:45");
  CHECK(m.find("3 param blocks, but the layer has 2 parameters (weight, bias)") != std::string::npos);
  // Both kinds of rules; a rule without a phase; no name; no type.
  m = Error("layer { name: \"a\" type: \"ReLU\" include { phase: TRAIN } exclude { phase: TEST } }", "1:57");
  CHECK(m.find("both include and exclude") != std::string::npos);
  m = Error("layer { name: \"a\" type: \"ReLU\" include { } }", "1:32");
  CHECK(m.find("a rule without a phase") != std::string::npos);
  m = Error("layer { type: \"ReLU\" }\n", "1:1");
  CHECK(m.find("layer #1 has no name") != std::string::npos);
  m = Error("layer {\n name: \"a\" }\n", "1:1");
  CHECK(m.find("layer 'a' has no type") != std::string::npos);
  // Two Input layers of one phase with data settings.
  m = Error(
      "layer { name: \"a\" type: \"Input\" top: \"a\" input_param { shape { dim: 2 } batch_size: 8 } }\n"
      "layer { name: \"b\" type: \"Input\" top: \"b\" input_param { shape { dim: 2 } batch_size: 8 } }\n",
      "2:42");
  CHECK(m.find("and so does layer 'a' (test.prototxt:1:1)") != std::string::npos);
}

TEST_CASE("what Lower finds is placed at the layer it names", "[proto][config]") {
  // A blob no earlier layer writes: the missing name and the nearest existing one.
  StatusOr<NetConfig> dangling =
      ParseNetConfig(Net("layer { name: \"fc1\" type: \"FullyConnected\" bottom: \"dta\" top: \"fc1\"\n"
                         "  fully_connected_param { num_output: 10 } }\n"),
                     NetPhase::kTrain, "test.prototxt");
  REQUIRE_FALSE(dangling.ok());
  CHECK(dangling.status().code() == StatusCode::kNotFound);
  INFO(dangling.status().message());
  CHECK(dangling.status().message().rfind("test.prototxt:4:1: layer 'fc1' (FullyConnected): input blob 'dta'", 0) == 0);
  CHECK(dangling.status().message().find("'data'") != std::string::npos);

  // A shape mismatch: logits for 10 classes per sample against 5 labels per sample.
  std::string text = Net(kFc1);
  text.replace(text.find("top: \"label\""), 12, "top: \"label\" label_param { shape { dim: 5 } }");
  const std::string m = Error(text, "6:1");
  CHECK(m.find("layer 'loss'") != std::string::npos);
  CHECK(m.find("[1, 10]") != std::string::npos);
  CHECK(m.find("[1, 5]") != std::string::npos);
}

TEST_CASE("a phase without layers is an error naming the phase", "[proto][config]") {
  StatusOr<NetConfig> config =
      ParseNetConfig("layer { name: \"a\" type: \"ReLU\" include { phase: TEST } }", NetPhase::kTrain, "t.prototxt");
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().message().rfind("t.prototxt: the net has no layers in phase TRAIN", 0) == 0);
}

TEST_CASE("a missing net file is NOT_FOUND naming the path", "[proto][config]") {
  StatusOr<NetConfig> config = LoadNetConfig("/nonexistent/net.prototxt", NetPhase::kTrain);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().code() == StatusCode::kNotFound);
  CHECK(config.status().message().find("/nonexistent/net.prototxt") != std::string::npos);
}

// No input may crash the loader: truncations at random points and random byte changes of every net
// under models/ and of the test nets above either load or fail with a message naming the file.
TEST_CASE("truncated and corrupted net files fail cleanly", "[proto][config]") {
  std::vector<std::string> texts = {Net(kFc1), kConvNet, kLstmNet};
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(kModels)) {
    if (entry.path().extension() == ".prototxt" && entry.path().filename().string().rfind("solver", 0) != 0)
      texts.push_back(ReadAll(entry.path()));
  }
  // Extreme values for the numbers of a file: the sizes that overflowed shapes or unrolled LSTMs
  // without end before the loader bounded them.
  const char* const extremes[] = {"0", "-1", "2147483647", "9223372036854775807", "1e300", "nan", "inf"};
  const std::regex number("-?[0-9][0-9.e-]*");
  std::mt19937 rng(7);
  int failures = 0;
  for (const std::string& text : texts) {
    for (int trial = 0; trial < 150; ++trial) {
      std::string mutated = text;
      if (trial % 3 == 0) {
        mutated = text.substr(0, std::uniform_int_distribution<size_t>(0, text.size())(rng));
      } else if (trial % 3 == 1) {
        for (int k = 0; k < 3; ++k)
          mutated[std::uniform_int_distribution<size_t>(0, mutated.size() - 1)(rng)] =
              static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
      } else {
        std::vector<std::pair<size_t, size_t>> numbers;  // (position, length)
        for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it)
          numbers.emplace_back(it->position(), it->length());
        REQUIRE_FALSE(numbers.empty());
        const auto [at, length] = numbers[std::uniform_int_distribution<size_t>(0, numbers.size() - 1)(rng)];
        mutated.replace(at, length, extremes[std::uniform_int_distribution<size_t>(0, std::size(extremes) - 1)(rng)]);
      }
      StatusOr<NetConfig> config = ParseNetConfig(mutated, NetPhase::kTrain, "fuzz.prototxt");
      if (!config.ok()) {
        ++failures;
        INFO(config.status().message());
        CHECK(config.status().message().rfind("fuzz.prototxt", 0) == 0);
      }
    }
  }
  CHECK(failures > 0);
}

}  // namespace
}  // namespace sieve::runtime
