#!/usr/bin/env bash
# The GPU run in one command, for a machine with a CUDA GPU and numba-cuda (with its toolkit),
# CuPy and PyTorch already installed; it installs nothing and needs no network.
#
#   bash benchmarks/gpu_check.sh [OUTDIR]        # default OUTDIR: gpu-check
#
# 1. tests/test_cuda_gpu.py with NBSOFTMAX_REQUIRE_GPU=1: a missing GPU, toolkit, CuPy or
#    torch fails the tests instead of skipping them (at most 6 minutes);
# 2. the quick GPU benchmark, `benchmarks/bench_cuda.py --quick --json` (at most 5 minutes):
#    kernel time (CUDA events), end-to-end time per call, GB/s, fraction of the copy,
#    ratios to torch and CuPy, host time per call;
# 3. OUTDIR/gpu-check.json: the device, versions, test counts and failures, and the
#    benchmark's report (OUTDIR/bench.json).
# Under 11 minutes in all; exits non-zero when a test failed or a step overran (timeout).
set -uo pipefail

cd "$(dirname "$0")/.."
out=${1:-gpu-check}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the checkout's package, not an install
unset NUMBA_ENABLE_CUDASIM
started=$(date +%s)

echo "== GPU tests (NBSOFTMAX_REQUIRE_GPU=1)"
NBSOFTMAX_REQUIRE_GPU=1 timeout 360 "$py" -m pytest tests/test_cuda_gpu.py -q -p no:cacheprovider \
    --junitxml="$out/gpu-tests.xml" 2>&1 | tee "$out/gpu-tests.txt"
tests_rc=${PIPESTATUS[0]}

echo "== quick GPU benchmark"
timeout 300 "$py" benchmarks/bench_cuda.py --quick --json "$out/bench.json" 2>&1 \
    | tee "$out/bench.txt"
bench_rc=${PIPESTATUS[0]}

"$py" - "$out" "$tests_rc" "$bench_rc" "$(($(date +%s) - started))" <<'PY'
import json
import os
import sys
import xml.etree.ElementTree as ET

out, tests_rc, bench_rc, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
report = {"seconds": seconds, "tests_exit": tests_rc, "bench_exit": bench_rc}
try:
    from numba import cuda

    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    from numba.cuda.cudadrv.driver import driver

    report["device"] = {"name": name, "compute_capability": list(device.compute_capability),
                        "driver_cuda": list(driver.get_version())}
except Exception as exc:  # noqa: BLE001 - no GPU: the tests above have failed and say why
    report["device"] = {"error": " ".join(str(exc).split())}
versions = {}
for module in ("nbsoftmax", "numba", "numba_cuda", "cupy", "torch", "numpy"):
    try:
        from importlib import metadata

        versions[module] = metadata.version(module.replace("_", "-"))
    except Exception:  # noqa: BLE001 - not installed
        versions[module] = None
report["versions"] = versions
junit = os.path.join(out, "gpu-tests.xml")
if os.path.exists(junit):
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors",
                                                               "skipped")}
    failed = [f"{case.get('classname')}::{case.get('name')}" for s in suites
              for case in s.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    report["tests"] = {**count, "passed": count["tests"] - count["failures"] - count["errors"]
                       - count["skipped"], "failed": failed}
bench_json = os.path.join(out, "bench.json")
if os.path.exists(bench_json):
    with open(bench_json) as f:
        report["bench"] = json.load(f)
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(report, f, indent=1)
print(f"== wrote {out}/gpu-check.json ({seconds} s): tests "
      f"{report.get('tests', {}).get('passed', 0)} passed, "
      f"{len(report.get('tests', {}).get('failed', []))} failed")
PY

[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
