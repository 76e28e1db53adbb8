#!/usr/bin/python3
"""The PyTorch baseline of gac_sgd_bench: the paper's train_sgd, batched the paper's way.

M models train at once (bench/pytorch_baseline.py's batched MLP and LeNet: stacked
weights with bmm, grouped convolutions). Every step, as the paper's train_sgd does:
the mean raw cross-entropy of each model on the minibatch, the full-training-set
normalized loss and accuracy under no_grad, the minibatch loss zeroed for models
that reached the bin (loss <= es_u with accuracy 1), sum().backward(),
torch.optim.SGD.step(); a fresh torch.randperm every epoch. Parameters start from
uniform[-1, 1]. Prints model-steps per second (one SGD step of one model, check included).

  /usr/bin/python3 bench/pytorch_sgd.py [--scenario kink-mlp|lenet-28] [--models M] [--seconds S]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_baseline import make_model, training_set  # noqa: E402

# scenario: (lr, batch, es_u, default models per batch)
SETTINGS = {"kink-mlp": (0.1, 3, 0.69, 16384), "lenet-28": (0.001, 2, 0.65, 256)}


def measure(scenario, n, models, seconds):
    lr, batch, es_u, _ = SETTINGS[scenario]
    batch = min(n // 2, batch)
    X, y, data_name = training_set(scenario, n)
    x, t = torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(y)
    model = make_model(scenario, models, torch.device("cpu"))
    for p in model.params():
        p.uniform_(-1.0, 1.0)
        p.requires_grad_(True)
    opt = torch.optim.SGD(model.params(), lr=lr)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        order = torch.randperm(n)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            z = model.raw_logits(x[idx])                                   # [M, b, C]
            M, b, C = z.shape
            loss = F.cross_entropy(z.reshape(M * b, C), t[idx].repeat(M), reduction="none").view(M, b).mean(dim=1)
            with torch.no_grad():
                za = model.logits(x)                                       # normalized, [M, n, C]
                loss_all = F.cross_entropy(za.reshape(M * n, C), t.repeat(M), reduction="none").view(M, n).mean(dim=1)
                acc_all = (za.argmax(dim=2) == t).float().mean(dim=1)
            loss = torch.where((loss_all > es_u) | (acc_all < 1), loss, torch.zeros_like(loss))
            loss = loss[~loss.isnan()]
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            steps += 1
    elapsed = time.perf_counter() - start
    return data_name, steps * models / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", action="append", choices=sorted(SETTINGS))
    ap.add_argument("--models", type=int, help="models trained at once (default: per scenario)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'scenario':<9} {'n':>3} {'models':>7} {'model-steps/s':>14}  data")
    for scenario in args.scenario or list(SETTINGS):
        models = args.models or SETTINGS[scenario][3]
        data, rate = measure(scenario, 16, models, args.seconds)
        print(f"{scenario:<9} {16:>3} {models:>7} {rate:>14,.0f}  {data}")


if __name__ == "__main__":
    main()
