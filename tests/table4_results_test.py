#!/usr/bin/env python3
"""scripts/table4_results.py against gac itself.

  table4_results_test.py GAC SOURCE_DIR

Two small search runs of the same training sets (the kink MLP, pattern and
greedy search, 5 sets at n = 4 and 8) are exported to one CSV; `summary`
must give gac report's per-cell means and intervals and `report --versus`'s
paired differences; `add` merges the runs into one sorted CSV with the same
summary. A set exported twice counts once; sets of another seed pair only
with their own seed. The same set with other weights, a run labelled with
another optimizer, a run on other data or of another configuration, a CSV of
other columns and a directory that is no run are each refused with one line
naming the problem. `plot` draws the same cells and pairs, and
without matplotlib or a writable path says so in one line. The rows of
docs/reproduction.md's Table 4 marked CSV are the shipped CSV's summary.
"""
import csv
import json
import os
import re
import subprocess
import sys
import tempfile

GAC, SOURCE = sys.argv[1], sys.argv[2]
SCRIPT = os.path.join(SOURCE, "scripts", "table4_results.py")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}")


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def script(*args):
    return run([sys.executable, SCRIPT, *args])


def expect_refused(args, needle):
    r = script(*args)
    lines = r.stderr.strip().splitlines()
    check(r.returncode != 0 and len(lines) == 1 and needle in r.stderr,
          f"{' '.join(args)}: expected one error line with '{needle}', got rc {r.returncode}: {r.stderr!r}")


CONFIG = """[data]
kind = "kink"
[model]
arch = "mlp"
hidden = 6
[prior]
kind = "uniform"
[optimizer]
kind = "{kind}"
budget = 80
max_calls = 400
check_every = 5
[run]
seed = 3
n = [4, 8]
repeats = 5
bins = [0, 10]
target = 1
loss = "raw"
"""

def gac_run(tmp, name, config):
    cfg = os.path.join(tmp, name + ".toml")
    with open(cfg, "w") as f:
        f.write(config)
    r = run([GAC, "run", cfg, "-o", os.path.join(tmp, name), "-q"])
    if r.returncode != 0:
        sys.exit(f"gac run {name} failed: {r.stderr}")
    return os.path.join(tmp, name)


with tempfile.TemporaryDirectory() as tmp:
    csv_path = os.path.join(tmp, "results.csv")
    for i, kind in enumerate(["pattern", "greedy"]):
        gac_run(tmp, kind, CONFIG.format(kind=kind))
        e = script("export", os.path.join(tmp, kind), "--optimizer", kind, "--build", "test",
                   *(["--header"] if i == 0 else []))
        check(e.returncode == 0, f"export {kind}: {e.stderr}")
        check(len(e.stdout.strip().splitlines()) == 10 + (i == 0), f"export {kind}: 10 sets expected:\n{e.stdout}")
        with open(csv_path, "a") as f:
            f.write(e.stdout)

    s = script("summary", csv_path, "--against", "pattern")
    check(s.returncode == 0, f"summary: {s.stderr}")
    rows = {(m[1], int(m[0])): m for m in re.findall(
        r"^\| (\d+) \| (\w+) \| 5 \| (0\.\d{4}) ± (0\.\d{4}) \| \[(\d\.\d{4}), (\d\.\d{4})\] \|", s.stdout, re.M)}
    pairs = {int(m[0]): m[1:] for m in re.findall(
        r"^- n = (\d+), greedy − pattern: ([+-]\d\.\d{4}) \[([+-]\d\.\d{4}), ([+-]\d\.\d{4})\] over 5 sets$",
        s.stdout, re.M)}
    check(len(rows) == 4 and len(pairs) == 2, f"summary: 4 cells and 2 pairs expected:\n{s.stdout}")

    versus = json.loads(run([GAC, "report", os.path.join(tmp, "greedy"), "--versus", os.path.join(tmp, "pattern"),
                             "--json"]).stdout)
    for cell in versus["cells"]:
        n = cell["n"]
        for side in ("run", "versus"):
            c = cell[side]
            want = [f"{c['test_acc_mean']:.4f}", f"{c['test_acc_ci_lo']:.4f}", f"{c['test_acc_ci_hi']:.4f}"]
            got = rows.get((c["optimizer"], n))
            check(got is not None and [got[2], got[4], got[5]] == want,
                  f"n = {n} {c['optimizer']}: summary {got} against gac report {want}")
        p = cell["paired"]
        want = [f"{p['test_acc']:+.4f}", f"{p['ci_lo']:+.4f}", f"{p['ci_hi']:+.4f}"]
        check(list(pairs.get(n, ())) == want, f"n = {n} paired: summary {pairs.get(n)} against report --versus {want}")

    # plot: the same cells and pairs as a PNG; an image it cannot write is one error line.
    png = os.path.join(tmp, "table4.png")
    pl = script("plot", csv_path, "--against", "pattern", "-o", png, "--title", "test")
    with open(png if os.path.exists(png) else os.devnull, "rb") as f:
        magic = f.read(8)
    check(pl.returncode == 0 and "4 cells, 2 paired differences" in pl.stdout and magic == b"\x89PNG\r\n\x1a\n",
          f"plot: a PNG of 4 cells and 2 pairs expected: rc {pl.returncode} {pl.stdout!r} {pl.stderr!r}")
    expect_refused(["plot", csv_path, "-o", os.path.join(tmp, "no_such_dir", "t.png")], "No such file")
    nompl = run([sys.executable, "-S", SCRIPT, "plot", csv_path, "-o", png])  # -S: no site-packages, no matplotlib
    check(nompl.returncode != 0 and nompl.stderr.count("\n") == 1 and "plot needs matplotlib" in nompl.stderr,
          f"plot without matplotlib: one error line expected, got rc {nompl.returncode}: {nompl.stderr!r}")

    # add: the same table from either run order, the file sorted; adding again changes nothing.
    added = os.path.join(tmp, "added.csv")
    for kind in ["greedy", "pattern"]:
        a = script("add", os.path.join(tmp, kind), "--optimizer", kind, "--build", "test", "--to", added)
        check(a.returncode == 0 and "10 sets added, 0 already there" in a.stdout, f"add {kind}: {a.stdout}{a.stderr}")
    with open(added) as f:
        added_text = f.read()
    keys = [(r["optimizer"], r["n"], r["repeat"]) for r in csv.DictReader(added_text.splitlines())]
    check(keys == sorted(keys, key=lambda k: (int(k[1]), k[0] != "pattern", int(k[2]))) and len(keys) == 20,
          f"add: 20 rows sorted by n, optimizer and set expected:\n{added_text}")
    check(script("summary", added, "--against", "pattern").stdout == s.stdout, "add: the summary differs from export's")
    a = script("add", os.path.join(tmp, "greedy"), "--to", added)  # the optimizer is the run's own
    check(a.returncode == 0 and "0 sets added, 10 already there" in a.stdout, f"add again: {a.stdout}{a.stderr}")

    # Sets of another seed are other sets: they pair only with sets of that seed.
    seeded = os.path.join(tmp, "seeded.csv")
    with open(seeded, "w") as f:
        f.write(added_text)
    seed4 = gac_run(tmp, "seed4", CONFIG.format(kind="pattern").replace("seed = 3", "seed = 4")
                    .replace("n = [4, 8]", "n = [4]").replace("repeats = 5", "repeats = 2"))
    a = script("add", seed4, "--to", seeded)
    s4 = script("summary", seeded, "--against", "pattern").stdout
    check(a.returncode == 0 and "| 4 | pattern | 7 |" in s4 and "n = 4, greedy − pattern: " in s4
          and s4.count(" over 5 sets") == 2, f"a second seed: 7 pattern sets at n = 4, pairs over 5:\n{a.stderr}{s4}")

    # Runs that are not the table's: labelled wrong, on other data, of another configuration.
    expect_refused(["export", os.path.join(tmp, "greedy"), "--optimizer", "pattern"], "ran greedy, not pattern")
    other_data = gac_run(tmp, "other_data", CONFIG.format(kind="greedy").replace('kind = "kink"',
                                                                                   'kind = "kink"\nmargin = 0.3'))
    expect_refused(["add", other_data, "--to", added], "were trained on other data")
    other_config = gac_run(tmp, "other_config", CONFIG.format(kind="greedy").replace("budget = 80", "budget = 40"))
    expect_refused(["add", other_config, "--to", added], "greedy rows of two configurations")
    with open(added) as f:
        check(f.read() == added_text, "a refused add rewrote the CSV")
    with open(added, "w") as f:
        f.write(re.sub(r",[0-9a-f]{64},", "," + "0" * 64 + ",", added_text, count=1))
    expect_refused(["add", os.path.join(tmp, "pattern"), "--optimizer", "pattern", "--to", added],
                   "is there with other weights")
    with open(added) as f:
        check("0" * 64 in f.read(), "a refused add rewrote the CSV")
    with open(added, "w") as f:  # a CSV that already holds two models of one set
        f.write(added_text + re.sub(r",[0-9a-f]{64},", "," + "0" * 64 + ",", added_text.splitlines()[1]) + "\n")
    expect_refused(["add", os.path.join(tmp, "pattern"), "--optimizer", "pattern", "--to", added],
                   "has two different models")

    # The same sets exported again count once.
    with open(csv_path) as f:
        lines = f.read().splitlines()
    with open(csv_path, "a") as f:
        f.write("\n".join(lines[1:6]) + "\n")
    again = script("summary", csv_path, "--against", "pattern")
    check(again.stdout == s.stdout, f"a set exported twice changed the summary:\n{again.stdout}")

    # The same set with other weights: the runs disagree.
    with open(csv_path, "a") as f:
        f.write(re.sub(r",[0-9a-f]{64},", "," + "0" * 64 + ",", lines[1]) + "\n")
    expect_refused(["summary", csv_path], "has two different models")

    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write("n,repeat,test_acc\n100,0,0.5\n")
    expect_refused(["summary", bad], "expected the columns")
    with open(bad, "w") as f:
        f.write(",".join(["optimizer", "n", "seed", "repeat", "test_acc", "test_loss", "train_loss", "search_calls",
                          "search_radius", "seconds", "weights_sha256", "data_key", "config_key", "build"])
                + "\nsgd,100,0,0,abc,,,,,,x,d,c,y\n")
    expect_refused(["summary", bad], "could not convert string to float: 'abc'")
    expect_refused(["summary", os.path.join(tmp, "missing.csv")], "No such file")
    expect_refused(["export", tmp, "--optimizer", "x"], "not a gac run directory")

# The shipped CSV and docs/reproduction.md agree: the table's rows marked CSV
# are exactly the cells `summary` prints from docs/results/table4_mnist.csv.
NAMES = {"sgd": "SGD", "pattern": "pattern search", "greedy": "greedy random search"}
CELL = r"\| (\d+) \| ([^|]+?) \|{} (\d+) \| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|$"
shipped = script("summary", os.path.join(SOURCE, "docs", "results", "table4_mnist.csv"))
check(shipped.returncode == 0, f"summary of the shipped CSV failed: {shipped.stderr!r}")
from_csv = {(m[1], NAMES.get(m[2], m[2])) + m.groups()[2:]
            for m in (re.match(CELL.format(""), line) for line in shipped.stdout.splitlines()) if m}
with open(os.path.join(SOURCE, "docs", "reproduction.md")) as f:
    in_docs = {m.groups() for m in (re.match(CELL.format(" CSV \\|"), line) for line in f.read().splitlines()) if m}
check(from_csv and from_csv == in_docs,
      f"docs/reproduction.md's CSV rows differ from the shipped CSV's summary: only in the CSV "
      f"{sorted(from_csv - in_docs)}, only in the docs {sorted(in_docs - from_csv)}")

if failures:
    sys.exit(f"{len(failures)} failure(s)")
print("table4_results: summary matches gac report and report --versus")
