#!/usr/bin/env python3
"""Reads the TensorBoard event file of a short `sieve train` run with the real `tensorboard` package and checks
every scalar tag, step and value against the run's metrics.jsonl, and the sensitivity histograms.

The run trains a small convolutional net with a sensitivity (channel) dropout site and a row dropout site on
Fashion-MNIST for 20 iterations. Registered with ctest as `interop_tensorboard` (tests/interop/tests.cmake); the
interpreter is the venv of tools/setup_python.sh. Usage: test_tensorboard.py --sieve PATH/TO/sieve
Not here: the writer's framing and CRCs byte by byte (tests/runtime/tensorboard_writer_test.cc).
"""
import argparse
import glob
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing import event_accumulator, event_file_loader

NET = """
name: "tensorboard_probe"
layer { name: "data"  type: "Input"  top: "data"
        input_param { shape { dim: 1 dim: 28 dim: 28 } batch_size: 32 source { fashion_mnist { } } } }
layer { name: "label"  type: "Label"  top: "label" }
layer { name: "conv1"  type: "Convolution"  bottom: "data"  top: "conv1"  convolution_param { num_output: 4 kernel_size: 5 } }
layer { name: "relu1"  type: "ReLU"  bottom: "conv1"  top: "relu1" }
layer { name: "pool1"  type: "Pooling"  bottom: "relu1"  top: "pool1"  pooling_param { kernel_size: 2 stride: 2 } }
layer { name: "cdrop"  type: "Dropout"  bottom: "pool1"  top: "cdrop"
        dropout_param { dropout_ratio: 0.25  kind: SENSITIVITY  temperature: 1 } }
layer { name: "conv2"  type: "Convolution"  bottom: "cdrop"  top: "conv2"  convolution_param { num_output: 8 kernel_size: 5 } }
layer { name: "relu2"  type: "ReLU"  bottom: "conv2"  top: "relu2" }
layer { name: "pool2"  type: "Pooling"  bottom: "relu2"  top: "pool2"  pooling_param { kernel_size: 2 stride: 2 } }
layer { name: "flat"  type: "Flatten"  bottom: "pool2"  top: "flat" }
layer { name: "fc1"  type: "FullyConnected"  bottom: "flat"  top: "fc1"  fully_connected_param { num_output: 32 } }
layer { name: "relu3"  type: "ReLU"  bottom: "fc1"  top: "relu3" }
layer { name: "rdrop"  type: "Dropout"  bottom: "relu3"  top: "rdrop"  dropout_param { dropout_ratio: 0.5  kind: ROW } }
layer { name: "fc2"  type: "FullyConnected"  bottom: "rdrop"  top: "fc2"  fully_connected_param { num_output: 10 } }
layer { name: "loss"  type: "SoftmaxWithLoss"  bottom: "fc2"  bottom: "label" }
layer { name: "accuracy"  type: "Accuracy"  bottom: "fc2"  bottom: "label" }
"""

SOLVER = """
net: "net.prototxt"
max_iter: 20
test_interval: 10
test_iter: 2
test_initialization: true
display: 10
type: "SGD"
base_lr: 0.01
lr_policy: "fixed"
momentum: 0.9
snapshot: 0
snapshot_prefix: "snapshots/probe"
random_seed: 3
solver_mode: CPU
"""

# How closely a TensorBoard scalar (a float32) must match the metrics file, by the digits the file keeps
# (runtime/train_log.h): loss and accuracy (17 digits) and lr (a float written with 9) give the float exactly;
# the 9-digit drop rates to float precision; the 6-digit timings and ratios to 1e-5.
EXACT = {"loss", "accuracy", "lr"}
SIX_DIGITS = {"step_ms", "flop_ratio", "examples_per_s"}
NOT_PLOTTED = {"iteration", "phase", "wall_s"}


def float32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def expected_scalars(metrics_lines):
    """{tag: [(step, value, field)]} from metrics.jsonl, in file order."""
    scalars = {}
    for record in metrics_lines:
        for field, value in record.items():
            if field in NOT_PLOTTED:
                continue
            if isinstance(value, dict):
                for site, rate in value.items():
                    tag = f"{record['phase']}/{field}/{site}"
                    scalars.setdefault(tag, []).append((record["iteration"], rate, field))
            else:
                scalars.setdefault(f"{record['phase']}/{field}", []).append((record["iteration"], value, field))
    return scalars


def matches(field, expected, actual):
    if field in EXACT:
        return actual == float32(expected)
    if field in SIX_DIGITS:
        return math.isclose(actual, expected, rel_tol=1e-5)
    return math.isclose(actual, expected, rel_tol=2e-7, abs_tol=1e-9)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sieve", required=True, help="the sieve binary")
    args = parser.parse_args()
    failures = []

    def check(condition, message):
        if not condition:
            failures.append(message)

    with tempfile.TemporaryDirectory(prefix="sieve_tensorboard_") as folder:
        with open(os.path.join(folder, "net.prototxt"), "w") as f:
            f.write(NET)
        with open(os.path.join(folder, "solver.prototxt"), "w") as f:
            f.write(SOLVER)
        run = subprocess.run([args.sieve, "train", "--solver", os.path.join(folder, "solver.prototxt")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0:
            print(run.stdout)
            print(f"FAILED: sieve train exited {run.returncode}")
            return 1
        run_folders = glob.glob(os.path.join(folder, "snapshots", "probe_logs", "*"))
        assert len(run_folders) == 1, f"expected one run folder, found {run_folders}"
        event_files = glob.glob(os.path.join(run_folders[0], "events.out.tfevents.*"))
        assert len(event_files) == 1, f"expected one event file in {run_folders[0]}, found {event_files}"
        with open(os.path.join(run_folders[0], "metrics.jsonl")) as f:
            metrics = [json.loads(line) for line in f]

        # The raw events: the file_version event first, then summaries at non-decreasing wall times.
        events = list(event_file_loader.EventFileLoader(event_files[0]).Load())
        check(events[0].file_version == "brain.Event:2", f"first event is not the file version: {events[0]}")
        check(all(a.wall_time <= b.wall_time for a, b in zip(events, events[1:])), "wall times go back")

        accumulator = event_accumulator.EventAccumulator(
            event_files[0], size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0})
        accumulator.Reload()
        tags = accumulator.Tags()

        expected = expected_scalars(metrics)
        check(set(tags["scalars"]) == set(expected),
              f"scalar tags differ: only in TensorBoard {sorted(set(tags['scalars']) - set(expected))}, "
              f"only in metrics.jsonl {sorted(set(expected) - set(tags['scalars']))}")
        for tag in sorted(set(expected) & set(tags["scalars"])):
            read = [(event.step, event.value) for event in accumulator.Scalars(tag)]
            want = expected[tag]
            check([step for step, _ in read] == [step for step, _, _ in want],
                  f"{tag}: steps {[s for s, _ in read]} in TensorBoard, {[s for s, _, _ in want]} in metrics.jsonl")
            for (step, actual), (_, value, field) in zip(read, want):
                check(matches(field, value, actual), f"{tag} at step {step}: {actual} in TensorBoard, {value} in metrics")

        # The numbers mean what they say: the row site drops half its units, the channel site 1 of 4 maps.
        for tag, values in expected.items():
            if tag.startswith("train/drop_rate/rdrop"):
                check(all(v == 0.5 for _, v, _ in values), f"{tag}: {values}")
            if tag.startswith("train/drop_rate/cdrop"):
                check(all(v == 0.25 for _, v, _ in values), f"{tag}: {values}")
        check(any(t.startswith("train/drop_rate/rdrop") for t in expected), "no drop rate of the row site")
        check(any(t.startswith("train/drop_rate/cdrop") for t in expected), "no drop rate of the channel site")
        check(len([m for m in metrics if m["phase"] == "train"]) == 20, "expected 20 training lines")
        check([m["iteration"] for m in metrics if m["phase"] == "test"] == [0, 10, 20], "expected tests at 0, 10, 20")

        # Histograms: the channel site's sensitivity estimates (4 input maps) with every display line.
        histogram_tags = tags["histograms"]
        check(len(histogram_tags) == 1 and histogram_tags[0].startswith("sensitivity/cdrop"),
              f"histogram tags {histogram_tags}")
        for tag in histogram_tags:
            histograms = accumulator.Histograms(tag)
            check([h.step for h in histograms] == [10, 20], f"{tag}: steps {[h.step for h in histograms]}")
            for h in histograms:
                value = h.histogram_value
                check(value.num == 4 and sum(value.bucket) == 4, f"{tag} at {h.step}: {value}")
                check(0 <= value.min <= value.max and value.max > 0, f"{tag} at {h.step}: min {value.min} max {value.max}")

        scalar_count = sum(len(v) for v in expected.values())
        print(f"{len(tags['scalars'])} scalar tags, {scalar_count} values, {len(histogram_tags)} histogram tags "
              f"read by tensorboard from {os.path.basename(event_files[0])}")

    for failure in failures:
        print("FAILED:", failure)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
