"""GPU benchmark of nbsoftmax's CUDA backend against the copy roofline, torch and CuPy.

Run on a GPU machine (one command; torch and CuPy are compared when importable)::

    python benchmarks/bench_cuda.py                  # float32 and float16, every case
    nbsoftmax bench --device cuda --full             # the same, from an installed package
    python benchmarks/bench_cuda.py --quick --json bench.json   # float32, fewer sizes (< 5 min)

Per case and operation it reports:

- ``kernel us``: GPU time per call from CUDA events, with the calls queued behind a kernel
  that sleeps on the GPU while the host enqueues them, so that host overhead does not show;
- ``e2e us``: wall time per call of the public function (``out=`` preallocated), a batch of
  calls then a synchronize: what a caller sees, host overhead included;
- ``GB/s`` from the kernel time, counting the bytes an operation must move (forward: read
  x, write y = 2 x bytes; backward: read g and y, write dx = 3 x bytes), and ``of copy``:
  that rate over the device-to-device copy's rate on the same bytes, timed the same way;
- ``x torch`` / ``x cupy``: peer kernel time / nbsoftmax kernel time (> 1: nbsoftmax
  faster) for ``torch.softmax`` / ``log_softmax`` / ``torch._softmax_backward_data`` (what
  autograd runs) and ``cupyx.scipy.special.softmax``.

Then the geometric means over the 4096 x N sweep and the host time per call for a tiny
input. Inputs exceed the 50 MB L2 of an H100 except where a case is small by nature.
``--json FILE`` writes ``{"device", "peers", "rows": [...], "sweep": {...}, "host_us":
{...}}`` with the columns above as ``kernel_us``, ``e2e_us``, ``gb_per_s``, ``of_copy``,
``x_torch``, ``x_cupy`` (null where not measured).
"""

import argparse
import json
import math
import statistics
import time

import numpy as np

COLUMNS = ("kernel_us", "e2e_us", "gb_per_s", "of_copy", "x_torch", "x_cupy")
PASSES = {"softmax": 2, "log_softmax": 2, "softmax_bwd": 3, "log_softmax_bwd": 3}


def cases(quick):
    """(label, shape, axis, in the 4096 x N sweep) of each benchmark case."""
    widths = [256, 1024, 4096, 16384] if quick else \
        [256, 512, 1000, 1024, 2048, 3000, 4096, 5000, 8192, 12000, 16384, 32768, 65536]
    for n in widths:
        yield f"4096 x {n}", (4096, n), -1, True
    yield "16 x 4,000,000", (16, 4_000_000), -1, False
    yield "1,000,000 x 128", (1_000_000, 128), -1, False
    yield "64 x 1024 x 1024 axis 1", (64, 1024, 1024), 1, False


# ------------------------------------------------------------------ report (no GPU needed)


def make_row(case, dtype, op, nbytes, kernel_ms, e2e_ms, copy_ms, torch_ms=None, cupy_ms=None):
    """One result row: times in microseconds, GB/s, fraction of the copy rate, peer ratios.

    Examples
    --------
    >>> r = make_row("4096 x 1024", "float32", "softmax", 16 * 2**20, 0.02, 0.03, 0.018, 0.03)
    >>> r["kernel_us"], round(r["gb_per_s"]), r["of_copy"], r["x_torch"], r["x_cupy"]
    (20.0, 1678, 0.9, 1.5, None)
    """
    passes = PASSES[op]
    rate = passes * nbytes / kernel_ms / 1e6
    copy_rate = 2 * nbytes / copy_ms / 1e6 if copy_ms else None
    return {"case": case, "dtype": str(dtype), "op": op,
            "kernel_us": round(kernel_ms * 1e3, 2),
            "e2e_us": None if e2e_ms is None else round(e2e_ms * 1e3, 2),
            "gb_per_s": round(rate, 1),
            "of_copy": None if copy_rate is None else round(rate / copy_rate, 3),
            "x_torch": None if torch_ms is None else round(torch_ms / kernel_ms, 3),
            "x_cupy": None if cupy_ms is None else round(cupy_ms / kernel_ms, 3)}


def header():
    """The table's header line."""
    return (f"{'case':<26}{'dtype':<9}{'op':<17}{'kernel us':>10}{'e2e us':>9}{'GB/s':>8}"
            f"{'of copy':>9}{'x torch':>9}{'x cupy':>8}")


def format_row(row):
    """A row as one table line ('-' where not measured).

    Examples
    --------
    >>> line = format_row(make_row("4096 x 1024", "float32", "softmax", 2**24, 0.02, None,
    ...                            0.018))
    >>> line.split()[-5:]
    ['-', '1678', '0.90', '-', '-']
    """
    def cell(value, width, fmt):
        return f"{'-' if value is None else format(value, fmt):>{width}}"

    return (f"{row['case']:<26}{row['dtype']:<9}{row['op']:<17}"
            f"{cell(row['kernel_us'], 10, '.1f')}{cell(row['e2e_us'], 9, '.1f')}"
            f"{cell(row['gb_per_s'], 8, '.0f')}{cell(row['of_copy'], 9, '.2f')}"
            f"{cell(row['x_torch'], 9, '.2f')}{cell(row['x_cupy'], 8, '.2f')}")


def sweep_summary(rows, sweep_cases):
    """Geometric mean and minimum of ``x torch`` over the sweep, forward and backward.

    Examples
    --------
    >>> rows = [make_row("4096 x 256", "float32", "softmax", 2**22, 0.01, None, None, 0.02),
    ...         make_row("4096 x 256", "float32", "softmax_bwd", 2**22, 0.01, None, None, 0.005)]
    >>> sweep_summary(rows, {"4096 x 256"})
    {'forward': {'geomean_x_torch': 2.0, 'min_x_torch': 2.0, 'cases': 1}, 'backward': {'geomean_x_torch': 0.5, 'min_x_torch': 0.5, 'cases': 1}}
    """
    out = {}
    for kind in ("forward", "backward"):
        ratios = [r["x_torch"] for r in rows if r["case"] in sweep_cases and r["x_torch"]
                  and r["op"].endswith("_bwd") == (kind == "backward")]
        if ratios:
            geo = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
            out[kind] = {"geomean_x_torch": round(geo, 3), "min_x_torch": min(ratios),
                         "cases": len(ratios)}
    return out


def write_json(path, device, peers, rows, sweep, host_us):
    """Write the report (see the module docstring)."""
    with open(path, "w") as f:
        json.dump({"device": device, "peers": sorted(peers), "rows": rows, "sweep": sweep,
                   "host_us": host_us}, f, indent=1)


def parse_args(argv=None):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="bench_cuda", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="float32, 4096 x {256, 1024, 4096, 16384} and the three large "
                             "cases (under 5 minutes on an H100)")
    parser.add_argument("--dtypes", default=None,
                        help="comma-separated dtypes, default float32,float16 (--quick: "
                             "float32)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.dtypes = (args.dtypes or ("float32" if args.quick else "float32,float16")).split(",")
    for d in args.dtypes:
        if d not in ("float16", "float32", "float64"):
            parser.error(f"--dtypes takes float16, float32 and float64, not {d!r}")
    return args


# ------------------------------------------------------------------ timing (GPU)


def _peers():
    peers = {}
    try:
        import torch

        if torch.cuda.is_available():
            peers["torch"] = torch
    except ImportError:
        pass
    try:
        import cupy
        import cupyx.scipy.special

        peers["cupy"] = (cupy, cupyx.scipy.special)
    except ImportError:
        pass
    return peers


class Timer:
    """Kernel time from CUDA events on the legacy default stream, which torch and CuPy use
    by default too, with the calls queued behind a GPU sleep (see the module docstring)."""

    def __init__(self, cuda):
        self.cuda = cuda
        self.stream = cuda.default_stream()

        @cuda.jit
        def sleep(ns):
            for _ in range(ns // 100_000 + 1):
                cuda.nanosleep(100_000)

        self.sleep = sleep

    def kernel_ms(self, fn, budget_ms=200.0):
        """Median GPU milliseconds per call of fn over 5 batches."""
        cuda = self.cuda
        fn()
        cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        cuda.synchronize()
        first_ms = max((time.perf_counter() - t0) * 1e3, 1e-3)
        reps = max(3, min(100, int(budget_ms / 5 / first_ms)))
        start, end = cuda.event(), cuda.event()
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()  # the host cost of one call, to size the sleep that hides the enqueueing
            host_ms = (time.perf_counter() - t0) * 1e3
            self.sleep[1, 1, self.stream](int(min(host_ms * reps * 2 + 1.0, 500.0) * 1e6))
            start.record(self.stream)
            for _ in range(reps):
                fn()
            end.record(self.stream)
            end.synchronize()
            samples.append(cuda.event_elapsed_time(start, end) / reps)
        return statistics.median(samples)

    def e2e_ms(self, fn, budget_ms=100.0):
        """Wall milliseconds per call of fn, a batch of calls then a synchronize."""
        fn()
        self.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        self.cuda.synchronize()
        reps = max(3, min(200, int(budget_ms / max((time.perf_counter() - t0) * 1e3, 1e-3))))
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        self.cuda.synchronize()
        return (time.perf_counter() - t0) * 1e3 / reps


def _calls(nbsoftmax, x, g, y, out, axis, peers, shape):
    """(op, ours, torch's or None, cupy's or None) of one case."""
    torch = peers.get("torch")
    tx = tg = ty = None
    if torch is not None:
        tx, tg = torch.as_tensor(x, device="cuda"), torch.as_tensor(g, device="cuda")
        ty = torch.softmax(tx, axis)
    cx = peers["cupy"][0].asarray(x) if "cupy" in peers else None
    special = peers["cupy"][1] if "cupy" in peers else None
    dim = axis % len(shape)
    return [
        ("softmax", lambda: nbsoftmax.softmax(x, axis=axis, out=out),
         (lambda: torch.softmax(tx, axis)) if torch else None,
         (lambda: special.softmax(cx, axis=axis)) if cx is not None else None),
        ("log_softmax", lambda: nbsoftmax.log_softmax(x, axis=axis, out=out),
         (lambda: torch.log_softmax(tx, axis)) if torch else None, None),
        ("softmax_bwd", lambda: nbsoftmax.softmax_backward(g, y, axis=axis, out=out),
         (lambda: torch._softmax_backward_data(tg, ty, dim, tx.dtype)) if torch else None,
         None),
    ]


def _case_rows(cuda, nbsoftmax, timer, peers, rng, label, shape, axis, dtype):
    """The rows of one case; its device arrays are freed on return."""
    x = cuda.to_device((rng.standard_normal(shape) * 3).astype(dtype))
    g = cuda.to_device(rng.standard_normal(shape).astype(dtype))
    out = cuda.device_array(shape, dtype)
    y = nbsoftmax.softmax(x, axis=axis)
    copy_dst = cuda.device_array(shape, dtype)
    nbytes = x.size * dtype.itemsize
    copy_ms = timer.kernel_ms(lambda: copy_dst.copy_to_device(x, stream=timer.stream))
    rows = []
    for op, ours, theirs, cupy_call in _calls(nbsoftmax, x, g, y, out, axis, peers, shape):
        rows.append(make_row(label, dtype.name, op, nbytes, timer.kernel_ms(ours),
                             timer.e2e_ms(ours), copy_ms,
                             timer.kernel_ms(theirs) if theirs else None,
                             timer.kernel_ms(cupy_call) if cupy_call else None))
    return rows


def _host_us(cuda, nbsoftmax, peers):
    """Host time per call for a tiny input, the GPU idle (a batch, then one synchronize)."""
    tiny = cuda.to_device(np.ones((1, 8), np.float32))
    tiny_out = cuda.device_array((1, 8), np.float32)
    calls = [("softmax(d, out=)", lambda: nbsoftmax.softmax(tiny, out=tiny_out)),
             ("softmax(d)", lambda: nbsoftmax.softmax(tiny))]
    if "torch" in peers:
        tt = peers["torch"].ones((1, 8), device="cuda")
        calls.append(("torch.softmax", lambda: peers["torch"].softmax(tt, -1)))
    result = {}
    for label, call in calls:
        for _ in range(100):
            call()
        cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(2000):
            call()
        result[label] = round((time.perf_counter() - t0) / 2000 * 1e6, 2)
        cuda.synchronize()
    return result


def main(argv=None):
    """Run the benchmark (needs a CUDA GPU); returns the exit status."""
    args = parse_args(argv)
    from numba import cuda

    import nbsoftmax

    if not cuda.is_available():
        raise SystemExit("no CUDA GPU: this benchmark needs one")
    peers = _peers()
    dev = cuda.get_current_device()
    device = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    print(f"device: {device}; peers: {', '.join(peers) or 'none'}")
    timer = Timer(cuda)
    rng = np.random.default_rng(0)
    rows, sweep_cases = [], set()
    print(header())
    print("-" * len(header()))
    for dtype in map(np.dtype, args.dtypes):
        for label, shape, axis, in_sweep in cases(args.quick):
            if in_sweep:
                sweep_cases.add(label)
            for row in _case_rows(cuda, nbsoftmax, timer, peers, rng, label, shape, axis,
                                  dtype):
                rows.append(row)
                print(format_row(row), flush=True)
    sweep = sweep_summary(rows, sweep_cases)
    for kind, s in sweep.items():
        print(f"4096 x N sweep, {kind}: geometric mean x torch {s['geomean_x_torch']:.2f}, "
              f"min {s['min_x_torch']:.2f} ({s['cases']} cases)")
    host_us = _host_us(cuda, nbsoftmax, peers)
    for label, us in host_us.items():
        print(f"host time per call, {label}: {us:.1f} us")
    if args.json:
        write_json(args.json, device, peers, rows, sweep, host_us)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
