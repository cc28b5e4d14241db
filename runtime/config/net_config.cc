// Net files -> graph::Network (net_config.h): phase rules, one translation per layer type from its
// *_param message into the layer spec of graph/layers.h, the checks that name the field, and the
// final graph::Lower whose errors are prefixed with the place of the layer they name.
#include "runtime/config/net_config.h"

#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "framework/suggest.h"
#include "graph/lower.h"
#include "proto/sieve.pb.h"
#include "runtime/config/proto_text.h"
#include "runtime/params/initializer.h"

namespace sieve::runtime {

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;

constexpr const char* kPhaseNames[] = {"TRAIN", "TEST"};
static_assert(std::size(kPhaseNames) == static_cast<size_t>(NetPhase::kCount), "every NetPhase needs a name");
constexpr const char* kSourceNames[] = {"none", "fashion_mnist", "text_corpus"};
static_assert(std::size(kSourceNames) == static_cast<size_t>(DataSourceKind::kCount),
              "every DataSourceKind needs a name");

template <typename T>
std::string ToText(const T& value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

// One layer of the file while it is translated: its message, its place, and errors that name both.
class LayerReader {
 public:
  LayerReader(const proto::LayerParameter& layer, TextLocation where, std::string describe)
      : layer_(layer), where_(std::move(where)), describe_(std::move(describe)) {}

  const proto::LayerParameter& layer() const { return layer_; }

  /// INVALID_ARGUMENT "file:line:column: layer 'fc1' (FullyConnected): <message>", placed at `field`
  /// (a path under the layer; "" for the layer itself).
  Status Error(std::string_view field, const std::string& message) const {
    return SIEVE_ERROR(kInvalid, (field.empty() ? where_.Here() : where_.At(field))
                                     << ": " << describe_ << ": " << message);
  }
  /// `inner`'s code and message, placed at `field` and prefixed with it.
  Status Wrap(std::string_view field, const Status& inner) const {
    return Status(inner.code(),
                  where_.At(field) + ": " + describe_ + ": " + std::string(field) + ": " + inner.message());
  }
  Status Missing(std::string_view field, std::string_view meaning) const {
    return Error(field, std::string(field) + " is required (" + std::string(meaning) + ")");
  }
  template <typename T>
  Status OutOfRange(std::string_view field, const T& value, std::string_view valid) const {
    return Error(field, std::string(field) + " is " + ToText(value) + "; valid: " + std::string(valid));
  }

 private:
  const proto::LayerParameter& layer_;
  TextLocation where_;
  std::string describe_;
};

// The largest extent, count or per-sample element count a file may give: 2^31 - 1, which keeps the
// shapes of single layers inside int64; sizes that still come out absurd for the whole network are
// caught after lowering (kMaxElements).
constexpr int64_t kMaxExtent = (int64_t{1} << 31) - 1;
// The most elements a lowered value or parameter may have: 2^40 (4 TiB of float32).
constexpr int64_t kMaxElements = int64_t{1} << 40;
// The most time steps times stacked layers an LSTM layer may have. The lowering unrolls every step of
// every layer into the graph (a few values and nodes each), so a file with a sequence of 2^31 steps
// would otherwise exhaust memory while being lowered; real sequences are tens to hundreds of steps.
constexpr int64_t kMaxLstmSteps = int64_t{1} << 16;

// Checks min <= `value` <= kMaxExtent for an integer field.
Status AtLeast(const LayerReader& r, std::string_view field, int64_t value, int64_t min) {
  if (value < min) return r.OutOfRange(field, value, ">= " + std::to_string(min));
  if (value > kMaxExtent) return r.OutOfRange(field, value, "<= " + std::to_string(kMaxExtent));
  return Status::Ok();
}

Status Finite(const LayerReader& r, std::string_view field, double value) {
  if (std::isfinite(value)) return Status::Ok();
  return r.OutOfRange(field, value, "a finite number");
}

// A per-sample shape; with `allow_inferred`, one dim may be -1.
StatusOr<Shape> ReadShape(const LayerReader& r, const std::string& field, const proto::BlobShape& shape,
                          bool allow_inferred) {
  Shape dims;
  bool inferred = false;
  int64_t numel = 1;
  for (int i = 0; i < shape.dim_size(); ++i) {
    const int64_t d = shape.dim(i);
    const std::string path = field + ".dim[" + std::to_string(i) + "]";
    if (allow_inferred && d == -1 && !inferred) {
      inferred = true;
    } else if (d < 1) {
      return r.OutOfRange(path, d,
                          allow_inferred ? (inferred ? ">= 1 (only one dim may be -1)" : ">= 1, or -1 once")
                                         : ">= 1 (the batch axis is not written)");
    } else if (d > kMaxExtent / numel) {
      return r.Error(path, field + " has more than " + std::to_string(kMaxExtent) + " elements per sample");
    } else {
      numel *= d;
    }
    dims.push_back(d);
  }
  return dims;
}

StatusOr<InitSpec> ReadFiller(const LayerReader& r, const std::string& field, const proto::FillerParameter& filler) {
  InitSpec spec;  // Caffe's defaults: constant 0
  if (filler.has_type()) {
    StatusOr<InitType> type = ParseInitType(filler.type());
    if (!type.ok()) {
      std::vector<std::string> names;
      for (int t = 0; t < static_cast<int>(InitType::kCount); ++t)
        names.push_back(InitTypeName(static_cast<InitType>(t)));
      std::string valid;
      for (const std::string& name : names) valid += (valid.empty() ? "" : ", ") + name;
      return r.Error(field + ".type", "'" + filler.type() + "' is not a filler type" +
                                          NearestSuffix(filler.type(), names) + "; valid: " + valid);
    }
    spec.type = *type;
  }
  if (filler.has_value()) spec.value = filler.value();
  if (filler.has_min()) spec.min = filler.min();
  if (filler.has_max()) spec.max = filler.max();
  if (filler.has_mean()) spec.mean = filler.mean();
  if (filler.has_std()) spec.std = filler.std();
  if (filler.has_variance_norm()) {
    switch (filler.variance_norm()) {
      case proto::FillerParameter::FAN_IN:
        spec.variance_norm = VarianceNorm::kFanIn;
        break;
      case proto::FillerParameter::FAN_OUT:
        spec.variance_norm = VarianceNorm::kFanOut;
        break;
      case proto::FillerParameter::AVERAGE:
        spec.variance_norm = VarianceNorm::kAverage;
        break;
    }
  }
  if (Status st = ValidateInitSpec(spec); !st.ok()) return r.Wrap(field, st);
  return spec;
}

// Sets `init` from the filler at `field` when the file gives one; otherwise init keeps the kind's default.
Status MaybeReadFiller(const LayerReader& r, const std::string& field, bool given, const proto::FillerParameter& filler,
                       InitSpec& init) {
  if (!given) return Status::Ok();
  SIEVE_ASSIGN_OR_RETURN(init, ReadFiller(r, field, filler));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// One translation per layer type

StatusOr<graph::LayerSpec> BuildInput(const LayerReader& r) {
  const proto::InputParameter& p = r.layer().input_param();
  if (!p.has_shape()) return r.Missing("input_param.shape", "the per-sample shape, e.g. shape { dim: 784 }");
  graph::InputSpec spec;
  SIEVE_ASSIGN_OR_RETURN(spec.shape, ReadShape(r, "input_param.shape", p.shape(), /*allow_inferred=*/false));
  if (p.has_dtype()) spec.dtype = p.dtype() == proto::InputParameter::INT32 ? DType::kInt32 : DType::kFloat32;
  if (p.has_batch_size()) SIEVE_RETURN_IF_ERROR(AtLeast(r, "input_param.batch_size", p.batch_size(), 1));
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildLabel(const LayerReader& r) {
  graph::LabelSpec spec;
  const proto::LabelParameter& p = r.layer().label_param();
  if (p.has_shape()) {
    SIEVE_ASSIGN_OR_RETURN(spec.shape, ReadShape(r, "label_param.shape", p.shape(), /*allow_inferred=*/false));
  }
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildFullyConnected(const LayerReader& r) {
  const proto::FullyConnectedParameter& p = r.layer().fully_connected_param();
  if (!p.has_num_output()) return r.Missing("fully_connected_param.num_output", "the number of outputs");
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "fully_connected_param.num_output", p.num_output(), 1));
  graph::FullyConnectedSpec spec;
  spec.units = p.num_output();
  if (p.has_bias_term()) spec.bias = p.bias_term();
  if (p.has_axis()) {
    SIEVE_RETURN_IF_ERROR(AtLeast(r, "fully_connected_param.axis", p.axis(), 1));
    spec.axis = p.axis();
  }
  SIEVE_RETURN_IF_ERROR(MaybeReadFiller(r, "fully_connected_param.weight_filler", p.has_weight_filler(),
                                        p.weight_filler(), spec.weight.init));
  SIEVE_RETURN_IF_ERROR(MaybeReadFiller(r, "fully_connected_param.bias_filler", p.has_bias_filler(), p.bias_filler(),
                                        spec.bias_param.init));
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildConvolution(const LayerReader& r) {
  const proto::ConvolutionParameter& p = r.layer().convolution_param();
  if (!p.has_num_output()) return r.Missing("convolution_param.num_output", "the number of filters");
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "convolution_param.num_output", p.num_output(), 1));
  graph::Conv2dSpec spec;
  spec.filters = p.num_output();
  if (p.has_bias_term()) spec.bias = p.bias_term();
  if (p.has_kernel_size()) spec.kernel = p.kernel_size();
  if (p.has_stride()) spec.stride = p.stride();
  if (p.has_pad()) spec.pad = p.pad();
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "convolution_param.kernel_size", spec.kernel, 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "convolution_param.stride", spec.stride, 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "convolution_param.pad", spec.pad, 0));
  SIEVE_RETURN_IF_ERROR(MaybeReadFiller(r, "convolution_param.weight_filler", p.has_weight_filler(), p.weight_filler(),
                                        spec.weight.init));
  SIEVE_RETURN_IF_ERROR(
      MaybeReadFiller(r, "convolution_param.bias_filler", p.has_bias_filler(), p.bias_filler(), spec.bias_param.init));
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildPooling(const LayerReader& r) {
  const proto::PoolingParameter& p = r.layer().pooling_param();
  graph::PoolSpec spec;
  if (p.has_pool())
    spec.kind = p.pool() == proto::PoolingParameter::AVE ? graph::PoolSpec::Kind::kAvg : graph::PoolSpec::Kind::kMax;
  if (p.has_kernel_size()) spec.kernel = p.kernel_size();
  if (p.has_stride()) spec.stride = p.stride();
  if (p.has_pad()) spec.pad = p.pad();
  if (p.has_ceil_mode()) spec.ceil_mode = p.ceil_mode();
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "pooling_param.kernel_size", spec.kernel, 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "pooling_param.stride", spec.stride, 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "pooling_param.pad", spec.pad, 0));
  return graph::LayerSpec(spec);
}

template <ops::Activation kKind>
StatusOr<graph::LayerSpec> BuildActivation(const LayerReader&) {
  return graph::LayerSpec(graph::ActivationSpec{kKind});
}

StatusOr<graph::LayerSpec> BuildDropout(const LayerReader& r) {
  using Kind = graph::DropoutSpec::Kind;
  const proto::DropoutParameter& p = r.layer().dropout_param();
  graph::DropoutSpec spec;
  if (p.has_dropout_ratio()) spec.rate = p.dropout_ratio();
  if (!(spec.rate >= 0.0 && spec.rate < 1.0)) return r.OutOfRange("dropout_param.dropout_ratio", spec.rate, "[0, 1)");
  if (p.has_kind()) {
    spec.kind = p.kind() == proto::DropoutParameter::ROW              ? Kind::kRow
                : p.kind() == proto::DropoutParameter::TILE           ? Kind::kTile
                : p.kind() == proto::DropoutParameter::SENSITIVITY    ? Kind::kSensitivity
                : p.kind() == proto::DropoutParameter::RANDOM_CHANNEL ? Kind::kRandomChannel
                                                                      : Kind::kBernoulli;
  }
  // Each setting and the kinds that read it.
  struct Setting {
    const char* field;
    bool given;
    bool row, tile, sensitivity, random_channel;
    const char* readers;
  };
  const Setting settings[] = {
      {"scaling", p.has_scaling(), true, true, false, false, "ROW and TILE"},
      {"family", p.has_family(), true, true, false, false, "ROW and TILE"},
      {"max_period", p.has_max_period(), true, true, false, false, "ROW and TILE"},
      {"generalized", p.has_generalized(), true, false, false, false, "ROW"},
      {"tile_rows", p.has_tile_rows(), false, true, false, false, "TILE"},
      {"tile_cols", p.has_tile_cols(), false, true, false, false, "TILE"},
      {"shuffle_every_epochs", p.has_shuffle_every_epochs(), true, false, false, false, "ROW"},
      {"temperature", p.has_temperature(), false, false, true, false, "SENSITIVITY"},
      {"warmup_iterations", p.has_warmup_iterations(), false, false, true, true, "SENSITIVITY and RANDOM_CHANNEL"},
      {"ema_weight", p.has_ema_weight(), false, false, true, false, "SENSITIVITY"},
  };
  for (const Setting& setting : settings) {
    const bool read = (spec.kind == Kind::kRow && setting.row) || (spec.kind == Kind::kTile && setting.tile) ||
                      (spec.kind == Kind::kSensitivity && setting.sensitivity) ||
                      (spec.kind == Kind::kRandomChannel && setting.random_channel);
    if (setting.given && !read) {
      const std::string field = std::string("dropout_param.") + setting.field;
      return r.Error(field, field + " is read by kind " + setting.readers + " only, and this layer's kind is " +
                                proto::DropoutParameter::Kind_Name(p.kind()));
    }
  }
  if (p.has_scaling())
    spec.scaling =
        p.scaling() == proto::DropoutParameter::NOMINAL ? graph::ScaleMode::kNominal : graph::ScaleMode::kPattern;
  if (p.has_family())
    spec.family =
        p.family() == proto::DropoutParameter::FIXED ? graph::PatternFamily::kFixed : graph::PatternFamily::kSearched;
  if (p.has_max_period()) spec.max_period = p.max_period();
  if (p.has_generalized()) spec.generalized = p.generalized();
  if (p.has_tile_rows()) spec.tile_rows = p.tile_rows();
  if (p.has_tile_cols()) spec.tile_cols = p.tile_cols();
  if (p.has_shuffle_every_epochs()) spec.shuffle_every_epochs = p.shuffle_every_epochs();
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "dropout_param.max_period", spec.max_period, 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "dropout_param.tile_rows", spec.tile_rows, 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "dropout_param.tile_cols", spec.tile_cols, 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "dropout_param.shuffle_every_epochs", spec.shuffle_every_epochs, 0));
  if (p.has_temperature()) spec.temperature = p.temperature();
  if (p.has_warmup_iterations()) spec.warmup_iterations = p.warmup_iterations();
  if (p.has_ema_weight()) spec.ema_weight = p.ema_weight();
  if (!(spec.temperature >= 0.0 && std::isfinite(spec.temperature)))
    return r.OutOfRange("dropout_param.temperature", spec.temperature, "[0, inf)");
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "dropout_param.warmup_iterations", spec.warmup_iterations, 0));
  if (!(spec.ema_weight > 0.0 && spec.ema_weight <= 1.0))
    return r.OutOfRange("dropout_param.ema_weight", spec.ema_weight, "(0, 1]");
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildLstm(const LayerReader& r) {
  const proto::LSTMParameter& p = r.layer().lstm_param();
  if (!p.has_num_output()) return r.Missing("lstm_param.num_output", "the hidden units");
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "lstm_param.num_output", p.num_output(), 1));
  graph::LstmSpec spec;
  spec.units = p.num_output();
  if (p.has_num_layers()) spec.layers = p.num_layers();
  if (p.has_return_sequences()) spec.return_sequences = p.return_sequences();
  if (p.has_forget_bias()) spec.forget_bias = p.forget_bias();
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "lstm_param.num_layers", spec.layers, 1));
  SIEVE_RETURN_IF_ERROR(Finite(r, "lstm_param.forget_bias", spec.forget_bias));
  SIEVE_RETURN_IF_ERROR(
      MaybeReadFiller(r, "lstm_param.weight_filler", p.has_weight_filler(), p.weight_filler(), spec.weight.init));
  SIEVE_RETURN_IF_ERROR(
      MaybeReadFiller(r, "lstm_param.bias_filler", p.has_bias_filler(), p.bias_filler(), spec.bias_param.init));
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildEmbedding(const LayerReader& r) {
  const proto::EmbeddingParameter& p = r.layer().embedding_param();
  if (!p.has_input_dim()) return r.Missing("embedding_param.input_dim", "the vocabulary size");
  if (!p.has_num_output()) return r.Missing("embedding_param.num_output", "the vector size");
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "embedding_param.input_dim", p.input_dim(), 1));
  SIEVE_RETURN_IF_ERROR(AtLeast(r, "embedding_param.num_output", p.num_output(), 1));
  graph::EmbeddingSpec spec;
  spec.vocab = p.input_dim();
  spec.dim = p.num_output();
  SIEVE_RETURN_IF_ERROR(
      MaybeReadFiller(r, "embedding_param.weight_filler", p.has_weight_filler(), p.weight_filler(), spec.weight.init));
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildFlatten(const LayerReader&) { return graph::LayerSpec(graph::FlattenSpec{}); }

StatusOr<graph::LayerSpec> BuildReshape(const LayerReader& r) {
  const proto::ReshapeParameter& p = r.layer().reshape_param();
  if (!p.has_shape())
    return r.Missing("reshape_param.shape", "the per-sample shape, e.g. shape { dim: 1 dim: 28 dim: 28 }");
  graph::ReshapeSpec spec;
  SIEVE_ASSIGN_OR_RETURN(spec.shape, ReadShape(r, "reshape_param.shape", p.shape(), /*allow_inferred=*/true));
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildSoftmaxLoss(const LayerReader& r) {
  const proto::SoftmaxLossParameter& p = r.layer().softmax_loss_param();
  graph::SoftmaxCrossEntropySpec spec;
  if (p.has_loss_weight()) spec.loss_weight = p.loss_weight();
  if (p.has_ignore_label()) spec.ignore_label = p.ignore_label();
  SIEVE_RETURN_IF_ERROR(Finite(r, "softmax_loss_param.loss_weight", spec.loss_weight));
  return graph::LayerSpec(spec);
}

StatusOr<graph::LayerSpec> BuildAccuracy(const LayerReader&) { return graph::LayerSpec(graph::AccuracySpec{}); }

// A layer type of the file: its name, the *_param field it reads (nullptr: none) and its translation.
struct LayerType {
  const char* name;
  const char* param;
  StatusOr<graph::LayerSpec> (*build)(const LayerReader&);
};

constexpr LayerType kLayerTypes[] = {
    {"Input", "input_param", BuildInput},
    {"Label", "label_param", BuildLabel},
    {"FullyConnected", "fully_connected_param", BuildFullyConnected},
    {"Convolution", "convolution_param", BuildConvolution},
    {"Pooling", "pooling_param", BuildPooling},
    {"ReLU", nullptr, BuildActivation<ops::Activation::kReLU>},
    {"TanH", nullptr, BuildActivation<ops::Activation::kTanh>},
    {"Sigmoid", nullptr, BuildActivation<ops::Activation::kSigmoid>},
    {"Dropout", "dropout_param", BuildDropout},
    {"LSTM", "lstm_param", BuildLstm},
    {"Embedding", "embedding_param", BuildEmbedding},
    {"Flatten", nullptr, BuildFlatten},
    {"Reshape", "reshape_param", BuildReshape},
    {"SoftmaxWithLoss", "softmax_loss_param", BuildSoftmaxLoss},
    {"Accuracy", nullptr, BuildAccuracy},
};
// Every spec alternative has a type (the activations share one alternative: three types).
static_assert(std::size(kLayerTypes) == std::variant_size_v<graph::LayerSpec> + 2,
              "a layer spec of graph/layers.h without a net file type, or a type too many");

// ---------------------------------------------------------------------------------------------
// The layer-level checks

// The parameters of a spec, in the order of a layer's `param` blocks, with their names.
std::vector<std::pair<const char*, ParamSpec*>> ParamTargets(graph::LayerSpec& spec) {
  std::vector<std::pair<const char*, ParamSpec*>> targets;
  std::visit(
      [&](auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, graph::FullyConnectedSpec> || std::is_same_v<T, graph::Conv2dSpec>) {
          targets.emplace_back("weight", &s.weight);
          if (s.bias) targets.emplace_back("bias", &s.bias_param);
        } else if constexpr (std::is_same_v<T, graph::LstmSpec>) {
          targets.emplace_back("weight", &s.weight);
          targets.emplace_back("bias", &s.bias_param);
        } else if constexpr (std::is_same_v<T, graph::EmbeddingSpec>) {
          targets.emplace_back("weight", &s.weight);
        }
      },
      spec);
  return targets;
}

Status ApplyParamBlocks(const LayerReader& r, graph::LayerSpec& spec) {
  const std::vector<std::pair<const char*, ParamSpec*>> targets = ParamTargets(spec);
  const proto::LayerParameter& layer = r.layer();
  if (layer.param_size() > static_cast<int>(targets.size())) {
    std::string names;
    for (const auto& [name, target] : targets) names += std::string(names.empty() ? " (" : ", ") + name;
    if (!names.empty()) names += ")";
    return r.Error("param[" + std::to_string(targets.size()) + "]",
                   std::to_string(layer.param_size()) + " param blocks, but the layer has " +
                       std::to_string(targets.size()) + " parameter" + (targets.size() == 1 ? "" : "s") + names);
  }
  for (int i = 0; i < layer.param_size(); ++i) {
    const proto::ParamSpec& block = layer.param(i);
    ParamSpec& target = *targets[i].second;
    const std::string path = "param[" + std::to_string(i) + "]";
    if (block.has_lr_mult()) target.lr_mult = block.lr_mult();
    if (block.has_decay_mult()) target.decay_mult = block.decay_mult();
    SIEVE_RETURN_IF_ERROR(Finite(r, path + ".lr_mult", target.lr_mult));
    SIEVE_RETURN_IF_ERROR(Finite(r, path + ".decay_mult", target.decay_mult));
  }
  return Status::Ok();
}

// A *_param message that the layer's type does not read is an error, not silently ignored.
Status CheckForeignParams(const LayerReader& r, const LayerType& type) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r.layer().GetReflection()->ListFields(r.layer(), &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    const std::string& name = field->name();
    if (name.size() < 6 || name.compare(name.size() - 6, 6, "_param") != 0) continue;
    if (type.param != nullptr && name == type.param) continue;
    return r.Error(name, std::string(type.name) + " layers do not read " + name +
                             (type.param != nullptr ? std::string("; they read ") + type.param
                                                    : std::string("; they have no settings")));
  }
  return Status::Ok();
}

proto::Phase ToProto(NetPhase phase) { return phase == NetPhase::kTrain ? proto::TRAIN : proto::TEST; }

// Caffe's rules: with include rules, a layer is in a phase one of them names; otherwise in every phase
// no exclude rule names.
StatusOr<bool> InPhase(const LayerReader& r, NetPhase phase) {
  const proto::LayerParameter& layer = r.layer();
  if (layer.include_size() > 0 && layer.exclude_size() > 0)
    return r.Error("exclude", "has both include and exclude rules; give one kind");
  const bool include = layer.include_size() > 0;
  const auto& rules = include ? layer.include() : layer.exclude();
  bool named = false;
  for (int i = 0; i < rules.size(); ++i) {
    if (!rules[i].has_phase())
      return r.Error(std::string(include ? "include" : "exclude") + "[" + std::to_string(i) + "]",
                     "a rule without a phase; write { phase: TRAIN } or { phase: TEST }");
    named = named || rules[i].phase() == ToProto(phase);
  }
  return include ? named : !named;
}

// The batch size and source an Input layer gives (both absent for other kinds).
struct DataSettings {
  int64_t batch_size = 0;
  DataSource source;
  bool given() const { return batch_size > 0 || source.kind != DataSourceKind::kNone; }
};

StatusOr<DataSettings> ReadDataSettings(const LayerReader& r, std::string_view origin) {
  DataSettings data;
  const proto::InputParameter& p = r.layer().input_param();
  if (p.has_batch_size()) data.batch_size = p.batch_size();
  if (!p.has_source()) return data;
  const proto::DataSource& source = p.source();
  const auto resolve = [&](bool given, const std::string& dir) {
    return given && !dir.empty() ? ResolveAgainst(origin, dir) : std::string();
  };
  switch (source.kind_case()) {
    case proto::DataSource::kFashionMnist:
      data.source.kind = DataSourceKind::kFashionMnist;
      data.source.dir = resolve(source.fashion_mnist().has_dir(), source.fashion_mnist().dir());
      break;
    case proto::DataSource::kTextCorpus:
      data.source.kind = DataSourceKind::kTextCorpus;
      data.source.dir = resolve(source.text_corpus().has_dir(), source.text_corpus().dir());
      data.source.level =
          source.text_corpus().level() == proto::TextCorpusSource::CHAR ? TokenLevel::kChar : TokenLevel::kWord;
      break;
    case proto::DataSource::KIND_NOT_SET:
      return r.Error("input_param.source",
                     "input_param.source names no source; write source { fashion_mnist { } } "
                     "or source { text_corpus { dir: \"...\" } }");
  }
  return data;
}

const LayerType* FindLayerType(const std::string& name) {
  for (const LayerType& type : kLayerTypes) {
    if (name == type.name) return &type;
  }
  return nullptr;
}

// Caffe's names of the kinds Sieve calls otherwise.
constexpr std::pair<const char*, const char*> kCaffeTypeNames[] = {
    {"InnerProduct", "FullyConnected"}, {"Embed", "Embedding"}, {"Data", "Input"}};

// The type a mistyped `name` most likely means: Caffe's name for it, a type it abbreviates (ignoring
// case: "conv" -> "Convolution"), else the nearest by edit distance.
std::string NearestType(const std::string& name) {
  for (const auto& [caffe, sieve] : kCaffeTypeNames) {
    if (name == caffe) return sieve;
  }
  const auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  for (const LayerType& type : kLayerTypes) {
    if (!name.empty() && lower(type.name).rfind(lower(name), 0) == 0) return type.name;
  }
  return NearestName(name, NetLayerTypes());
}

// "Input, Label, FullyConnected, ...".
std::string KnownTypes() {
  std::string names;
  for (const LayerType& type : kLayerTypes) names += std::string(names.empty() ? "" : ", ") + type.name;
  return names;
}

// The name in "layer 'fc2' (...)" at the start of a Lower message, or "".
std::string LayerNamed(const std::string& message) {
  static const std::regex kLayer(R"(layer '([^']*)')");
  std::smatch match;
  return std::regex_search(message, match, kLayer) ? match[1].str() : std::string();
}

// Every value of the lowered graph (parameters included) has at most kMaxElements elements, counted
// without overflow; the message is placed at the layer the value belongs to ("fc1.w" -> layer "fc1").
Status CheckSizes(const graph::Graph& graph, const graph::Network& network,
                  const std::map<std::string, std::string>& layer_place, std::string_view origin) {
  for (const graph::Value& value : graph.values()) {
    int64_t numel = 1;
    bool fits = true;
    for (int64_t d : value.planned) fits = fits && d >= 0 && !__builtin_mul_overflow(numel, d, &numel);
    if (fits && numel <= kMaxElements) continue;
    std::string layer;
    for (const graph::Layer& l : network.layers()) {
      if (value.name.rfind(l.name + ".", 0) == 0 && l.name.size() > layer.size()) layer = l.name;
    }
    const auto place = layer_place.find(layer);
    return SIEVE_ERROR(kInvalid, (place != layer_place.end() ? place->second : std::string(origin))
                                     << ": layer '" << layer << "': '" << value.name << "' would have shape "
                                     << ShapeToString(value.planned) << ", more than 2^40 elements");
  }
  return Status::Ok();
}

// Lowers the network the way graph::Lower does, one more layer at a time, and checks the sizes after
// each: so every layer is lowered from inputs of sane size, and an LSTM's unrolled length is checked
// before it is unrolled. Lower's own errors are placed at the layer they name. The last lowering is
// the whole network, so this is graph::Lower's verdict on it plus the size limits; the repetition
// costs a few milliseconds for the nets of a zoo.
Status LowerLayerByLayer(const graph::Network& network, const graph::LowerOptions& options,
                         const std::map<std::string, std::string>& layer_place, std::string_view origin) {
  graph::Network prefix;
  std::optional<graph::LoweredNet> before;  // the lowering of `prefix`
  for (const graph::Layer& layer : network.layers()) {
    const auto* lstm = std::get_if<graph::LstmSpec>(&layer.spec);
    if (lstm != nullptr && before && layer.inputs.size() == 1 && before->blobs.contains(layer.inputs[0])) {
      const Shape& shape = before->graph.value(before->blobs.at(layer.inputs[0])).planned;
      const int64_t steps = shape.size() == 3 ? shape[1] : 0;
      if (steps > kMaxLstmSteps / lstm->layers)
        return SIEVE_ERROR(kInvalid, layer_place.at(layer.name)
                                         << ": layer '" << layer.name << "' (LSTM): input '" << layer.inputs[0]
                                         << "' has shape " << ShapeToString(shape) << ": " << steps << " steps x "
                                         << lstm->layers << " layers is more than the " << kMaxLstmSteps
                                         << " steps an LSTM layer may unroll");
    }
    prefix.Add(layer);
    StatusOr<graph::LoweredNet> lowered = graph::Lower(prefix, options);
    if (!lowered.ok()) {
      const auto place = layer_place.find(LayerNamed(lowered.status().message()));
      const std::string where = place != layer_place.end() ? place->second : std::string(origin);
      return Status(lowered.status().code(), where + ": " + lowered.status().message());
    }
    SIEVE_RETURN_IF_ERROR(CheckSizes(lowered->graph, network, layer_place, origin));
    before = std::move(lowered).value();
  }
  return Status::Ok();
}

}  // namespace

const char* NetPhaseName(NetPhase phase) { return kPhaseNames[static_cast<int>(phase)]; }
const char* DataSourceKindName(DataSourceKind kind) { return kSourceNames[static_cast<int>(kind)]; }

const std::vector<std::string>& NetLayerTypes() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const LayerType& type : kLayerTypes) list.emplace_back(type.name);
    return list;
  }();
  return names;
}

StatusOr<NetConfig> ParseNetConfig(std::string_view text, NetPhase phase, std::string_view origin) {
  proto::NetParameter net;
  SIEVE_ASSIGN_OR_RETURN(const std::unique_ptr<ParsedText> parsed, ParsedText::Parse(text, origin, net));
  const TextLocation root = parsed->root();
  NetConfig config;
  config.name = net.name();
  std::map<std::string, std::string> layer_place;  // the phase's layer names -> "file:line:column"
  std::string data_place;
  for (int i = 0; i < net.layer_size(); ++i) {
    const proto::LayerParameter& layer = net.layer(i);
    const std::string path = "layer[" + std::to_string(i) + "]";
    const TextLocation where = root.In(path);
    SIEVE_ENSURE(!layer.name().empty(), kInvalid,
                 where.Here() << ": layer #" << i + 1 << " has no name; give it one: name: \"...\"");
    const std::string describe = "layer '" + layer.name() + "'";
    SIEVE_ENSURE(layer.has_type(), kInvalid,
                 where.Here() << ": " << describe << " has no type; known types: " << KnownTypes());
    const LayerType* type = FindLayerType(layer.type());
    SIEVE_ENSURE(type != nullptr, kInvalid,
                 where.At("type") << ": " << describe << ": unknown type '" << layer.type() << "' (nearest: '"
                                  << NearestType(layer.type()) << "'); known types: " << KnownTypes());
    const LayerReader reader(layer, where, describe + " (" + type->name + ")");
    SIEVE_RETURN_IF_ERROR(CheckForeignParams(reader, *type));
    SIEVE_ASSIGN_OR_RETURN(const bool in_phase, InPhase(reader, phase));
    SIEVE_ASSIGN_OR_RETURN(graph::LayerSpec spec, type->build(reader));
    SIEVE_RETURN_IF_ERROR(ApplyParamBlocks(reader, spec));
    DataSettings data;
    if (std::holds_alternative<graph::InputSpec>(spec)) {
      SIEVE_ASSIGN_OR_RETURN(data, ReadDataSettings(reader, origin));
    }
    if (!in_phase) continue;
    if (data.given()) {
      if (!config.data_layer.empty())
        return reader.Error("input_param", "gives a batch size or a source, and so does layer '" + config.data_layer +
                                               "' (" + data_place + ") in phase " + NetPhaseName(phase) +
                                               "; only one Input layer of a phase may");
      config.data_layer = layer.name();
      config.batch_size = data.batch_size;
      config.source = data.source;
      data_place = where.Here();
    }
    layer_place[layer.name()] = where.Here();
    config.network.Add(graph::Layer{layer.name(),
                                    std::move(spec),
                                    {layer.bottom().begin(), layer.bottom().end()},
                                    {layer.top().begin(), layer.top().end()}});
  }
  SIEVE_ENSURE(config.network.size() > 0, kInvalid,
               origin << ": the net has no layers in phase " << NetPhaseName(phase));

  SIEVE_RETURN_IF_ERROR(LowerLayerByLayer(
      config.network, {.batch = config.batch_size > 0 ? config.batch_size : 1, .training = phase == NetPhase::kTrain},
      layer_place, origin));
  return config;
}

StatusOr<NetConfig> LoadNetConfig(const std::string& path, NetPhase phase) {
  SIEVE_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path, "net file"));
  return ParseNetConfig(text, phase, path);
}

StatusOr<graph::Network> LoadNetFile(const std::string& path, NetPhase phase) {
  SIEVE_ASSIGN_OR_RETURN(NetConfig config, LoadNetConfig(path, phase));
  return std::move(config.network);
}

}  // namespace sieve::runtime
