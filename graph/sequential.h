// The C++ builder for the common case: a chain of layers from one input to a classification loss.
//
//   graph::Sequential net({784});
//   net.Add(FullyConnected(2048)).Add(ReLU()).Add(Dropout(0.5))
//      .Add(FullyConnected(2048)).Add(ReLU()).Add(Dropout(0.5))
//      .Add(FullyConnected(10));
//   StatusOr<Network> network = net.Build();   // + "loss" (softmax cross-entropy) and "accuracy"
//
// Layers are named after their kind and position ("fc1", "relu1", "drop1", "conv1", "pool1",
// "lstm1"), which is also how their parameters are named ("fc1.w", "fc1.b"). Each layer reads the
// previous layer's output blob. The factories below return the layer specs of graph/layers.h with
// the most common settings as arguments; set any other field on the returned spec.
//
// This file only builds a Network (layers.h). Lowering, training and evaluation are elsewhere
// (lower.h, runtime/trainer.h); a network with branches is built with Network::Add directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/layers.h"

namespace sieve::graph {

// Layer factories.
FullyConnectedSpec FullyConnected(int64_t units, bool bias = true);
Conv2dSpec Conv2d(int64_t filters, int64_t kernel, int64_t stride = 1, int64_t pad = 0);
PoolSpec MaxPool(int64_t kernel, int64_t stride);
PoolSpec AvgPool(int64_t kernel, int64_t stride);
ActivationSpec ReLU();
ActivationSpec Tanh();
ActivationSpec Sigmoid();
/// Bernoulli (element-wise) dropout.
DropoutSpec Dropout(double rate);
/// Row-based approximate random dropout over the units of the previous layer (SPEC 2.2).
DropoutSpec RowDropout(double rate);
/// Tile-based approximate random dropout over the weight of the next FullyConnected layer (SPEC 2.3).
DropoutSpec TileDropout(double rate, int64_t tile_rows = 32, int64_t tile_cols = 32);
/// Sensitivity-aware feature-map dropout of the next Conv2d's input maps (SPEC 3): ceil(rate * Cin)
/// maps dropped per iteration, less sensitive maps more often (temperature: see DropoutSpec), dense
/// for the first `warmup_iterations` iterations.
DropoutSpec SensitivityDropout(double rate, double temperature = 1.0, int64_t warmup_iterations = 0);
/// Random feature-map dropout of the next Conv2d's input maps: ceil(rate * Cin) uniformly chosen
/// maps per iteration (the ablation baseline of SensitivityDropout).
DropoutSpec RandomChannelDropout(double rate, int64_t warmup_iterations = 0);
LstmSpec Lstm(int64_t units, int layers = 1, bool return_sequences = false);
EmbeddingSpec Embedding(int64_t vocab, int64_t dim);
FlattenSpec Flatten();
ReshapeSpec Reshape(Shape per_sample_shape);

/// A chain of layers from one input blob "data" (per-sample shape `input_shape`, dtype `dtype`)
/// with int32 labels "label" (per-sample shape `label_shape`: {} for one class per sample).
class Sequential {
 public:
  explicit Sequential(Shape input_shape, DType dtype = DType::kFloat32, Shape label_shape = {});

  /// Appends a layer reading the previous layer's output; `name` overrides the automatic one.
  Sequential& Add(LayerSpec spec, std::string name = "");

  /// The network: the input and label layers, the added layers, then a softmax cross-entropy
  /// loss "loss" and an accuracy metric "accuracy" on the last layer's output. Errors: no layer
  /// added, or a spec that is an input, label, loss or metric layer (those are added here), or a
  /// duplicate name.
  StatusOr<Network> Build() const;

 private:
  struct Entry {
    std::string name;
    LayerSpec spec;
  };
  Shape input_shape_;
  DType dtype_;
  Shape label_shape_;
  std::vector<Entry> layers_;
};

}  // namespace sieve::graph
