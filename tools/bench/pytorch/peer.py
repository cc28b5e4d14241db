#!/usr/bin/env python3
"""PyTorch benchmark peer of `sieve-bench` (SPEC section 5): a child process that builds a PyTorch model
and times its training steps when the C++ side tells it to, so both frameworks run interleaved on the
same machine in one invocation (tools/bench/pytorch_peer.{h,cc} is the other end).

What it is not: a test oracle or a dependency of the build or tests. It is only ever started by
`sieve-bench`; if torch is missing it says so and exits.

Protocol: line-delimited JSON. Every request is one object with a "cmd"; every reply is one object with
"ok" (true, or false with "error"). On start, before any request, the peer writes a hello line:
  {"ok": true, "hello": "sieve-pytorch-peer", "protocol": 1, "torch": ..., "python": ...,
   "default_threads": N, "interop_threads": N, "blas": ..., "cpu_capability": ...}
or {"ok": false, "error": "..."} (torch not importable) and exits with status 3.

Requests:
  {"cmd": "build", "model": {"kind": "mlp", "sizes": [784, 2048, 2048, 10], "dropout": 0.0},
   "batch": 128, "optimizer": {"kind": "sgd", "lr": 0.01, "momentum": 0.9}, "threads": 0, "seed": 1}
      builds the model, its optimizer and one fixed random batch; "threads" > 0 calls
      torch.set_num_threads(threads), 0 restores the default the process started with.
      Reply: {"ok": true, "parameters": count, "threads": torch.get_num_threads(), "flops": ...}
  {"cmd": "step", "n": 10, "threads": 2}
      runs n training steps on the fixed batch ("threads", optional, first calls torch.set_num_threads,
      so thread settings can be compared in alternating blocks on one model). Reply: {"ok": true, "ms": [per-step ms], "loss": last}
      Each time is time.perf_counter() around the whole step: zero_grad, forward, loss, backward,
      optimizer.step.
  {"cmd": "quit"}
      replies {"ok": true} and exits 0.

Models are builders in MODELS (kind -> function(spec, batch, generator) -> Workload): "mlp" and "cnn"
(a chain of conv / relu / maxpool / flatten / fc layers, see build_cnn); later verbs add theirs there.
"""

import collections
import json
import platform
import sys
import time

PROTOCOL = 1


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
# applied as loss_fn(module(inputs), labels), and the dense forward FLOPs of one batch.
Workload = collections.namedtuple("Workload", ["module", "inputs", "labels", "loss_fn", "flops"])


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


MODELS = {"mlp": build_mlp, "cnn": build_cnn}


def make_optimizer(spec, params):
    kind = spec.get("kind", "sgd")
    if kind != "sgd":
        raise ValueError("unknown optimizer kind %r (known: sgd)" % kind)
    return torch.optim.SGD(params, lr=float(spec.get("lr", 0.01)), momentum=float(spec.get("momentum", 0.9)))


class Peer:
    def __init__(self):
        self.default_threads = torch.get_num_threads()
        self.model = None

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
        }

    def build(self, request):
        model_spec = request["model"]
        kind = model_spec.get("kind")
        if kind not in MODELS:
            raise ValueError("unknown model kind %r (known: %s)" % (kind, ", ".join(sorted(MODELS))))
        batch = int(request["batch"])
        if batch < 1:
            raise ValueError("batch must be positive, got %d" % batch)
        threads = int(request.get("threads", 0))
        torch.set_num_threads(threads if threads > 0 else self.default_threads)
        generator = torch.Generator().manual_seed(int(request.get("seed", 1)))
        torch.manual_seed(int(request.get("seed", 1)))
        work = MODELS[kind](model_spec, batch, generator)
        work.module.train()
        self.model = work.module
        self.inputs, self.labels, self.loss_fn = work.inputs, work.labels, work.loss_fn
        self.optimizer = make_optimizer(request.get("optimizer", {}), self.model.parameters())
        return {
            "ok": True,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "threads": torch.get_num_threads(),
            "flops": work.flops,
        }

    def step(self, request):
        if self.model is None:
            raise ValueError("step before build")
        n = int(request.get("n", 1))
        if n < 1:
            raise ValueError("n must be positive, got %d" % n)
        if "threads" in request:
            threads = int(request["threads"])
            torch.set_num_threads(threads if threads > 0 else self.default_threads)
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss_fn
        inputs, labels = self.inputs, self.labels
        times = []
        loss = None
        for _ in range(n):
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), labels)
            loss.backward()
            optimizer.step()
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
