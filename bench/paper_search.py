#!/usr/bin/python3
"""Times the paper's own searches (Table 4): K calls of LeNetModels.pattern_search
or LeNetModels.greedy_random from the paper's utils.py, on this CPU.

usage: bench/paper_search.py --paper DIR --data DIR [--search pattern,greedy]
                             [--steps K] [--n N] [--threads T] [--seed S]

--paper is a checkout of github.com/Ping-C/optimizer (only its utils.py is
loaded, at run time; nothing of it is copied into gac). The model is built as
the paper's train_distributed.py builds it for configs/table4/mnist_*.yaml:
LeNetModels(10 classes, width 1, M = budget // n models, "mnist") with the
budget (`model_count_times_batch_size`) 10,000 for pattern search and 200,000
for greedy, the yaml's default init `uniform` (model.reinitialize(): every
parameter U(-1, 1)), loss_func = nn.CrossEntropyLoss(reduction='none').
The data: the IDX files of --data scaled to [0, 1] and standardized with the
mean and std of the whole training split (the paper's MNIST._get_statistics),
n training examples class-balanced over all 10 classes (class c takes its
first examples in file order, classes dealt round-robin), labels as in the file.

Each search starts afresh (torch.manual_seed / random.seed --seed) and makes K
calls, as train_ps_fast / train_greedy_random do, without their accuracy
checks. Batches are counted by wrapping forward_normalize (one call a batch);
steps are the calls that improved (a greedy call that halved its radius 30
times returns without one; a pattern call always improves). One JSON document
on stdout: candidates/s = batches x (M - 1) / seconds.
"""
import argparse
import contextlib
import gzip
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from paper_code import load_paper_utils  # noqa: E402

BUDGETS = {"pattern": 10000, "greedy": 200000}  # configs/table4/mnist_*.yaml: model_count_times_batch_size
CLASSES = 10
GREEDY_HALVINGS = 30  # greedy_random's `for _ in range(30)`


def fail(message):
    print(f"paper_search: {message}", file=sys.stderr)
    sys.exit(2)


def idx_path(data, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(data, name)
        if os.path.isfile(path):
            return path
    fail(f"no {stem}[.gz] in {data}")


def read_idx(path, magic, np):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        fail(f"cannot read {path}: {e}")
    dims = magic & 0xff
    if len(raw) < 4 + 4 * dims or int.from_bytes(raw[:4], "big") != magic:
        fail(f"{path} is not an IDX file of magic {magic:#x}")
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        fail(f"{path}: {body.size} bytes of data for shape {shape}")
    return body.reshape(shape)


def training_set(args, np, torch):
    """n class-balanced examples of all 10 classes, standardized as the paper does."""
    data, n = args.data, args.n
    images = read_idx(args.images, 0x803, np)
    labels = read_idx(args.labels, 0x801, np)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        fail(f"{data}: {images.shape[0]} images of {images.shape[1:]} and {labels.shape[0]} labels "
             "(MNIST's layout is N x 28 x 28 with N labels)")
    scaled = images.astype(np.float64) / 255.0
    mean, std = scaled.mean(), scaled.std(ddof=1)  # torch's std is the unbiased one
    picks = []
    for c in range(CLASSES):
        want = n // CLASSES + (c < n % CLASSES)
        where = np.flatnonzero(labels == c)[:want]
        if len(where) < want:
            fail(f"{data}: class {c} has {len(where)} training examples, n = {n} needs {want}")
        picks.append(where)
    order = np.sort(np.concatenate(picks))
    x = ((scaled[order] - mean) / std).astype(np.float32)[:, None, :, :]
    return torch.from_numpy(x), torch.from_numpy(labels[order].astype(np.int64))


def time_search(kind, LeNetModels, x, y, steps, seed, torch):
    n = len(y)
    m = BUDGETS[kind] // n
    torch.manual_seed(seed)
    random.seed(seed)  # pattern_search shuffles with Python's random
    model = LeNetModels(output_dim=CLASSES, width_factor=1.0, model_count=m, dataset="mnist")
    model.reinitialize()
    loss_func = torch.nn.CrossEntropyLoss(reduction="none")
    forward = model.forward_normalize
    batches = 0

    def counted_forward(inputs):
        nonlocal batches
        batches += 1
        return forward(inputs)

    model.forward_normalize = counted_forward  # the searches call self.forward_normalize once a batch
    search = model.pattern_search if kind == "pattern" else model.greedy_random
    improved = 0
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # "went over everything", "radius decreased to ..."
        for _ in range(steps):
            radius = model.radius
            search(x, y, loss_func)
            improved += not (kind == "greedy" and model.radius == radius / 2 ** GREEDY_HALVINGS)
    seconds = time.perf_counter() - start
    return {"kind": kind, "n": n, "models": m, "calls": steps, "steps": improved, "batches": batches,
            "seconds": seconds, "steps_per_s": improved / seconds,
            "candidates_per_s": batches * (m - 1) / seconds}


def parse_args(argv):
    ap = argparse.ArgumentParser(description="the paper's pattern / greedy random search, timed on this CPU")
    ap.add_argument("--paper", required=True, help="a checkout of github.com/Ping-C/optimizer (its utils.py)")
    ap.add_argument("--data", required=True, help="MNIST IDX directory (train-images-idx3-ubyte, ...)")
    ap.add_argument("--search", default="pattern,greedy", help="pattern, greedy or both, comma-separated")
    ap.add_argument("--steps", type=int, default=20, help="calls of each search (default 20)")
    ap.add_argument("--n", type=int, default=100, help="training examples (default 100)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default 0: every CPU available)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.kinds = [k for k in args.search.split(",") if k]
    for k in args.kinds or [""]:
        if k not in BUDGETS:
            fail(f"--search takes pattern or greedy, got '{k}'")
    if args.steps < 1:
        fail(f"--steps must be at least 1, got {args.steps}")
    if args.n < 1 or any(BUDGETS[k] // args.n < 2 for k in args.kinds):
        fail(f"--n {args.n} leaves fewer than 2 models per batch (budget // n)")
    if args.threads < 0:
        fail(f"--threads must be 0 (every CPU) or more, got {args.threads}")
    if not os.path.isdir(args.paper):
        fail(f"--paper {args.paper} is not a directory")
    if not os.path.isdir(args.data):
        fail(f"--data {args.data} is not a directory")
    args.images = idx_path(args.data, "train-images-idx3-ubyte")
    args.labels = idx_path(args.data, "train-labels-idx1-ubyte")
    return args


def main(argv):
    args = parse_args(argv)
    LeNetModels = load_paper_utils(args.paper, fail, ["LeNetModels"]).LeNetModels
    try:
        import numpy as np
        import torch
    except ImportError as e:
        fail(f"needs torch and numpy: {e}")
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    x, y = training_set(args, np, torch)
    searches = []
    for kind in args.kinds:
        print(f"paper_search: {kind} search, {args.steps} calls ...", end="", file=sys.stderr, flush=True)
        searches.append(time_search(kind, LeNetModels, x, y, args.steps, args.seed, torch))
        print(f" {searches[-1]['candidates_per_s']:.1f} candidates/s", file=sys.stderr)
    print(json.dumps({"torch_version": torch.__version__, "threads": threads, "data": args.data,
                      "paper": os.path.abspath(args.paper), "searches": searches}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
