#!/usr/bin/env python3
"""Interop: stored models load with numpy alone and reproduce the ledger.

Runs gac on a small MLP (kink; guess and check, and SGD from the same draws)
and a small LeNet (random 1x28x28 images), then, for one stored model of each, loads the weights with numpy.load, names
them through layout.json, recomputes the normalized training loss and
accuracy in plain numpy from the stored training set, and compares with the
SQLite ledger (loss to 1e-5 relative, accuracy exactly). On IDX files with
classes drawn per training set, rebuilds each stream's training and test sets
from the split files as docs/output.md shows (rows, classes, mean and std under
DIR/data/), bit for bit, and re-scores a model on that test set.
Usage: interop_numpy.py GAC_BINARY SOURCE_DIR   (exit 77 = skipped)
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
except ImportError:
    print("numpy not installed: skipped")
    sys.exit(77)


def state_dict(run, weights_file):
    layout = json.load(open(os.path.join(run, "layout.json")))
    flat = np.load(os.path.join(run, weights_file))
    assert flat.dtype == np.float32 and flat.shape == (layout["n_params"],), (flat.dtype, flat.shape)
    return {t["name"]: flat[t["offset"]:t["offset"] + t["size"]].reshape(t["shape"]) for t in layout["tensors"]}


def conv2d(x, w, b):  # x [N, C, H, W], w [O, C, k, k]: PyTorch's conv2d, no padding
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(2, 3))  # N, C, H', W', k, k
    return np.einsum("nchwij,ocij->nohw", win, w, dtype=np.float64) + b[None, :, None, None]


def maxpool2(x):
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def relu(x):
    return np.maximum(x, 0)


def forward(arch, sd, x):
    """Logits and the product of layer norms (each /3 for LeNet)."""
    x = x.astype(np.float64)
    if arch == "lenet":
        x = maxpool2(relu(conv2d(x, sd["conv1.weight"], sd["conv1.bias"])))
        x = maxpool2(relu(conv2d(x, sd["conv2.weight"], sd["conv2.bias"])))
        x = x.reshape(len(x), -1)
        x = relu(x @ sd["fc1.weight"].T + sd["fc1.bias"])
        x = relu(x @ sd["fc2.weight"].T + sd["fc2.bias"])
        logits = x @ sd["fc3.weight"].T + sd["fc3.bias"]
        names, div = ["conv1", "conv2", "fc1", "fc2", "fc3"], 3.0
    else:
        x = x.reshape(len(x), -1)
        linear = sorted({k.rsplit(".", 1)[0] for k in sd}, key=lambda s: int(s.split(".")[1]))
        for i, name in enumerate(linear):
            x = x @ sd[name + ".weight"].T + (sd[name + ".bias"] if name + ".bias" in sd else 0)
            if i + 1 < len(linear):
                x = relu(x)
        logits, names, div = x, linear, 1.0
    norm = np.prod([np.linalg.norm(sd[n + ".weight"].astype(np.float64)) / div for n in names])
    return logits, norm


def cross_entropy(z, y):
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def check_run(gac, config, run):
    subprocess.run([gac, "run", config, "-o", run, "-q"], check=True, stdout=subprocess.DEVNULL)
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    n, rep, shard, draw, loss, acc, wfile = db.execute(
        "SELECT n, repeat, shard, draw, train_loss, train_acc, file FROM models ORDER BY n, repeat, draw LIMIT 1").fetchone()
    layout = json.load(open(os.path.join(run, "layout.json")))
    sd = state_dict(run, wfile)
    x = np.load(os.path.join(run, "data", f"n{n}_r{rep}_train_x.npy"))
    y = np.load(os.path.join(run, "data", f"n{n}_r{rep}_train_y.npy")).astype(np.int64)
    assert len(x) == n and len(y) == n
    logits, norm = forward(layout["arch"], sd, x.reshape([n] + layout["input_shape"]))
    my_acc = float(np.mean(logits.argmax(axis=1) == y))
    my_loss = cross_entropy(logits / norm, y)
    print(f"{layout['arch']}: draw {draw}: numpy loss {my_loss:.8f} acc {my_acc} | ledger loss {loss:.8f} acc {acc}")
    assert my_acc == acc, (my_acc, acc)
    assert abs(my_loss - loss) <= 1e-5 * abs(loss), (my_loss, loss)


def read_idx(path):
    """An IDX file as a numpy array (docs/output.md's snippet)."""
    data = open(path, "rb").read()
    dims = data[3]
    shape = np.frombuffer(data, ">u4", dims, 4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    open(path, "wb").write(header + array.astype(np.uint8).tobytes())


def rebuilt_split(run, data_dir, n, rep, split):
    """The examples of one stream's split rebuilt from the files, as docs/output.md shows."""
    stem = os.path.join(run, "data", f"n{n}_r{rep}_")
    source = json.load(open(stem + "source.json"))
    rows = np.load(stem + f"{split}_rows.npy")
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte"))
    x = (images[rows] / 255).astype(np.float32)[:, None]  # [N, 1, h, w], scaled as gac scales
    mean, std = np.array(source["mean"])[:, None, None], np.array(source["std"])[:, None, None]
    x = ((x - mean) / std).astype(np.float32)
    y = np.array([source["classes"].index(label) for label in labels[rows]])
    return x, y


def check_test_split(gac, tmp):
    data_dir = os.path.join(tmp, "idx")
    os.makedirs(data_dir)
    rng = np.random.default_rng(1)
    for prefix, count in (("train", 60), ("t10k", 30)):
        write_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte"), rng.integers(0, 256, (count, 28, 28)))
        write_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte"), np.arange(count) % 3)
    config = os.path.join(tmp, "idx.toml")
    open(config, "w").write(f'[data]\nkind = "idx"\npath = "{data_dir}"\nrandom_classes = 2\n'
                            '[model]\narch = "lenet"\nwidth = 0.5\n'
                            '[run]\nn = [4]\nrepeats = 3\nbins = [0.0, 0.6931]\ntarget = 1\n')
    run = os.path.join(tmp, "idx_run")
    subprocess.run([gac, "run", config, "-o", run, "-q"], check=True, stdout=subprocess.DEVNULL)
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    layout = json.load(open(os.path.join(run, "layout.json")))
    classes_seen = set()
    for n, rep, test_acc, test_loss, wfile in db.execute(
            "SELECT n, repeat, test_acc, test_loss, file FROM models ORDER BY n, repeat, draw"):
        x, y = rebuilt_split(run, data_dir, n, rep, "train")
        saved = np.load(os.path.join(run, "data", f"n{n}_r{rep}_train_x.npy"))
        assert np.array_equal(x.reshape(saved.shape), saved), "training set rebuilt from the files differs"
        assert np.array_equal(y, np.load(os.path.join(run, "data", f"n{n}_r{rep}_train_y.npy")))
        x, y = rebuilt_split(run, data_dir, n, rep, "test")
        logits, norm = forward(layout["arch"], state_dict(run, wfile), x)
        my_acc = float(np.mean(logits.argmax(axis=1) == y))
        my_loss = cross_entropy(logits / norm, y)
        print(f"idx n={n} repeat {rep}: numpy test acc {my_acc} loss {my_loss:.8f} | ledger {test_acc} {test_loss:.8f}")
        assert my_acc == test_acc, (my_acc, test_acc)
        assert abs(my_loss - test_loss) <= 1e-5 * abs(test_loss), (my_loss, test_loss)
        classes_seen.add(db.execute("SELECT classes FROM streams WHERE n = ? AND repeat = ?", (n, rep)).fetchone()[0])
    assert len(classes_seen) > 1, classes_seen  # drawn afresh for each training set


def main():
    gac = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        mlp = os.path.join(tmp, "mlp.toml")
        open(mlp, "w").write('[data]\nkind = "kink"\n[model]\narch = "mlp"\nhidden = 10\n'
                             '[run]\nn = [8]\nbins = [0.0, 0.6931]\ntarget = 3\n')
        check_run(gac, mlp, os.path.join(tmp, "mlp_run"))
        mlp_sgd = os.path.join(tmp, "mlp_sgd.toml")  # the stored weights are the trained ones
        open(mlp_sgd, "w").write(open(mlp).read().replace(
            "[run]", '[optimizer]\nkind = "sgd"\nlr = 0.1\nbatch_size = 3\nepochs = 20\n[run]'))
        check_run(gac, mlp_sgd, os.path.join(tmp, "mlp_sgd_run"))

        rng = np.random.default_rng(0)
        for split, count in (("train", 40), ("test", 20)):
            np.save(os.path.join(tmp, f"{split}_x.npy"), rng.standard_normal((count, 1, 28, 28)).astype(np.float32))
            np.save(os.path.join(tmp, f"{split}_y.npy"), np.arange(count) % 2)
        lenet = os.path.join(tmp, "lenet.toml")
        open(lenet, "w").write(
            '[data]\nkind = "npy"\n' + "".join(f'{k} = "{os.path.join(tmp, k)}.npy"\n'
                                                 for k in ("train_x", "train_y", "test_x", "test_y")) +
            '[model]\narch = "lenet"\nwidth = 0.5\n[run]\nn = [4]\nbins = [0.0, 0.6931]\ntarget = 2\n')
        check_run(gac, lenet, os.path.join(tmp, "lenet_run"))
        check_test_split(gac, tmp)
    print("interop: numpy reproduces the ledger")


if __name__ == "__main__":
    main()
