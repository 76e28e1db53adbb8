#!/usr/bin/env python3
"""Table 4's per-training-set results, kept in the repository so that sets
computed in different sessions (or on different machines) add up.

  table4_results.py export DIR [--optimizer NAME] [--build REV]          CSV rows of a run's models
  table4_results.py add DIR [--optimizer NAME] [--build REV] --to CSV    merge them into a results CSV
  table4_results.py summary CSV [--against BASE]                          the table and paired differences
  table4_results.py plot CSV -o PNG [--against BASE] [--title T]         the same as a figure (matplotlib)

A training set is (seed, n, repeat) of one training data: the same for every
optimizer, so each set's model can be paired with the other optimizers' models
of the same set. Each row carries what it was trained on (data_key: the run's
[data] settings but the path, and its data files' sizes and CRCs) and how
(config_key: the rest of the run's identity but the sizes, repeats, shards and
seed): all rows of a CSV must share one data_key, and all rows of one optimizer
one config_key, so that runs of other data or settings are refused, not mixed
in. The optimizer is the run's own (--optimizer, if given, must name it). Every
search and SGD run is a pure function of its key, so a set exported twice must
give the same weights (their SHA-256 is compared); `summary` refuses otherwise.
The statistics are gac report's: per (optimizer, n) the mean and sample std of
the sets' test accuracies with a t interval, and per pair of optimizers the
mean of the per-set differences with a t interval over the sets both have.
Standard library only, but for `plot` (matplotlib).
"""
import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import sqlite3
import sys
import tempfile
import tomllib
from collections import defaultdict
from pathlib import Path

FIELDS = ["optimizer", "n", "seed", "repeat", "test_acc", "test_loss", "train_loss", "search_calls", "search_radius",
          "seconds", "weights_sha256", "data_key", "config_key", "build"]

# Keys of a run's identity (its config.toml) that vary between the runs of one table: not in config_key.
PER_RUN = {"n", "repeats", "shard", "shards", "seed"}

# Two-sided 95% quantiles of Student's t, df = 1..30 (host/report/stats.cpp).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df):
    if df <= 30:
        return T975[df - 1]
    z, v = 1.959963984540054, float(df)  # Cornish-Fisher, as stats.cpp
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v * v) +
            (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def fail(message):
    sys.exit(f"table4_results: {message}")


def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def run_identity(run_dir, db):
    """(optimizer, seed, data_key, config_key) of a run directory."""
    with open(Path(run_dir) / "config.toml", "rb") as f:
        config = tomllib.load(f)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    if "run_meta" not in meta:
        fail(f"{run_dir}: its ledger has no run_meta: not a gac run directory")
    optimizer = json.loads(meta["run_meta"])["optimizer"]
    files = sorted([Path(f["path"]).name, f["size"], f["crc32"]] for f in json.loads(meta.get("data_files", "[]")))
    data = {k: v for k, v in config.pop("data", {}).items() if k != "path"}  # the same files anywhere
    run = config.get("run", {})
    seed = run.get("seed", 0)
    config["run"] = {k: v for k, v in run.items() if k not in PER_RUN}
    return optimizer, seed, digest({"data": data, "files": files}), digest(config)


def export_rows(run_dir, optimizer, build):
    """One CSV row (strings, FIELDS' order) per model of a run's filled sets."""
    ledger = Path(run_dir) / "ledger.sqlite"
    if not ledger.is_file():
        fail(f"{run_dir}: no ledger.sqlite: not a gac run directory")
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    ran, seed, data_key, config_key = run_identity(run_dir, db)
    if optimizer and optimizer != ran:
        fail(f"{run_dir} ran {ran}, not {optimizer}")
    rows = db.execute("SELECT m.n, m.repeat, m.test_acc, m.test_loss, m.train_loss, m.search_calls, m.search_radius,"
                      " s.seconds, m.file, s.status FROM models m JOIN streams s USING (n, repeat, shard)"
                      " ORDER BY m.n, m.repeat, m.shard, m.draw").fetchall()
    out = []
    for n, repeat, test_acc, test_loss, train_loss, calls, radius, seconds, file, status in rows:
        if status != "filled":  # a model of a set still searching for more: not final yet
            continue
        sha = hashlib.sha256((Path(run_dir) / file).read_bytes()).hexdigest()
        out.append([ran, str(n), str(seed), str(repeat), repr(test_acc), repr(test_loss), repr(train_loss),
                    "" if calls is None else str(calls), "" if radius is None else repr(radius),
                    f"{seconds:.1f}", sha, data_key, config_key, build])
    return out


def export(args):
    out = csv.writer(sys.stdout, lineterminator="\n")
    if args.header:
        out.writerow(FIELDS)
    out.writerows(export_rows(args.dir, args.optimizer, args.build))


def read_rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != FIELDS:
            fail(f"{path}: expected the columns {','.join(FIELDS)}")
        return list(reader)


def cell_and_set(row):
    """Where a row sits: its table cell (optimizer, n) and its training set (seed, repeat)."""
    return (row["optimizer"], int(row["n"])), (int(row["seed"]), int(row["repeat"]))


def set_name(row):
    return f"{row['optimizer']} n = {row['n']} seed {row['seed']} set {row['repeat']}"


def check_comparable(rows, path):
    """All rows of one training data, each optimizer's rows of one configuration."""
    data_keys, config_keys = {}, {}
    for row in rows:
        data_keys.setdefault(row["data_key"], row)
        config_keys.setdefault(row["optimizer"], {}).setdefault(row["config_key"], row)
    if len(data_keys) > 1:
        a, b = list(data_keys.values())[:2]
        fail(f"{path}: {set_name(a)} and {set_name(b)} were trained on other data "
             f"(data_key {a['data_key']} and {b['data_key']}): they do not pair")
    for optimizer, keys in config_keys.items():
        if len(keys) > 1:
            a, b = list(keys.values())[:2]
            fail(f"{path}: {optimizer} rows of two configurations (config_key {a['config_key']} and "
                 f"{b['config_key']}, e.g. {set_name(a)} and {set_name(b)}): one table, one {optimizer}")


def optimizer_rank(name, first="sgd"):
    """Table 4's order: the baseline, then pattern and greedy search, then any other by name."""
    order = ["pattern", "greedy"]
    return (0 if name == first else 1 + order.index(name) if name in order else 3, name)


def add(args):
    """Merges a run's rows into the CSV: new sets added, sets already there checked, the file kept sorted."""
    rows = read_rows(args.to) if Path(args.to).exists() else []
    new_rows = [dict(zip(FIELDS, values)) for values in export_rows(args.dir, args.optimizer, args.build)]
    check_comparable(rows + new_rows, f"{args.dir} into {args.to}")  # before the weights: other data, other weights
    cells = index_sets(rows, args.to)  # a CSV already holding two different models of one set is refused, as summary does
    added = same = 0
    for row in new_rows:
        cell, training_set = cell_and_set(row)
        seen = cells[cell].get(training_set)
        if seen is None:
            rows.append(row)
            added += 1
        elif seen["weights_sha256"] == row["weights_sha256"]:
            same += 1
        else:
            fail(f"{args.to}: {set_name(row)} is there with other weights (build {seen['build']}): "
                 "the runs are not the same; nothing written")
    rows.sort(key=lambda r: (int(r["n"]), *optimizer_rank(r["optimizer"]), int(r["seed"]), int(r["repeat"])))
    target = Path(args.to)
    with tempfile.NamedTemporaryFile("w", newline="", dir=target.parent or ".", delete=False) as tmp:
        writer = csv.DictWriter(tmp, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp.name, target)  # a reader sees the old file or the new one, never half of one
    print(f"{args.to}: {added} set{'s' if added != 1 else ''} added, {same} already there with the same weights")


def load(path):
    rows = read_rows(path)
    check_comparable(rows, path)
    return index_sets(rows, path)


def index_sets(rows, path):
    """{(optimizer, n): {(seed, repeat): row}}, a set exported twice kept once (same weights required)."""
    cells = defaultdict(dict)
    for line, row in enumerate(rows, start=2):
        cell, training_set = cell_and_set(row)
        seen = cells[cell].get(training_set)
        if seen and seen["weights_sha256"] != row["weights_sha256"]:
            fail(f"{path}:{line}: {set_name(row)} has two different models "
                 f"(builds {seen['build']} and {row['build']}): the runs are not the same")
        cells[cell].setdefault(training_set, row)
    return cells


def interval(values):
    k = len(values)
    mean = sum(values) / k
    if k < 2:
        return mean, math.nan, (math.nan, math.nan)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = t975(k - 1) * sd / math.sqrt(k)
    return mean, sd, (mean - half, mean + half)


def calls_range(rows):
    calls = sorted(int(r["search_calls"]) for r in rows if r["search_calls"])
    if not calls:
        return "–"
    return f"{calls[0]:,}" if calls[0] == calls[-1] else f"{calls[0]:,}–{calls[-1]:,}"


def cell_table(cells, against):
    """Per cell in Table 4's order: (n, optimizer, sets, mean, sd, (lo, hi)), the interval clipped to [0, 1]."""
    out = []
    for (opt, n) in sorted(cells, key=lambda k: (k[1], *optimizer_rank(k[0], against))):
        sets = cells[(opt, n)]
        mean, sd, (lo, hi) = interval([float(r["test_acc"]) for r in sets.values()])
        out.append((n, opt, sets, mean, sd, (max(lo, 0.0), min(hi, 1.0))))  # an accuracy's interval, as gac report
    return out


def paired_table(cells, against):
    """Per n and pair (a, b), a minus b over the sets both have: (n, a, b, sets, mean, (lo, hi))."""
    others = sorted({opt for opt, _ in cells} - {against})
    pairs = [(a, against) for a in others] + list(itertools.combinations(others, 2))
    out = []
    for n in sorted({n for _, n in cells}):
        for a, b in pairs:
            common = sorted(cells[(a, n)].keys() & cells[(b, n)].keys()) if (a, n) in cells and (b, n) in cells else []
            if common:
                d = [float(cells[(a, n)][r]["test_acc"]) - float(cells[(b, n)][r]["test_acc"]) for r in common]
                mean, _, ci = interval(d)
                out.append((n, a, b, len(d), mean, ci))
    return out


def summary(args):
    cells = load(args.csv)
    print("| n | optimizer | sets | test accuracy (mean ± std) | 95% CI (sets as the unit) | calls per search |")
    print("|---|---|---|---|---|---|")
    for n, opt, sets, mean, sd, (lo, hi) in cell_table(cells, args.against):
        spread = f" ± {sd:.4f}" if len(sets) > 1 else ""
        ci = f"[{lo:.4f}, {hi:.4f}]" if len(sets) > 1 else "– (one set)"
        print(f"| {n} | {opt} | {len(sets)} | {mean:.4f}{spread} | {ci} | {calls_range(sets.values())} |")
    print()
    print("Paired by training set (optimizer minus the other), 95% t interval over the sets both have:")
    for n, a, b, k, mean, (lo, hi) in paired_table(cells, args.against):
        over = f"[{lo:+.4f}, {hi:+.4f}] over {k} sets" if k > 1 else "on one set (no interval)"
        print(f"- n = {n}, {a} − {b}: {mean:+.4f} {over}")


def plot(args):
    """Test accuracy against n per optimizer, and each optimizer minus the baseline paired by set (matplotlib)."""
    cells = load(args.csv)
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        fail(f"plot needs matplotlib for {sys.executable}: install Debian's python3-matplotlib")
    table, paired = cell_table(cells, args.against), paired_table(cells, args.against)
    optimizers = sorted({opt for _, opt, *_ in table}, key=lambda o: optimizer_rank(o, args.against))
    sizes = sorted({n for n, *_ in table})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))

    def shift(i, count):  # side by side on the log axis, not on top of one another
        return 1 + 0.03 * (i - (count - 1) / 2)

    def hollow(ax, points, colour):  # a point of one set has no interval: drawn open, not as a mean
        if points:
            ax.plot(*zip(*points), linestyle="none", marker="o", markerfacecolor="white", color=f"C{colour}", zorder=3)

    for i, opt in enumerate(optimizers):
        rows = [r for r in table if r[1] == opt]
        counts = [len(r[2]) for r in rows]
        sets = (f"{counts[0]} sets at each n" if len(set(counts)) == 1 else
                " / ".join(map(str, counts)) + " sets at n = " + " / ".join(str(r[0]) for r in rows))
        left.errorbar([r[0] * shift(i, len(optimizers)) for r in rows], [r[3] for r in rows],
                      yerr=[[r[3] - r[5][0] for r in rows], [r[5][1] - r[3] for r in rows]],
                      marker="o", capsize=3, color=f"C{i}", label=f"{opt} ({sets})")
        hollow(left, [(r[0] * shift(i, len(optimizers)), r[3]) for r in rows if not math.isfinite(r[5][0])], i)
    for i, opt in enumerate(o for o in optimizers if o != args.against):
        diffs = [p for p in paired if p[1] == opt and p[2] == args.against]
        right.errorbar([p[0] * shift(i, len(optimizers) - 1) for p in diffs], [100 * p[4] for p in diffs],
                       yerr=[[100 * (p[4] - p[5][0]) for p in diffs], [100 * (p[5][1] - p[4]) for p in diffs]],
                       marker="o", capsize=3, color=f"C{optimizers.index(opt)}", label=f"{opt} − {args.against}")
        hollow(right, [(p[0] * shift(i, len(optimizers) - 1), 100 * p[4]) for p in diffs if not math.isfinite(p[5][0])],
               optimizers.index(opt))
    right.axhline(0, color="black", linewidth=0.8)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training set size n")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylabel("test accuracy (mean, 95% t interval over sets)")
    right.set_ylabel(f"minus {args.against}, paired by set (points, 95% t interval)")
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"{args.output}: {len(table)} cells, {sum(1 for p in paired if p[2] == args.against)} paired differences")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = argparse.ArgumentParser(add_help=False)  # what export and add read: a run and its labels
    run.add_argument("dir")
    run.add_argument("--optimizer", help="the optimizer the run must have used (sgd, pattern, greedy); its rows carry it")
    run.add_argument("--build", default="", help="the gac commit that ran it")
    e = sub.add_parser("export", parents=[run], help="CSV rows of a run directory's models")
    e.add_argument("--header", action="store_true", help="write the header line first")
    a = sub.add_parser("add", parents=[run], help="merge a run directory's models into a results CSV (kept sorted)")
    a.add_argument("--to", required=True, help="the CSV (created if missing; sets already there must match)")
    table = argparse.ArgumentParser(add_help=False)  # what summary and plot read: a results CSV and its baseline
    table.add_argument("csv")
    table.add_argument("--against", default="sgd", help="the optimizer the others are paired against (default sgd)")
    sub.add_parser("summary", parents=[table], help="the table and paired differences of a results CSV")
    p = sub.add_parser("plot", parents=[table], help="the table as a figure: accuracy against n, and paired differences")
    p.add_argument("-o", "--output", required=True, help="the image to write (PNG, SVG, PDF: by its suffix)")
    p.add_argument("--title", default="", help="a title over both panels")
    args = parser.parse_args()
    try:
        {"export": export, "add": add, "summary": summary, "plot": plot}[args.command](args)
    except (OSError, ValueError, sqlite3.Error, tomllib.TOMLDecodeError) as e:  # unreadable file, no number
        fail(f"{args.command}: {e}")


if __name__ == "__main__":
    main()
