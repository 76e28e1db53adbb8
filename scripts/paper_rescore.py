#!/usr/bin/python3
"""Re-scores a gac run's stored models with the paper's own model classes.

usage: scripts/paper_rescore.py RUN --paper DIR [--data DIR] [--limit N]

--paper is a checkout of github.com/Ping-C/optimizer: only its utils.py is
loaded, at run time (nothing of it is copied into gac). Each stored model is
put into the paper's MLPModels, LinearModels or LeNetModels (its batched
layout: weights [1, M, in, out] for the MLP and linear models, grouped
convolutions for LeNet) and scored by the paper's calculate_loss_acc with
nn.CrossEntropyLoss(reduction='none'), on forward_normalize for the
normalized loss (run.loss = "normalized") and on forward for accuracy, as the
paper's train_distributed.py scores and keeps its models:
  - on the stream's training set (DIR/data/n{n}_r{rep}_train_*.npy): training
    accuracy and loss, and whether the loss lies in the model's bin;
  - on its test set: for kink and slab the stored one, for image and user data
    the rows of DIR/data/..._test_rows.npy read from the data files (the
    config's data.path, or --data) and standardized with ..._source.json's
    mean and std, as docs/output.md shows.
Each is compared with the ledger: accuracies exactly, losses to 1e-4 relative
(the paper's float32 sums run in another order than gac's). One line per
stream, then a summary; exit 0 when every model agrees, 1 when one does not,
2 on an error (one line).
"""
import argparse
import gzip
import json
import os
import sqlite3
import sys
import tomllib

from paper_code import load_paper_utils

LOSS_RTOL = 2e-5
ACTIVATION_BUDGET = 1 << 27  # floats of the widest activation per chunk of examples (512 MB)


def fail(message):
    print(f"paper_rescore: {message}", file=sys.stderr)
    sys.exit(2)


try:
    import numpy as np
    import torch
except ImportError as e:
    fail(f"needs numpy and PyTorch ({e.name} is missing: apt-get install python3-torch)")


# ---- The run ---------------------------------------------------------------------------------------------

def read_file(path, parse, mode):
    """parse(open file), or one error naming the file."""
    try:
        with open(path, "r" + mode) as f:
            return parse(f)
    except (OSError, ValueError) as e:  # JSON and TOML errors are ValueErrors
        fail(f"{path}: cannot read ({type(e).__name__}: {e})")


class Run:
    def __init__(self, path):
        self.path = path
        for name in ("layout.json", "config.toml", "ledger.sqlite"):
            if not os.path.isfile(os.path.join(path, name)):
                fail(f"{path} is not a gac run directory (no {name})")
        self.layout = read_file(os.path.join(path, "layout.json"), json.load, "")
        self.config = read_file(os.path.join(path, "config.toml"), tomllib.load, "b")
        self.db = sqlite3.connect(f"file:{os.path.join(path, 'ledger.sqlite')}?mode=ro", uri=True)
        self.edges = json.loads(self.db.execute("SELECT value FROM meta WHERE key = 'run_meta'").fetchone()[0])["bin_edges"]

    def section(self, name):
        return self.config.get(name, {})

    def tensors(self, file):
        """The stored model's tensors by state_dict name."""
        try:
            flat = np.load(os.path.join(self.path, file))
        except (OSError, ValueError) as e:
            fail(f"{os.path.join(self.path, file)}: cannot read the stored model ({e}); gac verify lists what is damaged")
        if flat.dtype != np.float32 or flat.shape != (self.layout["n_params"],):
            fail(f"{file}: expected {self.layout['n_params']} float32 values, got {flat.dtype} {flat.shape}")
        return {t["name"]: flat[t["offset"]:t["offset"] + t["size"]].reshape(t["shape"]) for t in self.layout["tensors"]}

    def streams(self, limit):
        """(n, repeat) -> the ledger's rows of its models, in draw order; at most `limit` models per stream."""
        out = {}
        for row in self.db.execute("SELECT n, repeat, shard, draw, bin, train_loss, train_acc, test_loss, test_acc, file "
                                   "FROM models ORDER BY n, repeat, shard, draw, bin"):
            rows = out.setdefault((row[0], row[1]), [])
            if limit is None or len(rows) < limit:
                rows.append(row)
        return out


# ---- The stream's data, as gac scored it -----------------------------------------------------------------

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(np.frombuffer(raw, ">u4", dims, 4))


def existing(path):
    for candidate in (path, path + ".gz"):
        if os.path.isfile(candidate):
            return candidate
    fail(f"missing data file {path} (give the data's directory with --data)")


def read_csv(path, label_column):
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    rows = [[field.strip() for field in line.split(",")] for line in lines]

    def numeric(row):
        try:
            [float(v) for v in row]
            return True
        except ValueError:
            return False
    if rows and not numeric(rows[0]):
        rows = rows[1:]  # a header line
    table = np.array([[float(v) for v in row] for row in rows])
    column = label_column % table.shape[1]
    return np.delete(table, column, axis=1), table[:, column].astype(np.int64)


def test_split_files(run, data_dir):
    """The test split's features (as gac scales them: bytes / 255) and original labels."""
    data = run.section("data")
    kind = data["kind"]
    if kind == "idx":
        stem = os.path.join(data_dir or data["path"], data.get("prefix", "") + "t10k-")
        return (read_idx(existing(stem + "images-idx3-ubyte")) / 255.0)[:, None], \
            read_idx(existing(stem + "labels-idx1-ubyte")).astype(np.int64)
    if kind == "cifar10":
        with open(existing(os.path.join(data_dir or data["path"], "test_batch.bin")), "rb") as f:
            records = np.frombuffer(f.read(), np.uint8).reshape(-1, 3073)
        return (records[:, 1:] / 255.0).reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)
    if kind == "npy":
        return np.load(data["test_x"]).astype(np.float64), np.load(data["test_y"]).astype(np.int64)
    if kind == "csv":
        return read_csv(data["test_file"], data.get("label_column", -1))
    fail(f"data.kind {kind} has no data files")


class StreamData:
    """The training and test sets of one stream (n, repeat), as gac scored them."""

    def __init__(self, run, n, rep, data_dir, test_files):
        stem = os.path.join(run.path, "data", f"n{n}_r{rep}_")
        # LeNetModels takes [N, c, h, w]; MLPModels and LinearModels take [N, features].
        shape = run.layout["input_shape"] if run.layout["arch"] == "lenet" else [int(np.prod(run.layout["input_shape"]))]
        self.train_x = np.load(stem + "train_x.npy").reshape([-1] + shape)
        self.train_y = np.load(stem + "train_y.npy").astype(np.int64)
        if os.path.isfile(stem + "test_x.npy"):  # kink, slab: the test set itself
            self.test_x = np.load(stem + "test_x.npy").reshape([-1] + shape)
            self.test_y = np.load(stem + "test_y.npy").astype(np.int64)
            return
        x, labels = test_files
        rows = np.load(stem + "test_rows.npy")
        source = read_file(stem + "source.json", json.load, "")
        x = x[rows].reshape(len(rows), -1).astype(np.float32)
        if source["mean"]:  # one mean and std per channel, or per feature of flat data
            groups = len(source["mean"])
            grouped = x.reshape(len(rows), groups, -1)
            x = ((grouped - np.array(source["mean"])[:, None]) / np.array(source["std"])[:, None]).astype(np.float32)
        self.test_x = x.reshape([-1] + shape)
        classes = source["classes"]
        self.test_y = np.array([classes.index(label) for label in labels[rows]], np.int64)


# ---- The paper's models, holding gac's stored tensors ----------------------------------------------------

def paper_model(paper, run, models):
    """One paper model object of len(models) models (models: tensors by gac's state_dict name)."""
    layout, spec = run.layout, run.section("model")
    arch, classes, m = layout["arch"], layout["n_classes"], len(models)
    stack = lambda name, f=lambda a: a: torch.from_numpy(np.stack([f(t[name]) for t in models]))
    if arch == "mlp":
        if spec.get("hidden_bias", False):
            fail("the paper's MLPModels has no hidden biases; this run has model.hidden_bias = true")
        layers = spec["layers"]
        obj = paper.MLPModels(input_dim=int(np.prod(layout["input_shape"])), output_dim=classes, layers=layers,
                              hidden_units=spec["hidden"], model_count=m, device=torch.device("cpu"))
        state = {f"weights.{i}": stack(f"layers.{2 * i}.weight", np.transpose)[None] for i in range(layers + 1)}
        state["bias"] = stack(f"layers.{2 * layers}.bias")[None]
    elif arch == "linear":
        obj = paper.LinearModels(input_dim=int(np.prod(layout["input_shape"])), output_dim=classes, model_count=m,
                                 device=torch.device("cpu"))
        state = {"weight": stack("fc.weight", np.transpose)[None], "bias": stack("fc.bias")[None]}
    elif arch == "lenet":
        dataset = {(1, 28, 28): "mnist", (3, 32, 32): "cifar10"}.get(tuple(layout["input_shape"]))
        if dataset is None:
            fail(f"the paper's LeNetModels takes 1x28x28 or 3x32x32 images; this run's are {layout['input_shape']}")
        obj = paper.LeNetModels(output_dim=classes, width_factor=spec["width"], model_count=m, dataset=dataset)
        # Grouped convolutions: model j holds the j-th block of output channels; fc layers are 1x1 convolutions.
        state = {}
        for name in ("conv1", "conv2", "fc1", "fc2", "fc3"):
            w = np.concatenate([t[f"{name}.weight"] for t in models])
            state[f"{name}.weight"] = torch.from_numpy(w.reshape(w.shape + (1, 1)) if w.ndim == 2 else w)
            state[f"{name}.bias"] = torch.from_numpy(np.concatenate([t[f"{name}.bias"] for t in models]))
    else:
        fail(f"the paper has no model of arch {arch}")
    try:
        obj.load_state_dict(state)
    except RuntimeError as e:
        fail(f"the paper's {type(obj).__name__} does not take this run's tensors: {str(e).splitlines()[0]}")
    return obj


def widest_activation(run):
    """Floats per example and model of the widest layer output (chunks examples to bound memory)."""
    layout, spec = run.layout, run.section("model")
    if layout["arch"] == "lenet":
        c, h, w = layout["input_shape"]
        return max(c, int(6 * spec["width"])) * h * w
    return max(int(np.prod(layout["input_shape"])), spec.get("hidden", 0), layout["n_classes"])


def score(paper, obj, forward, x, y, chunk):
    loss_func = torch.nn.CrossEntropyLoss(reduction="none")
    with torch.no_grad():
        return paper.calculate_loss_acc(torch.from_numpy(x), torch.from_numpy(y), forward, loss_func, batch_size=chunk)


# ---- Comparing with the ledger ---------------------------------------------------------------------------

def close(a, b):
    return abs(a - b) <= LOSS_RTOL * max(abs(a), abs(b), 1e-30)


def check_stream(paper, run, data, rows, batch):
    """Disagreements between the paper's scores and the ledger's rows, as lines, and the largest loss gaps."""
    normalized = run.section("run").get("loss", "normalized") == "normalized"
    problems, gap = [], {"train": 0.0, "test": 0.0}
    per_model = widest_activation(run)
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        obj = paper_model(paper, run, [run.tensors(r[9]) for r in part])
        chunk = max(1, ACTIVATION_BUDGET // (per_model * len(part)))
        loss_of = obj.forward_normalize if normalized else obj
        scores = {}
        for split, x, y in (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
            loss, _ = score(paper, obj, loss_of, x, y, chunk)
            _, acc = score(paper, obj, obj, x, y, chunk)
            scores[split] = (loss.numpy().astype(np.float64), acc.numpy().astype(np.float64))
        for j, (n, rep, shard, draw, b, train_loss, train_acc, test_loss, test_acc, file) in enumerate(part):
            for split, ledger_loss, ledger_acc in (("train", train_loss, train_acc), ("test", test_loss, test_acc)):
                loss, acc = scores[split][0][j], scores[split][1][j]
                gap[split] = max(gap[split], abs(loss - ledger_loss) / max(abs(ledger_loss), 1e-30))
                size = len(data.train_y if split == "train" else data.test_y)
                if round(acc * size) != round(ledger_acc * size):
                    problems.append(f"{file}: {split} accuracy {acc:.6f} by the paper's code, {ledger_acc:.6f} in the ledger")
                if not close(loss, ledger_loss):
                    problems.append(f"{file}: {split} loss {loss:.8g} by the paper's code, {ledger_loss:.8g} in the ledger")
            loss = scores["train"][0][j]
            lo, hi = run.edges[b], run.edges[b + 1]
            if not (lo < loss <= hi) and not (close(loss, lo) or close(loss, hi)):
                problems.append(f"{file}: training loss {loss:.8g} by the paper's code is outside its bin ({lo}, {hi}]")
    return problems, gap


def plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def main(argv):
    try:
        return rescore(argv)
    except (OSError, ValueError, KeyError, sqlite3.Error) as e:  # a damaged run directory
        fail(f"{type(e).__name__}: {e}")


def rescore(argv):
    ap = argparse.ArgumentParser(prog="paper_rescore.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a gac run directory")
    ap.add_argument("--paper", required=True, help="a checkout of github.com/Ping-C/optimizer (its utils.py)")
    ap.add_argument("--data", help="the data files' directory (default: the run's data.path)")
    ap.add_argument("--limit", type=int, help="at most this many models per stream")
    ap.add_argument("--batch", type=int, default=64, help="models per paper model object (default 64)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1 or args.batch < 1:
        fail("--limit and --batch must be at least 1")
    run = Run(args.run)
    paper = load_paper_utils(args.paper, fail, ["calculate_loss_acc", "MLPModels", "LinearModels", "LeNetModels"])
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    streams = run.streams(args.limit)
    if not streams:
        fail(f"{args.run} holds no stored models yet")
    test_files = None if run.section("data")["kind"] in ("kink", "slab") else test_split_files(run, args.data)
    problems, models, gap = [], 0, {"train": 0.0, "test": 0.0}
    for (n, rep), rows in streams.items():
        data = StreamData(run, n, rep, args.data, test_files)
        found, stream_gap = check_stream(paper, run, data, rows, args.batch)
        models += len(rows)
        problems += found
        gap = {k: max(gap[k], stream_gap[k]) for k in gap}
        print(f"n={n} repeat {rep}: {plural(len(rows), 'model')}, {plural(len(found), 'disagreement')}; largest relative loss gap "
              f"train {stream_gap['train']:.2g}, test {stream_gap['test']:.2g}")
    for line in problems:
        print("DISAGREES " + line)
    verdict = "agrees with the ledger on every one" if not problems else plural(len(problems), "disagreement")
    print(f"the paper's code re-scored {plural(models, 'model')} of {args.run}: {verdict} (accuracies exactly; losses within "
          f"{LOSS_RTOL:g} relative, largest gap train {gap['train']:.2g}, test {gap['test']:.2g})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
