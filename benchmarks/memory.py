"""Peak resident memory of softmax / log_softmax on a 256 MiB float32 input.

Each case runs in a new process: it builds the input (without temporaries), compiles the
kernels and starts the threads on a small array, fills ``out`` if the case has one, then
resets the kernel's peak-RSS counter (``/proc/self/clear_refs``, Linux) and makes the one
call. Reported: how far the peak rose above the resident size before the call, against the
size of the result. Expected: about 1.0x the result for a new result (the result itself,
nothing else full-size), about 0 with ``out=`` and in place (per-thread work arrays only).
Usage::

    python benchmarks/memory.py [--mib 256] [--json]
"""

import argparse
import json
import subprocess
import sys

PROBE = r"""
import sys
import numpy as np
import nbsoftmax

op, mode, layout, mib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
n = mib << 18  # float32 elements
shape, axis = {"rows": ((n // 4096, 4096), -1), "one_row": ((n,), -1),
               "axis0": ((4096, n // 4096), 0)}[layout]
fn = getattr(nbsoftmax, op)

x = np.empty(shape, np.float32)
flat = x.reshape(-1)
for i in range(0, n, 1 << 20):  # fill 4 MB at a time: no full-size temporary
    flat[i : i + (1 << 20)] = np.sin(np.arange(i, min(n, i + (1 << 20)), dtype=np.float32))
small = x[:64] if x.ndim == 2 and axis == -1 else x[:, :64] if x.ndim == 2 else x[: 1 << 21]
fn(small, axis=axis)  # compile / load kernels, start the threading layer
out = {"new": None, "out": np.empty_like(x), "in_place": x}[mode]
if out is not None:
    out.fill(0)  # resident before the measurement

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM (peak RSS) to the current RSS
before = status("VmRSS")
result = fn(x, axis=axis, out=out)
peak = status("VmHWM")
print(before, peak, result.nbytes, x.nbytes)
"""


def run_case(op, mode, layout, mib):
    out = subprocess.run([sys.executable, "-c", PROBE, op, mode, layout, str(mib)],
                         capture_output=True, text=True, check=True).stdout.split()
    before, peak, result_bytes, input_bytes = map(int, out)
    return {"op": op, "mode": mode, "layout": layout, "input_mib": input_bytes / 2**20,
            "rss_before_mib": before / 2**20, "peak_rise_mib": (peak - before) / 2**20,
            "result_mib": result_bytes / 2**20,
            "rise_per_result": (peak - before) / result_bytes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="input size in MiB (default 256)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [run_case(op, mode, layout, args.mib)
            for layout in ("rows", "one_row", "axis0")
            for op in ("softmax", "log_softmax")
            for mode in ("new", "out", "in_place")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'op':<12} {'layout':<8} {'mode':<9} {'input MiB':>9} {'peak rise MiB':>13} "
          f"{'/ result':>8}")
    for r in rows:
        print(f"{r['op']:<12} {r['layout']:<8} {r['mode']:<9} {r['input_mib']:>9.0f} "
              f"{r['peak_rise_mib']:>13.1f} {r['rise_per_result']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
