// Net files: a NetParameter in protobuf text (proto/sieve.proto, docs/model_files.md) read for one
// phase into the graph::Network that the C++ API builds too (graph/layers.h). There is one path from
// a file to a running net: this loader only translates each layer into its layer spec, and the
// network is then checked and lowered by graph::Lower like any other, so a file and the equivalent
// C++ code give the same graph.
//
// Every error names the file, the line and column, the layer and the field: parse errors (with the
// nearest valid field or enum value), an unknown layer type (with the known ones and the nearest), a
// missing or out-of-range value (with the valid range), another kind's *_param message, and what
// graph::Lower reports (shape mismatches naming both shapes, a blob no earlier layer writes naming
// the nearest one), prefixed with the place of the layer it names. Counts and extents are capped at
// 2^31 - 1, every lowered size at 2^40 elements and an LSTM's unrolled steps at 2^16, so a file cannot
// ask for an allocation no machine has. The loader never aborts, whatever the input.
//
// Not here: solver files (solver_config.h), loading the data a source names (runtime/data/), the CLI.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "framework/status.h"
#include "graph/layers.h"
#include "runtime/data/text_corpus.h"

namespace sieve::runtime {

/// The graph a net file is read for (sieve.proto's Phase): kTrain keeps the layers whose include /
/// exclude rules admit TRAIN, and is checked as a training graph (dropout on); kTest likewise for
/// TEST and the evaluation graph.
enum class NetPhase : uint8_t { kTrain, kTest, kCount };
/// "TRAIN", "TEST" (the names a net file uses).
const char* NetPhaseName(NetPhase phase);

/// Where an Input layer's examples come from (InputParameter.source).
enum class DataSourceKind : uint8_t { kNone, kFashionMnist, kTextCorpus, kCount };
/// "none", "fashion_mnist", "text_corpus".
const char* DataSourceKindName(DataSourceKind kind);

/// A data source. The split follows the phase the net was read for.
struct DataSource {
  DataSourceKind kind = DataSourceKind::kNone;
  /// The folder, resolved against the net file's folder; "" for the loader's default location.
  std::string dir;
  TokenLevel level = TokenLevel::kWord;  ///< kTextCorpus only
};

/// A net file read for one phase.
struct NetConfig {
  std::string name;        ///< NetParameter.name ("" when not given)
  graph::Network network;  ///< the phase's layers, in file order
  /// The Input layer that gave a batch size or a source ("" when none did; at most one may).
  std::string data_layer;
  int64_t batch_size = 0;  ///< its input_param.batch_size; 0 when not given
  DataSource source;       ///< its input_param.source; kNone when not given
};

/// Reads the net in `text` for `phase`; `origin` names it in messages (a path, whose folder relative
/// data folders are resolved against). Every layer of the file is checked, including those of the
/// other phase; the phase's network is then lowered (graph::Lower with the batch size, or 1, and
/// training = phase == kTrain) one layer at a time, to report what Lower finds and to check that
/// every lowered value has at most 2^40 elements and every LSTM unrolls at most 2^16 steps x layers
/// before a later layer computes with them. Errors: INVALID_ARGUMENT (NOT_FOUND for a blob that no
/// earlier layer writes), each message starting "origin:line:column: " ("origin: " for a phase without
/// layers).
StatusOr<NetConfig> ParseNetConfig(std::string_view text, NetPhase phase, std::string_view origin = "<net>");

/// ParseNetConfig of the file at `path`; NOT_FOUND when it does not exist.
StatusOr<NetConfig> LoadNetConfig(const std::string& path, NetPhase phase);

/// The network alone of LoadNetConfig.
StatusOr<graph::Network> LoadNetFile(const std::string& path, NetPhase phase);

/// The layer types a net file may use, in the order docs/model_files.md lists them: "Input", "Label",
/// "FullyConnected", "Convolution", "Pooling", "ReLU", "TanH", "Sigmoid", "Dropout", "LSTM",
/// "Embedding", "Flatten", "Reshape", "SoftmaxWithLoss", "Accuracy".
const std::vector<std::string>& NetLayerTypes();

}  // namespace sieve::runtime
