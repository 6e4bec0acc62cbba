"""The report of ``nbsoftmax bench``: the machine, the results table and the plot."""

import os
import platform

import numpy as np


def isa():
    """The instruction set Numba compiles for: its target CPU (``NUMBA_CPU_NAME`` /
    ``NUMBA_CPU_FEATURES`` when set, else the host's, as llvmlite reports it), named by its
    widest vector extension, with the float32 lanes of one vector register."""
    import llvmlite.binding as llvm
    import numba

    name = numba.config.CPU_NAME or llvm.get_host_cpu_name()
    features = numba.config.CPU_FEATURES
    if features is None:
        features = (llvm.get_host_cpu_features().flatten() if not numba.config.CPU_NAME
                    or numba.config.CPU_NAME == "host" else "")
    flags = {f[1:] for f in features.split(",") if f.startswith("+")}
    if not features and name not in ("generic", ""):  # a CPU name alone: LLVM's own features
        flags = {"avx512f", "avx2"} if "avx512" in name or name in (
            "skylake-avx512", "cascadelake", "icelake-server", "sapphirerapids",
            "znver4", "znver5") else {"avx2"} if name in (
            "haswell", "broadwell", "skylake", "znver1", "znver2", "znver3") else set()
    kind = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    lanes = {"AVX-512": 16, "AVX2": 8, "SSE": 4}[kind]
    return f"{kind} ({name}, {lanes} float32 lanes)"


def machine():
    import numba

    import nbsoftmax

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not started"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "threading_layer": layer,
        "isa": isa(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "nbsoftmax": nbsoftmax.__version__,
    }


def _fmt_time(t):
    return f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def format_table(results):
    """One row per case: nbsoftmax's time and GB/s (allocating and with out=, where the
    function has out=), its share of the copy roofline, speedups over each peer, error."""
    peers = []
    for r in results:
        peers += [p for p in r["speedup"] if p not in peers]
    head = ["case", "dtype", "nbsoftmax", "GB/s", "out= GB/s", "of copy"] + \
        [f"x {p}" for p in peers] + ["max err"]
    rows = []
    for r in results:
        case = f"{r['op']} {'x'.join(map(str, r['shape']))} axis={r['axis']}"
        out_gbs = "-" if r["gb_per_s_out"] is None else f"{r['gb_per_s_out']:.1f}"
        rows.append([case, r["dtype"], _fmt_time(r["times_s"]["nbsoftmax"]), f"{r['gb_per_s']:.1f}",
                     out_gbs, f"{r['of_copy']:.2f}"]
                    + [f"{r['speedup'][p]:.2f}" if p in r["speedup"] else "-" for p in peers]
                    + [f"{r['max_abs_error']:.1e}"])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in
                       enumerate(zip(row, widths))) for row in [head] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['op']}\n{'x'.join(map(str, r['shape']))} ax{r['axis']}\n{r['dtype']}"
              for r in results]
    names = ["nbsoftmax", "nbsoftmax out="] + sorted(
        {p for r in results for p in r["speedup"]})
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(results)), 5))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        vals = [r["bytes_moved"] / r["times_s"][name] / 1e9 if name in r["times_s"] else 0
                for r in results]
        ax.bar(np.arange(len(results)) + k * width, vals, width, label=name)
    ax.plot(np.arange(len(results)) + 0.4, [r["copy_gb_per_s"] for r in results], "k_",
            markersize=30, label="copy (roofline)")
    ax.set_xticks(np.arange(len(results)) + 0.4, labels, fontsize=7)
    ax.set_ylabel("GB/s (bytes read + written)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ------------------------------------------------------------- the CPU issue's figures

_LAST_AXIS_SHAPES = ((4096, 1000), (256, 32000), (64, 262144), (100000, 10), (8192, 4096),
                     (16, 4_000_000), (1_000_000, 128))
_DRAM_SHAPES = ((64, 262144), (8192, 4096), (16, 4_000_000), (1_000_000, 128))


def _geomean(values):
    values = [v for v in values if v]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def issue_figures(results, isa_name=None):
    """The figures of the CPU speed table (issue 15), as lines of text, from one run's
    results (``run_case`` dicts): only those whose cases ran. Ratios x torch are torch's time
    over nbsoftmax's (as called, or both with out=); "of copy" is nbsoftmax out= against the
    faster copy of the same bytes (np.copyto or Numba's threads) timed in the same run."""
    by = {(r["op"], r["dtype"], tuple(r["shape"]), r["axis"]): r for r in results}

    def get(op, shape, axis=-1, dtype="float32"):
        return by.get((op, dtype, tuple(shape), axis))

    def speed(r, peer):
        return r["speedup"].get(peer) if r else None

    lines = [f"CPU figures of issue 15 on {isa_name or isa()} (float32 unless said):"]
    sm = [get("softmax", s) for s in _LAST_AXIS_SHAPES if get("softmax", s)]
    if sm and speed(sm[0], "torch"):
        called, out = [speed(r, "torch") for r in sm], [speed(r, "torch out=") for r in sm]
        lines.append(f"  softmax x torch as called, geomean of {len(sm)} last-axis shapes: "
                     f"{_geomean(called):.2f}")
        if all(out):
            lines.append(f"  softmax x torch out=, geomean / min: {_geomean(out):.2f} / "
                         f"{min(out):.2f}")
    for ops, what in ((("softmax", "log_softmax"), "forward"),
                      (("softmax_backward", "log_softmax_backward"), "backward")):
        for op in ops:
            parts = [f"{'x'.join(map(str, s))} {get(op, s)['of_copy']:.2f}"
                     for s in _DRAM_SHAPES if get(op, s)]
            if parts:
                lines.append(f"  DRAM-sized {what} ({op}), fraction of copy: " + ", ".join(parts))
    r = get("softmax", (100000, 10))
    if r:
        lines.append(f"  softmax 100000x10: {r['gb_per_s_out']:.1f} GB/s out=, "
                     f"{r['of_copy']:.2f} of the copy of the same bytes "
                     f"({r['copy_gb_per_s']:.1f} GB/s)")
    for shape, axis in (((4096, 1000), 0), ((32, 1000, 1024), 1)):
        for op in ("softmax", "log_softmax"):
            a, b = get(op, shape, axis), get(op, shape, -1)
            if a:
                rate = f"{a['gb_per_s_out'] / b['gb_per_s_out']:.2f}" if b else "-"
                lines.append(f"  {op} {'x'.join(map(str, shape))} axis {axis}: rate vs last "
                             f"axis {rate}, x torch {speed(a, 'torch') or float('nan'):.2f}")
    ratios = []
    for (op, dtype, shape, axis), r in by.items():
        log = by.get(("log_softmax", dtype, shape, axis))
        if op == "softmax" and dtype == "float32" and log and shape != (1, 10):
            ratios.append((log["times_s"]["nbsoftmax out="] / r["times_s"]["nbsoftmax out="],
                           f"{'x'.join(map(str, shape))} axis {axis}"))
    if ratios:
        worst = max(ratios)
        lines.append(f"  log_softmax time / softmax time (out=), worst: {worst[0]:.2f} "
                     f"({worst[1]})")
    bw = [r for (op, dt, _, _), r in by.items() if op == "softmax_backward" and dt == "float32"]
    if bw and speed(bw[0], "torch"):
        lines.append(f"  softmax_backward x torch, min as called / out=: "
                     f"{min(speed(r, 'torch') for r in bw):.2f} / "
                     f"{min(speed(r, 'torch out=') or float('inf') for r in bw):.2f}")
    r = get("softmax", (1, 10))
    if r and "torch" in r["times_s"]:
        lines.append(f"  1x10 call: nbsoftmax {r['times_s']['nbsoftmax'] * 1e6:.2f} us, torch "
                     f"{r['times_s']['torch'] * 1e6:.2f} us ({1 / speed(r, 'torch'):.2f}x torch)")
    f64 = [get("softmax", s, dtype="float64") for s in _LAST_AXIS_SHAPES]
    f64 = [speed(r, "torch") for r in f64 if r and speed(r, "torch")]
    if f64:
        lines.append(f"  float64 softmax x torch, geomean: {_geomean(f64):.2f}")
    return lines
