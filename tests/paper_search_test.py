#!/usr/bin/env python3
"""bench/paper_search.py and `bench/compare --search` (bench/README.md).

  paper_search_test.py SOURCE_DIR args   bad arguments: one line naming the
                                         problem, non-zero exit (no torch needed)
  paper_search_test.py SOURCE_DIR fake   paper_search.py against a stand-in
                                         utils.py written here (a LeNetModels with
                                         the paper's methods that scripts its
                                         batches), then compare against it and a
                                         stand-in gac; exit 77 (skipped) without torch

The stand-ins check what paper_search.py hands the paper's code (the model's
size, the standardized class-balanced training set, the loss) and that its
counts (batches, steps, candidates/s) and compare's ratios and targets follow.
"""
import json
import os
import subprocess
import sys
import tempfile

SOURCE = sys.argv[1]
PAPER_SEARCH = os.path.join(SOURCE, "bench", "paper_search.py")
COMPARE = os.path.join(SOURCE, "bench", "compare")
PYTHON = sys.executable
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}")


def run(cmd, env=None):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, **(env or {})))


def expect_error(cmd, needle):
    r = run(cmd)
    lines = r.stderr.strip().splitlines()
    check(r.returncode != 0 and len(lines) == 1 and needle in r.stderr,
          f"{' '.join(cmd[1:])}: want one line with {needle!r} and a non-zero exit, got {r.returncode}: {r.stderr!r}")


def write_idx(data, stem, count):
    """count 28x28 images of pixel (7 i + p) mod 256, labelled i mod 10 (as tests/test_search_bench.cpp)."""
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, stem + "-images-idx3-ubyte"), "wb") as f:
        f.write((0x803).to_bytes(4, "big") + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
        f.write(bytes((7 * i + p) % 256 for i in range(count) for p in range(28 * 28)))
    with open(os.path.join(data, stem + "-labels-idx1-ubyte"), "wb") as f:
        f.write((0x801).to_bytes(4, "big") + count.to_bytes(4, "big") + bytes(i % 10 for i in range(count)))


def argument_errors(tmp):
    data = os.path.join(tmp, "data")
    write_idx(data, "train", 60)
    paper = os.path.join(tmp, "paper")
    os.makedirs(paper)
    ps = [PYTHON, PAPER_SEARCH]
    expect_error(ps + ["--paper", tmp, "--data", data], "no utils.py in " + tmp)
    expect_error(ps + ["--paper", os.path.join(tmp, "nope"), "--data", data], "is not a directory")
    with open(os.path.join(paper, "utils.py"), "w") as f:
        f.write("import no_such_module_here\n")
    expect_error(ps + ["--paper", paper, "--data", data],
                 "cannot load the paper's LeNetModels from " + os.path.join(paper, "utils.py") +
                 ": ModuleNotFoundError: No module named 'no_such_module_here'")
    expect_error(ps + ["--paper", paper, "--data", os.path.join(tmp, "nodata")], "--data")
    expect_error(ps + ["--paper", paper, "--data", data, "--search", "annealing"],
                 "--search takes pattern or greedy, got 'annealing'")
    expect_error(ps + ["--paper", paper, "--data", data, "--steps", "0"], "--steps must be at least 1, got 0")
    expect_error(ps + ["--paper", paper, "--data", data, "--n", "6000"], "fewer than 2 models per batch")
    with open(os.path.join(paper, "utils.py"), "w") as f:
        f.write("class LeNetModels:\n    pass\n")
    expect_error(ps + ["--paper", paper, "--data", tmp], "no train-images-idx3-ubyte[.gz] in " + tmp)

    cmp = [PYTHON, COMPARE, sys.executable]  # any executable stands in for gac: none of these runs it
    expect_error(cmp + ["--search", "pattern"], "compare: --search needs --paper DIR")
    expect_error(cmp + ["--paper", paper], "compare: --paper applies to --search only")
    expect_error(cmp + ["--steps", "3"], "compare: --steps applies to --search only")
    expect_error(cmp + ["--search", "pattern", "--paper", paper, "--seconds", "2"],
                 "compare: --seconds does not apply to --search")
    expect_error(cmp + ["--search", "pattern,annealing", "--paper", paper],
                 "compare: --search takes pattern or greedy, got 'annealing'")
    expect_error(cmp + ["--search", "pattern", "--paper", tmp, "--data", data], "compare: no utils.py in --paper")
    expect_error(cmp + ["--search", "pattern", "--paper", paper, "--data", os.path.join(tmp, "nodata")],
                 "is not a directory")
    expect_error(cmp + ["--search", "pattern", "--paper", paper, "--data", data, "--steps", "0"],
                 "compare: --steps must be at least 1, got 0")
    expect_error(cmp + ["--search", "pattern", "--paper", paper, "--data", data, "--n", "10", "--n", "20"],
                 "compare: --search takes one --n")
    expect_error([PYTHON, COMPARE, os.path.join(tmp, "nogac"), "--search", "pattern", "--paper", paper,
                  "--data", data], "compare: no gac binary at")


# The stand-in for the paper's utils.py: pattern call k evaluates k % 3 + 1
# batches, then improves; greedy call 0 improves after 2 batches, call 1 gives
# up (30 halvings of 100 batches, here one batch each), call 2 improves at once.
FAKE_UTILS = '''
import json, os
import torch

class LeNetModels(torch.nn.Module):
    def __init__(self, output_dim, width_factor, model_count, dataset, feature_dim=None):
        super().__init__()
        self.args = dict(output_dim=output_dim, width_factor=width_factor, model_count=model_count,
                         dataset=dataset, feature_dim=feature_dim)
        self.radius = 1
        self.calls = 0
        self.initialized = False

    def reinitialize(self, mult=1):
        self.initialized = True

    def forward_normalize(self, x):
        return x.flatten(1)[:, :10]

    def record(self, x, y, loss_func):
        assert self.initialized, "searched before reinitialize()"
        out = self.forward_normalize(x)
        with open(os.environ["FAKE_RECORD"], "w") as f:
            json.dump(dict(self.args, x=x.tolist(), x_dtype=str(x.dtype), y=y.tolist(),
                           loss=loss_func(out, y).tolist()), f)

    @torch.no_grad()
    def pattern_search(self, x, y, loss_func):
        self.record(x, y, loss_func)  # one batch of its own
        for _ in range(self.calls % 3):
            self.forward_normalize(x)
        self.calls += 1

    @torch.no_grad()
    def greedy_random(self, x, y, loss_func):
        self.record(x, y, loss_func)
        self.calls += 1
        if self.calls == 1:
            self.forward_normalize(x)
        elif self.calls == 2:
            for _ in range(30):
                self.forward_normalize(x)
                print(f"radius decreased to {self.radius / 2}")
                self.radius /= 2
'''

# A stand-in gac: `bench --json --search KIND ... --steps K` prints fixed rates.
FAKE_GAC = '''#!/usr/bin/env python3
import json, sys
args = sys.argv[1:]
kind, steps = args[args.index("--search") + 1], int(args[args.index("--steps") + 1])
rows = {"pattern": [("incremental", 400.0, 40000.0), ("full", 2.0, 200.0)], "greedy": [("full", 1.0, 1000.0)]}
print(json.dumps({"steps_limit": steps, "searches": [
    {"kind": kind, "evaluation": e, "steps": steps, "steps_per_s": s, "candidates_per_s": c, "finished": False}
    for e, s, c in rows[kind]]}))
'''


def stand_ins(tmp):
    import numpy as np
    data = os.path.join(tmp, "data")
    write_idx(data, "train", 60)
    paper = os.path.join(tmp, "paper")
    os.makedirs(paper)
    with open(os.path.join(paper, "utils.py"), "w") as f:
        f.write(FAKE_UTILS)
    record = os.path.join(tmp, "record.json")
    env = {"FAKE_RECORD": record}
    r = run([PYTHON, PAPER_SEARCH, "--paper", paper, "--data", data, "--search", "pattern,greedy",
             "--steps", "4", "--n", "20", "--threads", "1"], env)
    check(r.returncode == 0, f"paper_search.py with the stand-in failed: {r.stderr}")
    if r.returncode != 0:
        return
    doc = json.loads(r.stdout)  # the greedy stand-in's prints went to stderr, not into the JSON
    check(doc["threads"] == 1 and doc["torch_version"], f"threads / torch version: {doc}")
    pattern, greedy = doc["searches"]
    # pattern: calls 0..3 evaluate 1 + 2 + 3 + 1 batches, each call a step
    check((pattern["kind"], pattern["models"], pattern["calls"], pattern["steps"], pattern["batches"]) ==
          ("pattern", 10000 // 20, 4, 4, 7), f"pattern counts: {pattern}")
    # greedy: 2 + 31 + 1 + 1 batches; call 1 gave up (no step)
    check((greedy["kind"], greedy["models"], greedy["calls"], greedy["steps"], greedy["batches"]) ==
          ("greedy", 200000 // 20, 4, 3, 35), f"greedy counts: {greedy}")
    for s in (pattern, greedy):
        check(abs(s["candidates_per_s"] - s["batches"] * (s["models"] - 1) / s["seconds"]) <= 1e-9 *
              s["candidates_per_s"], f"candidates/s = batches x (M - 1) / s: {s}")
        check(abs(s["steps_per_s"] - s["steps"] / s["seconds"]) <= 1e-9 * s["steps_per_s"], f"steps/s: {s}")

    # What the paper's code was handed (the last greedy call's record).
    with open(record) as f:
        got = json.load(f)
    check((got["output_dim"], got["width_factor"], got["model_count"], got["dataset"], got["feature_dim"]) ==
          (10, 1.0, 10000, "mnist", None), f"LeNetModels arguments: {got}")
    pixels = np.array([[(7 * i + p) % 256 for p in range(28 * 28)] for i in range(60)], dtype=np.float64) / 255
    want = (pixels[:20] - pixels.mean()) / pixels.std(ddof=1)  # 2 per class: the first 20 in file order
    x = np.array(got["x"])
    check(got["x_dtype"] == "torch.float32" and x.shape == (20, 1, 28, 28), f"x: {got['x_dtype']} {x.shape}")
    check(x.shape == (20, 1, 28, 28) and np.abs(x[:, 0] - want.reshape(20, 28, 28)).max() < 1e-5,
          "x standardized with the training split's mean and std")
    check(got["y"] == [i % 10 for i in range(20)], f"labels: {got['y']}")
    check(len(got["loss"]) == 20, f"loss_func keeps one loss per example (reduction='none'): {got['loss']}")

    # compare over the stand-ins: ratios and targets from both documents.
    gac = os.path.join(tmp, "gac")
    with open(gac, "w") as f:
        f.write(FAKE_GAC)
    os.chmod(gac, 0o755)
    r = run([PYTHON, COMPARE, gac, "--search", "pattern,greedy", "--paper", paper, "--data", data, "--n", "20",
             "--threads", "1", "--json", "--python", PYTHON], env)
    check(r.returncode == 0, f"compare with the stand-ins failed: {r.stderr}")
    if r.returncode != 0:
        return
    doc = json.loads(r.stdout)
    rows = {(c["search"], c["evaluation"]): c for c in doc["comparison"]}
    check(sorted(rows) == [("greedy", "full"), ("pattern", "full"), ("pattern", "incremental")], f"rows: {rows}")
    inc, full, gr = rows[("pattern", "incremental")], rows[("pattern", "full")], rows[("greedy", "full")]
    check(inc["steps"] == full["steps"] == 20 and gr["steps"] == 3, "default steps: 20 pattern, 3 greedy")
    check(doc["paper"]["greedy"]["searches"][0]["steps"] == 2, "greedy's second call gave up on the paper's side")
    for c in (inc, full, gr):
        check(abs(c["steps_ratio"] - c["gac_steps_per_s"] / c["paper_steps_per_s"]) <= 1e-9 * c["steps_ratio"],
              f"steps ratio: {c}")
        check(abs(c["candidates_ratio"] - c["gac_candidates_per_s"] / c["paper_candidates_per_s"]) <=
              1e-9 * c["candidates_ratio"], f"candidates ratio: {c}")
    check(inc["target"] == 100 and full["target"] is None and gr["target"] == 30, "targets: pattern's default 100x")
    for c in (inc, gr):
        check(c["met"] == (c["steps_ratio"] >= c["target"]), f"met: {c}")
    r = run([PYTHON, COMPARE, gac, "--search", "greedy", "--paper", paper, "--data", data, "--n", "20",
             "--threads", "1", "--steps", "2", "--python", PYTHON], env)
    table = r.stdout.splitlines()
    check(r.returncode == 0 and any(line.startswith("greedy ") and (" met" in line or "missed" in line)
                                    for line in table), f"the table's greedy line: {r.stdout} {r.stderr}")


def main():
    mode = sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "args":
            argument_errors(tmp)
        else:
            try:
                import numpy  # noqa: F401
                import torch  # noqa: F401
            except ImportError as e:
                print(f"{e.name} not installed: skipped")
                sys.exit(77)
            stand_ins(tmp)
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("ok")


if __name__ == "__main__":
    main()
