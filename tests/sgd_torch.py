#!/usr/bin/env python3
"""gac's SGD against PyTorch: the same start, data and minibatch order.

gac_sgd_dump writes, for an MLP (plain and with momentum) and a LeNet, the
training set, the starting parameters, every epoch's minibatch order and gac's
results. Here the same model is built from torch.nn layers (the state_dict
layout of layout.json), trained with torch.optim.SGD on nn.CrossEntropyLoss
(mean over the minibatch) in that order, and compared:

  - the first minibatch gradient and the parameters after one step:
    |gac - torch| <= 1e-5 * max|torch| (float32 summation orders differ);
  - the parameters after the whole run (hundreds of steps): gac must be as
    close to the exact (float64) trajectory as PyTorch's own float32 run is,
    |gac - torch64| <= 4 * |torch32 - torch64| + 1e-5 * max|torch64|;
  - the final normalized training loss (the paper's forward_normalize) to
    1e-5 and the training accuracy exactly.

Usage: sgd_torch.py GAC_SGD_DUMP   (exit 77 = skipped: no numpy or torch)
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"{e.name} not installed: skipped")
    sys.exit(77)


class LeNet(nn.Module):
    """The paper's LeNet with gac's state_dict names (conv1, conv2, fc1..fc3)."""

    def __init__(self, shapes):
        super().__init__()
        for name in ("conv1", "conv2"):
            o, c, k, _ = shapes[name + ".weight"]
            setattr(self, name, nn.Conv2d(c, o, k))
        for name in ("fc1", "fc2", "fc3"):
            o, i = shapes[name + ".weight"]
            setattr(self, name, nn.Linear(i, o))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build(meta, dtype):
    shapes = {t["name"]: t["shape"] for t in meta["tensors"]}
    if meta["arch"] == "lenet":
        model = LeNet(shapes)
    else:  # mlp: Linear layers at even Sequential indices, ReLU between, output bias only
        layers = []
        hidden = [t for t in meta["tensors"] if t["name"].endswith(".weight")]
        for k, t in enumerate(hidden):
            o, i = t["shape"]
            last = k == len(hidden) - 1
            layers.append(nn.Linear(i, o, bias=last or t["name"].replace("weight", "bias") in shapes))
            if not last:
                layers.append(nn.ReLU())
        model = nn.Module()
        model.layers = nn.Sequential(*layers)
        model.forward = model.layers.forward
    return model.to(dtype)


def load_flat(model, meta, flat):
    state = {t["name"]: torch.from_numpy(flat[t["offset"]:t["offset"] + t["size"]].reshape(t["shape"]).copy())
             for t in meta["tensors"]}
    model.load_state_dict({k: v.to(next(model.parameters()).dtype) for k, v in state.items()})


def flat_of(model, meta, grads=False):
    named = dict(model.named_parameters())
    out = np.zeros(meta["n_params"], dtype=np.float64)
    for t in meta["tensors"]:
        p = named[t["name"]]
        v = p.grad if grads else p
        out[t["offset"]:t["offset"] + t["size"]] = v.detach().double().numpy().ravel()
    return out


def normalized_loss_and_accuracy(model, meta, x, y):
    """The paper's forward_normalize: logits / prod(||W|| / divisor) over weight layers."""
    with torch.no_grad():
        z = model(x)
        norm = 1.0
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                norm = norm * (p.norm() / meta["norm_divisor"])
        loss = F.cross_entropy(z / norm, y).item()
        correct = int((z.argmax(dim=1) == y).sum())
    return loss, correct


def train(meta, flat_init, x, y, order, dtype, steps=None):
    """torch.optim.SGD in gac's minibatch order; returns (model, first gradient)."""
    torch.manual_seed(0)
    model = build(meta, dtype)
    load_flat(model, meta, flat_init)
    opt = torch.optim.SGD(model.parameters(), lr=meta["lr"], momentum=meta["momentum"])
    x, y = x.to(dtype), torch.from_numpy(y.astype(np.int64))
    n, batch = len(y), meta["batch"]
    first_grad, done = None, 0
    for epoch in range(meta["epochs"]):
        for start in range(0, n, batch):
            idx = torch.from_numpy(order[epoch, start:start + batch].astype(np.int64))
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            if first_grad is None:
                first_grad = flat_of(model, meta, grads=True)
            opt.step()
            done += 1
            if steps is not None and done == steps:
                return model, first_grad
    return model, first_grad


def check_case(d, name):
    meta = json.load(open(os.path.join(d, name + "_meta.json")))
    load = lambda what: np.load(os.path.join(d, f"{name}_{what}.npy"))
    x_np, y, order, init = load("x"), load("y"), load("order"), load("init")
    if meta["arch"] != "lenet":
        x_np = x_np.reshape(len(y), -1)
    x = torch.from_numpy(x_np)
    failures = []

    def compare(what, got, want, tol):
        scale = max(np.abs(want).max(), 1e-30)
        err = np.abs(got - want).max()
        print(f"  {name:<13} {what:<26} max|diff| = {err:.3e}  (max|value| {scale:.3e}, tolerance {tol:.3e})")
        if not err <= tol:
            failures.append(f"{name}: {what}: {err:.3e} > {tol:.3e}")

    model, grad1 = train(meta, init, x, y, order, torch.float32, steps=1)
    compare("first gradient", load("grad1").astype(np.float64), grad1, 1e-5 * np.abs(grad1).max())
    step1 = flat_of(model, meta)
    compare("parameters after one step", load("step1").astype(np.float64), step1, 1e-5 * np.abs(step1).max())

    t32, _ = train(meta, init, x, y, order, torch.float32)
    t64, _ = train(meta, init, x, y, order, torch.float64)
    p32, p64 = flat_of(t32, meta), flat_of(t64, meta)
    final = load("final").astype(np.float64)
    torch_err = np.abs(p32 - p64).max()
    compare(f"final ({meta['steps']} steps) vs float64", final, p64, 4 * torch_err + 1e-5 * np.abs(p64).max())
    print(f"  {name:<13} {'(torch float32 vs float64)':<26} max|diff| = {torch_err:.3e}")
    loss, correct = normalized_loss_and_accuracy(t64, meta, x.double(), torch.from_numpy(y.astype(np.int64)))
    print(f"  {name:<13} final normalized loss: gac {meta['final_loss']:.7f}, torch float64 {loss:.7f}; "
          f"correct {meta['final_correct']} / {correct}")
    if abs(meta["final_loss"] - loss) > 1e-5:
        failures.append(f"{name}: final normalized loss {meta['final_loss']} vs {loss}")
    if meta["final_correct"] != correct:
        failures.append(f"{name}: final training accuracy {meta['final_correct']} vs {correct}")
    return failures


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.argv[1], d], check=True)
        failures = []
        for name in ("mlp", "mlp_momentum", "lenet"):
            failures += check_case(d, name)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("gac's SGD matches PyTorch")


if __name__ == "__main__":
    main()
