#!/usr/bin/python3
"""Tables and plots of the ARD accuracy study (docs/accuracy/ard_mlp.md) from its JSONL results.

Reads the lines tools/experiments/ard_accuracy writes (one per run and epoch), keeps the last line of
each (run, epoch) (a run that was restarted writes its epochs again) and only complete runs, and writes
  - a Markdown file with one table per dropout rate p (final and best-epoch test accuracy, mean and
    sample standard deviation over seeds) and a summary table of the final test accuracy;
  - <prefix>_curves.png: test accuracy against epoch, mean over seeds, one line per method, one panel per p;
  - <prefix>_final.png: final test accuracy (mean, with the seed standard deviation) against p per method.
The ablation variants of searched row ARD (row-nominal, row-kt, row-d4) and the searches with the per-batch
rate-spread term (row-v2, row-kt-v2, tile-v2) join the tables and plots where present.
It does not train anything; it needs the standard library and Debian's matplotlib (tools/setup_plots.sh), hence
/usr/bin/python3 (another python3 on the PATH may lack it).

Usage: /usr/bin/python3 tools/plots/ard_accuracy.py RESULTS.jsonl [--out-prefix PREFIX]
  PREFIX defaults to RESULTS without ".jsonl": PREFIX_tables.md, PREFIX_curves.png, PREFIX_final.png.
"""
import argparse
import collections
import json
import math
import re
import statistics
import sys

METHODS = ["bernoulli", "row", "row-fixed", "tile"]
# searched row ARD variants, shown where the file has them: the ablation, then the rate-spread search
ABLATION = ["row-nominal", "row-kt", "row-d4", "row-v2", "row-kt-v2", "tile-v2"]
LABELS = {
    "none": "no dropout",
    "bernoulli": "Bernoulli",
    "row": "row ARD, searched",
    "row-fixed": "row ARD, fixed dp",
    "tile": "tile ARD (32x32), searched",
    "row-nominal": "row ARD, searched, nominal scaling",
    "row-kt": "row ARD, searched (k, T) patterns",
    "row-d4": "row ARD, searched, dp <= 4",
    "row-v2": "row ARD, searched v2 (rate spread)",
    "row-kt-v2": "row ARD, searched v2 (rate spread), (k, T)",
    "tile-v2": "tile ARD (32x32), searched v2 (rate spread)",
}
NON_FINITE = re.compile(r"(:)-?(?:nan|inf)\b", re.IGNORECASE)
COLORS = {"none": "0.4", "bernoulli": "C0", "row": "C3", "row-fixed": "C1", "tile": "C2", "row-nominal": "C4",
          "row-kt": "C5", "row-d4": "C6", "row-v2": "C8", "row-kt-v2": "C9",
          "tile-v2": "olive"}


def load_runs(path):
    """{(method, p, seed, hidden, epochs, batch, base_lr): [lines of epochs 1..E]}, complete runs only."""
    by_epoch = {}
    with open(path) as f:
        for number, text in enumerate(f, 1):
            text = text.strip()
            if not text:
                continue
            # Lines written before the program wrote null for a non-finite loss hold C's "-nan".
            text = NON_FINITE.sub(r"\1null", text)
            try:
                line = json.loads(text)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{number}: not JSON ({e})")
            key = (line["method"], line["p"], line["seed"], line["hidden"], line["epochs"], line["batch"],
                   line["base_lr"])
            by_epoch.setdefault(key, {})[line["epoch"]] = line  # the last line of an epoch wins
    runs, incomplete = {}, []
    for key, epochs in by_epoch.items():
        wanted = key[4]
        if sorted(epochs) == list(range(1, wanted + 1)):
            runs[key] = [epochs[e] for e in range(1, wanted + 1)]
        else:
            incomplete.append(key)
    for key in sorted(incomplete):
        print(f"note: {key[0]} p={key[1]} seed={key[2]} is incomplete ({len(by_epoch[key])} of {key[4]} epochs); "
              "left out", file=sys.stderr)
    return runs


def mean_std(values):
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values, scale=100.0, digits=2):
    """Mean ± std of the scaled values; a single value alone (no spread to show)."""
    m, s = mean_std([v * scale for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def summarise(runs):
    """{(method, p): stats} with per-seed final and best test accuracy, curves and timing."""
    groups = collections.defaultdict(list)
    for key, lines in runs.items():
        groups[(key[0], key[1])].append((key[2], lines))
    stats = {}
    for (method, p), seeded in groups.items():
        seeded.sort()
        # A run whose final test loss is not finite has diverged: its accuracy is that of NaN logits, not a
        # result; it is counted and listed, and left out of the means.
        diverged = [seed for seed, lines in seeded if lines[-1]["test_loss"] is None]
        seeded = [(seed, lines) for seed, lines in seeded if lines[-1]["test_loss"] is not None]
        if not seeded:
            stats[(method, p)] = {"seeds": [], "diverged": diverged}
            continue
        final = [lines[-1]["test_acc"] for _, lines in seeded]
        best = [max(line["test_acc"] for line in lines) for _, lines in seeded]
        best_epoch = [max(lines, key=lambda line: line["test_acc"])["epoch"] for _, lines in seeded]
        epochs = len(seeded[0][1])
        curve = [[lines[e]["test_acc"] for _, lines in seeded] for e in range(epochs)]
        stats[(method, p)] = {
            "seeds": [seed for seed, _ in seeded],
            "diverged": diverged,
            "final": final,
            "best": best,
            "best_epoch": best_epoch,
            "train_loss": [lines[-1]["train_loss"] for _, lines in seeded],  # finite: the run did not diverge
            "train_acc": [lines[-1]["train_acc"] for _, lines in seeded],
            "test_loss": [lines[-1]["test_loss"] for _, lines in seeded],
            "seconds": [statistics.mean(line["seconds"] for line in lines) for _, lines in seeded],
            "curve": curve,
        }
    return stats


def seeds_text(s):
    text = ",".join(map(str, s["seeds"]))
    if s["diverged"]:
        text += (" + " if text else "") + f"diverged: {','.join(map(str, s['diverged']))}"
    return text


def final_text(s):
    return fmt(s["final"]) if s["seeds"] else "diverged"


def tables(stats, setting):
    rates = sorted({p for (method, p) in stats if method != "none"})
    out = [f"Setting: {setting}. Accuracies in %, mean ± sample standard deviation over the seeds listed; "
           "test = the 10,000-image Fashion-MNIST test set, evaluated dense after every epoch. A run whose loss "
           "became NaN is listed as diverged and left out of the means.", ""]
    reference = stats.get(("none", 0))
    for p in rates:
        out += [f"### p = {p}", "",
                "| method | seeds | final test acc | Δ final vs Bernoulli (paired) | best-epoch test acc (epoch) "
                "| final train acc (with dropout) | final train loss | final test loss | s/epoch |",
                "|---|---|---|---|---|---|---|---|---|"]
        bernoulli = stats.get(("bernoulli", p))
        rows = [(m, stats.get((m, p))) for m in METHODS + ABLATION] + [("none", reference)]
        for method, s in rows:
            if s is None:
                continue
            if not s["seeds"]:
                out.append(f"| {LABELS[method]} | {seeds_text(s)} | diverged |" + " - |" * 6)
                continue
            delta_text = paired(s, bernoulli) if bernoulli is not None and method != "bernoulli" else "-"
            epochs = ",".join(str(e) for e in s["best_epoch"])
            out.append(f"| {LABELS[method]} | {seeds_text(s)} | {fmt(s['final'])} | {delta_text} "
                       f"| {fmt(s['best'])} ({epochs}) | {fmt(s['train_acc'])} | {fmt(s['train_loss'], 1, 4)} "
                       f"| {fmt(s['test_loss'], 1, 4)} | {statistics.mean(s['seconds']):.1f} |")
        out.append("")
    out += ["### Final test accuracy, all rates", "",
            "| method | " + " | ".join(f"p = {p}" for p in rates) + " |",
            "|---|" + "---|" * len(rates)]
    for method in METHODS + [m for m in ABLATION if any((m, p) in stats for p in rates)]:
        cells = []
        for p in rates:
            s = stats.get((method, p))
            cells.append("-" if s is None else final_text(s) + (f" ({len(s['diverged'])} of "
                                                                 f"{len(s['seeds']) + len(s['diverged'])} diverged)"
                                                                 if s["diverged"] and s["seeds"] else ""))
        out.append(f"| {LABELS[method]} | " + " | ".join(cells) + " |")
    if reference is not None:
        out.append(f"| {LABELS['none']} (p = 0) | " + " | ".join([final_text(reference)] * len(rates)) + " |")
    out += ["", "### Paired differences of the final test accuracy (points; mean ± std over seeds)", "",
            "Each seed gives every method the same initial weights and data order, so differences are taken per "
            "seed, then averaged (over the seeds where neither run diverged).", "",
            "| difference | " + " | ".join(f"p = {p}" for p in rates) + " |",
            "|---|" + "---|" * len(rates)]
    for a, b in [("row", "bernoulli"), ("tile", "bernoulli"), ("row-fixed", "bernoulli"), ("row", "row-fixed"),
                 ("bernoulli", "none"), ("row-nominal", "row"), ("row-kt", "row"), ("row-d4", "row"),
                 ("row-nominal", "bernoulli"), ("row-kt", "bernoulli"), ("row-d4", "bernoulli"),
                 ("row-v2", "bernoulli"), ("row-kt-v2", "bernoulli"), ("row-v2", "row"), ("row-kt-v2", "row-kt"),
                 ("row-v2", "row-fixed"), ("row-kt-v2", "row-fixed"), ("row-kt-v2", "row-v2"),
                 ("tile-v2", "bernoulli"), ("tile-v2", "tile")]:
        if not any((a, p) in stats for p in rates):
            continue
        cells = []
        for p in rates:
            sa, sb = stats.get((a, p)), stats.get((b, 0 if b == "none" else p))
            cells.append(paired(sa, sb) if sa is not None and sb is not None else "-")
        out.append(f"| {LABELS[a]} − {LABELS[b]} | " + " | ".join(cells) + " |")
    out.append("")
    return "\n".join(out)


def paired(a, b):
    """Mean ± std over the common seeds of a's final test accuracy minus b's, in points."""
    finals_b = dict(zip(b["seeds"], b.get("final", [])))
    diffs = [100.0 * (fa - finals_b[seed]) for seed, fa in zip(a["seeds"], a.get("final", [])) if seed in finals_b]
    if not diffs:
        return "diverged" if a["diverged"] or b["diverged"] else "-"
    m, s = mean_std(diffs)
    text = f"{m:+.2f} ± {s:.2f}" if len(diffs) > 1 else f"{m:+.2f}"
    return text if len(diffs) == 3 else f"{text} (n={len(diffs)})"


def axis_floor(values, top):
    """The lower y limit: below every value, but at most 12 points under `top`, so that one collapsed run
    does not flatten the others (values below are marked on the plot)."""
    return max(math.floor(min(values)) - 0.5, math.floor(top) - 12.0)


def plot_curves(stats, setting, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rates = sorted({p for (method, p) in stats if method != "none"})
    fig, axes = plt.subplots(1, len(rates), figsize=(5.2 * len(rates), 4.6), sharey=True, squeeze=False)
    shown = [s for s in stats.values() if s["seeds"]]
    top = 100.0 * max(max(statistics.mean(c) for c in s["curve"]) for s in shown)
    floor = axis_floor([100.0 * min(statistics.mean(c) for c in s["curve"][1:] or s["curve"]) for s in shown], top)
    for ax, p in zip(axes[0], rates):
        for method in ["none"] + METHODS + ABLATION:
            s = stats.get((method, 0 if method == "none" else p))
            if s is None:
                continue
            label = f"{LABELS[method]} (n={len(s['seeds'])}"
            label += f", {len(s['diverged'])} diverged)" if s["diverged"] else ")"
            if not s["seeds"]:
                ax.plot([], [], color=COLORS[method], label=label)
                continue
            epochs = list(range(1, len(s["curve"]) + 1))
            means = [100.0 * statistics.mean(c) for c in s["curve"]]
            stds = [100.0 * (statistics.stdev(c) if len(c) > 1 else 0.0) for c in s["curve"]]
            if means[-1] < floor:
                label += f", final {means[-1]:.1f} % (below the axis)"
            style = "--" if method == "none" else (":" if method in ABLATION else "-")
            ax.plot(epochs, means, style, color=COLORS[method], label=label, linewidth=1.6)
            ax.fill_between(epochs, [m - d for m, d in zip(means, stds)], [m + d for m, d in zip(means, stds)],
                            color=COLORS[method], alpha=0.12, linewidth=0)
        ax.set_title(f"p = {p}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    axes[0][0].set_ylabel("test accuracy (%): mean over seeds, band ±1 std")
    axes[0][0].set_ylim(floor, math.ceil(top) + 0.5)
    fig.suptitle(f"Fashion-MNIST MLP: test accuracy by epoch ({setting})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_final(stats, setting, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = sorted({p for (method, p) in stats if method != "none"})
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    shown = METHODS + [m for m in ABLATION if any((m, p) in stats for p in rates)]
    finals = [100.0 * statistics.mean(s["final"]) for s in stats.values() if s["seeds"]]
    top = max(finals)
    floor = axis_floor(finals, top)
    width = 0.8 / len(shown)
    for i, method in enumerate(shown):
        xs, means, stds = [], [], []
        for j, p in enumerate(rates):
            s = stats.get((method, p))
            if s is None:
                continue
            x = j + (i - (len(shown) - 1) / 2) * width
            if not s["seeds"]:
                ax.annotate("diverged", (x, floor), xytext=(0, 4), textcoords="offset points", rotation=90,
                            ha="center", va="bottom", fontsize=7, color=COLORS[method])
                continue
            m, sd = mean_std([100.0 * v for v in s["final"]])
            if m < floor:
                ax.annotate(f"{m:.1f} %", (x, floor), xytext=(0, 4), textcoords="offset points", rotation=90,
                            ha="center", va="bottom", fontsize=7, color=COLORS[method])
                continue
            xs.append(x)
            means.append(m)
            stds.append(sd)
        label = LABELS[method] + (" (ablation)" if method in ABLATION and not method.endswith("-v2") else "")
        ax.errorbar(xs, means, yerr=stds, fmt="s" if method in ABLATION else "o", color=COLORS[method], label=label,
                    capsize=3)
    reference = stats.get(("none", 0))
    if reference is not None and reference["seeds"]:
        m, _ = mean_std([100.0 * v for v in reference["final"]])
        ax.axhline(m, color=COLORS["none"], linestyle="--", linewidth=1, label=LABELS["none"])
    ax.set_ylim(floor, math.ceil(top) + 0.5)
    ax.set_xticks(range(len(rates)))
    ax.set_xticklabels([f"p = {p}" for p in rates])
    ax.set_ylabel("final test accuracy (%), mean ± std over seeds")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"Final test accuracy ({setting})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="the JSONL file ard_accuracy appends to")
    parser.add_argument("--out-prefix", help="output path prefix (default: RESULTS without .jsonl)")
    args = parser.parse_args()
    prefix = args.out_prefix or (args.results[:-6] if args.results.endswith(".jsonl") else args.results)

    runs = load_runs(args.results)
    if not runs:
        sys.exit(f"{args.results}: no complete run")
    settings = {(k[3], k[4], k[5], k[6]) for k in runs}
    if len(settings) != 1:
        sys.exit(f"{args.results}: runs of several settings (hidden, epochs, batch, base_lr): {sorted(settings)}")
    hidden, epochs, batch, base_lr = settings.pop()
    setting = f"784-{hidden}-{hidden}-10, {epochs} epochs, batch {batch}, base lr {base_lr:g}"
    stats = summarise(runs)

    text = tables(stats, setting)
    with open(prefix + "_tables.md", "w") as f:
        f.write(text)
    print(text)
    plot_curves(stats, setting, prefix + "_curves.png")
    plot_final(stats, setting, prefix + "_final.png")
    print(f"wrote {prefix}_tables.md, {prefix}_curves.png, {prefix}_final.png", file=sys.stderr)


if __name__ == "__main__":
    main()
