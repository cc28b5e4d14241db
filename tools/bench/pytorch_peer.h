// The C++ end of the PyTorch benchmark peer (SPEC section 5): starts `python3 tools/bench/pytorch/peer.py`
// as a child process and talks to it in line-delimited JSON (the protocol is documented at the top of
// peer.py), so a verb can time PyTorch's training step in blocks interleaved with Sieve's own; and the probe
// of PyTorch's thread settings that verbs run first, so they compare against PyTorch's best setting.
// What it is not: a binding to libtorch, or anything the build or the tests need. When python3 or torch
// is missing, PyTorchPeer::Start says why and the verb runs its Sieve rows alone.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/status.h"
#include "tools/bench/bench_util.h"

namespace sieve::bench {

/// Where the peer comes from. Verbs fill it from their flags with ParsePeerFlags.
struct PeerLaunch {
  bool disabled = false;             ///< --no-pytorch: do not start the peer at all
  std::string script;                ///< --pytorch PATH, else $SIEVE_PYTORCH_PEER, else found (FindPeerScript)
  std::vector<std::string> pythons;  ///< --python PATH, else $SIEVE_PYTORCH_PYTHON, else python3, /usr/bin/python3
};

/// Takes the peer flags (--pytorch PATH, --python PATH, --no-pytorch) out of `args` (a verb's
/// Options::args) and leaves the rest there. Fails on a flag without its value.
StatusOr<PeerLaunch> ParsePeerFlags(std::vector<std::string>& args);

/// The peer script next to the executable (<exe dir>/pytorch/peer.py, copied there by the build), else in
/// the source tree the executable was built from (tools/bench/pytorch/peer.py); empty when neither exists.
std::string FindPeerScript();

/// What the peer reported when it started.
struct PeerInfo {
  std::string torch_version;  ///< torch.__version__
  std::string python;         ///< interpreter path and version
  std::string blas;           ///< the BLAS libraries loaded in the peer process
  int default_threads = 0;    ///< torch.get_num_threads() before anyone set it
  bool cuda = false;          ///< torch.cuda.is_available()
};

/// The "build" request: a model (a JSON object whose "kind" peer.py's MODELS knows) with its optimizer.
struct PeerBuild {
  std::string model_json;  ///< e.g. MlpModelJson({784, 2048, 2048, 10}, 0.0)
  int64_t batch = 0;
  double lr = 0.01;  ///< SGD with momentum, unless optimizer_json is given
  double momentum = 0.9;
  /// peer.py's whole "optimizer" object (e.g. PeerOptimizerJson of a solver, zoo_model.h); empty: SGD with
  /// `lr` and `momentum`.
  std::string optimizer_json;
  int threads = 0;  ///< torch.set_num_threads(threads); 0: the peer's default
  uint64_t seed = 1;
  /// The peer's slot for the model: building into a slot replaces that slot's model only, so a verb can keep
  /// several models and time them in alternating blocks (Step's `id`).
  std::string id;
  std::string device = "cpu";  ///< "cpu" or "cuda[:N]" (the peer then needs a CUDA build of torch)
};

/// The peer's answer to "build".
struct PeerModel {
  int64_t parameters = 0;  ///< sum of numel over model.parameters()
  int threads = 0;         ///< torch.get_num_threads() after the build
  double forward_flops = 0;
  /// The "layers" model's parameter count as Sieve declares the same layers (peer.py build_layers), to
  /// compare with the Sieve trainer's ParamArena::param_elements().
  std::optional<int64_t> sieve_parameters;
};

/// {"kind": "mlp", "sizes": [...], "dropout": p}: Linear+ReLU(+Dropout(p) when p > 0) per hidden layer.
std::string MlpModelJson(const std::vector<int64_t>& sizes, double dropout);

/// Per-step times of one "step" request.
struct PeerSteps {
  std::vector<double> ms;  ///< time.perf_counter() around each whole step
  double last_loss = 0;
};

/// A running peer process. Destroying it asks the peer to quit and reaps it (terminating it when it
/// does not exit within a few seconds).
class PyTorchPeer {
 public:
  /// Starts the peer with the first interpreter of `launch.pythons` that can import torch.
  /// The error (kUnavailable) reads "PyTorch peer unavailable: <why>; install with bash
  /// tools/bench/setup_pytorch.sh", naming each interpreter tried and why it failed (with
  /// launch.disabled: "PyTorch peer not started (--no-pytorch)").
  static StatusOr<std::unique_ptr<PyTorchPeer>> Start(const PeerLaunch& launch);

  ~PyTorchPeer();
  PyTorchPeer(const PyTorchPeer&) = delete;
  PyTorchPeer& operator=(const PyTorchPeer&) = delete;

  const PeerInfo& info() const { return info_; }

  /// Builds the model, its optimizer and one fixed random batch in the peer (replacing any earlier one).
  StatusOr<PeerModel> Build(const PeerBuild& build);
  /// Runs `n` training steps of the model built into slot `id`. With `threads`, first calls
  /// torch.set_num_threads (0: the peer's default), so settings can alternate block by block on one model.
  StatusOr<PeerSteps> Step(int n, std::optional<int> threads = std::nullopt, const std::string& id = "");

 private:
  PyTorchPeer(pid_t pid, int to_child, int from_child) : pid_(pid), to_child_(to_child), from_child_(from_child) {}
  // Sends one request line and reads the reply line; a reply with "ok": false becomes an error.
  StatusOr<std::string> Request(const std::string& json);
  StatusOr<std::string> ReadLine(int timeout_ms);
  void Stop();

  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  std::string pending_;  // bytes read past the last line
  PeerInfo info_;
};

/// One torch thread setting of a probe: what is passed to the peer (0: its default) and how it reads.
struct ThreadSetting {
  int threads;   ///< passed to the peer: 0 for its default
  int resolved;  ///< the torch thread count that means
  std::string label;
};

/// The settings a verb probes: torch threads 1, 2 and the core count, and the peer's default (which is one of
/// them when it equals it).
std::vector<ThreadSetting> ThreadSettings(int default_threads);

/// Times the settings on the model in slot `id` in alternating blocks: `rounds` rounds, each running every
/// setting for one untimed step (the thread pool's resize) and `block` timed steps, with a `settle` pause
/// after each block. The timings come in the order of `settings`; the verb keeps the fastest setting, so
/// ratios are against PyTorch at its best, not a handicapped PyTorch.
StatusOr<std::vector<Timing>> ProbeThreads(PyTorchPeer& peer, const std::vector<ThreadSetting>& settings, int rounds,
                                           int block, std::chrono::milliseconds settle, const std::string& id = "");

}  // namespace sieve::bench
