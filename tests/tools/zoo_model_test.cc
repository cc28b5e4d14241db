// Tests of what `sieve-bench zoo` derives from a zoo net without timing (tools/bench/zoo_model.h): the rate
// override, the dropout a net uses, the PyTorch peer's layer list (exact JSON, for the zoo's MLP file and for
// LSTM and CNN chains), the peer's optimizer, and synthetic batches. No timing is tested here.
#include "tools/bench/zoo_model.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <variant>

#include "graph/sequential.h"
#include "runtime/config/net_config.h"

namespace sieve::bench {
namespace {

namespace fs = std::filesystem;
using graph::DropoutSpec;

graph::Network Build(const graph::Sequential& net) {
  StatusOr<graph::Network> built = net.Build();
  REQUIRE(built.ok());
  return *built;
}

// The zoo's word-level LM in miniature: Embedding -> Dropout -> LSTM (sequences) -> Dropout -> FC per step.
graph::Network LanguageModel(const DropoutSpec& dropout) {
  graph::Sequential lm({35}, DType::kInt32, {35});
  lm.Add(graph::Embedding(100, 8)).Add(dropout).Add(graph::Lstm(8, 1, true)).Add(dropout);
  graph::FullyConnectedSpec head = graph::FullyConnected(100);
  head.axis = 2;
  lm.Add(head);
  return Build(lm);
}

std::vector<const DropoutSpec*> Dropouts(const graph::Network& net) {
  std::vector<const DropoutSpec*> specs;
  for (const graph::Layer& layer : net.layers())
    if (const auto* d = std::get_if<DropoutSpec>(&layer.spec)) specs.push_back(d);
  return specs;
}

TEST_CASE("zoo bench: the rate override changes every dropout rate and nothing else", "[bench][zoo_bench]") {
  DropoutSpec row = graph::RowDropout(0.3);
  row.family = graph::PatternFamily::kFixed;
  const graph::Network net = LanguageModel(row);
  const graph::Network at_07 = WithDropoutRate(net, 0.7);
  REQUIRE(at_07.size() == net.size());
  for (int i = 0; i < net.size(); ++i) {
    CHECK(at_07.layers()[i].name == net.layers()[i].name);
    CHECK(at_07.layers()[i].inputs == net.layers()[i].inputs);
  }
  REQUIRE(Dropouts(at_07).size() == 2);
  for (const DropoutSpec* d : Dropouts(at_07)) {
    CHECK(d->rate == 0.7);
    CHECK(d->kind == DropoutSpec::Kind::kRow);
    CHECK(d->family == graph::PatternFamily::kFixed);
  }
  for (const DropoutSpec* d : Dropouts(net)) CHECK(d->rate == 0.3);  // the input is untouched
}

TEST_CASE("zoo bench: the channel warm-up is removed", "[bench][zoo_bench]") {
  graph::Sequential cnn({1, 12, 12});
  cnn.Add(graph::Conv2d(4, 3)).Add(graph::SensitivityDropout(0.5, 1.0, 200)).Add(graph::Conv2d(4, 3));
  cnn.Add(graph::Flatten()).Add(graph::FullyConnected(10));
  const graph::Network net = Build(cnn);
  StatusOr<NetDropout> before = DescribeDropout(net);
  REQUIRE(before.ok());
  CHECK(before->warmup_iterations == 200);
  StatusOr<NetDropout> after = DescribeDropout(WithoutDropoutWarmup(net));
  REQUIRE(after.ok());
  CHECK(after->warmup_iterations == 0);
  CHECK(after->KindName() == "sensitivity");
  CHECK(after->rate == 0.5);
}

TEST_CASE("zoo bench: the dropout a net uses, and mixed kinds refused", "[bench][zoo_bench]") {
  graph::Sequential dense({20});
  dense.Add(graph::FullyConnected(8)).Add(graph::ReLU()).Add(graph::FullyConnected(3));
  StatusOr<NetDropout> none = DescribeDropout(Build(dense));
  REQUIRE(none.ok());
  CHECK_FALSE(none->kind.has_value());
  CHECK(none->sites == 0);
  CHECK(none->KindName() == "dense");

  graph::Sequential tile({20});
  tile.Add(graph::FullyConnected(8)).Add(graph::TileDropout(0.5, 4, 4)).Add(graph::FullyConnected(3));
  StatusOr<NetDropout> one = DescribeDropout(Build(tile));
  REQUIRE(one.ok());
  CHECK(one->KindName() == "tile");
  CHECK(one->sites == 1);
  CHECK_FALSE(one->fixed_family);

  graph::Sequential mixed({20});
  mixed.Add(graph::FullyConnected(8)).Add(graph::RowDropout(0.5)).Add(graph::FullyConnected(8));
  mixed.Add(graph::Dropout(0.5)).Add(graph::FullyConnected(3));
  StatusOr<NetDropout> bad = DescribeDropout(Build(mixed));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("'drop1' (row)") != std::string::npos);
  CHECK(bad.status().message().find("'drop2' (bernoulli)") != std::string::npos);
}

TEST_CASE("zoo bench: the peer's layer list of the zoo MLP file", "[bench][zoo_bench]") {
  const fs::path file = fs::path(SIEVE_SOURCE_DIR) / "models" / "fashion_mlp" / "net.prototxt";
  StatusOr<runtime::NetConfig> net = runtime::LoadNetConfig(file.string(), runtime::NetPhase::kTrain);
  REQUIRE(net.ok());
  StatusOr<std::string> json = PeerLayersJson(WithDropoutRate(net->network, 0.3), false);
  REQUIRE(json.ok());
  CHECK(*json ==
        "{\"kind\": \"layers\", \"input\": {\"shape\": [784], \"dtype\": \"float32\"}, \"label\": {\"shape\": []}, "
        "\"carry_state\": false, \"layers\": ["
        "{\"name\": \"fc1\", \"type\": \"fc\", \"units\": 2048, \"axis\": 1, \"bias\": true}, "
        "{\"name\": \"relu1\", \"type\": \"relu\"}, "
        "{\"name\": \"drop1\", \"type\": \"dropout\", \"p\": 0.3, \"channel\": false}, "
        "{\"name\": \"fc2\", \"type\": \"fc\", \"units\": 2048, \"axis\": 1, \"bias\": true}, "
        "{\"name\": \"relu2\", \"type\": \"relu\"}, "
        "{\"name\": \"drop2\", \"type\": \"dropout\", \"p\": 0.3, \"channel\": false}, "
        "{\"name\": \"fc3\", \"type\": \"fc\", \"units\": 10, \"axis\": 1, \"bias\": true}, "
        "{\"name\": \"loss\", \"type\": \"softmax_loss\"}]}");
}

TEST_CASE("zoo bench: the peer's layer lists of an LSTM language model and a CNN", "[bench][zoo_bench]") {
  StatusOr<std::string> lm = PeerLayersJson(LanguageModel(graph::Dropout(0.5)), true);
  REQUIRE(lm.ok());
  CHECK(*lm ==
        "{\"kind\": \"layers\", \"input\": {\"shape\": [35], \"dtype\": \"int32\"}, \"label\": {\"shape\": [35]}, "
        "\"carry_state\": true, \"layers\": ["
        "{\"name\": \"embed1\", \"type\": \"embedding\", \"vocab\": 100, \"dim\": 8}, "
        "{\"name\": \"drop1\", \"type\": \"dropout\", \"p\": 0.5, \"channel\": false}, "
        "{\"name\": \"lstm1\", \"type\": \"lstm\", \"units\": 8, \"layers\": 1, \"return_sequences\": true}, "
        "{\"name\": \"drop2\", \"type\": \"dropout\", \"p\": 0.5, \"channel\": false}, "
        "{\"name\": \"fc1\", \"type\": \"fc\", \"units\": 100, \"axis\": 2, \"bias\": true}, "
        "{\"name\": \"loss\", \"type\": \"softmax_loss\"}]}");

  graph::Sequential cnn({1, 12, 12});
  cnn.Add(graph::Conv2d(4, 3, 1, 1)).Add(graph::ReLU()).Add(graph::MaxPool(2, 2));
  cnn.Add(graph::RandomChannelDropout(0.5)).Add(graph::Conv2d(6, 3)).Add(graph::Flatten());
  cnn.Add(graph::FullyConnected(10, false));
  StatusOr<std::string> conv = PeerLayersJson(Build(cnn), false);
  REQUIRE(conv.ok());
  CHECK(*conv ==
        "{\"kind\": \"layers\", \"input\": {\"shape\": [1, 12, 12], \"dtype\": \"float32\"}, \"label\": {\"shape\": "
        "[]}, \"carry_state\": false, \"layers\": ["
        "{\"name\": \"conv1\", \"type\": \"conv\", \"filters\": 4, \"kernel\": 3, \"stride\": 1, \"pad\": 1, "
        "\"bias\": true}, "
        "{\"name\": \"relu1\", \"type\": \"relu\"}, "
        "{\"name\": \"pool1\", \"type\": \"maxpool\", \"kernel\": 2, \"stride\": 2, \"pad\": 0, \"ceil_mode\": false}, "
        "{\"name\": \"drop1\", \"type\": \"dropout\", \"p\": 0.5, \"channel\": true}, "
        "{\"name\": \"conv2\", \"type\": \"conv\", \"filters\": 6, \"kernel\": 3, \"stride\": 1, \"pad\": 0, "
        "\"bias\": true}, "
        "{\"name\": \"flatten1\", \"type\": \"flatten\"}, "
        "{\"name\": \"fc1\", \"type\": \"fc\", \"units\": 10, \"axis\": 1, \"bias\": false}, "
        "{\"name\": \"loss\", \"type\": \"softmax_loss\"}]}");
}

TEST_CASE("zoo bench: a net that is not a chain has no peer layer list", "[bench][zoo_bench]") {
  graph::Network branch;
  branch.Add({"data", graph::InputSpec{.shape = {6}}, {}, {"data"}});
  branch.Add({"label", graph::LabelSpec{}, {}, {"label"}});
  branch.Add({"fc1", graph::FullyConnectedSpec{.units = 4}, {"data"}, {"fc1"}});
  branch.Add({"fc2", graph::FullyConnectedSpec{.units = 3}, {"data"}, {"fc2"}});
  branch.Add({"loss", graph::SoftmaxCrossEntropySpec{}, {"fc2", "label"}, {}});
  StatusOr<std::string> json = PeerLayersJson(branch, false);
  REQUIRE_FALSE(json.ok());
  CHECK(json.status().message().find("layer 'fc2' (FullyConnected) reads 'data', not 'fc1'") != std::string::npos);

  graph::Network no_loss;
  no_loss.Add({"data", graph::InputSpec{.shape = {6}}, {}, {"data"}});
  no_loss.Add({"label", graph::LabelSpec{}, {}, {"label"}});
  no_loss.Add({"fc1", graph::FullyConnectedSpec{.units = 4}, {"data"}, {"fc1"}});
  json = PeerLayersJson(no_loss, false);
  REQUIRE_FALSE(json.ok());
  CHECK(json.status().message().find("no SoftmaxWithLoss layer") != std::string::npos);
}

TEST_CASE("zoo bench: the peer's optimizer is the solver's", "[bench][zoo_bench]") {
  runtime::SolverConfig sgd;
  sgd.lr.base_lr = 1.0f;
  sgd.momentum = 0.0f;
  sgd.clip_gradients = 5.0f;
  CHECK(PeerOptimizerJson(sgd) ==
        "{\"kind\": \"sgd\", \"lr\": 1, \"momentum\": 0, \"weight_decay\": 0, \"clip_gradients\": 5}");
  runtime::SolverConfig adam;
  adam.type = ops::SolverType::kAdam;
  adam.lr.base_lr = 0.5f;
  adam.momentum = 0.5f;
  adam.momentum2 = 0.75f;
  adam.delta = 0.125f;
  adam.weight_decay = 0.25f;
  CHECK(PeerOptimizerJson(adam) ==
        "{\"kind\": \"adam\", \"lr\": 0.5, \"momentum\": 0.5, \"weight_decay\": 0.25, \"clip_gradients\": -1, "
        "\"beta2\": 0.75, \"eps\": 0.125}");
  runtime::SolverConfig nesterov;
  nesterov.type = ops::SolverType::kNesterov;
  CHECK(PeerOptimizerJson(nesterov).rfind("{\"kind\": \"nesterov\"", 0) == 0);
}

TEST_CASE("zoo bench: synthetic batches have the net's shapes, dtypes and ranges", "[bench][zoo_bench]") {
  StatusOr<runtime::Batch> tokens = SyntheticBatch(LanguageModel(graph::RowDropout(0.5)), 4, 7);
  REQUIRE(tokens.ok());
  CHECK(tokens->features.shape() == Shape{4, 35});
  CHECK(tokens->features.dtype() == DType::kInt32);
  CHECK(tokens->labels.shape() == Shape{4, 35});
  bool ids_in_range = true, labels_in_range = true;
  for (int64_t i = 0; i < tokens->features.numel(); ++i) {
    const int32_t id = tokens->features.data<int32_t>()[i];
    ids_in_range = ids_in_range && id >= 0 && id < 100;
    const int32_t label = tokens->labels.data<int32_t>()[i];
    labels_in_range = labels_in_range && label >= 0 && label < 100;
  }
  CHECK(ids_in_range);
  CHECK(labels_in_range);

  graph::Sequential image({1, 6, 6});
  image.Add(graph::Conv2d(2, 3)).Add(graph::Flatten()).Add(graph::FullyConnected(3));
  StatusOr<runtime::Batch> images = SyntheticBatch(Build(image), 5, 7);
  REQUIRE(images.ok());
  CHECK(images->features.shape() == Shape{5, 1, 6, 6});
  CHECK(images->features.dtype() == DType::kFloat32);
  CHECK(images->labels.shape() == Shape{5});
  bool classes_in_range = true;
  for (int64_t i = 0; i < 5; ++i) {
    const int32_t label = images->labels.data<int32_t>()[i];
    classes_in_range = classes_in_range && label >= 0 && label < 3;
  }
  CHECK(classes_in_range);
  // The same seed, the same batch.
  StatusOr<runtime::Batch> again = SyntheticBatch(Build(image), 5, 7);
  REQUIRE(again.ok());
  CHECK(std::equal(images->features.data<float>(), images->features.data<float>() + images->features.numel(),
                   again->features.data<float>()));

  graph::Sequential ids_only({8}, DType::kInt32);
  ids_only.Add(graph::FullyConnected(3));
  StatusOr<runtime::Batch> bad = SyntheticBatch(Build(ids_only), 2, 7);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("read by no Embedding layer") != std::string::npos);
}

}  // namespace
}  // namespace sieve::bench
