// ONNX export: the inference graph of a graph::Network with its trained weights, as a ModelProto of
// standard ONNX operators (the schema of Debian's libonnx-dev, compiled by protoc in proto/sources.cmake).
//
//   Input            a graph input named after its blob, [batch, ...shape] (float32, or int32 token ids),
//                    "batch" a dynamic dimension
//   FullyConnected   Gemm (transB = 1); a rank > 2 input is flattened by Flatten (axis 1), or with a Caffe
//                    axis a > 1 reshaped to [-1, K] and the result back to [batch, ...lead, units]
//   Conv2d           Conv; the [filters, Cin*k*k] weight becomes [filters, Cin, k, k] ((c, ki, kj) order)
//   Pool             MaxPool / AveragePool (count_include_pad = 1: Caffe's divisor), ceil_mode as given
//   Activation       Relu / Tanh / Sigmoid
//   Dropout          removed (the evaluation graph passes its input through)
//   Lstm             per layer Transpose to time-major, LSTM, Squeeze and Transpose back; the gate blocks of
//                    W, U and b reordered from Sieve's (i, f, g, o) to ONNX's (i, o, f, c), b as ONNX's Wb
//                    with a zero Rb; zero initial state (a language model's carried state is not exported)
//   Embedding        Gather (axis 0) of the table
//   Flatten/Reshape  Flatten (axis 1) / Reshape to [0, ...per-sample shape]
//   SoftmaxCrossEntropy  Softmax over the last axis of the logits: a graph output [batch, ..., C] named after
//                    the layer's output blob, or "<layer>.prob" when it has none
//   Label, Accuracy  dropped (training and evaluation only)
//
// What cannot be exported is an error naming the layer: a Pool in ceil mode whose last window starts in
// the padding (Sieve drops that window, as PyTorch does; ONNX's ceil-mode size formula keeps it, so
// runtimes disagree on the output size). A network without a SoftmaxCrossEntropy layer has nothing to
// output. Every layer kind is handled (a new kind fails to compile until it is).
//
// Not here: running ONNX models (the Python test does, with onnxruntime), the CLI verb
// (tools/sieve/export.cc), training state beyond the weights.
#pragma once

#include <cstdint>
#include <string>

#include "framework/status.h"
#include "graph/layers.h"
#include "runtime/params/param_arena.h"

namespace sieve::runtime {

/// The opsets the exporter writes: 13 (Squeeze's axes as an input) to 21.
inline constexpr int64_t kOnnxMinOpset = 13;
inline constexpr int64_t kOnnxMaxOpset = 21;

struct OnnxExportOptions {
  int64_t opset = 17;      ///< the default ("ai.onnx") domain's opset, in [kOnnxMinOpset, kOnnxMaxOpset]
  std::string graph_name;  ///< GraphProto.name; "" gives "sieve"
};

/// The serialized onnx.ModelProto of `network`'s inference graph with the weights in `params` (any
/// device; copied to the host). Errors (INVALID_ARGUMENT unless said): what graph::Lower reports for the
/// network (naming the layer), a layer that cannot be exported (UNIMPLEMENTED, naming it), a network
/// without a SoftmaxCrossEntropy layer, an opset outside the range, a parameter missing from `params`
/// (NOT_FOUND, the nearest name) or of another shape (naming it and both shapes).
StatusOr<std::string> ExportOnnx(const graph::Network& network, const ParamArena& params,
                                 const OnnxExportOptions& options = {});

/// ExportOnnx written to `path` atomically (framework/file_io.h); errors name the path.
Status ExportOnnxFile(const graph::Network& network, const ParamArena& params, const std::string& path,
                      const OnnxExportOptions& options = {});

}  // namespace sieve::runtime
