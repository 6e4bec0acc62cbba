"""Start-up latency of a fresh process: import, cold first call, warm first call.

Each measurement is a new interpreter, timed from inside it:

* ``import``: ``import nbsoftmax`` (NumPy and the libtbb preload; Numba is imported by the
  first call).
* ``cold first call``: the first float32 softmax with an empty kernel cache (a new, empty
  ``NUMBA_CACHE_DIR``): Numba's import, compilation, and the threading layer's start. Its
  CPU time (all threads) is shown too: on a shared machine it is the steadier figure.
* ``warm first call``: the same in a later process, the cache filled by an earlier one.

Two inputs: a 1 x 10 array (serial kernel) and 1000 x 1000 (parallel kernel, so the
threading layer starts too). Targets (issue 5): warm first call, import included, <= 0.6 s;
cold <= 3 s. Issue 11: the whole process of a warm first call at most 0.25 s above the whole
process of ``python -c "import numba, numpy"`` (``baseline``: both timed from outside, start
of the interpreter included); cold first float32 softmax <= 2 s. Usage::

    python benchmarks/latency.py [--rounds 5] [--json]

Medians of ``--rounds`` processes (cold rounds each use a new empty cache). Do not run it
while others use the machine's cores: compilation is CPU-bound.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROBE = r"""
import time
t0 = time.perf_counter()
import nbsoftmax
t1 = time.perf_counter()
import numpy as np
x = np.linspace(-3, 3, {size}, dtype=np.float32).reshape({shape})
t2 = time.perf_counter()
c2 = time.process_time()
nbsoftmax.softmax(x)
t3 = time.perf_counter()
c3 = time.process_time()
import numba
print(t1 - t0, t3 - t2, c3 - c2, numba.threading_layer() if {parallel} else "-")
"""

WHOLE_PROCESS = ("import numpy as np, nbsoftmax; "
                 "nbsoftmax.softmax(np.linspace(-3, 3, {size}, dtype=np.float32).reshape({shape}))")

CASES = {"1x10 (serial)": ((1, 10), False), "1000x1000 (parallel)": ((1000, 1000), True)}


def process_seconds(code, env=None):
    """Wall time of a whole `python -c code` process, interpreter start-up included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(shape, parallel, cache_dir):
    size = shape[0] * shape[1]
    code = PROBE.format(size=size, shape=shape, parallel=parallel)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2]), out[3]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    results = {}
    baseline = statistics.median(process_seconds("import numba, numpy")
                                 for _ in range(args.rounds))
    for name, (shape, parallel) in CASES.items():
        imports, cold, cold_cpu, warm, warm_process, layer = [], [], [], [], [], "-"
        code = WHOLE_PROCESS.format(size=shape[0] * shape[1], shape=shape)
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="nbsoftmax-latency-") as cache:
                imp, first, cpu, layer = measure(shape, parallel, cache)
                cold.append(imp + first)
                cold_cpu.append(cpu)
                imp, first, _, _ = measure(shape, parallel, cache)
                imports.append(imp)
                warm.append(imp + first)
                warm_process.append(process_seconds(
                    code, dict(os.environ, NUMBA_CACHE_DIR=cache)))
        results[name] = {
            "import_s": statistics.median(imports),
            "cold_first_call_s": statistics.median(cold),
            "cold_first_call_cpu_s": statistics.median(cold_cpu),
            "warm_first_call_s": statistics.median(warm),
            "warm_process_s": statistics.median(warm_process),
            "baseline_process_s": baseline,
            "threading_layer": layer,
            "rounds": args.rounds,
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'float32 softmax':<22} {'import':>8} {'cold first call':>16} {'(CPU)':>7} "
          f"{'warm first call':>16}   (import included; medians)")
    for name, r in results.items():
        print(f"{name:<22} {r['import_s']:>7.3f}s {r['cold_first_call_s']:>15.2f}s "
              f"{r['cold_first_call_cpu_s']:>6.2f}s {r['warm_first_call_s']:>15.3f}s   "
              f"layer {r['threading_layer']}")
    print(f"whole processes: python -c 'import numba, numpy' {baseline:.3f}s; a warm first "
          "call (import included) takes:")
    for name, r in results.items():
        print(f"  {name:<22} {r['warm_process_s']:.3f}s, "
              f"{r['warm_process_s'] - baseline:+.3f}s over it")
    print("targets: warm <= 0.6 s, cold <= 3 s (issue 5); warm process <= +0.25 s over the "
          "baseline, cold float32 1x10 <= 2 s (issue 11)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
