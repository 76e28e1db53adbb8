#!/usr/bin/python3
"""The PyTorch baseline of `gac bench`: guess and check the way the paper's code does it.

All draws of a batch go through ONE batched forward pass:
  - MLP: the batch's weights are stacked tensors [B, out, in] applied with torch.matmul/bmm;
  - LeNet: the B models are the groups of grouped convolutions (the input repeated B times
    along the channel axis, conv2d(groups=B)), and the fully connected layers are bmm.
Every parameter is re-drawn from uniform[-1, 1] in place (tensor.uniform_) for each batch.
Logits are normalized by the product of the per-layer Frobenius weight norms (biases
excluded; for LeNet each norm is first divided by 3), then cross-entropy and accuracy are
computed over all n training examples, and the perfect draws (accuracy 1) are counted.
Nothing stops early: every draw is evaluated on every example.

Scenarios and data are those of `gac bench` (include/gac/bench.h):
  kink-mlp  kink data, MLP 2->10->2 (no hidden bias, output bias), n=16
  lenet-28  LeNet w0.5 on 1x28x28, Fashion-MNIST classes 0/1 (synthetic if not installed), n=2,16,32
  lenet-32  LeNet w0.5 on 3x32x32, synthetic images, n=16

Run it with a python that has torch and numpy: Debian's (/usr/bin/python3 with python3-torch and
python3-numpy), or a GPU machine's own (bench/compare --python).
"""
import argparse
import gzip
import json
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# Debian's dataset-fashion-mnist, or the directory GAC_FASHION_MNIST names (as for `gac bench`).
FASHION_DIR = os.environ.get("GAC_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist"
SCENARIOS = {
    # name: (default ns, default draws per forward pass): the fastest batches found on a
    # 2-core CPU (bench/README.md), so that the comparison does not flatter gac.
    "kink-mlp": ([16], 65536),
    "lenet-28": ([2, 16, 32], 512),
    "lenet-32": ([16], 256),
}


# ---------------------------------------------------------------- data

def kink_pool():
    """The paper's kink set: y = -|x| (label 1) and the same shifted up by 0.25 (label 0)."""
    x = np.linspace(-1, 1, 2000)
    lower = np.stack([x, -np.abs(x)], axis=1)
    upper = np.stack([x, -np.abs(x) + 0.25], axis=1)
    X = np.concatenate([lower, upper]).astype(np.float32)
    y = np.concatenate([np.ones(2000), np.zeros(2000)]).astype(np.int64)
    return X, y


def read_idx(path):
    """An IDX file (.gz or raw) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(FASHION_DIR, name)
        if os.path.exists(path):
            return path
    return None


def fashion_01():
    """Fashion-MNIST training images of classes 0 and 1 scaled to [0, 1], or None."""
    images, labels = find_idx("train-images-idx3-ubyte"), find_idx("train-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    X, y = read_idx(images), read_idx(labels)
    keep = (y == 0) | (y == 1)
    return (X[keep].astype(np.float32) / 255.0)[:, None, :, :], y[keep].astype(np.int64)


def synthetic_images(c, h, w, count=256, seed=12345):
    """Random images in [0, 1) with alternating labels (speed does not depend on the pixels)."""
    rng = np.random.default_rng(seed)
    return rng.random((count, c, h, w), dtype=np.float32), (np.arange(count) % 2).astype(np.int64)


def standardize(X):
    """Per-channel standardization with the training split's mean and std, as gac does."""
    axes = (0, 2, 3)
    return (X - X.mean(axis=axes, keepdims=True)) / X.std(axis=axes, keepdims=True)


def balanced_subset(X, y, n, rng):
    """n examples, n/2 of each class (the first class gets the odd one), in shuffled order."""
    picks = []
    for k, cls in enumerate((0, 1)):
        share = n // 2 + (1 if k < n % 2 else 0)
        picks.append(rng.choice(np.flatnonzero(y == cls), size=share, replace=False))
    idx = rng.permutation(np.concatenate(picks))
    return X[idx], y[idx]


def training_set(scenario, n, seed=0):
    """(X, y, data name) of the scenario's training set of size n."""
    rng = np.random.default_rng(seed)
    if scenario == "kink-mlp":
        X, y = kink_pool()
        idx = rng.permutation(len(y))[:n]
        return X[idx], y[idx], "kink"
    if scenario == "lenet-28":
        real = fashion_01()
        X, y = real if real is not None else synthetic_images(1, 28, 28)
        name = "fashion-mnist 0/1" if real is not None else "synthetic 1x28x28"
    else:
        X, y = synthetic_images(3, 32, 32)
        name = "synthetic 3x32x32"
    X, y = balanced_subset(standardize(X), y, n, rng)
    return X, y, name


# ---------------------------------------------------------------- batched models

class BatchedMLP:
    """B copies of the paper's MLP d -> h -> C (no hidden bias, one output bias)."""

    def __init__(self, B, d, h, C, device):
        self.W1 = torch.empty(B, h, d, device=device)
        self.W2 = torch.empty(B, C, h, device=device)
        self.b2 = torch.empty(B, C, device=device)
        self.flops_per_example = 2 * (h * d + C * h)

    def params(self):
        return [self.W1, self.W2, self.b2]

    def raw_logits(self, x):  # x [n, d] -> [B, n, C]
        hidden = torch.relu(torch.matmul(x, self.W1.transpose(1, 2)))          # [B, n, h]
        return torch.bmm(hidden, self.W2.transpose(1, 2)) + self.b2[:, None, :]  # [B, n, C]

    def logits(self, x):
        norm = self.W1.flatten(1).norm(dim=1) * self.W2.flatten(1).norm(dim=1)
        return self.raw_logits(x) / norm[:, None, None]


class BatchedLeNet:
    """B copies of LeNet (width w): the models are the groups of grouped convolutions."""

    def __init__(self, B, c, hw, C, device, width=0.5):
        c1, c2, f1, f2 = int(6 * width), int(16 * width), int(120 * width), int(84 * width)
        s1 = (hw - 4) // 2          # after conv1 (5x5) and pool
        s2 = (s1 - 4) // 2          # after conv2 and pool
        flat = c2 * s2 * s2
        self.B, self.c = B, c
        self.conv1_w = torch.empty(B * c1, c, 5, 5, device=device)
        self.conv1_b = torch.empty(B * c1, device=device)
        self.conv2_w = torch.empty(B * c2, c1, 5, 5, device=device)
        self.conv2_b = torch.empty(B * c2, device=device)
        self.fc = [(torch.empty(B, o, i, device=device), torch.empty(B, o, device=device))
                   for i, o in ((flat, f1), (f1, f2), (f2, C))]
        conv = 2 * c1 * c * 25 * (hw - 4) ** 2 + 2 * c2 * c1 * 25 * (s1 - 4) ** 2
        self.flops_per_example = conv + 2 * (flat * f1 + f1 * f2 + f2 * C)

    def params(self):
        return [self.conv1_w, self.conv1_b, self.conv2_w, self.conv2_b] + [t for pair in self.fc for t in pair]

    def raw_logits(self, x):  # x [n, c, H, W] -> [B, n, C]
        n, B = x.shape[0], self.B
        a = x.repeat(1, B, 1, 1)                                          # [n, B*c, H, W]
        a = F.max_pool2d(torch.relu(F.conv2d(a, self.conv1_w, self.conv1_b, groups=B)), 2)
        a = F.max_pool2d(torch.relu(F.conv2d(a, self.conv2_w, self.conv2_b, groups=B)), 2)
        a = a.reshape(n, B, -1).transpose(0, 1)                           # [B, n, flat]
        for k, (W, b) in enumerate(self.fc):
            a = torch.bmm(a, W.transpose(1, 2)) + b[:, None, :]
            if k < len(self.fc) - 1:
                a = torch.relu(a)
        return a

    def logits(self, x):
        B = self.B
        weights = [self.conv1_w.reshape(B, -1), self.conv2_w.reshape(B, -1)] + [W.flatten(1) for W, _ in self.fc]
        norm = torch.ones(B, device=x.device)
        for w in weights:
            norm = norm * (w.norm(dim=1) / 3)
        return self.raw_logits(x) / norm[:, None, None]


def make_model(scenario, B, device):
    if scenario == "kink-mlp":
        return BatchedMLP(B, 2, 10, 2, device)
    if scenario == "lenet-28":
        return BatchedLeNet(B, 1, 28, 2, device)
    return BatchedLeNet(B, 3, 32, 2, device)


# ---------------------------------------------------------------- measurement

def check_batch(model, x, y):
    """Draw every parameter anew, evaluate all draws on all examples; returns the perfect count."""
    for p in model.params():
        p.uniform_(-1.0, 1.0)
    z = model.logits(x)                                                   # [B, n, C]
    B, n, C = z.shape
    loss = F.cross_entropy(z.reshape(B * n, C), y.repeat(B), reduction="none").view(B, n).mean(dim=1)
    perfect = (z.argmax(dim=2) == y).all(dim=1)
    loss[~perfect] = float("nan")  # only perfect draws are kept (with their loss)
    return int(perfect.sum())


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(scenario, n, batch, seconds, device):
    X, y, data_name = training_set(scenario, n)
    x = torch.from_numpy(np.ascontiguousarray(X)).to(device)
    t = torch.from_numpy(y).to(device)
    model = make_model(scenario, batch, device)
    with torch.inference_mode():
        check_batch(model, x, t)  # warm-up
        synchronize(device)
        draws = perfect = 0
        start = time.perf_counter()
        while True:
            perfect += check_batch(model, x, t)
            draws += batch
            synchronize(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return {
        "scenario": scenario, "data": data_name, "n": n, "device": device.type, "batch": batch,
        "seconds": elapsed, "draws": draws, "perfect_draws": perfect,
        "draws_per_s": draws / elapsed, "examples_per_s": draws * n / elapsed,
        "flops_per_example": model.flops_per_example,
        "gflops": draws * n * model.flops_per_example / elapsed / 1e9,
    }


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                    help="scenario to run (repeatable; default: all)")
    ap.add_argument("--n", action="append", type=int, help="training-set size (repeatable; default: the scenario's)")
    ap.add_argument("--seconds", type=float, default=2.0, help="timed length of each measurement")
    ap.add_argument("--batch", type=int, help="draws per forward pass (default: per scenario)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("pytorch_baseline: --device cuda but this PyTorch has no usable CUDA device")

    rows = []
    for scenario in args.scenario or list(SCENARIOS):
        ns, default_batch = SCENARIOS[scenario]
        for n in args.n or ns:
            row = measure(scenario, n, args.batch or default_batch, args.seconds, device)
            print(f"pytorch: {scenario} n={n} {device.type}: {row['draws_per_s']:,.0f} draws/s", file=sys.stderr)
            rows.append(row)

    if args.json:
        doc = {
            "tool": "pytorch_baseline",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch_version": torch.__version__,
            "machine": {"cpu_model": cpu_model(), "cores": os.cpu_count(), "threads": threads,
                        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None},
            "measurements": rows,
        }
        print(json.dumps(doc, indent=2))
        return
    print(f"PyTorch {torch.__version__} baseline: {cpu_model()}, {threads} threads, device {device.type}")
    print(f"{'scenario':<9} {'n':>3} {'batch':>6} {'draws/s':>12} {'ex-evals/s':>13} {'GFLOP/s':>8}  data")
    for r in rows:
        print(f"{r['scenario']:<9} {r['n']:>3} {r['batch']:>6} {r['draws_per_s']:>12,.0f} "
              f"{r['examples_per_s']:>13,.0f} {r['gflops']:>8.2f}  {r['data']}")


if __name__ == "__main__":
    main()
