// Net files with sensitivity-aware and random feature-map dropout (proto DropoutParameter kinds
// SENSITIVITY and RANDOM_CHANNEL with temperature, warmup_iterations, ema_weight): the fields reach
// the DropoutSpec, the file lowers exactly as the C++ factories do, and settings for the wrong kind,
// values out of range and a channel site whose reader is not a Conv2d are errors naming the place.
#include <catch2/catch.hpp>
#include <string>
#include <variant>

#include "graph/dump.h"
#include "graph/lower.h"
#include "graph/sequential.h"
#include "runtime/config/net_config.h"

namespace sieve::runtime {
namespace {

// data [1, 8, 8] -> conv1 (6) -> relu1 -> drop1 (`dropout` settings) -> `reader` -> ... -> fc -> loss.
std::string CnnNet(const std::string& dropout, bool conv_reader = true) {
  std::string text =
      "layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 8 dim: 8 } } }\n"
      "layer { name: \"label\" type: \"Label\" top: \"label\" }\n"
      "layer { name: \"conv1\" type: \"Convolution\" bottom: \"data\" top: \"conv1\" "
      "convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }\n"
      "layer { name: \"relu1\" type: \"ReLU\" bottom: \"conv1\" top: \"relu1\" }\n"
      "layer { name: \"drop1\" type: \"Dropout\" bottom: \"relu1\" top: \"drop1\" dropout_param { " +
      dropout + " } }\n";
  if (conv_reader) {
    text +=
        "layer { name: \"conv2\" type: \"Convolution\" bottom: \"drop1\" top: \"conv2\" "
        "convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }\n"
        "layer { name: \"flat\" type: \"Flatten\" bottom: \"conv2\" top: \"flat\" }\n";
  } else {
    text += "layer { name: \"flat\" type: \"Flatten\" bottom: \"drop1\" top: \"flat\" }\n";
  }
  text +=
      "layer { name: \"fc\" type: \"FullyConnected\" bottom: \"flat\" top: \"fc\" "
      "fully_connected_param { num_output: 3 } }\n"
      "layer { name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"fc\" bottom: \"label\" }\n";
  return text;
}

const graph::DropoutSpec& DropoutOf(const NetConfig& config) {
  for (const graph::Layer& layer : config.network.layers())
    if (layer.name == "drop1") return std::get<graph::DropoutSpec>(layer.spec);
  FAIL("no layer drop1");
  throw;
}

std::string ErrorOf(const std::string& text) {
  StatusOr<NetConfig> config = ParseNetConfig(text, NetPhase::kTrain, "test.prototxt");
  REQUIRE_FALSE(config.ok());
  return config.status().message();
}

TEST_CASE("Sensitivity and random channel dropout files reach the spec and lower as the factories do",
          "[sensitivity][proto][config]") {
  graph::DropoutSpec sensitivity = graph::SensitivityDropout(0.3, 0.5, 10);
  sensitivity.ema_weight = 0.2;
  const graph::DropoutSpec random_channel = graph::RandomChannelDropout(0.5, 4);
  const struct {
    std::string fields;
    graph::DropoutSpec spec;
  } cases[] = {
      {"dropout_ratio: 0.3 kind: SENSITIVITY temperature: 0.5 warmup_iterations: 10 ema_weight: 0.2", sensitivity},
      {"dropout_ratio: 0.5 kind: RANDOM_CHANNEL warmup_iterations: 4", random_channel},
  };
  for (const auto& c : cases) {
    INFO(c.fields);
    StatusOr<NetConfig> file = ParseNetConfig(CnnNet(c.fields), NetPhase::kTrain, "test.prototxt");
    INFO(file.status().ToString());
    REQUIRE(file.ok());
    const graph::DropoutSpec& spec = DropoutOf(*file);
    CHECK(spec.kind == c.spec.kind);
    CHECK(spec.rate == c.spec.rate);
    CHECK(spec.temperature == c.spec.temperature);
    CHECK(spec.warmup_iterations == c.spec.warmup_iterations);
    CHECK(spec.ema_weight == c.spec.ema_weight);
    graph::Sequential code({1, 8, 8});
    code.Add(graph::Conv2d(6, 3, 1, 1), "conv1")
        .Add(graph::ReLU(), "relu1")
        .Add(c.spec, "drop1")
        .Add(graph::Conv2d(4, 3, 1, 1), "conv2")
        .Add(graph::Flatten(), "flat")
        .Add(graph::FullyConnected(3), "fc");
    StatusOr<graph::Network> network = code.Build();
    REQUIRE(network.ok());
    StatusOr<graph::LoweredNet> from_file = graph::Lower(file->network, {.batch = 2, .training = true});
    StatusOr<graph::LoweredNet> from_code = graph::Lower(*network, {.batch = 2, .training = true});
    REQUIRE(from_file.ok());
    REQUIRE(from_code.ok());
    REQUIRE(from_file->graph.num_sites() == 1);
    CHECK(from_file->graph.sites().front().kind == graph::SiteKind::kChannel);
    CHECK(graph::DumpText(from_file->graph) == graph::DumpText(from_code->graph));
  }
}

TEST_CASE("Channel dropout file errors name the place and the field", "[sensitivity][proto][config]") {
  std::string m = ErrorOf(CnnNet("kind: RANDOM_CHANNEL temperature: 2"));
  CHECK(m.find("test.prototxt:5:") == 0);
  CHECK(m.find("dropout_param.temperature is read by kind SENSITIVITY only, and this layer's kind is "
               "RANDOM_CHANNEL") != std::string::npos);
  m = ErrorOf(CnnNet("kind: ROW warmup_iterations: 2"));
  CHECK(m.find("dropout_param.warmup_iterations is read by kind SENSITIVITY and RANDOM_CHANNEL only") !=
        std::string::npos);
  m = ErrorOf(CnnNet("kind: SENSITIVITY temperature: -1"));
  CHECK(m.find("dropout_param.temperature is -1; valid: [0, inf)") != std::string::npos);
  m = ErrorOf(CnnNet("kind: SENSITIVITY ema_weight: 0"));
  CHECK(m.find("dropout_param.ema_weight is 0; valid: (0, 1]") != std::string::npos);
  m = ErrorOf(CnnNet("kind: SENSITIVITY", false));
  CHECK(m.find("test.prototxt:5:") == 0);
  CHECK(m.find("layer 'drop1' (Dropout)") != std::string::npos);
  CHECK(m.find("must be read by a Conv2d; it is read by layer 'flat' (Flatten)") != std::string::npos);
}

}  // namespace
}  // namespace sieve::runtime
