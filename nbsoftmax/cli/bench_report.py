"""The report of ``nbsoftmax bench``: the machine, the results table and the plot."""

import os
import platform

import numpy as np


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
