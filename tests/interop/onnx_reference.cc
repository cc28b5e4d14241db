// onnx_reference: Sieve's own inference for tests/interop/test_onnx.py, which compares onnxruntime's
// output of the exported model with it. For a net file it builds the Trainer of the TRAIN network, sets
// every parameter to uniform random values (so biases and the LSTM forget block are not left at their
// constant starts, where a misplaced block would go unnoticed), saves them as a weights file, draws a
// batch of random inputs (floats in [-1, 1], or token ids below the first Embedding's vocabulary), runs
// the evaluation graph (graph::Lower without dropout) on the CPU executor and writes
//
//   DIR/weights.sieve   the weights (Trainer::SaveWeights), for `sieve export --weights`
//   DIR/input.npy       the batch [B, ...] (float32 or int32)
//   DIR/prob.npy        the first SoftmaxCrossEntropy layer's probabilities [rows, C] (float32)
//
// Usage: onnx_reference --model NET --out DIR [--batch B] [--seed S]. Not a user tool; not the exporter.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "graph/lower.h"
#include "runtime/config/net_config.h"
#include "runtime/executor.h"
#include "runtime/trainer.h"

namespace sieve {
namespace {

// A .npy file (format 1.0) of `data`, C order.
Status WriteNpy(const std::string& path, const Tensor& data) {
  const char* descr = data.dtype() == DType::kInt32 ? "<i4" : "<f4";
  std::string shape;
  for (int i = 0; i < data.rank(); ++i) shape += std::to_string(data.dim(i)) + ", ";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  const size_t unpadded = 10 + header.size() + 1;  // magic, version, length, header, newline
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const uint16_t length = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&length), 2);
  out << header;
  out.write(static_cast<const char*>(data.raw_data()), static_cast<std::streamsize>(data.nbytes()));
  SIEVE_ENSURE(out.good(), StatusCode::kInternal, "cannot write " << path);
  return Status::Ok();
}

Status Run(const std::string& model_path, const std::string& dir, int64_t batch, uint32_t seed) {
  SIEVE_ASSIGN_OR_RETURN(const graph::Network network, runtime::LoadNetFile(model_path, runtime::NetPhase::kTrain));
  SIEVE_ASSIGN_OR_RETURN(auto trainer, runtime::Trainer::Create(network, {.batch_size = batch, .seed = seed}));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  for (const runtime::ParamEntry& p : trainer->params()) {
    float* values = p.param.data<float>();
    for (int64_t i = 0; i < p.param.numel(); ++i) values[i] = uniform(rng);
  }
  SIEVE_RETURN_IF_ERROR(trainer->SaveWeights(dir + "/weights.sieve"));

  SIEVE_ASSIGN_OR_RETURN(const graph::LoweredNet net, graph::Lower(network, {.batch = batch, .training = false}));
  SIEVE_ENSURE(!net.losses.empty(), StatusCode::kInvalidArgument, model_path << " has no SoftmaxCrossEntropy layer");
  const graph::ValueId prob = net.graph.node(net.losses.front().node).outputs.front();
  SIEVE_ASSIGN_OR_RETURN(auto exec, runtime::Executor::Create(net.graph, Device::CPU(), {.keep_alive = {prob}}));
  for (const graph::ParamDecl& p : net.params) {
    SIEVE_ASSIGN_OR_RETURN(const Tensor param, trainer->params().param(p.name));
    SIEVE_RETURN_IF_ERROR(exec->Bind(p.value, param));
  }
  std::set<graph::ValueId> states;  // LSTM initial states: zero
  for (const auto& [final_state, initial] : net.state_carry) states.insert(initial);
  int64_t vocab = 0;
  for (const graph::Layer& layer : network.layers())
    if (const auto* embedding = std::get_if<graph::EmbeddingSpec>(&layer.spec); embedding && vocab == 0)
      vocab = embedding->vocab;
  std::vector<Tensor> buffers;
  for (graph::ValueId id : net.inputs) {
    const graph::Value& v = net.graph.value(id);
    Tensor buffer = Tensor::Zeros(v.planned, v.dtype);
    if (!states.count(id)) {
      if (v.dtype == DType::kInt32) {
        std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab) - 1);
        SIEVE_ENSURE(vocab > 0, StatusCode::kInvalidArgument, model_path << ": int32 input without an Embedding");
        for (int64_t i = 0; i < buffer.numel(); ++i) buffer.data<int32_t>()[i] = token(rng);
      } else {
        std::uniform_real_distribution<float> feature(-1.0f, 1.0f);
        for (int64_t i = 0; i < buffer.numel(); ++i) buffer.data<float>()[i] = feature(rng);
      }
      SIEVE_RETURN_IF_ERROR(WriteNpy(dir + "/input.npy", buffer));
    }
    SIEVE_RETURN_IF_ERROR(exec->Bind(id, buffer));
    buffers.push_back(buffer);
  }
  for (graph::ValueId id : net.labels) {
    buffers.push_back(Tensor::Zeros(net.graph.value(id).planned, DType::kInt32));
    SIEVE_RETURN_IF_ERROR(exec->Bind(id, buffers.back()));
  }
  SIEVE_RETURN_IF_ERROR(exec->Run({}));
  SIEVE_ASSIGN_OR_RETURN(const Tensor out, exec->Get(prob));
  return WriteNpy(dir + "/prob.npy", out.Clone(Device::CPU()));
}

}  // namespace
}  // namespace sieve

int main(int argc, char** argv) {
  std::string model, dir;
  int64_t batch = 4;
  uint32_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") model = value;
    else if (flag == "--out") dir = value;
    else if (flag == "--batch") batch = std::stoll(value);
    else if (flag == "--seed") seed = static_cast<uint32_t>(std::stoul(value));
  }
  if (model.empty() || dir.empty() || argc % 2 == 0) {
    std::fprintf(stderr, "usage: onnx_reference --model NET --out DIR [--batch B] [--seed S]\n");
    return 2;
  }
  const sieve::Status st = sieve::Run(model, dir, batch, seed);
  if (!st.ok()) {
    std::fprintf(stderr, "onnx_reference: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
