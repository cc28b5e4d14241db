#!/usr/bin/python3
"""Speedup against dropout rate from a `sieve-bench zoo` JSON report: one panel per zoo model, per dropout kind
the measured speedup of the training step over the model's reference (solid; the Bernoulli variant at the same p
for MLP and LSTM models, the dense variant for CNNs) and the ideal speedup, the FLOP ratio of the timed steps
(dashed, same colour), with the papers' headline range as a band where one applies (Song et al.: 1.18-2.16x for
MLPs and 1.24-1.85x for LSTMs at p = 0.3-0.7, on a GPU; SPEC.md). PyTorch's step with nn.Dropout at the same p is
marked too, on the same scale: Sieve's reference step over PyTorch's (a cross below a measured point: that Sieve
variant is faster than PyTorch).

The speedups are the report's own (ratios of mean step times; docs/benchmarks/zoo.md). It runs nothing; it needs
the standard library and Debian's matplotlib (tools/setup_plots.sh), hence /usr/bin/python3 (another python3 on
the PATH may lack it).

Usage: /usr/bin/python3 tools/plots/speedup.py ZOO.json [--out PNG]
  PNG defaults to ZOO.json without ".json" plus "_speedup.png".
"""
import argparse
import collections
import json
import math
import sys

# The papers' headline speedups over p = 0.3-0.7, by the architecture the report gives each model.
PAPER_BANDS = {"mlp": (1.18, 2.16), "lstm": (1.24, 1.85)}
PAPER_RATES = (0.3, 0.7)
COLORS = {"row": "C3", "tile": "C2", "sensitivity": "C1", "random_channel": "C0", "bernoulli": "0.4", "dense": "0.4"}


def text(row, key):
    return row.get(key, "")


def load(path):
    """{model: {"architecture", "reference", "series": {kind: [(p, speedup, ideal)]}, "pytorch": [(p, ratio)]}}."""
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"{path}: cannot read the report ({e})")
    if report.get("verb") != "zoo":
        sys.exit(f"{path}: not a `sieve-bench zoo` report (verb {report.get('verb')!r})")
    models = collections.OrderedDict()
    for row in report.get("rows", []):
        framework, model = text(row, "framework"), text(row, "model")
        if not model or text(row, "role") == "thread_probe":
            continue
        entry = models.setdefault(model, {"architecture": "", "reference": "", "series": collections.defaultdict(list),
                                          "reference_ms": {}, "pytorch_ms": {}})
        p = row.get("dropout", 0.0)
        if framework == "sieve":
            entry["architecture"] = text(row, "architecture")
            entry["reference"] = text(row, "reference")
            variant = text(row, "variant")
            if variant == entry["reference"]:
                entry["reference_ms"][p] = row.get("mean_ms")
            elif p > 0 and row.get("speedup") is not None:
                entry["series"][variant].append((p, row["speedup"], row.get("ideal")))
        elif framework == "pytorch" and p > 0:
            entry["pytorch_ms"][p] = row.get("mean_ms")
    if not models:
        sys.exit(f"{path}: no model rows")
    return report, models


def plot(report, models, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        sys.exit(f"matplotlib is missing ({e}); install it with: bash tools/setup_plots.sh")

    columns = min(3, len(models))
    rows = math.ceil(len(models) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 5.4 * rows), squeeze=False)
    for ax, (name, entry) in zip(axes.flat, models.items()):
        band = PAPER_BANDS.get(entry["architecture"])
        tops = [1.0] + ([band[1]] if band else [])
        if band is not None:
            ax.fill_between(PAPER_RATES, [band[0]] * 2, [band[1]] * 2, color="0.6", alpha=0.25, linewidth=0,
                            label=f"papers: {band[0]:.2f}-{band[1]:.2f}x at p = 0.3-0.7 (GPU)")
        ax.axhline(1.0, color="0.3", linewidth=0.8)
        for kind, points in sorted(entry["series"].items()):
            points.sort()
            color = COLORS.get(kind.split(" ")[0], None)
            ps = [p for p, _, _ in points]
            ax.plot(ps, [s for _, s, _ in points], "o-", color=color, label=f"{kind}: measured")
            ideal = [(p, i) for p, _, i in points if i is not None]
            tops += [s for _, s, _ in points] + [i for _, i in ideal]
            if ideal:
                ax.plot([p for p, _ in ideal], [i for _, i in ideal], "s--", color=color, alpha=0.7,
                        label=f"{kind}: ideal (FLOP ratio)")
        torch = sorted((p, entry["reference_ms"][p] / ms) for p, ms in entry["pytorch_ms"].items()
                       if ms and entry["reference_ms"].get(p))
        if entry["architecture"] == "cnn":
            # The CNN reference is dense, one time for every p.
            dense = next(iter(entry["reference_ms"].values()), None)
            torch = sorted((p, dense / ms) for p, ms in entry["pytorch_ms"].items() if ms and dense)
        tops += [r for _, r in torch]
        if torch:
            ax.plot([p for p, _ in torch], [r for _, r in torch], "x", color="k", markersize=8,
                    label="PyTorch with dropout, on this scale")
        ax.set_title(f"{name} ({entry['architecture']}; over {entry['reference'] or 'no reference'})", fontsize=9)
        ax.set_xlabel("dropout rate p")
        ax.set_xlim(0.2, 0.8)
        ax.set_ylim(0, 1.1 * max(tops))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # below: it hides no point
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    axes[0][0].set_ylabel("training-step speedup (x)")
    machine = report.get("machine", {})
    fig.suptitle(f"sieve-bench zoo: speedup of the training step against dropout rate "
                 f"({machine.get('device', '?')}, {machine.get('cpu', '?')}, {machine.get('date', '?')})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", help="the JSON of sieve-bench zoo --json")
    parser.add_argument("--out", help="the PNG to write (default: REPORT without .json + _speedup.png)")
    args = parser.parse_args()
    out = args.out or (args.report[:-5] if args.report.endswith(".json") else args.report) + "_speedup.png"
    report, models = load(args.report)
    plot(report, models, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
