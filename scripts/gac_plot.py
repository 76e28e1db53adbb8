#!/usr/bin/env python3
"""Draws gac's figures with matplotlib from the JSON that `gac plot` writes:
{"figure": "accuracy" | "rate" | "width", "output": FILE, "runs": [{"name",
"label", "hidden", "optimizer", "report": <gac report --json>}, ...]}.
It is run by `gac plot`; errors end in one line "gac: error: ..." and exit 2.

  accuracy  test accuracy vs n, one line per loss bin, 95% intervals with the
            training set as the unit; one panel per run, side by side
  rate      log10 acceptance rate (GAC's volume estimate) vs n per bin, with
            Wilson intervals; an unfilled cell with no hit is an upper bound (v)
  width     test accuracy vs model.hidden (MLP; a Figure-2 sweep) or
            model.width (LeNet; Table 6) over the runs, one
            line per optimizer (and per n and bin when there are several)
  difference  A - B (two runs of the same bins, "versus": <gac report A --versus
            B --json>): per cell the paired difference by training set with its
            95% interval (Welch's when the runs do not share training sets),
            one line per bin against n, the pooled estimate per n in black
  boundary  per run (its "boundary": a grid of the share of accepted models
            predicting class 1, computed by gac with the models' own forward
            pass), that share as a map with the 0.5 contour, the training
            points (large) and test points (small) on it; one panel per run
  data      per run (its "data": the first stream's stored points), the
            training set (large) over its test set (small), coloured by class;
            one panel per run (the paper's Figure 1)
"""
import json
import math
import sys


def fail(message):
    print(f"gac: error: {message}", file=sys.stderr)
    sys.exit(2)


try:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
except ImportError:
    fail(f"gac plot needs matplotlib for {sys.executable}: install Debian's python3-matplotlib "
         "(sudo apt-get install python3-matplotlib; scripts/install-deps installs it)")


def number(value):
    """A JSON number, NaN for null (gac writes NaN as null)."""
    return math.nan if value is None else float(value)


OPTIMIZER_NAMES = {"guess": "guess and check", "sgd": "SGD"}


def bin_label(cell, decimals):
    if cell["loss_lo"] <= -999 and cell["loss_hi"] >= 999:
        return "any"  # the paper's "-999,999": every loss
    return f"({cell['loss_lo']:.{decimals}f}, {cell['loss_hi']:.{decimals}f}]"


def edge_decimals(edges):
    """Fewest decimals that show every bin edge exactly: 0 for whole numbers (the
    paper's "-999,999", every loss), else 2 to 4."""
    for d in (0, 2, 3, 4):
        if all(abs(round(e, d) - e) < 1e-12 for e in edges):
            return d
    return 4


def cells_by_bin(report):
    bins = {}
    for cell in report["cells"]:
        bins.setdefault(cell["bin"], []).append(cell)
    return [bins[b] for b in sorted(bins)]


def bin_colors(count):
    cmap = plt.get_cmap("viridis")
    return [cmap(0.9 * i / max(count - 1, 1)) for i in range(count)]


def dodge(index, count):
    """A small horizontal offset (a factor on a log2 axis) that keeps the bins' error bars apart."""
    return 2 ** (0.06 * (index - (count - 1) / 2))


def draw_points(ax, xs, ys, lows, highs, color, label, hollow):
    """Points joined by a line; error bars where the interval is known; hollow markers for unfilled cells."""
    ax.plot(xs, ys, "-", color=color, alpha=0.6, linewidth=1.2, label=label)
    for x, y, lo, hi, open_marker in zip(xs, ys, lows, highs, hollow):
        if math.isnan(y):
            continue
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], color=color, capsize=2.5, linewidth=1)
        ax.plot([x], [y], "o", color=color, markersize=5, markerfacecolor="white" if open_marker else color)


def set_n_axis(ax, ns):
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("training-set size n")
    ax.grid(True, alpha=0.3)


def panel_title(run):
    meta = run["report"]["meta"]
    sets, models = meta["repeats"], meta["target"]
    return (f"{run['label']}\n{sets} training set{'s' * (sets != 1)} × {models} model{'s' * (models != 1)}"
            " per cell")


def plot_by_n(runs, figure):
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs) + 1.6, 4.2), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs):
        report = run["report"]
        groups = cells_by_bin(report)
        colors = bin_colors(len(groups))
        decimals = edge_decimals(report["meta"]["bin_edges"])
        for i, cells in enumerate(groups):
            cells = sorted(cells, key=lambda c: c["n"])
            xs = [c["n"] * dodge(i, len(groups)) for c in cells]
            if figure == "accuracy":
                ys = [number(c["test_acc_mean"]) for c in cells]
                lows = [number(c["test_acc_ci_lo"]) for c in cells]
                highs = [number(c["test_acc_ci_hi"]) for c in cells]
                draw_points(ax, xs, ys, lows, highs, colors[i], bin_label(cells[0], decimals),
                            [not c["filled"] for c in cells])
            else:
                bound = [c["log10_rate_is_upper_bound"] for c in cells]
                ys = [number(c["log10_rate"]) for c in cells]
                lows = [math.nan if b or not c["rate_lo"] else math.log10(c["rate_lo"]) for b, c in zip(bound, cells)]
                highs = [math.nan if b else math.log10(c["rate_hi"]) for b, c in zip(bound, cells)]
                draw_points(ax, xs, [math.nan if b else y for b, y in zip(bound, ys)], lows, highs, colors[i],
                            bin_label(cells[0], decimals), [False] * len(cells))
                upper = [(x, y) for x, y, b in zip(xs, ys, bound) if b and not math.isnan(y)]
                if upper:
                    ax.plot(*zip(*upper), "v", color=colors[i], markersize=6)
        set_n_axis(ax, report["meta"]["ns"])
        ax.set_title(panel_title(run), fontsize=10)
    if figure == "accuracy":
        axes[0][0].set_ylabel("test accuracy (mean, 95% interval)")
        note = "hollow: cell not filled; bars: 95% t interval with the training set as the unit"
    else:
        axes[0][0].set_ylabel("log10 acceptance rate")
        note = "bars: Wilson 95% interval; v: upper bound (no hit yet)"
    axes[0][-1].legend(title="training loss", loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8,
                       title_fontsize=8, frameon=False)
    fig.text(0.01, 0.01, note, fontsize=7, color="0.4")
    return fig


def run_width(run):
    """An MLP's hidden width, or a LeNet's width factor (Table 6)."""
    return run["hidden"] if run["hidden"] is not None else run.get("width")


def plot_width(runs):
    for run in runs:
        if run_width(run) is None:
            fail(f"--figure width needs MLP runs that differ in model.hidden or LeNet runs that differ in "
                 f"model.width; {run['name']} has neither")
    lenet = runs[0]["hidden"] is None
    if any((run["hidden"] is None) != lenet for run in runs):
        fail("--figure width: give MLP runs (model.hidden) or LeNet runs (model.width), not both")
    lines = {}  # (optimizer, n, bin) -> [(width, cell)]
    for run in runs:
        for cell in run["report"]["cells"]:
            key = (run["optimizer"] or "guess", cell["n"], cell["bin"])
            lines.setdefault(key, []).append((run_width(run), cell))
    optimizers = sorted({k[0] for k in lines})
    ns, bins = sorted({k[1] for k in lines}), sorted({k[2] for k in lines})
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    cmap = plt.get_cmap("tab10")
    decimals = edge_decimals(runs[0]["report"]["meta"]["bin_edges"])
    for i, key in enumerate(sorted(lines)):
        points = sorted(lines[key], key=lambda p: p[0])
        cell0 = points[0][1]
        label = OPTIMIZER_NAMES.get(key[0], key[0]) + (f", n={key[1]}" if len(ns) > 1 else "") + (f", loss {bin_label(cell0, decimals)}" if len(bins) > 1 else "")
        draw_points(ax, [w for w, _ in points], [number(c["test_acc_mean"]) for _, c in points],
                    [number(c["test_acc_ci_lo"]) for _, c in points], [number(c["test_acc_ci_hi"]) for _, c in points],
                    cmap(i % 10), label, [not c["filled"] for _, c in points])
    widths = sorted({run_width(run) for run in runs})
    ax.set_xticks(widths)
    ax.set_xlabel("LeNet width factor (model.width)" if lenet else "hidden width")
    ax.set_ylabel("test accuracy (mean, 95% interval)")
    ax.grid(True, alpha=0.3)
    subtitle = f"n = {ns[0]}" if len(ns) == 1 else ""
    if len(bins) == 1:
        loss = bin_label(runs[0]["report"]["cells"][0], decimals)
        subtitle += (", " if subtitle else "") + ("any training loss" if loss == "any" else "training loss " + loss)
    ax.set_title("test accuracy vs width" + (f" ({subtitle})" if subtitle else ""), fontsize=10)
    if len(lines) > 1 or len(optimizers) > 1:
        ax.legend(fontsize=8, frameon=False)
    fig.text(0.01, 0.01, "bars: 95% t interval with the training set as the unit", fontsize=7, color="0.4")
    return fig


def plot_difference(runs, versus):
    paired = versus["unpaired_reason"] is None
    part = "paired" if paired else "difference"
    cells = versus["cells"]
    groups = {}
    for cell in cells:
        groups.setdefault(cell["bin"], []).append(cell)
    colors = bin_colors(len(groups))
    decimals = edge_decimals(runs[0]["report"]["meta"]["bin_edges"])
    fig, ax = plt.subplots(figsize=(7.4, 4.6))
    ax.axhline(0, color="0.3", linewidth=1)
    for i, b in enumerate(sorted(groups)):
        row = sorted(groups[b], key=lambda c: c["n"])
        draw_points(ax, [c["n"] * dodge(i, len(groups) + 1) for c in row], [number(c[part]["test_acc"]) for c in row],
                    [number(c[part]["ci_lo"]) for c in row], [number(c[part]["ci_hi"]) for c in row], colors[i],
                    bin_label(row[0], decimals),
                    [c["run"]["status"] != "filled" or c["versus"]["status"] != "filled" for c in row])
    per_n = [p for p in versus.get("pooled", []) if p["n"] is not None]
    if per_n:
        x = [p["n"] * dodge(len(groups), len(groups) + 1) for p in per_n]
        draw_points(ax, x, [number(p["paired"]["test_acc"]) for p in per_n],
                    [number(p["paired"]["ci_lo"]) for p in per_n], [number(p["paired"]["ci_hi"]) for p in per_n],
                    "black", "pooled over bins", [False] * len(per_n))
    set_n_axis(ax, runs[0]["report"]["meta"]["ns"])
    ax.set_ylabel(f"test accuracy A - B ({'paired by training set' if paired else 'unpaired'}, 95% interval)")
    title = f"A = {runs[0]['label']}\nB = {runs[1]['label']}"
    overall = [p for p in versus.get("pooled", []) if p["n"] is None]
    if overall and not math.isnan(number(overall[0]["paired"]["test_acc"])):
        p = overall[0]["paired"]
        lo, hi = number(p["ci_lo"]), number(p["ci_hi"])
        interval = f"[{lo:+.3f}, {hi:+.3f}]" if not math.isnan(lo) else "(not estimable)"
        title += f"\npooled A - B over {overall[0]['sets']} training sets: {number(p['test_acc']):+.3f} {interval}"
    ax.set_title(title, fontsize=9)
    ax.legend(title="training loss", loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, title_fontsize=8,
              frameon=False)
    note = ("hollow: a cell not filled in A or B; bars: 95% t interval over training sets"
            if paired else "runs do not share training sets: Welch difference; " + versus["unpaired_reason"])
    fig.text(0.01, 0.01, note, fontsize=7, color="0.4")
    return fig


def plot_boundary(runs):
    columns = min(len(runs), 4)
    rows = (len(runs) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns + 1.2, 3.3 * rows + 0.3), squeeze=False,
                             layout="constrained")
    cmap = plt.get_cmap("RdBu_r")
    image = None
    for ax, run in zip(axes.flat, runs):
        b = run["boundary"]
        grid = b["grid"]
        share = [b["share"][r * grid:(r + 1) * grid] for r in range(grid)]
        image = ax.imshow(share, origin="lower", extent=b["extent"], cmap=cmap, vmin=0, vmax=1, aspect="auto",
                          interpolation="nearest")
        xs = [b["extent"][0] + (b["extent"][1] - b["extent"][0]) * i / (grid - 1) for i in range(grid)]
        ys = [b["extent"][2] + (b["extent"][3] - b["extent"][2]) * i / (grid - 1) for i in range(grid)]
        if min(map(min, share)) < 0.5 < max(map(max, share)):
            ax.contour(xs, ys, share, levels=[0.5], colors="black", linewidths=1)
        for points, labels, size, edge in ((b["test_x"], b["test_y"], 12, 0.5), (b["train_x"], b["train_y"], 44, 1.1)):
            if points:  # class 0 white, class 1 black: visible on either side of the map
                ax.scatter(points[0::2], points[1::2], c=["white" if y == 0 else "black" for y in labels], s=size,
                           edgecolors=["black" if y == 0 else "white" for y in labels], linewidths=edge, zorder=3)
        hidden = f", hidden {run['hidden']}" if run["hidden"] is not None else ""
        over = f" over {b['sets']} training sets" if b["sets"] > 1 else ""
        ax.set_title(f"{run['label']}{hidden}\nn={b['n']}, {b['models']} of {b['models_available']} models{over}",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    bar.set_label("share of models predicting class 1")
    fig.supxlabel("points: class 0 white, class 1 black; large: training set (repeat 0), small: its test set;\n"
                  "line: where half the models predict each class", fontsize=7, color="0.4")
    return fig


def plot_data(runs):
    columns = min(len(runs), 4)
    rows = (len(runs) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.4 * rows + 0.3), squeeze=False,
                             layout="constrained")
    colors = ["#d62728", "#1f4fd6", "#2ca02c", "#9467bd"]  # class 0 red, class 1 blue (the paper's), then more
    for ax, run in zip(axes.flat, runs):
        d = run["data"]
        for points, labels, size, edge in ((d["test_x"], d["test_y"], 4, 0), (d["train_x"], d["train_y"], 60, 1.0)):
            if points:
                ax.scatter(points[0::2], points[1::2], c=[colors[y % len(colors)] for y in labels], s=size,
                           edgecolors="black", linewidths=edge, zorder=3 if edge else 2)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"{run['name']}\n{d['n']} training points (large), {len(d['test_y'])} test points (small)",
                     fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    fig.supxlabel("class 0 red, class 1 blue;\nlarge: the training set of the run's first stream (repeat 0)",
                  fontsize=8, color="0.4")
    return fig


def main():
    if len(sys.argv) != 2:
        fail("usage: gac_plot.py INPUT.json (run by gac plot)")
    try:
        spec = json.load(open(sys.argv[1]))
    except (OSError, ValueError) as e:
        fail(f"{sys.argv[1]}: cannot read the plot input: {e}")
    runs, figure = spec["runs"], spec["figure"]
    if figure == "width":
        fig = plot_width(runs)
    elif figure == "boundary":
        fig = plot_boundary(runs)
    elif figure == "data":
        fig = plot_data(runs)
    elif figure == "difference":
        fig = plot_difference(runs, spec["versus"])
    else:
        fig = plot_by_n(runs, figure)
    if figure not in ("boundary", "data"):  # laid out by matplotlib's constrained layout
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    try:
        fig.savefig(spec["output"], dpi=150)
    except OSError as e:
        fail(f"cannot write {spec['output']}: {e.strerror or e}")


if __name__ == "__main__":
    main()
