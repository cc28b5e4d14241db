#!/usr/bin/env python3
"""PyTorch benchmark peer of `sieve-bench` (SPEC section 5): a child process that builds PyTorch models
and times their training steps when the C++ side tells it to, so both frameworks run interleaved on the
same machine in one invocation (tools/bench/pytorch_peer.{h,cc} is the other end).

What it is not: a test oracle or a dependency of the build or tests. It is only ever started by
`sieve-bench`; if torch is missing it says so and exits.

Protocol: line-delimited JSON. Every request is one object with a "cmd"; every reply is one object with
"ok" (true, or false with "error"). On start, before any request, the peer writes a hello line:
  {"ok": true, "hello": "sieve-pytorch-peer", "protocol": 2, "torch": ..., "python": ...,
   "default_threads": N, "interop_threads": N, "blas": ..., "cpu_capability": ..., "cuda": bool}
or {"ok": false, "error": "..."} (torch not importable) and exits with status 3.

Requests:
  {"cmd": "build", "model": {"kind": "mlp", "sizes": [784, 2048, 2048, 10], "dropout": 0.0},
   "batch": 128, "optimizer": {"kind": "sgd", "lr": 0.01, "momentum": 0.9}, "threads": 0, "seed": 1,
   "id": "", "device": "cpu"}
      builds the model, its optimizer and one fixed random batch into the slot "id" (optional, default "";
      building into a slot replaces only that slot's model, so a verb can keep several models and time them
      in alternating blocks) on "device" (optional: "cpu", default, or "cuda[:N]"; on a GPU TF32 is off, as
      in Sieve's cuBLAS path); "threads" > 0 calls torch.set_num_threads(threads), 0 restores the default
      the process started with. The optimizer (make_optimizer): "kind" sgd, nesterov or adam, "lr",
      "momentum" (Adam's beta1), "weight_decay", "clip_gradients" (> 0: the global gradient norm is clipped
      to it before each update, as Caffe's solver does), Adam's "beta2" and "eps".
      Reply: {"ok": true, "parameters": count, "threads": torch.get_num_threads(), "flops": ...,
              "device": ...} and, for the "layers" model, "sieve_parameters": the count as Sieve declares the
              same layers (an LSTM has one bias per gate, PyTorch two), so the C++ side can check the model.
  {"cmd": "step", "n": 10, "threads": 2, "id": ""}
      runs n training steps of slot "id" (optional, default "") on its fixed batch ("threads", optional,
      first calls torch.set_num_threads, so thread settings can be compared in alternating blocks on one
      model). Reply: {"ok": true, "ms": [per-step ms], "loss": last}
      Each time is time.perf_counter() around the whole step: zero_grad, forward, loss, backward, clipping,
      optimizer.step (on a GPU, from a synchronized device to the step's end on the device).
  {"cmd": "quit"}
      replies {"ok": true} and exits 0.

Models are builders in MODELS (kind -> function(spec, batch, generator) -> Workload): "mlp", "cnn" (a chain
of conv / relu / maxpool / flatten / fc layers, see build_cnn) and "layers" (the chain of a Sieve net's
layers as `sieve-bench zoo` describes it from the loaded zoo file, see build_layers).
"""

import collections
import json
import math
import platform
import sys
import time

PROTOCOL = 2


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


try:
    import torch
    from torch import nn
except Exception as e:  # noqa: BLE001 - any import failure means "no peer", with its reason
    reply({"ok": False, "error": "cannot import torch in %s (%s): %s: %s" %
           (sys.executable, platform.python_version(), type(e).__name__, e)})
    sys.exit(3)


# What a model builder returns: the module, one fixed batch (inputs, labels), the loss function
# applied as loss_fn(module(inputs), labels), the dense forward FLOPs of one batch, and (where the
# builder knows Sieve's layers) the parameter count as Sieve declares them.
Workload = collections.namedtuple("Workload", ["module", "inputs", "labels", "loss_fn", "flops", "sieve_parameters"],
                                  defaults=(None,))


def build_mlp(spec, batch, generator):
    """784-2048-2048-10 style MLP: Linear + ReLU (+ Dropout(p) when p > 0) per hidden layer, then the
    output Linear; softmax cross-entropy on int64 class labels. flops: 2*B*K*N summed over layers."""
    sizes = [int(s) for s in spec["sizes"]]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError("mlp sizes must be at least two positive widths, got %r" % (sizes,))
    p = float(spec.get("dropout", 0.0))
    if not 0.0 <= p < 1.0:
        raise ValueError("mlp dropout must be in [0, 1), got %r" % p)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
            if p > 0:
                layers.append(nn.Dropout(p))
    model = nn.Sequential(*layers)
    inputs = torch.randn(batch, sizes[0], generator=generator)
    labels = torch.randint(0, sizes[-1], (batch,), generator=generator)
    flops = sum(2 * batch * sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1))
    return Workload(model, inputs, labels, nn.CrossEntropyLoss(), flops)


def build_cnn(spec, batch, generator):
    """A chain CNN over NCHW images: spec["input"] = [C, H, W] and spec["layers"] a list of
    {"type": "conv", "filters", "kernel", "stride", "pad"}, {"type": "relu"},
    {"type": "maxpool", "kernel", "stride"}, {"type": "flatten"}, {"type": "fc", "units"}; softmax
    cross-entropy on the last layer's classes. flops: 2*B*Cout*Cin*k*k*Ho*Wo per conv + 2*B*K*N per fc."""
    shape = [int(d) for d in spec["input"]]
    if len(shape) != 3 or any(d < 1 for d in shape):
        raise ValueError("cnn input must be [C, H, W], got %r" % (spec["input"],))
    layers, flops, classes = [], 0, None
    for layer in spec["layers"]:
        kind = layer["type"]
        if kind == "conv":
            c, h, w = shape
            f, k, st, pad = (int(layer[key]) for key in ("filters", "kernel", "stride", "pad"))
            layers.append(nn.Conv2d(c, f, k, stride=st, padding=pad))
            shape = [f, (h + 2 * pad - k) // st + 1, (w + 2 * pad - k) // st + 1]
            flops += 2 * batch * f * c * k * k * shape[1] * shape[2]
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "maxpool":
            k, st = int(layer["kernel"]), int(layer["stride"])
            layers.append(nn.MaxPool2d(k, st))
            shape = [shape[0], (shape[1] - k) // st + 1, (shape[2] - k) // st + 1]
        elif kind == "flatten":
            layers.append(nn.Flatten())
            shape = [shape[0] * shape[1] * shape[2]]
        elif kind == "fc":
            units = int(layer["units"])
            layers.append(nn.Linear(shape[0], units))
            flops += 2 * batch * shape[0] * units
            shape, classes = [units], units
        else:
            raise ValueError("unknown cnn layer type %r (known: conv, relu, maxpool, flatten, fc)" % (kind,))
    if classes is None or len(shape) != 1:
        raise ValueError("a cnn must end with an fc layer")
    inputs = torch.randn(batch, *[int(d) for d in spec["input"]], generator=generator)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    return Workload(nn.Sequential(*layers), inputs, labels, nn.CrossEntropyLoss(), flops)


class Projection(nn.Module):
    """Sieve's FullyConnected with Caffe's axis: the per-sample axes from axis - 1 on are flattened into the
    features, the axes before them index rows (axis 2 on [B, T, H]: one projection per time step)."""

    def __init__(self, start_dim, features, units, bias):
        super().__init__()
        self.start_dim = start_dim
        self.linear = nn.Linear(features, units, bias=bias)

    def forward(self, x):
        if x.dim() > self.start_dim + 1:
            x = x.flatten(self.start_dim)
        return self.linear(x)


class Lstm(nn.Module):
    """Sieve's LSTM layer over batch-first [B, T, X]: every step's output, or the last step's; with
    carry_state the final (h, c) of one batch, detached, start the next, as a language model carries them."""

    def __init__(self, inputs, units, layers, return_sequences, carry_state):
        super().__init__()
        self.lstm = nn.LSTM(inputs, units, num_layers=layers, batch_first=True)
        self.layers, self.return_sequences, self.carry_state = layers, return_sequences, carry_state
        self.state = None

    def forward(self, x):
        out, state = self.lstm(x, self.state)
        if self.carry_state:
            self.state = tuple(s.detach() for s in state)
        return out if self.return_sequences else out[:, -1]

    def sieve_parameters(self):
        """Sieve's LSTM has one bias per gate row, PyTorch's two (bias_ih and bias_hh)."""
        return sum(p.numel() for p in self.parameters()) - sum(
            getattr(self.lstm, "bias_hh_l%d" % layer).numel() for layer in range(self.layers))


class Reshape(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


def pooled(size, kernel, stride, pad, ceil_mode):
    """Output extent of a pooling window over `size`, as Caffe and PyTorch compute it."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def build_layers(spec, batch, generator):
    """The chain of a Sieve net, as `sieve-bench zoo` describes it (tools/bench/zoo_model.h PeerLayersJson):
    spec["input"] = {"shape": per-sample shape, "dtype": "float32" | "int32"}, spec["label"] = {"shape": ...},
    spec["carry_state"], and spec["layers"], each {"name", "type", ...}: fc (units, axis, bias), conv (filters,
    kernel, stride, pad, bias), maxpool / avgpool (kernel, stride, pad, ceil_mode), relu / tanh / sigmoid,
    dropout (p, channel: nn.Dropout2d, else nn.Dropout), lstm (units, layers, return_sequences), embedding
    (vocab, dim), flatten, reshape (shape), softmax_loss (ignore_label), the last. Every layer's output shape
    is checked on the way, and the loss's logits against the label's shape. flops: the forward MatMul FLOPs
    of fc, conv and LSTM layers."""
    shape = [int(d) for d in spec["input"]["shape"]]
    dtype = spec["input"].get("dtype", "float32")
    label_shape = [int(d) for d in spec["label"]["shape"]]
    carry_state = bool(spec.get("carry_state", False))
    if dtype not in ("float32", "int32"):
        raise ValueError("input dtype must be float32 or int32, got %r" % (dtype,))
    modules, flops, vocab, classes, ignore = [], 0, None, None, -100
    layers = spec["layers"]
    for index, layer in enumerate(layers):
        kind, name = layer["type"], layer.get("name", "#%d" % index)
        where = "layer %r (%s, input per sample %s)" % (name, kind, shape)
        if kind == "softmax_loss":
            if index + 1 != len(layers):
                raise ValueError("%s must be the last layer" % where)
            if shape[:-1] != label_shape:
                raise ValueError("%s: the logits %s do not fit labels of shape %s" % (where, shape, label_shape))
            classes = shape[-1]
            ignore = int(layer.get("ignore_label", -100))
        elif kind == "fc":
            axis, units = int(layer.get("axis", 1)), int(layer["units"])
            if not 1 <= axis <= len(shape):
                raise ValueError("%s: axis %d is outside the input's axes 1..%d" % (where, axis, len(shape)))
            features = math.prod(shape[axis - 1:])
            modules.append(Projection(axis, features, units, bool(layer.get("bias", True))))
            flops += 2 * batch * math.prod(shape[:axis - 1]) * features * units
            shape = shape[:axis - 1] + [units]
        elif kind == "conv":
            if len(shape) != 3:
                raise ValueError("%s: a convolution reads [C, H, W]" % where)
            c, h, w = shape
            f, k, st, pad = (int(layer[key]) for key in ("filters", "kernel", "stride", "pad"))
            modules.append(nn.Conv2d(c, f, k, stride=st, padding=pad, bias=bool(layer.get("bias", True))))
            shape = [f, (h + 2 * pad - k) // st + 1, (w + 2 * pad - k) // st + 1]
            flops += 2 * batch * f * c * k * k * shape[1] * shape[2]
        elif kind in ("maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError("%s: pooling reads [C, H, W]" % where)
            k, st, pad = (int(layer[key]) for key in ("kernel", "stride", "pad"))
            ceil_mode = bool(layer.get("ceil_mode", False))
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            modules.append(pool(k, st, padding=pad, ceil_mode=ceil_mode))
            shape = [shape[0]] + [pooled(d, k, st, pad, ceil_mode) for d in shape[1:]]
        elif kind in ("relu", "tanh", "sigmoid"):
            modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[kind]())
        elif kind == "dropout":
            p = float(layer["p"])
            if not 0.0 <= p < 1.0:
                raise ValueError("%s: p must be in [0, 1), got %r" % (where, p))
            if layer.get("channel", False):
                if len(shape) != 3:
                    raise ValueError("%s: channel dropout (nn.Dropout2d) reads [C, H, W]" % where)
                modules.append(nn.Dropout2d(p))
            else:
                modules.append(nn.Dropout(p))
        elif kind == "lstm":
            if len(shape) != 2:
                raise ValueError("%s: an LSTM reads [T, X]" % where)
            steps, inputs = shape
            units, count = int(layer["units"]), int(layer.get("layers", 1))
            sequences = bool(layer.get("return_sequences", False))
            modules.append(Lstm(inputs, units, count, sequences, carry_state))
            for stacked in range(count):
                flops += 2 * batch * steps * ((inputs if stacked == 0 else units) + units) * 4 * units
            shape = [steps, units] if sequences else [units]
        elif kind == "embedding":
            if index != 0 or dtype != "int32":
                raise ValueError("%s: an embedding reads the int32 input, as the first layer" % where)
            vocab, dim = int(layer["vocab"]), int(layer["dim"])
            modules.append(nn.Embedding(vocab, dim))
            shape = shape + [dim]
        elif kind == "flatten":
            shape = [math.prod(shape)]
            modules.append(nn.Flatten())
        elif kind == "reshape":
            target = [int(d) for d in layer["shape"]]
            if target.count(-1) == 1:
                known = math.prod([d for d in target if d != -1])
                target[target.index(-1)] = math.prod(shape) // known if known else 0
            if math.prod(target) != math.prod(shape):
                raise ValueError("%s: cannot reshape to %s" % (where, layer["shape"]))
            modules.append(Reshape(target))
            shape = target
        else:
            raise ValueError("%s: unknown layer type (known: fc, conv, maxpool, avgpool, relu, tanh, sigmoid, "
                             "dropout, lstm, embedding, flatten, reshape, softmax_loss)" % where)
    if classes is None:
        raise ValueError("the layer list must end with a softmax_loss layer")
    if dtype == "int32" and vocab is None:
        raise ValueError("an int32 input needs an embedding as the first layer")
    model = nn.Sequential(*modules)
    if dtype == "int32":
        inputs = torch.randint(0, vocab, (batch, *spec["input"]["shape"]), generator=generator)
    else:
        inputs = torch.randn(batch, *spec["input"]["shape"], generator=generator)
    labels = torch.randint(0, classes, (batch, *label_shape), generator=generator)

    def loss_fn(logits, target):
        return nn.functional.cross_entropy(logits.reshape(-1, classes), target.reshape(-1), ignore_index=ignore)

    sieve_parameters = sum(m.sieve_parameters() if isinstance(m, Lstm) else sum(p.numel() for p in m.parameters())
                           for m in modules)
    return Workload(model, inputs, labels, loss_fn, flops, sieve_parameters)


MODELS = {"mlp": build_mlp, "cnn": build_cnn, "layers": build_layers}


def make_optimizer(spec, params):
    """The optimizer of a solver and its gradient clipping norm (0: none)."""
    kind = spec.get("kind", "sgd")
    lr, momentum = float(spec.get("lr", 0.01)), float(spec.get("momentum", 0.9))
    weight_decay = float(spec.get("weight_decay", 0.0))
    clip = float(spec.get("clip_gradients", -1.0))
    if kind in ("sgd", "nesterov"):
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                                    nesterov=kind == "nesterov")
    elif kind == "adam":
        optimizer = torch.optim.Adam(params, lr=lr, betas=(momentum, float(spec.get("beta2", 0.999))),
                                     eps=float(spec.get("eps", 1e-8)), weight_decay=weight_decay)
    else:
        raise ValueError("unknown optimizer kind %r (known: sgd, nesterov, adam)" % kind)
    return optimizer, max(clip, 0.0)


# One built model: what a step runs.
Slot = collections.namedtuple("Slot", ["model", "inputs", "labels", "loss_fn", "optimizer", "clip", "device"])


class Peer:
    def __init__(self):
        self.default_threads = torch.get_num_threads()
        self.slots = {}

    def hello(self):
        return {
            "ok": True,
            "hello": "sieve-pytorch-peer",
            "protocol": PROTOCOL,
            "torch": torch.__version__,
            "python": "%s %s" % (sys.executable, platform.python_version()),
            "default_threads": self.default_threads,
            "interop_threads": torch.get_num_interop_threads(),
            "blas": blas_info(),
            "cpu_capability": cpu_capability(),
            "cuda": torch.cuda.is_available(),
        }

    def build(self, request):
        model_spec = request["model"]
        kind = model_spec.get("kind")
        if kind not in MODELS:
            raise ValueError("unknown model kind %r (known: %s)" % (kind, ", ".join(sorted(MODELS))))
        batch = int(request["batch"])
        if batch < 1:
            raise ValueError("batch must be positive, got %d" % batch)
        device = torch.device(request.get("device", "cpu"))
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError("device %s asked for, but torch %s sees no usable CUDA GPU" % (device,
                                                                                               torch.__version__))
            # Sieve's cuBLAS path computes in FP32 (docs/gpu.md); PyTorch does too with TF32 off.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        elif device.type != "cpu":
            raise ValueError("device must be cpu or cuda[:N], got %r" % (request.get("device"),))
        threads = int(request.get("threads", 0))
        torch.set_num_threads(threads if threads > 0 else self.default_threads)
        generator = torch.Generator().manual_seed(int(request.get("seed", 1)))
        torch.manual_seed(int(request.get("seed", 1)))
        slot_id = str(request.get("id", ""))
        self.slots.pop(slot_id, None)  # the model it replaces is freed before the new one is built
        work = MODELS[kind](model_spec, batch, generator)
        model = work.module.to(device)
        model.train()
        optimizer, clip = make_optimizer(request.get("optimizer", {}), model.parameters())
        self.slots[slot_id] = Slot(model, work.inputs.to(device), work.labels.to(device), work.loss_fn, optimizer,
                                   clip, device)
        built = {
            "ok": True,
            "parameters": sum(p.numel() for p in model.parameters()),
            "threads": torch.get_num_threads(),
            "flops": work.flops,
            "device": str(device),
        }
        if work.sieve_parameters is not None:
            built["sieve_parameters"] = work.sieve_parameters
        return built

    def step(self, request):
        slot_id = str(request.get("id", ""))
        if slot_id not in self.slots:
            raise ValueError("step before build (no model in slot %r)" % slot_id)
        n = int(request.get("n", 1))
        if n < 1:
            raise ValueError("n must be positive, got %d" % n)
        if "threads" in request:
            threads = int(request["threads"])
            torch.set_num_threads(threads if threads > 0 else self.default_threads)
        slot = self.slots[slot_id]
        model, optimizer, loss_fn, clip = slot.model, slot.optimizer, slot.loss_fn, slot.clip
        inputs, labels = slot.inputs, slot.labels
        cuda = slot.device.type == "cuda"
        times = []
        loss = None
        for _ in range(n):
            if cuda:
                torch.cuda.synchronize(slot.device)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), labels)
            loss.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            if cuda:
                torch.cuda.synchronize(slot.device)
            times.append((time.perf_counter() - start) * 1e3)
        return {"ok": True, "ms": times, "loss": float(loss.item())}


def blas_info():
    """The BLAS library torch's process has loaded (Debian's torch calls the system libblas.so.3,
    whichever alternative is selected), read from the process's memory map."""
    try:
        with open("/proc/self/maps") as maps:
            libs = sorted({line.split()[-1] for line in maps
                           if "blas" in line.rsplit("/", 1)[-1].lower() and line.split()[-1].startswith("/")})
        return ", ".join(libs) if libs else "unknown"
    except OSError:
        return "unknown"


def cpu_capability():
    """The vector ISA of PyTorch's own kernels ("AVX2", "AVX512", ...), as torch.__config__ reports it."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    peer = Peer()
    reply(peer.hello())
    handlers = {"build": peer.build, "step": peer.step}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            cmd = request.get("cmd")
            if cmd == "quit":
                reply({"ok": True})
                return 0
            if cmd not in handlers:
                raise ValueError("unknown cmd %r (known: build, step, quit)" % (cmd,))
            reply(handlers[cmd](request))
        except Exception as e:  # noqa: BLE001 - every failure goes back to the C++ side as a reply
            reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the C++ side went away; nobody is left to tell
        sys.exit(1)
