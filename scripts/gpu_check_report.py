#!/usr/bin/env python3
"""scripts/gpu-check's readers: they turn what its steps wrote into bench.json and summary.md.

usage: gpu_check_report.py last-error LOG
       gpu_check_report.py merge-bench OUT.json PART:BACKEND:REPORT.json:LOG ...
       gpu_check_report.py merge-pytorch OUT.json REPORT.json ...
       gpu_check_report.py speed BENCH.json [PYTORCH.json]
       gpu_check_report.py compare RUNS_DIR NAME ...

Standard library only: it runs under whatever python3 the GPU image has.
"""
import json
import os
import sqlite3
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def last_error(log):
    """The line that says why a command failed: its last line that says error or FAILED, else its last line."""
    try:
        with open(log) as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "no output"
    errors = [line for line in lines if "error" in line.lower() or "FAILED" in line]
    return (errors or lines or ["no output"])[-1]


def merge_bench(out, parts):
    """One document of every `gac bench --json` that worked; a backend that failed is named with its error."""
    merged = {"measurements": [], "nested": [], "ceiling": {}, "failed": []}
    for part in parts:
        name, backend, report, log = part.split(":", 3)
        doc = load(report)
        if not doc:
            merged["failed"].append({"part": name, "backend": backend, "error": last_error(log)})
            continue
        for key in ("date", "gac_version", "machine", "roofline_definition", "rss_definition"):
            merged.setdefault(key, doc.get(key))
        for b, c in doc.get("ceiling", {}).items():
            merged["ceiling"].setdefault(b, c)
        merged["measurements"] += [dict(m, part=name) for m in doc.get("measurements", [])]
        merged["nested"] += [dict(m, part=name) for m in doc.get("nested", [])]
    with open(out, "w") as f:
        json.dump(merged, f, indent=2)


def merge_pytorch(out, reports):
    docs = [d for d in map(load, reports) if d]
    if not docs:
        sys.exit("no PyTorch figures")
    merged = dict(docs[0], measurements=[m for d in docs for m in d.get("measurements", [])])
    with open(out, "w") as f:
        json.dump(merged, f, indent=2)


def speed(bench_path, pytorch_path=None):
    bench = load(bench_path)
    if not bench:
        sys.exit(f"no gac bench figures ({bench_path} missing)")
    torch = (load(pytorch_path) or {}).get("measurements", []) if pytorch_path else []
    for f in bench.get("failed", []):
        print(f"- gac bench --backend {f['backend']} ({f['part']}): no figures: {f['error']}")
    for backend, c in sorted(bench.get("ceiling", {}).items()):
        why = f"; {c['why_not']}" if c.get("why_not") else ""
        peak = f"; FP32 peak {c['fp32_peak_gflops']} GFLOP/s" if c.get("fp32_peak_gflops") else ""
        gflops = "-" if c.get("gflops") is None else f"{c['gflops']:,.1f}"
        print(f"- {backend} ceiling: {c.get('what')}: {gflops} GFLOP/s{why}{peak}")
    if not bench["measurements"]:
        return
    print()
    print("| part | scenario | n | backend | early | draws/s | GFLOP/s | % ceiling | % FP32 peak | % roofline |"
          " PyTorch draws/s (batch) | gac / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    for m in bench["measurements"]:
        same = [t for t in torch if t["scenario"] == m["scenario"] and t["n"] == m["n"]]
        best = max(same, key=lambda t: t["draws_per_s"]) if same else None
        pytorch = "-" if best is None else f"{best['draws_per_s']:,.0f} ({best['batch']})"
        ratio = "-" if best is None or m["backend"] != "cuda" else f"{m['draws_per_s'] / best['draws_per_s']:,.0f}x"
        print(f"| {m['part']} | {m['scenario']} | {m['n']} | {m['backend']} | {'on' if m['early_reject'] else 'off'} |"
              f" {m['draws_per_s']:,.0f} | {m['gflops']:.1f} | {pct(m.get('fraction_of_ceiling'))} |"
              f" {pct(m.get('fraction_of_fp32_peak'))} | {pct(m.get('fraction_of_roofline'))} | {pytorch} | {ratio} |")
    if bench.get("nested"):
        print()
        print("| part | scenario | n | backend | heads K | pairs/s | perfect per body | deff | effective/s | gain over plain |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for m in bench["nested"]:
            gain = "-" if m.get("gain") is None else f"{m['gain']:.1f}x"
            print(f"| {m['part']} | {m['scenario']} | {m['n']} | {m['backend']} | {m['heads']} | {m['pairs_per_s']:,.0f} |"
                  f" {m['perfect_per_body']:.2f} | {m['design_effect']:.2f} | {m['effective_per_s']:,.1f} | {gain} |")
    print()
    print("targets (SPEC.md, H200): gac / PyTorch >= 100x on the same GPU; full evaluation >= 40% of FP32 peak;"
          " LeNet n = 16 with early rejection >= 35M draws/s; MLP >= 5G draws/s")


def ledger(path):
    """{(n, repeat, shard, draw): row} of a run's accepted models, or the reason there are none."""
    if not os.path.exists(path):
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    cur = db.execute("SELECT * FROM models")
    cols = [c[0] for c in cur.description]
    return {(r["n"], r["repeat"], r["shard"], r["draw"]): r for r in (dict(zip(cols, row)) for row in cur)}


def compare(root, names):
    """CPU and CUDA runs of each config accept the same draws into the same bins with the same scores."""
    ok = True
    for name in names:
        sets = {b: ledger(f"{root}/{name}_{b}/ledger.sqlite") for b in ("cuda", "cpu")}
        missing = [b for b, s in sets.items() if s is None]
        if missing:
            ok = False
            why = "; ".join(f"{b}: {last_error(f'{root}/{name}_{b}.log')}" for b in missing)
            print(f"{name}: no ledger from {' and '.join(missing)} ({why})")
            continue
        gpu, cpu = sets["cuda"], sets["cpu"]
        only_gpu, only_cpu = sorted(set(gpu) - set(cpu)), sorted(set(cpu) - set(gpu))
        fields = ("bin", "train_loss", "train_acc", "test_loss", "test_acc")
        differ = [k for k in sorted(set(gpu) & set(cpu)) if any(gpu[k][f] != cpu[k][f] for f in fields)]
        same = not only_gpu and not only_cpu and not differ
        ok = ok and same and bool(cpu)
        print(f"{name}: {len(cpu)} models on the CPU, {len(gpu)} on CUDA: " +
              ("none to compare" if not cpu and same else "identical, model for model" if same else
               f"{len(only_cpu)} on the CPU only, {len(only_gpu)} on CUDA only, {len(differ)} differ"))
        key = lambda k: f"n={k[0]} repeat={k[1]} shard={k[2]} draw={k[3]}"
        for k in only_cpu[:10]:
            print(f"  CPU only {key(k)}: bin {cpu[k]['bin']}, train loss {cpu[k]['train_loss']!r}")
        for k in only_gpu[:10]:
            print(f"  CUDA only {key(k)}: bin {gpu[k]['bin']}, train loss {gpu[k]['train_loss']!r}")
        for k in differ[:10]:
            print(f"  differs {key(k)}: " + "; ".join(
                f"{f} CPU {cpu[k][f]!r} CUDA {gpu[k][f]!r}" for f in fields if cpu[k][f] != gpu[k][f]))
    return 0 if ok else 1


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    verb, args = argv[1], argv[2:]
    if verb == "last-error":
        print(last_error(args[0])[:400])
    elif verb == "merge-bench":
        merge_bench(args[0], args[1:])
    elif verb == "merge-pytorch":
        merge_pytorch(args[0], args[1:])
    elif verb == "speed":
        speed(*args[:2])
    elif verb == "compare":
        return compare(args[0], args[1:])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
