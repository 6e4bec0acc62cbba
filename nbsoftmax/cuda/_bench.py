"""GPU benchmark of nbsoftmax's CUDA backend against the copy roofline, torch and CuPy.

Run on a GPU machine (one command; torch and CuPy are compared when importable)::

    python benchmarks/bench_cuda.py            # float32 and float16, every case
    nbsoftmax bench --device cuda --full       # the same, from an installed package
    python benchmarks/bench_cuda.py --quick    # fewer sizes, float32 only

Per case it prints the median kernel time (CUDA events, results written to a preallocated
``out=``), GB/s counting the bytes an operation must move (forward: read x, write y = 2 x
bytes; backward: read g and y, write dx = 3 x bytes), that rate as a fraction of the
device-to-device copy rate measured on the same bytes in the same run, and time ratios
``peer / nbsoftmax`` (> 1: nbsoftmax faster) against ``torch.softmax`` / ``log_softmax``,
torch's softmax backward kernel (what autograd runs) and ``cupyx.scipy.special.softmax``.
Then the geometric means over the 4096 x N sweep and the host time per call for a tiny
input. Inputs exceed the 50 MB L2 of an H100 except where a case is small by nature.
"""

import argparse
import math
import statistics
import time

import numpy as np


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


def _time(cuda, fn, stream, budget=0.25, reps=None):
    """Median milliseconds of fn() over batches, timed with events on stream."""
    fn()
    stream.synchronize()
    start, end = cuda.event(), cuda.event()
    start.record(stream)
    fn()
    end.record(stream)
    end.synchronize()
    first = max(cuda.event_elapsed_time(start, end), 1e-3)
    reps = reps or max(3, min(200, int(budget * 1e3 / first)))
    samples = []
    for _ in range(5):
        start.record(stream)
        for _ in range(reps):
            fn()
        end.record(stream)
        end.synchronize()
        samples.append(cuda.event_elapsed_time(start, end) / reps)
    return statistics.median(samples)


def _torch_time(torch, fn, reps=None):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    first = max(start.elapsed_time(end), 1e-3)
    reps = reps or max(3, min(200, int(250 / first)))
    samples = []
    for _ in range(5):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / reps)
    return statistics.median(samples)


def cases(quick):
    widths = [256, 1024, 4096, 16384] if quick else \
        [256, 512, 1000, 1024, 2048, 3000, 4096, 5000, 8192, 12000, 16384, 32768]
    for n in widths:
        yield f"4096 x {n}", (4096, n), -1, True
    yield "16 x 4,000,000", (16, 4_000_000), -1, False
    yield "1,000,000 x 128", (1_000_000, 128), -1, False
    yield "64 x 1024 x 1024 axis 1", (64, 1024, 1024), 1, False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, float32 only")
    parser.add_argument("--dtypes", default=None, help="comma-separated, default float32,float16")
    args = parser.parse_args(argv)
    dtypes = (args.dtypes or ("float32" if args.quick else "float32,float16")).split(",")

    from numba import cuda

    import nbsoftmax

    if not cuda.is_available():
        raise SystemExit("no CUDA GPU: this benchmark needs one")
    peers = _peers()
    device = cuda.get_current_device()
    print(f"device: {device.name.decode() if isinstance(device.name, bytes) else device.name}; "
          f"peers: {', '.join(peers) or 'none'}")
    stream = cuda.default_stream()
    rng = np.random.default_rng(0)
    sweep = {"forward": [], "backward": []}
    header = (f"{'case':<26}{'dtype':<9}{'op':<13}{'time us':>10}{'GB/s':>9}{'of copy':>9}"
              f"{'x torch':>9}{'x cupy':>9}")
    print(header)
    print("-" * len(header))
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        for label, shape, axis, in_sweep in cases(args.quick):
            x = cuda.to_device((rng.standard_normal(shape) * 3).astype(dtype))
            g = cuda.to_device(rng.standard_normal(shape).astype(dtype))
            out = cuda.device_array(shape, dtype)
            y = nbsoftmax.softmax(x, axis=axis)
            nbytes = x.size * dtype.itemsize
            copy_dst = cuda.device_array(shape, dtype)
            copy_ms = _time(cuda, lambda: copy_dst.copy_to_device(x, stream=stream), stream)
            copy_rate = 2 * nbytes / copy_ms / 1e6
            t_torch = peers.get("torch")
            tx = tg = ty = None
            if t_torch is not None:
                tx = t_torch.as_tensor(x, device="cuda")
                tg = t_torch.as_tensor(g, device="cuda")
                ty = t_torch.softmax(tx, axis)
            runs = [
                ("softmax", 2, lambda: nbsoftmax.softmax(x, axis=axis, out=out),
                 (lambda: t_torch.softmax(tx, axis)) if tx is not None else None, "softmax"),
                ("log_softmax", 2, lambda: nbsoftmax.log_softmax(x, axis=axis, out=out),
                 (lambda: t_torch.log_softmax(tx, axis)) if tx is not None else None, None),
                ("softmax_bwd", 3, lambda: nbsoftmax.softmax_backward(g, y, axis=axis, out=out),
                 (lambda: t_torch._softmax_backward_data(tg, ty, axis % len(shape), tx.dtype))
                 if tx is not None else None, None),
            ]
            for op, passes, ours, theirs, cupy_op in runs:
                ms = _time(cuda, ours, stream)
                rate = passes * nbytes / ms / 1e6
                vs_torch = _torch_time(t_torch, theirs) / ms if theirs is not None else float("nan")
                vs_cupy = float("nan")
                if cupy_op and "cupy" in peers:
                    cupy, special = peers["cupy"]
                    cx = cupy.asarray(x)
                    start, end = cupy.cuda.Event(), cupy.cuda.Event()
                    special.softmax(cx, axis=axis)
                    start.record()
                    for _ in range(5):
                        special.softmax(cx, axis=axis)
                    end.record()
                    end.synchronize()
                    vs_cupy = cupy.cuda.get_elapsed_time(start, end) / 5 / ms
                if in_sweep and theirs is not None:
                    sweep["backward" if op.endswith("bwd") else "forward"].append(vs_torch)
                print(f"{label:<26}{dtype.name:<9}{op:<13}{ms * 1e3:>10.1f}{rate:>9.0f}"
                      f"{rate / (copy_rate * passes / 2):>9.2f}{vs_torch:>9.2f}{vs_cupy:>9.2f}")
            del x, g, out, y, copy_dst, tx, tg, ty
    for kind, ratios in sweep.items():
        if ratios:
            geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            print(f"4096 x N sweep, {kind}: geometric mean x torch {geo:.2f}, min {min(ratios):.2f}")
    # Host cost per call: a tiny input, the GPU idle, time per call including the launch.
    tiny = cuda.to_device(np.ones((1, 8), np.float32))
    tiny_out = cuda.device_array((1, 8), np.float32)
    for label, call in [("softmax(d, out=)", lambda: nbsoftmax.softmax(tiny, out=tiny_out)),
                        ("softmax(d)", lambda: nbsoftmax.softmax(tiny))]:
        for _ in range(100):
            call()
        cuda.synchronize()
        calls = 2000
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        elapsed = time.perf_counter() - t0
        cuda.synchronize()
        print(f"host time per call, {label}: {elapsed / calls * 1e6:.1f} us")
    if "torch" in peers:
        torch = peers["torch"]
        tt = torch.ones((1, 8), device="cuda")
        for _ in range(100):
            torch.softmax(tt, -1)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(2000):
            torch.softmax(tt, -1)
        print(f"host time per call, torch.softmax: {(time.perf_counter() - t0) / 2000 * 1e6:.1f} us")


if __name__ == "__main__":
    main()
