#!/usr/bin/env python3
"""Exports one tiny model of every zoo family with `sieve export` and runs it with the real `onnxruntime`,
comparing with Sieve's own inference of the same weights and inputs; `onnx.checker` (full check, with shape
inference) must pass.

Families: an MLP (dropout of two kinds removed), an LSTM classifier (two stacked layers, last step), an
Embedding + LSTM language model (every step projected with a Caffe axis-2 FullyConnected, int32 tokens) and a
CNN (convolutions, max and average pooling in ceil mode, a channel dropout site, Flatten). For each,
tests/interop/onnx_reference.cc sets random weights, saves them and writes Sieve's probabilities for a random
batch; the exported model must give them within the family's tolerance (max absolute difference), on the full
batch and on a smaller one (the batch axis is dynamic).

Registered with ctest as `interop_onnx` (tests/interop/tests.cmake); the interpreter is the venv of
tools/setup_python.sh. Usage: test_onnx.py --sieve PATH/TO/sieve --reference PATH/TO/onnx_reference
Not here: the exporter's structure and errors (tests/runtime/onnx_export_test.cc).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime

DATA = 'layer { name: "label"  type: "Label"  top: "label" %s}\n'
LOSS = ('layer { name: "loss"  type: "SoftmaxWithLoss"  bottom: "%s"  bottom: "label" }\n'
        'layer { name: "accuracy"  type: "Accuracy"  bottom: "%s"  bottom: "label" }\n')

# name -> (net file, tolerance on the max absolute difference of the probabilities)
MODELS = {
    "mlp": ("""
name: "mlp"
layer { name: "data"  type: "Input"  top: "data"  input_param { shape { dim: 20 } batch_size: 8 } }
""" + DATA % "" + """
layer { name: "fc1"  type: "FullyConnected"  bottom: "data"  top: "fc1"
        fully_connected_param { num_output: 16 } }
layer { name: "relu1"  type: "ReLU"  bottom: "fc1"  top: "fc1" }
layer { name: "drop1"  type: "Dropout"  bottom: "fc1"  top: "drop1"
        dropout_param { dropout_ratio: 0.5  kind: ROW } }
layer { name: "fc2"  type: "FullyConnected"  bottom: "drop1"  top: "fc2"
        fully_connected_param { num_output: 12 } }
layer { name: "tanh2"  type: "TanH"  bottom: "fc2"  top: "tanh2" }
layer { name: "drop2"  type: "Dropout"  bottom: "tanh2"  top: "drop2"  dropout_param { dropout_ratio: 0.3 } }
layer { name: "fc3"  type: "FullyConnected"  bottom: "drop2"  top: "fc3"
        fully_connected_param { num_output: 10 } }
layer { name: "sig3"  type: "Sigmoid"  bottom: "fc3"  top: "sig3" }
layer { name: "fc4"  type: "FullyConnected"  bottom: "sig3"  top: "fc4"
        fully_connected_param { num_output: 5 } }
""" + LOSS % ("fc4", "fc4"), 1e-5),
    "lstm_classifier": ("""
name: "lstm_classifier"
layer { name: "data"  type: "Input"  top: "data"  input_param { shape { dim: 7 dim: 5 } batch_size: 6 } }
""" + DATA % "" + """
layer { name: "lstm"  type: "LSTM"  bottom: "data"  top: "lstm"  lstm_param { num_output: 8 num_layers: 2 } }
layer { name: "drop"  type: "Dropout"  bottom: "lstm"  top: "drop"  dropout_param { dropout_ratio: 0.5  kind: ROW } }
layer { name: "fc"  type: "FullyConnected"  bottom: "drop"  top: "fc"  fully_connected_param { num_output: 4 } }
""" + LOSS % ("fc", "fc"), 1e-5),
    "lstm_lm": ("""
name: "lstm_lm"
layer { name: "data"  type: "Input"  top: "data"  input_param { shape { dim: 9 } dtype: INT32 batch_size: 5 } }
""" + DATA % 'label_param { shape { dim: 9 } } ' + """
layer { name: "embed"  type: "Embedding"  bottom: "data"  top: "embed"
        embedding_param { input_dim: 13 num_output: 6 } }
layer { name: "drop0"  type: "Dropout"  bottom: "embed"  top: "drop0"  dropout_param { dropout_ratio: 0.2 } }
layer { name: "lstm"  type: "LSTM"  bottom: "drop0"  top: "lstm"
        lstm_param { num_output: 10 num_layers: 2 return_sequences: true } }
layer { name: "drop1"  type: "Dropout"  bottom: "lstm"  top: "drop1"  dropout_param { dropout_ratio: 0.5  kind: ROW } }
layer { name: "decoder"  type: "FullyConnected"  bottom: "drop1"  top: "decoder"
        fully_connected_param { num_output: 13 axis: 2 } }
""" + LOSS % ("decoder", "decoder"), 1e-5),
    "cnn": ("""
name: "cnn"
layer { name: "data"  type: "Input"  top: "data"  input_param { shape { dim: 2 dim: 12 dim: 12 } batch_size: 4 } }
""" + DATA % "" + """
layer { name: "conv1"  type: "Convolution"  bottom: "data"  top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1"  type: "ReLU"  bottom: "conv1"  top: "relu1" }
layer { name: "pool1"  type: "Pooling"  bottom: "relu1"  top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "cdrop"  type: "Dropout"  bottom: "pool1"  top: "cdrop"
        dropout_param { dropout_ratio: 0.25  kind: SENSITIVITY } }
layer { name: "conv2"  type: "Convolution"  bottom: "cdrop"  top: "conv2"
        convolution_param { num_output: 5 kernel_size: 2 stride: 1 } }
layer { name: "tanh2"  type: "TanH"  bottom: "conv2"  top: "tanh2" }
layer { name: "pool2"  type: "Pooling"  bottom: "tanh2"  top: "pool2"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 ceil_mode: true } }
layer { name: "flat"  type: "Flatten"  bottom: "pool2"  top: "flat" }
layer { name: "fc1"  type: "FullyConnected"  bottom: "flat"  top: "fc1"  fully_connected_param { num_output: 7 } }
""" + LOSS % ("fc1", "fc1"), 1e-5),
}


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("failed (%d): %s\n%s%s" % (result.returncode, " ".join(cmd), result.stdout, result.stderr))
    return result.stdout


def check_model(name, net, tolerance, sieve, reference, workdir):
    folder = os.path.join(workdir, name)
    os.makedirs(folder)
    net_path = os.path.join(folder, "net.prototxt")
    with open(net_path, "w") as f:
        f.write(net)
    run([reference, "--model", net_path, "--out", folder, "--seed", "11"])
    onnx_path = os.path.join(folder, name + ".onnx")
    run([sieve, "export", "--model", net_path, "--weights", os.path.join(folder, "weights.sieve"),
         "--onnx", onnx_path, "--opset", "17"])

    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import] == [17], model.opset_import
    ops = sorted({node.op_type for node in model.graph.node})
    assert "Dropout" not in ops, ops

    inputs = np.load(os.path.join(folder, "input.npy"))
    want = np.load(os.path.join(folder, "prob.npy"))  # [rows, C], rows = batch x the logits' other axes
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    (feed,) = session.get_inputs()
    (fetch,) = session.get_outputs()
    assert feed.name == "data" and fetch.name == "loss.prob", (feed.name, fetch.name)
    assert feed.shape[0] == "batch" and fetch.shape[0] == "batch", (feed.shape, fetch.shape)
    (got,) = session.run(None, {"data": inputs})
    assert got.shape[0] == inputs.shape[0], (got.shape, inputs.shape)
    got = got.reshape(want.shape)
    diff = float(np.max(np.abs(got - want)))
    # A smaller batch through the dynamic batch axis gives the same rows.
    (part,) = session.run(None, {"data": inputs[:2]})
    part_diff = float(np.max(np.abs(part.reshape(-1, want.shape[1]) - want[: part.size // want.shape[1]])))
    ok = diff <= tolerance and part_diff <= tolerance and np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
    print("%-16s %-50s batch %d: max |onnxruntime - sieve| = %.2e, batch 2: %.2e (tolerance %.0e) %s"
          % (name, ",".join(ops), inputs.shape[0], diff, part_diff, tolerance, "ok" if ok else "FAILED"))
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sieve", required=True, help="the sieve binary")
    parser.add_argument("--reference", required=True, help="the onnx_reference binary")
    args = parser.parse_args()
    print("onnx %s, onnxruntime %s" % (onnx.__version__, onnxruntime.__version__))
    with tempfile.TemporaryDirectory(prefix="sieve_onnx_") as workdir:
        results = [check_model(name, net, tol, args.sieve, args.reference, workdir)
                   for name, (net, tol) in MODELS.items()]
    if not all(results):
        sys.exit("some exported models differ from Sieve's inference")
    print("all %d exported models match Sieve's inference" % len(results))


if __name__ == "__main__":
    main()
