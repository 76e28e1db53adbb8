#!/usr/bin/env python3
"""The CUDA tests under GAC_REQUIRE_CUDA=1: none may skip.

usage: strict_cuda.py GAC_TESTS GAC [--expect auto|fail|pass] [--self-check] [--device-tests-only]
                     [--jobs N] [--out DIR] [--report FILE]

A test that needs a CUDA device skips without one (GAC_SKIP_WITHOUT_CUDA in
tests/test_util.h), unless GAC_REQUIRE_CUDA=1: then it fails, so that a GPU
machine whose driver or device is unusable cannot pass by running nothing.
This runs every test whose name says cuda with GAC_REQUIRE_CUDA=1 and reads
gtest's JSON report. The device tests (DEVICE_TESTS: each backend suite's
`cuda` instance, and DeviceDraws.Cuda*) must all

  --expect fail   fail, each with the GAC_REQUIRE_CUDA failure
  --expect pass   pass (scripts/gpu-check on a lent GPU)
  --expect auto   (default) pass if `gac info --backend cuda` opens a device
                  (as the tests do: make_cuda_backend), else fail

and none may skip. The other tests named cuda (the kernels' host arithmetic,
the CLI without a device) may skip, but none may fail: one that fails for want
of a device is a device test missing from DEVICE_TESTS. --self-check then
proves the verdict can fail: a run in which device tests skip, and (without a
device) one in which a device test passes, must both be caught.
--device-tests-only runs the device tests alone: the others start the gac
binary by its build path, which a GPU machine running the bundle lacks.
Exit 0 when all of that holds, 1 when not, 77 when gac was built without CUDA.
"""
import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile

NAMED_CUDA = "*cuda*:*Cuda*"
DEVICE_TESTS = "*/cuda:DeviceDraws.Cuda*"
REQUIRED_FAILURE = "GAC_REQUIRE_CUDA=1 but no usable CUDA device"
# Skips exactly when a CUDA device is usable (tests/test_cuda.cpp).
SKIPS_WITH_A_GPU = "CudaOnThisMachine.AutoTakesTheCpuQuietlyWhenThereIsNoGpu"
# Passes on every machine (the kernels' index arithmetic on the host).
PASSES_WITHOUT_A_GPU = "CudaKernelsOnHost.ImageIndexIsABijectionWithCorrectRuns"
TIMEOUT_S = 600


def matches(test, patterns):
    return any(fnmatch.fnmatchcase(test, p) for p in patterns.split(":"))


def run_tests(gac_tests, gtest_filter, require, out_dir, name, jobs=1):
    """{test: (outcome, failure text)} of one run in `jobs` gtest shards at once; outcome is passed,
    failed, skipped or not run."""
    env = dict(os.environ)
    env.pop("GAC_REQUIRE_CUDA", None)
    if require:
        env["GAC_REQUIRE_CUDA"] = "1"
    shards = []
    for i in range(jobs):
        report, log = (os.path.join(out_dir, f"{name}{'' if jobs == 1 else '-' + str(i)}.{ext}") for ext in ("json", "log"))
        with open(log, "w") as f:
            shard_env = dict(env, GTEST_TOTAL_SHARDS=str(jobs), GTEST_SHARD_INDEX=str(i)) if jobs > 1 else env
            proc = subprocess.Popen([gac_tests, f"--gtest_filter={gtest_filter}", f"--gtest_output=json:{report}",
                                     "--gtest_color=no"], env=shard_env, stdout=f, stderr=subprocess.STDOUT)
        shards.append((proc, report, log))
    results = {}
    for proc, report, log in shards:
        try:
            rc = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for p, _, _ in shards:
                p.kill()
            sys.exit(f"strict_cuda: error: {gac_tests} --gtest_filter='{gtest_filter}' ran past {TIMEOUT_S} s; see {log}")
        try:
            with open(report) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"strict_cuda: error: {gac_tests} exited {rc} without a readable JSON report ({e}); see {log}")
        for suite in doc.get("testsuites", []):
            for t in suite.get("testsuite", []):
                failures = "\n".join(f.get("failure", "") for f in t.get("failures", []))
                if t.get("status") != "RUN":
                    outcome = "not run"
                elif t.get("result") == "SKIPPED":
                    outcome = "skipped"
                else:
                    outcome = "failed" if failures else "passed"
                results[f"{suite['name']}.{t['name']}"] = (outcome, failures)
    return results


def problems(results, expect, device_tests=DEVICE_TESTS):
    """(test, what is wrong) for each test that breaks the verdict (empty: it holds)."""
    device = {t: r for t, r in results.items() if matches(t, device_tests)}
    if not device:
        return [("-", f"no device test ran (none matches '{device_tests}')")]
    out = []
    for test, (outcome, failures) in sorted(results.items()):
        last_line = (failures.strip().splitlines() or [""])[-1]
        if test not in device:
            if outcome == "failed":
                why = "needs a device but is not in DEVICE_TESTS" if REQUIRED_FAILURE in failures else last_line
                out.append((test, f"failed: {why}"))
        elif outcome in ("skipped", "not run"):
            out.append((test, outcome))
        elif expect == "fail" and outcome == "passed":
            out.append((test, "passed without a usable CUDA device"))
        elif expect == "fail" and REQUIRED_FAILURE not in failures:
            out.append((test, f"failed, but not for want of a device: {last_line}"))
        elif expect == "pass" and outcome == "failed":
            out.append((test, f"failed: {last_line}"))
    return out


def grouped(wrong):
    """The problems as lines, tests with the same one together."""
    by_what = {}
    for test, what in wrong:
        by_what.setdefault(what, []).append(test)
    return [f"{len(tests)} {'test' if len(tests) == 1 else 'tests'} {what}: {', '.join(tests)}" for what, tests in by_what.items()]


def cuda_is_usable(gac):
    """(usable, why not) by `gac info --backend cuda`, which opens the device as the tests do; None: not built."""
    p = subprocess.run([gac, "info", "--backend", "cuda"], capture_output=True, text=True, timeout=120)
    if "cuda: not built" in p.stdout:
        return None
    return p.returncode == 0, (p.stderr.strip().splitlines() or ["?"])[-1]


def self_check(gac_tests, expect, out_dir):
    """Lines naming what the verdict failed to catch (empty: it caught a skip, and without a device a pass)."""
    missed = []
    if expect == "pass":  # with a device, this one test skips
        skipping = run_tests(gac_tests, SKIPS_WITH_A_GPU, True, out_dir, "self-check-skip")
        caught = problems(skipping, "pass", SKIPS_WITH_A_GPU)
    else:  # without GAC_REQUIRE_CUDA every device test skips here
        skipping = run_tests(gac_tests, DEVICE_TESTS, False, out_dir, "self-check-skip")
        caught = problems(skipping, "fail")
    if not skipping or caught != [(t, "skipped") for t in sorted(skipping)]:
        missed.append(f"a run of skipped tests {sorted(skipping)} gave {caught}")
    if expect == "fail":
        passing = run_tests(gac_tests, PASSES_WITHOUT_A_GPU, True, out_dir, "self-check-pass")
        caught = problems(passing, "fail", PASSES_WITHOUT_A_GPU)
        if caught != [(PASSES_WITHOUT_A_GPU, "passed without a usable CUDA device")]:
            missed.append(f"a run of a passing test gave {caught}")
    return missed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gac_tests")
    ap.add_argument("gac")
    ap.add_argument("--expect", choices=("auto", "fail", "pass"), default="auto")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--device-tests-only", action="store_true", help="run only DEVICE_TESTS")
    ap.add_argument("--jobs", type=int, default=1, help="gtest shards run at once (default 1)")
    ap.add_argument("--out", help="folder for gtest's JSON reports and logs (default: a temporary one)")
    ap.add_argument("--report", help="write every test's outcome and the verdict's problems here as JSON")
    a = ap.parse_args()

    status = cuda_is_usable(a.gac)
    if status is None:
        print("strict_cuda: skipped: this gac was built without CUDA, so it has no CUDA tests to require")
        return 77
    usable, why_not = status
    expect = a.expect if a.expect != "auto" else ("pass" if usable else "fail")
    print(f"strict_cuda: CUDA device {'usable' if usable else 'not usable (' + why_not + ')'}:"
          f" every device test must {expect} under GAC_REQUIRE_CUDA=1, none skip")

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = a.out or tmp
        os.makedirs(out_dir, exist_ok=True)
        tests = DEVICE_TESTS if a.device_tests_only else NAMED_CUDA
        results = run_tests(a.gac_tests, tests, True, out_dir, "cuda-tests", max(1, a.jobs))
        wrong = problems(results, expect)
        device = [r[0] for t, r in results.items() if matches(t, DEVICE_TESTS)]
        counts = f"{len(device)} device tests: " + ", ".join(
            f"{device.count(o)} {o}" for o in ("passed", "failed", "skipped", "not run"))
        others = len(results) - len(device)
        print(f"strict_cuda: {counts}" + (f" ({others} other tests named cuda ran beside them)" if others else ""))
        for line in grouped(wrong):
            print(f"  {line}")
        if a.report:
            with open(a.report, "w") as f:
                json.dump({"expect": expect, "device_tests": DEVICE_TESTS, "problems": wrong,
                           "results": {t: {"outcome": o, "failures": x} for t, (o, x) in sorted(results.items())}},
                          f, indent=1)
        missed = self_check(a.gac_tests, expect, out_dir) if a.self_check else []
        for line in missed:
            print(f"strict_cuda: self-check: the verdict missed it: {line}")
        if a.self_check and not missed:
            print("strict_cuda: self-check: the verdict caught skipped device tests" +
                  (" and a passing one" if expect == "fail" else ""))
    ok = not wrong and not missed
    print(f"strict_cuda: {'ok' if ok else 'FAILED'} ({counts}; each must {expect}, none skip)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
