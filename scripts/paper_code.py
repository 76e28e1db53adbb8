"""The paper's own code (github.com/Ping-C/optimizer), loaded at run time from
a checkout the user gives: only its utils.py, nothing of it copied into gac.
Shared by scripts/paper_rescore.py and bench/paper_search.py."""
import importlib.util
import os


def load_paper_utils(paper, fail, names):
    """The checkout's utils.py as a module that defines every one of `names`; else fail(message)."""
    path = os.path.join(paper, "utils.py")
    if not os.path.isfile(path):
        fail(f"no utils.py in {paper} (--paper takes a checkout of github.com/Ping-C/optimizer)")
    os.environ.setdefault("MPLBACKEND", "Agg")  # utils.py imports matplotlib.pyplot
    try:
        spec = importlib.util.spec_from_file_location("paper_utils", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name in names:
            getattr(module, name)
        return module
    except Exception as e:  # an import error, a syntax error, a missing name: all one message
        fail(f"cannot load the paper's {', '.join(names)} from {path}: {type(e).__name__}: {e}")
