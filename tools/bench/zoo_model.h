// What `sieve-bench zoo` (zoo_bench.cc) derives from a zoo net without timing anything: the net at another
// dropout rate, the dropout kind a net file uses, the PyTorch peer's description of the same model (peer.py's
// "layers" model: a JSON layer list read from the loaded network, so the peer's model is the zoo's, layer for
// layer), the peer's optimizer from the solver, and a synthetic batch of the shape and dtype the net reads
// when its data is absent.
// What it is not: a net loader (runtime/config/net_config.h loads the files) or a general graph-to-PyTorch
// converter: the peer's model is a chain, which every zoo net is; anything else is refused, naming the layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "framework/status.h"
#include "graph/layers.h"
#include "runtime/data/batch_source.h"
#include "runtime/solver/solver.h"

namespace sieve::bench {

/// `network` with the rate of every Dropout layer set to `rate`; every other setting stays the file's.
graph::Network WithDropoutRate(const graph::Network& network, double rate);

/// `network` with the dense warm-up of its channel dropout sites (DropoutSpec::warmup_iterations) removed, so
/// that a benchmark's few steps time the dropout the file trains with after its warm-up.
graph::Network WithoutDropoutWarmup(const graph::Network& network);

/// The dropout of a net: the one kind every Dropout layer has (none: a dense net), their count, and the
/// largest warm-up of a channel site (0 without one).
struct NetDropout {
  std::optional<graph::DropoutSpec::Kind> kind;  ///< nullopt: no Dropout layer
  int sites = 0;
  double rate = 0;  ///< the first Dropout layer's rate (0 without one)
  /// Row and tile sites: whether the first one draws one fixed pattern (PatternFamily::kFixed) rather than
  /// from the searched distribution.
  bool fixed_family = false;
  int64_t warmup_iterations = 0;

  /// "dense" without dropout, else DropoutKindName(kind).
  std::string KindName() const;
};

/// The dropout of `network`. INVALID_ARGUMENT when its Dropout layers have different kinds (naming two).
StatusOr<NetDropout> DescribeDropout(const graph::Network& network);

/// peer.py's "layers" model of `network`, a training network that is a chain: one Input, one Label, then
/// layers each reading the blob the previous one wrote, ending in one SoftmaxCrossEntropy that reads the chain
/// and the label (Accuracy layers are left out: no gradient flows through them):
///   {"kind": "layers", "input": {"shape": [...], "dtype": "float32"|"int32"}, "label": {"shape": [...]},
///    "carry_state": bool, "layers": [{"name": ..., "type": "fc"|"conv"|"maxpool"|"avgpool"|"relu"|"tanh"|
///    "sigmoid"|"dropout"|"lstm"|"embedding"|"flatten"|"reshape"|"softmax_loss", ...}, ...]}
/// A Dropout layer becomes {"type": "dropout", "p": rate, "channel": IsChannelDropout(kind)}: nn.Dropout2d for
/// the channel kinds, nn.Dropout for the others (what the row and tile patterns approximate). `carry_state`:
/// the LSTMs carry their state from one batch to the next, as a language model's trainer does. Errors
/// (INVALID_ARGUMENT, naming the layer): a layer outside the chain, a second loss, no loss.
StatusOr<std::string> PeerLayersJson(const graph::Network& network, bool carry_state);

/// peer.py's optimizer for a solver: {"kind": "sgd"|"nesterov"|"adam", "lr": base_lr, "momentum",
/// "weight_decay", "clip_gradients" (< 0: none), and Adam's "beta2" and "eps"}.
std::string PeerOptimizerJson(const runtime::SolverConfig& solver);

/// One batch of `batch` rows of what `network` reads, drawn from `seed`: features of the Input's shape and
/// dtype (float32 values from N(0, 1); int32 token ids uniform over the vocabulary of the Embedding layer that
/// reads the input) and int32 labels of the Label's shape, uniform over the classes of the FullyConnected layer
/// whose output the loss reads. INVALID_ARGUMENT when the net lacks what that needs (naming what is missing).
StatusOr<runtime::Batch> SyntheticBatch(const graph::Network& network, int64_t batch, uint64_t seed);

}  // namespace sieve::bench
