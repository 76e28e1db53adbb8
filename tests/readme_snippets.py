#!/usr/bin/env python3
"""README's Python snippets run as written.

Runs the quickstart into a scratch directory, then, from there, each
```python block of README.md on its own: the numpy one always, the PyTorch
one where torch is installed (Debian: python3-torch), in both its MLP form
and with LeNet() on a small Fashion-MNIST LeNet run when the dataset is there.
Usage: readme_snippets.py GAC_BINARY SOURCE_DIR   (exit 77 = skipped)
"""
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
blocks = re.findall(r"```python\n(.*?)```", open(os.path.join(source, "README.md")).read(), re.S)
assert len(blocks) == 2, f"expected the numpy and the PyTorch snippet, found {len(blocks)} Python blocks"
numpy_snippet, torch_snippet = blocks


def run_snippet(code, cwd):
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"snippet failed:\n{code}\n{result.stderr}"
    return result.stdout


def gac_run(cwd, config, *args):
    subprocess.run([gac, "run", os.path.join(source, "configs", config), "-q", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


with tempfile.TemporaryDirectory() as scratch:
    gac_run(scratch, "quickstart.toml")
    print(run_snippet(numpy_snippet, scratch), end="")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: the PyTorch snippet is not run")
        sys.exit(0)
    assert run_snippet(torch_snippet, scratch).strip() == "True"
    fashion = "/usr/share/datasets/fashion-mnist"
    if os.path.isdir(fashion):
        gac_run(scratch, "table2_fashion.toml", "-o", "runs/lenet", "--set", "run.n=[16]", "--set", "run.repeats=1",
                "--set", "run.target=1", "--set", "run.bins=[0.0, 10.0]")
        lenet = torch_snippet.replace('run = "runs/quickstart"', 'run = "runs/lenet"').replace("MLP()", "LeNet()")
        assert run_snippet(lenet, scratch).strip() == "True"
    print("README snippets run as written")
