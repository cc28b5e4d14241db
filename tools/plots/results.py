#!/usr/bin/python3
"""Learning curves, FLOP plots and final-accuracy tables of model-zoo runs, from their metrics.jsonl files.

Reads runs of `sieve train` (each a run folder `<snapshot_prefix>_logs/<run id>/` holding metrics.jsonl,
docs/cli.md), labelled with the model, the variant (the method), the dropout rate p and the seed, and writes per
model (the `--out` folder, default the current one):
  curves  <model>_curves.png: test accuracy (a language model: test perplexity) against epoch, one line per
          variant, mean over the seeds with a band of ±1 sample standard deviation;
  flops   <model>_flops.png: executed / dense MatMul FLOPs of forward and backward per training iteration
          (metrics `flop_ratio`), one line per variant (mean over seeds, a moving average over the noisy
          per-iteration values drawn faintly behind it);
  table   <model>_final.md (also printed): per variant p, seeds, the final test accuracy (or perplexity) as mean ±
          std over seeds, its paired difference against the reference variant seed by seed (--reference; default
          bernoulli, else dense, else the model's first variant), the mean FLOP ratio and the mean wall time;
  all     the three.

The runs are given as labelled run folders, either as JSONL index files (--index; one object per line, the lines
tools/experiments/run_zoo.sh writes) or one by one (--run), both with the keys
  model, variant, seed, run_dir   required; run_dir: the run folder or its metrics.jsonl; a relative path is
                                  taken from the index file's folder, else from the current folder
  p                               the dropout rate (shown in the table; may be absent)
  wall_s                          the run's wall time in seconds (default: the last metrics line's wall_s)
  iters_per_epoch                 training iterations per epoch, to draw curves against epochs (default: the
                                  model's --iters-per-epoch, else the curves are drawn against iterations)
Other keys are ignored. A run is final when its last test pass is at the largest iteration any run of its model
reached; others (stopped early) are drawn but left out of the table's means, and listed under it. A run whose
final test loss is not finite (null) has diverged and is listed, not averaged.

It trains nothing. The table needs only the standard library; the plots need Debian's matplotlib
(tools/setup_plots.sh), hence /usr/bin/python3 (another python3 on the PATH may lack it).

Usage:
  /usr/bin/python3 tools/plots/results.py {curves,flops,table,all} [--index FILE.jsonl ...]
      [--run model=M,variant=V,p=P,seed=S,run_dir=DIR ...] [--out DIR] [--model M ...]
      [--reference M=VARIANT ...] [--iters-per-epoch M=N ...] [--window N]
"""
import argparse
import collections
import json
import os
import statistics
import sys

LABELS = {
    "main": "main (net.prototxt)",  # run_zoo.sh's name for solver.prototxt, the model's recommended dropout
    "dense": "no dropout",
    "bernoulli": "Bernoulli",
    "row": "row ARD",
    "tile": "tile ARD",
    "random_channel": "random channel",
    "sensitivity": "sensitivity-aware",
}
# The reference of the paired differences when --reference does not name one: the first variant a model has.
REFERENCES = ["bernoulli", "dense"]
REQUIRED = ["model", "variant", "seed", "run_dir"]
# Variant i is drawn in color Ci with LINESTYLES[i % 4]: variants that measure alike (dense and Bernoulli both
# execute every FLOP) stay visible on top of each other.
LINESTYLES = ["-", "--", "-.", ":"]


def fail(message):
    sys.exit(f"results.py: {message}")


def label(variant):
    return LABELS.get(variant, variant)


def number(value, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        fail(f"{what}: not a number: {value!r}")


class Run:
    """One labelled run: its test passes and training iterations from metrics.jsonl."""

    def __init__(self, entry, origin, base_dir):
        missing = [key for key in REQUIRED if key not in entry]
        if missing:
            fail(f"{origin}: the run has no {', '.join(missing)} (needs {', '.join(REQUIRED)})")
        self.model = str(entry["model"])
        self.variant = str(entry["variant"])
        self.seed = str(entry["seed"])
        self.p = entry.get("p")
        self.origin = origin
        path = str(entry["run_dir"])
        if not os.path.isabs(path) and base_dir and os.path.exists(os.path.join(base_dir, path)):
            path = os.path.join(base_dir, path)
        self.metrics_path = path if os.path.isfile(path) else os.path.join(path, "metrics.jsonl")
        if not os.path.isfile(self.metrics_path):
            fail(f"{origin}: no metrics file at {self.metrics_path} (run_dir must be a run folder of `sieve train`, "
                 "<snapshot_prefix>_logs/<run id>/, or its metrics.jsonl)")
        self.tests, self.trains = [], []
        with open(self.metrics_path) as f:
            for line_number, text in enumerate(f, 1):
                text = text.strip()
                if not text:
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError as e:
                    fail(f"{self.metrics_path}:{line_number}: not JSON ({e})")
                (self.tests if line.get("phase") == "test" else self.trains).append(line)
        if not self.tests:
            fail(f"{self.metrics_path}: no test pass (the solver's test_interval or the run's end writes one)")
        last = (self.trains or self.tests)[-1]
        self.wall_s = number(entry["wall_s"], f"{origin}: wall_s") if "wall_s" in entry else last["wall_s"]
        self.iters_per_epoch = (number(entry["iters_per_epoch"], f"{origin}: iters_per_epoch")
                                if "iters_per_epoch" in entry else None)
        # Language models log a perplexity; their tables and curves show it instead of the accuracy.
        self.perplexity = all("perplexity" in line for line in self.tests)
        self.final = self.tests[-1]
        self.diverged = self.final["loss"] is None

    def score(self, line):
        """The test pass's accuracy in %, or its perplexity; None when not finite."""
        value = line.get("perplexity") if self.perplexity else line.get("accuracy")
        if value is None or line["loss"] is None:
            return None
        return value if self.perplexity else 100.0 * value

    def flop_ratios(self):
        return [(line["iteration"], line["flop_ratio"]) for line in self.trains if line.get("flop_ratio") is not None]


def parse_run_argument(text):
    entry = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            fail(f"--run {text!r}: expected key=value pairs separated by commas (keys: {', '.join(REQUIRED)}, "
                 "p, wall_s, iters_per_epoch)")
        entry[key.strip()] = value.strip()
    return entry


def parse_mapping(values, flag, convert=str):
    mapping = {}
    for text in values or []:
        model, sep, value = text.partition("=")
        if not sep or not model or not value:
            fail(f"{flag} {text!r}: expected MODEL=VALUE")
        mapping[model] = convert(value)
    return mapping


def load_runs(args):
    runs = []
    for path in args.index or []:
        if not os.path.isfile(path):
            fail(f"--index {path}: no such file")
        base = os.path.dirname(os.path.abspath(path))
        with open(path) as f:
            for line_number, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    entry = json.loads(text)
                except json.JSONDecodeError as e:
                    fail(f"{path}:{line_number}: not JSON ({e})")
                runs.append(Run(entry, f"{path}:{line_number}", base))
    for text in args.run or []:
        runs.append(Run(parse_run_argument(text), f"--run {text}", None))
    if args.model:
        runs = [run for run in runs if run.model in args.model]
    if not runs:
        fail("no runs: give --index FILE.jsonl or --run model=...,variant=...,seed=...,run_dir=... "
             "(and check --model)")
    seen = {}
    for run in runs:
        key = (run.model, run.variant, run.seed)
        if key in seen:
            fail(f"{run.origin}: model {run.model} variant {run.variant} seed {run.seed} is also {seen[key]}")
        seen[key] = run.origin
    by_model = collections.defaultdict(list)
    for run in runs:
        by_model[run.model].append(run)
    for model, model_runs in by_model.items():
        kinds = {run.perplexity for run in model_runs}
        if len(kinds) > 1:
            fail(f"model {model}: some runs log a perplexity and some do not; they are not the same model")
    return by_model


def variants_of(runs):
    """{variant: [runs by seed]}, variants in the order of their first run."""
    groups = {}
    for run in runs:
        groups.setdefault(run.variant, []).append(run)
    for group in groups.values():
        group.sort(key=lambda run: (len(run.seed), run.seed))
    return groups


def mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_mean_std(values, digits):
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def format_seconds(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def reference_of(model, groups, references):
    if model in references:
        if references[model] not in groups:
            fail(f"--reference {model}={references[model]}: the model has no runs of that variant "
                 f"(variants: {', '.join(groups)})")
        return references[model]
    return next((variant for variant in REFERENCES if variant in groups), next(iter(groups)))


def final_runs(runs):
    """The runs whose last test pass is at the largest iteration of their model (the others stopped early)."""
    last = max(run.final["iteration"] for run in runs)
    return [run for run in runs if run.final["iteration"] == last], last


def table(model, runs, references):
    groups = variants_of(runs)
    perplexity = runs[0].perplexity
    finished, last = final_runs(runs)
    reference = reference_of(model, groups, references)
    with_p = any(run.p is not None for run in runs)
    metric = "test perplexity" if perplexity else "test accuracy (%)"
    digits = 2
    unit = "" if perplexity else " (points)"
    finals = {}  # variant -> {seed: final score}, finished and finite runs only
    for variant, group in groups.items():
        finals[variant] = {run.seed: run.score(run.final) for run in group
                           if run in finished and run.score(run.final) is not None}
    lines = [f"### {model}", "",
             f"Final {metric} after {last} iterations: mean ± sample standard deviation over the seeds; "
             f"Δ = the variant minus {label(reference)}, seed by seed{unit}, then mean ± std over the seeds both "
             "have. FLOP ratio: executed / dense MatMul FLOPs of forward and backward, mean over the training "
             "iterations. Wall: one run, mean over seeds. Both over the runs that reached the end.", "",
             f"| method |{' p |' if with_p else ''} seeds | final {metric} | Δ vs {label(reference)}{unit} "
             "| FLOP ratio | wall |",
             "|---|" + ("---|" if with_p else "") + "---|---|---|---|---|"]
    notes = []
    for variant, group in groups.items():
        p_values = sorted({str(run.p) for run in group if run.p is not None})
        scores = finals[variant]
        seeds = ",".join(scores) or "-"
        final_text = format_mean_std(list(scores.values()), digits) if scores else "-"
        if variant == reference:
            delta = "reference"
        else:
            ref_scores = finals[reference]
            diffs = [score - ref_scores[seed] for seed, score in scores.items() if seed in ref_scores]
            delta = "-"
            if diffs:
                m, s = mean_std(diffs)
                delta = f"{m:+.{digits}f} ± {s:.{digits}f}" if len(diffs) > 1 else f"{m:+.{digits}f}"
                if len(diffs) < len(scores):
                    delta += f" (n={len(diffs)})"
        # Of the runs that reached the end (diverged ones included): a run stopped early ran a shorter schedule.
        complete = [run for run in group if run in finished]
        ratios = [statistics.mean(r for _, r in run.flop_ratios()) for run in complete if run.flop_ratios()]
        ratio = f"{statistics.mean(ratios):.3f}" if ratios else "-"
        wall = format_seconds(statistics.mean(run.wall_s for run in complete)) if complete else "-"
        p_cell = f" {'/'.join(p_values) or '-'} |" if with_p else ""
        lines.append(f"| {label(variant)} |{p_cell} {seeds} | {final_text} | {delta} | {ratio} | {wall} |")
        for run in group:
            if run not in finished:
                notes.append(f"{label(variant)} seed {run.seed} stopped early (last test pass at iteration "
                             f"{run.final['iteration']}): left out")
            elif run.score(run.final) is None:
                notes.append(f"{label(variant)} seed {run.seed} diverged (final test loss not finite): left out")
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    lines.append("")
    return "\n".join(lines)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend; exits with what to install when it is missing."""
    try:
        import matplotlib
    except ImportError:
        fail(f"matplotlib is missing for {sys.executable}: the plots need Debian's python3-matplotlib "
             "(install it with `bash tools/setup_plots.sh` as root), run with /usr/bin/python3; the subcommand "
             "`table` runs without it")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def epoch_scale(model, runs, iters_per_epoch):
    """Iterations per epoch of a model's runs (None: draw against iterations)."""
    given = {run.iters_per_epoch for run in runs if run.iters_per_epoch is not None}
    if len(given) > 1:
        fail(f"model {model}: its runs give different iters_per_epoch: {sorted(given)}")
    if given:
        return given.pop()
    return iters_per_epoch.get(model)


def plot_curves(model, runs, iters_per_epoch, path):
    plt = pyplot()
    groups = variants_of(runs)
    perplexity = runs[0].perplexity
    scale = epoch_scale(model, runs, iters_per_epoch)
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for index, (variant, group) in enumerate(groups.items()):
        by_iteration = collections.defaultdict(list)
        diverged = 0
        for run in group:
            if run.diverged:
                diverged += 1
            for line in run.tests:
                score = run.score(line)
                if score is not None:
                    by_iteration[line["iteration"]].append(score)
        iterations = sorted(by_iteration)
        xs = [i / scale for i in iterations] if scale else iterations
        means = [statistics.mean(by_iteration[i]) for i in iterations]
        stds = [statistics.stdev(by_iteration[i]) if len(by_iteration[i]) > 1 else 0.0 for i in iterations]
        text = f"{label(variant)} (n={len(group)}" + (f", {diverged} diverged)" if diverged else ")")
        color = f"C{index}"
        ax.plot(xs, means, LINESTYLES[index % 4], marker="o", color=color, markersize=3, linewidth=1.6, label=text)
        ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], color=color,
                        alpha=0.15, linewidth=0)
    if perplexity:
        ax.set_yscale("log")
        plain = plt.FuncFormatter(lambda value, _: f"{value:g}")  # 2000, not 2 x 10^3
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("epoch" if scale else "iteration")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_ylabel(("test perplexity" if perplexity else "test accuracy (%)") + ": mean over seeds, band ±1 std")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right" if perplexity else "lower right")
    ax.set_title(f"{model}: test {'perplexity' if perplexity else 'accuracy'} by "
                 f"{'epoch' if scale else 'iteration'}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def moving_average(values, window):
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_flops(model, runs, window, path):
    plt = pyplot()
    groups = variants_of(runs)
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    drawn = False
    for index, (variant, group) in enumerate(groups.items()):
        by_iteration = collections.defaultdict(list)
        for run in group:
            for iteration, ratio in run.flop_ratios():
                by_iteration[iteration].append(ratio)
        if not by_iteration:
            continue
        drawn = True
        iterations = sorted(by_iteration)
        ratios = [statistics.mean(by_iteration[i]) for i in iterations]
        color = f"C{index}"
        ax.plot(iterations, ratios, color=color, alpha=0.2, linewidth=0.6)
        ax.plot(iterations, moving_average(ratios, window), LINESTYLES[index % 4], color=color, linewidth=1.6,
                label=f"{label(variant)}: mean {statistics.mean(ratios):.3f} (n={len(group)})")
    if not drawn:
        fail(f"model {model}: no training line has a flop_ratio")
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("iteration")
    ax.set_ylabel("executed / dense MatMul FLOPs" + (f" (moving average of {window})" if window > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{model}: executed / dense MatMul FLOPs of forward and backward per iteration", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Details: the docstring at the top of this file.")
    parser.add_argument("what", choices=["curves", "flops", "table", "all"], help="what to write")
    parser.add_argument("--index", action="append", metavar="FILE.jsonl", help="labelled runs, one JSON per line")
    parser.add_argument("--run", action="append", metavar="KEY=VALUE,...", help="one labelled run")
    parser.add_argument("--out", default=".", help="the folder the files go to (created; default: .)")
    parser.add_argument("--model", action="append", help="only this model (repeatable; default: every model)")
    parser.add_argument("--reference", action="append", metavar="MODEL=VARIANT",
                        help=f"the variant the table's Δ is taken against (default: {' or '.join(REFERENCES)}, "
                             "else the model's first variant)")
    parser.add_argument("--iters-per-epoch", action="append", metavar="MODEL=N",
                        help="training iterations per epoch of a model, for curves against epochs")
    parser.add_argument("--window", type=int, default=50, help="moving-average window of the FLOP plot (default 50)")
    args = parser.parse_args()
    if args.window < 1:
        fail(f"--window {args.window}: must be at least 1")
    references = parse_mapping(args.reference, "--reference")
    iters_per_epoch = parse_mapping(args.iters_per_epoch, "--iters-per-epoch",
                                    lambda v: number(v, f"--iters-per-epoch {v}"))
    if args.what != "table":
        pyplot()  # before reading anything: fail at once when the plots cannot be drawn
    by_model = load_runs(args)
    os.makedirs(args.out, exist_ok=True)
    written = []
    for model in sorted(by_model):
        runs = by_model[model]
        if args.what in ("table", "all"):
            text = table(model, runs, references)
            path = os.path.join(args.out, f"{model}_final.md")
            with open(path, "w") as f:
                f.write(text)
            print(text)
            written.append(path)
        if args.what in ("curves", "all"):
            path = os.path.join(args.out, f"{model}_curves.png")
            plot_curves(model, runs, iters_per_epoch, path)
            written.append(path)
        if args.what in ("flops", "all"):
            path = os.path.join(args.out, f"{model}_flops.png")
            plot_flops(model, runs, args.window, path)
            written.append(path)
    print("wrote " + ", ".join(written), file=sys.stderr)


if __name__ == "__main__":
    main()
