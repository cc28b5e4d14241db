// `sieve export`: writes the inference graph of a net file with trained weights (a snapshot or a weights
// file) as an ONNX model (runtime/export/onnx_export.h), for onnxruntime and other ONNX runtimes.
// Not here: what the export maps each layer to (onnx_export.h), running the model (docs/deployment.md).
#include <cstdio>

#include "runtime/checkpoint.h"
#include "runtime/export/onnx_export.h"
#include "tools/sieve/cli.h"
#include "tools/sieve/verbs.h"

namespace sieve::cli {
namespace {

int RunExport(const Verb& verb, const Args& args) {
  runtime::OnnxExportOptions options;
  if (args.Has("opset")) {
    StatusOr<int64_t> opset = args.GetInt("opset", runtime::kOnnxMinOpset, runtime::kOnnxMaxOpset);
    if (!opset.ok()) return UsageError(verb, UserMessage(opset.status()));
    options.opset = *opset;
  }
  StatusOr<Model> model = ReadModel(args.Get("model"), DefaultSolver(), Device::CPU());
  if (!model.ok()) return Fail(verb, model.status());
  if (Status st = CreateTrainer(*model); !st.ok()) return Fail(verb, st);
  if (Status st = runtime::LoadWeightsFromAny(*model->trainer, args.Get("weights")); !st.ok()) return Fail(verb, st);
  options.graph_name = model->train_net.name;
  const std::string& path = args.Get("onnx");
  if (Status st = runtime::ExportOnnxFile(model->train_net.network, model->trainer->params(), path, options); !st.ok())
    return Fail(verb, st);
  std::printf("wrote %s: the inference graph of %s with the weights of %s (ONNX opset %lld, dynamic batch)\n",
              path.c_str(), args.Get("model").c_str(), args.Get("weights").c_str(),
              static_cast<long long>(options.opset));
  return kExitOk;
}

}  // namespace

const Verb kExportVerb{
    .name = "export",
    .summary = "write a net with trained weights as an ONNX model (inference graph)",
    .usage = "sieve export --model FILE --weights FILE --onnx FILE [--opset N]",
    .description =
        "Exports the TRAIN network of the net file without its dropout, label and accuracy layers: each\n"
        "SoftmaxWithLoss layer becomes a Softmax whose probabilities are a graph output, named after the\n"
        "layer's top blob (or LAYER.prob); each Input layer is a graph input named after its blob, with a\n"
        "dynamic batch axis. Layers ONNX cannot express give an error naming them. docs/deployment.md shows\n"
        "how to run the file with onnxruntime.",
    .flags = {{"model", "FILE", "the net file (protobuf text; docs/model_files.md)"},
              {"weights", "FILE", "a snapshot (.sievestate) or weights file (Trainer::SaveWeights)"},
              {"onnx", "FILE", "the ONNX model to write (replaced atomically)"},
              {"opset", "N", "the ONNX opset, 13 to 21 (default 17)"}},
    .required = {"model", "weights", "onnx"},
    .run = RunExport};

}  // namespace sieve::cli
