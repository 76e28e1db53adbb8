#!/usr/bin/env python3
"""The documentation's Python snippets run as written.

Runs the quickstart into a scratch directory, then, from there, each
```python block of the documentation (README.md and docs/*.md; today all
three are in docs/output.md) on its own: the numpy one always, the PyTorch
one where torch is installed (Debian: python3-torch), in both its MLP form
and with LeNet() on a small Fashion-MNIST LeNet run when the dataset is there.
The numpy and PyTorch blocks run again on the quickstart trained by SGD
([optimizer] kind = "sgd", whose weights files are named by bin too).
Usage: readme_snippets.py GAC_BINARY SOURCE_DIR   (exit 77 = skipped)
"""
import gzip
import os
import re
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401
except ImportError:
    print("numpy not installed: skipped")
    sys.exit(77)

gac, source = sys.argv[1], sys.argv[2]
DOCS = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(source, "docs")) if f.endswith(".md"))
blocks = [block for doc in DOCS
          for block in re.findall(r"```python\n(.*?)```", open(os.path.join(source, doc)).read(), re.S)]


def snippet(marker):
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one Python block holding {marker!r} in {', '.join(DOCS)}, found {len(found)}"
    return found[0]


numpy_snippet, torch_snippet, idx_snippet = snippet("def load_params"), snippet("torch.nn as nn"), snippet("def read_idx")
assert len(blocks) == 3, f"the documentation has {len(blocks)} Python blocks; this test knows 3"


def run_snippet(code, cwd):
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"snippet failed:\n{code}\n{result.stderr}"
    return result.stdout


def gac_run(cwd, config, *args):
    subprocess.run([gac, "run", os.path.join(source, "configs", config), "-q", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


FASHION = "/usr/share/datasets/fashion-mnist"


def idx_rebuild_check(scratch):
    """The IDX snippet rebuilds a stream's test set exactly as gac scored it (raw IDX files: Fashion-MNIST)."""
    raw = os.path.join(scratch, "idx")
    os.makedirs(raw)
    for name in os.listdir(FASHION):
        if name.endswith(".gz"):
            with gzip.open(os.path.join(FASHION, name)) as f, open(os.path.join(raw, name[:-3]), "wb") as out:
                out.write(f.read())
    gac_run(scratch, "table2_mnist.toml", "--set", f'data.path="{raw}"', "--set", "run.n=[16]", "--set",
            "run.repeats=1", "--set", "run.target=1", "--set", "run.bins=[0.0, 10.0]")
    check = idx_snippet.replace('"data/mnist"', repr(raw)) + """
import sqlite3
(classes,), = sqlite3.connect(f"{run}/ledger.sqlite").execute("SELECT classes FROM streams WHERE n = 16 AND repeat = 0")
assert source["classes"] == json.loads(classes) and len(x) == len(y) == len(rows) and set(y) == {0, 1}
print("IDX snippet: test set of", len(y), "examples rebuilt")
"""
    print(run_snippet(check, scratch), end="")


SGD = ["-o", "runs/quickstart_sgd", "--set", "optimizer.kind=sgd", "--set", "optimizer.lr=0.1", "--set",
       "optimizer.batch_size=3", "--set", "optimizer.epochs=20", "--set", "run.target=3"]


def on_sgd_run(code):
    return code.replace('run = "runs/quickstart"', 'run = "runs/quickstart_sgd"')


with tempfile.TemporaryDirectory() as scratch:
    gac_run(scratch, "quickstart.toml")
    print(run_snippet(numpy_snippet, scratch), end="")
    gac_run(scratch, "quickstart.toml", *SGD)
    sgd_out = run_snippet(on_sgd_run(numpy_snippet), scratch)
    assert "_b" in sgd_out.split()[0], sgd_out  # an SGD model's file, named by its bin
    print("on the SGD run:", sgd_out, end="")
    if os.path.isdir(FASHION):
        idx_rebuild_check(scratch)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: the PyTorch snippet is not run")
        sys.exit(0)
    assert run_snippet(torch_snippet, scratch).strip() == "True"
    assert run_snippet(on_sgd_run(torch_snippet), scratch).strip() == "True"
    if os.path.isdir(FASHION):
        gac_run(scratch, "table2_fashion.toml", "-o", "runs/lenet", "--set", "run.n=[16]", "--set", "run.repeats=1",
                "--set", "run.target=1", "--set", "run.bins=[0.0, 10.0]")
        lenet = torch_snippet.replace('run = "runs/quickstart"', 'run = "runs/lenet"').replace("MLP()", "LeNet()")
        assert run_snippet(lenet, scratch).strip() == "True"
    print("documentation snippets run as written")
