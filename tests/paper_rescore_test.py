#!/usr/bin/python3
"""scripts/paper_rescore.py: gac's stored models re-scored by the paper's model classes.

  paper_rescore_test.py GAC_BINARY SOURCE_DIR     (exit 77 = skipped: no numpy or PyTorch)

The paper's utils.py cannot be fetched here, so a stand-in written for this test
takes its place: MLPModels, LinearModels and LeNetModels with the paper's
constructor arguments and parameter layout (weights [1, M, in, out] and bias
[1, M, out]; LeNet's grouped convolutions, one block of channels per model,
its fc layers 1x1 convolutions), computed here model by model with
torch.nn.functional, and calculate_loss_acc returning per-model means. With
GAC_PAPER_DIR set to a checkout of github.com/Ping-C/optimizer the same runs
are re-scored by the paper's own utils.py too.

Small runs of the MLP (kink, two hidden layers), the linear model and LeNet
(IDX files written here, classes drawn per training set, so the test rows and
statistics must be rebuilt) must agree on every model; a model whose last layer
is negated must be named; bad input (a damaged run directory too) is one line
and exit 2.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch  # noqa: F401 (the script needs it)
except ImportError:
    print("numpy or PyTorch not installed: skipped")
    sys.exit(77)

GAC, SOURCE = sys.argv[1], sys.argv[2]
SCRIPT = os.path.join(SOURCE, "scripts", "paper_rescore.py")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}")


STAND_IN = '''
import torch
import torch.nn.functional as F
from torch import nn


def calculate_loss_acc(data, labels, model, loss_func, batch_size=None):
    step = batch_size or len(data)
    logits = torch.cat([model(data[i:i + step]) for i in range(0, len(data), step)])  # [N, M, classes]
    losses = torch.stack([loss_func(logits[:, j], labels) for j in range(logits.shape[1])], 1)
    hits = (logits.argmax(2) == labels[:, None]).float()
    return losses.mean(0), hits.mean(0)


def per_model_matmul(h, w):  # h [N, M, in] (or [N, in]), w [1, M, in, out]
    if h.dim() == 2:
        h = h[:, None, :].expand(-1, w.shape[1], -1)
    return torch.einsum("nmi,mio->nmo", h, w[0])


class MLPModels(nn.Module):
    def __init__(self, input_dim, output_dim, layers, hidden_units, model_count, device):
        super().__init__()
        sizes = [input_dim] + [hidden_units] * layers + [output_dim]
        self.weights = nn.ParameterList([nn.Parameter(torch.zeros(1, model_count, a, b)) for a, b in zip(sizes, sizes[1:])])
        self.bias = nn.Parameter(torch.zeros(1, model_count, output_dim))

    def forward(self, x):
        h = x
        for i, w in enumerate(self.weights):
            h = per_model_matmul(h, w)
            if i + 1 < len(self.weights):
                h = h.clamp(min=0)
        return h + self.bias[0]

    def forward_normalize(self, x):
        scale = torch.ones(self.bias.shape[1])
        for w in self.weights:
            scale = scale * w[0].flatten(1).norm(dim=1)
        return self.forward(x) / scale[None, :, None]


class LinearModels(nn.Module):
    def __init__(self, input_dim, output_dim, model_count, device):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, model_count, input_dim, output_dim))
        self.bias = nn.Parameter(torch.zeros(1, model_count, output_dim))

    def forward(self, x):
        return per_model_matmul(x.flatten(1), self.weight) + self.bias[0]

    def forward_normalize(self, x):
        return self.forward(x) / self.weight[0].flatten(1).norm(dim=1)[None, :, None]


class Layer(nn.Module):  # holds one grouped layer: model j's block is rows [j o, (j + 1) o)
    def __init__(self, out, inp, k, m):
        super().__init__()
        self.out = out
        self.weight = nn.Parameter(torch.zeros(out * m, inp, k, k))
        self.bias = nn.Parameter(torch.zeros(out * m))

    def block(self, j):
        return self.weight[j * self.out:(j + 1) * self.out], self.bias[j * self.out:(j + 1) * self.out]


class LeNetModels(nn.Module):
    def __init__(self, output_dim, width_factor, model_count, dataset, feature_dim=None):
        super().__init__()
        channels, side = {"mnist": (1, 4), "cifar10": (3, 5)}[dataset]
        c1, c2, f1 = int(6 * width_factor), int(16 * width_factor), int(120 * width_factor)
        f2 = feature_dim or int(84 * width_factor)
        self.m = model_count
        self.conv1, self.conv2 = Layer(c1, channels, 5, model_count), Layer(c2, c1, 5, model_count)
        self.fc1, self.fc2 = Layer(f1, c2 * side * side, 1, model_count), Layer(f2, f1, 1, model_count)
        self.fc3 = Layer(output_dim, f2, 1, model_count)
        self.layers = [self.conv1, self.conv2, self.fc1, self.fc2, self.fc3]

    def one(self, x, j):
        h = F.max_pool2d(F.relu(F.conv2d(x, *self.conv1.block(j))), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, *self.conv2.block(j))), 2).flatten(1)
        for layer in self.layers[2:]:
            w, b = layer.block(j)
            h = h @ w.flatten(1).T + b
            if layer is not self.fc3:
                h = F.relu(h)
        return h

    def forward(self, x):
        return torch.stack([self.one(x, j) for j in range(self.m)], 1)

    def forward_normalize(self, x):
        scale = torch.ones(self.m)
        for layer in self.layers:
            scale = scale * torch.stack([layer.block(j)[0].norm() / 3 for j in range(self.m)])
        return self.forward(x) / scale[None, :, None]
'''


def write_idx(data, stem, count, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    with open(os.path.join(data, stem + "-images-idx3-ubyte"), "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + np.array([count, 28, 28], ">u4").tobytes() + images.tobytes())
    with open(os.path.join(data, stem + "-labels-idx1-ubyte"), "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + np.array([count], ">u4").tobytes() + bytes(i % 3 for i in range(count)))


def gac_run(config_text, run):
    config = run + ".toml"
    with open(config, "w") as f:
        f.write(config_text)
    r = subprocess.run([GAC, "run", config, "-o", run, "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"gac run {config} failed ({r.returncode}): {r.stderr}")
    return run


def rescore(run, paper, *extra):
    return subprocess.run([sys.executable, SCRIPT, run, "--paper", paper, *extra], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def expect_agreement(run, paper):
    r = rescore(run, paper)
    check(r.returncode == 0 and "agrees with the ledger on every one" in r.stdout,
          f"{os.path.basename(run)} with {paper}: want agreement, got {r.returncode}: {r.stdout[-600:]}{r.stderr}")


def expect_error(cmd_args, paper, needle):
    run, *extra = cmd_args if isinstance(cmd_args, tuple) else (cmd_args,)
    r = rescore(run, paper, *extra)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1 and needle in r.stderr,
          f"want exit 2 and one line with {needle!r}, got {r.returncode}: {r.stderr!r}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        stand_in = os.path.join(tmp, "paper")
        os.makedirs(stand_in)
        with open(os.path.join(stand_in, "utils.py"), "w") as f:
            f.write(STAND_IN)
        papers = [stand_in] + ([os.environ["GAC_PAPER_DIR"]] if os.environ.get("GAC_PAPER_DIR") else [])

        data = os.path.join(tmp, "idx")
        os.makedirs(data)
        write_idx(data, "train", 90, 1)
        write_idx(data, "t10k", 40, 2)
        idx = f'[data]\nkind = "idx"\npath = "{data}"\nrandom_classes = 2\n'
        runs = {
            "mlp": gac_run('[data]\nkind = "kink"\ntest_size = 200\n[model]\narch = "mlp"\nhidden = 6\nlayers = 2\n'
                           '[run]\nn = [4]\nrepeats = 2\nbins = [0.0, 0.66, 0.6931]\ntarget = 3\n', os.path.join(tmp, "mlp")),
            "linear": gac_run(idx + '[model]\narch = "linear"\n[run]\nn = [2, 4]\nrepeats = 2\nbins = [0.0, 0.6931]\n'
                              'target = 2\n', os.path.join(tmp, "linear")),
            "lenet": gac_run(idx + '[model]\narch = "lenet"\nwidth = 0.5\n[run]\nn = [4]\nrepeats = 3\n'
                             'bins = [0.0, 0.6931]\ntarget = 2\n', os.path.join(tmp, "lenet")),
        }
        for paper in papers:
            for run in runs.values():
                expect_agreement(run, paper)

        # A stored model whose last layer is negated (its file and the ledger otherwise untouched) is named.
        tampered = os.path.join(tmp, "tampered")
        shutil.copytree(runs["lenet"], tampered)
        first = sorted(os.listdir(os.path.join(tampered, "weights")))[0]
        path = os.path.join(tampered, "weights", first)
        flat = np.load(path)
        with open(os.path.join(tampered, "layout.json")) as f:
            fc3 = [t for t in json.load(f)["tensors"] if t["name"].startswith("fc3.")]
        for t in fc3:  # negated logits: the other class wins on every example
            flat[t["offset"]:t["offset"] + t["size"]] *= -1
        np.save(path, flat)
        r = rescore(tampered, stand_in)
        check(r.returncode == 1 and f"DISAGREES weights/{first}: train accuracy" in r.stdout,
              f"a negated last layer: want exit 1 naming weights/{first}, got {r.returncode}: {r.stdout[-800:]}{r.stderr}")

        # Bad input: one line, exit 2.
        hidden_bias = gac_run('[data]\nkind = "kink"\n[model]\narch = "mlp"\nhidden = 4\nhidden_bias = true\n'
                              '[run]\nn = [2]\nrepeats = 1\nbins = [0.0, 0.6931]\ntarget = 1\n',
                              os.path.join(tmp, "hidden_bias"))
        expect_error(hidden_bias, stand_in, "the paper's MLPModels has no hidden biases")
        expect_error(runs["mlp"], tmp, f"no utils.py in {tmp}")
        expect_error(data, stand_in, f"{data} is not a gac run directory")
        expect_error((runs["mlp"], "--limit", "0"), stand_in, "--limit and --batch must be at least 1")
        damaged = os.path.join(tmp, "damaged")
        shutil.copytree(runs["mlp"], damaged)
        os.remove(os.path.join(damaged, "data", "n4_r1_train_x.npy"))
        expect_error(damaged, stand_in, "n4_r1_train_x.npy")
        with open(os.path.join(damaged, "layout.json"), "w") as f:
            f.write("{")
        expect_error(damaged, stand_in, "layout.json: cannot read (JSONDecodeError")
        moved = os.path.join(tmp, "moved")
        os.rename(data, moved)
        expect_error(runs["linear"], stand_in, "missing data file")
        r = rescore(runs["linear"], stand_in, "--data", moved)
        check(r.returncode == 0, f"--data names the moved files: got {r.returncode}: {r.stderr}")

    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("paper_rescore: the paper's model classes reproduce the ledger")


if __name__ == "__main__":
    main()
