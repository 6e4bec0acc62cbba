"""``nbsoftmax bench``: nbsoftmax side by side with its peers and the memory roofline.

Every case (operation x dtype x shape/axis) times nbsoftmax, each peer of the shared table
(``bench_peers``: NumPy, SciPy, torch, JAX, each only when installed) and the copy roofline
of the same bytes, in one run. Every argument is checked before the first case runs: a bad
shape, axis, thread count or time, an unknown peer, an unwritable --json or --plot file, or
--plot without matplotlib is one ``nbsoftmax bench: error: ...`` line and exit status 2.
"""

import importlib.util
import json
import math
import os
import sys
import time

import numpy as np

from . import bench_peers as P
from .bench_report import format_table, issue_figures, machine, plot

BENCH_OPS = P.OPS + P.REDUCING_OPS
DEFAULT_OPS = ("softmax", "log_softmax", "logsumexp", "cross_entropy", "softmax_topk")
DTYPES = ("float32", "float64", "float16")

# (shape, axis) of the issue's benchmark matrix.
FULL_CASES = (
    ((4096, 1000), -1),
    ((256, 32000), -1),
    ((64, 262144), -1),
    ((100000, 10), -1),
    ((8192, 4096), -1),
    ((16, 4_000_000), -1),
    ((1_000_000, 128), -1),
    ((32, 1000, 1024), 1),
    ((32, 1000, 1024), -1),  # the last-axis rate of the same bytes, for the axis=1 figure
    ((4096, 1000), 0),
    ((1, 10), -1),  # the per-call cost
)
# The default suite of `nbsoftmax bench`: a minute or two on a 2-core machine.
QUICK_CASES = (
    ((4096, 1000), -1),
    ((256, 32000), -1),
    ((100000, 10), -1),
    ((16, 4_000_000), -1),
    ((4096, 1000), 0),
    ((1, 10), -1),
)


_DESCRIPTION = (
    "Time nbsoftmax against NumPy, SciPy, torch and JAX (each when installed) and against "
    "a plain memory copy of the same bytes, and print GB/s, speedups and the largest error "
    "per case. Every argument is checked before the first case runs.")


class BenchError(Exception):
    """A bad argument: reported as one line before anything runs."""


# ---------------------------------------------------------------------------- timing


def measure(fn, min_time=0.1, repeats=5):
    """Median seconds per call over `repeats` rounds of at least `min_time` each."""
    fn()  # warm-up: compilation, first-touch of outputs
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_time / once))
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - t0) / number)
    return float(np.median(rounds))


def _calls_and_error(op, shape, axis, dtype, threads, peers, k):
    """(calls, nbytes of the input, max abs error against float64) of one case."""
    import nbsoftmax

    if op == "cross_entropy":
        logits, target = P.xent_inputs(shape[0], shape[1], dtype)
        return (P.xent_peer_calls(logits, target, threads, peers), logits.nbytes,
                P.xent_error(logits, target))
    if op == "softmax_topk":
        x = P.make_inputs(op, shape, axis, dtype)[0]
        return P.topk_peer_calls(x, k, threads, peers), x.nbytes, P.topk_error(x, k)
    inputs = P.make_inputs(op, shape, axis, dtype)
    got = getattr(nbsoftmax, op)(*inputs, axis=axis)
    with np.errstate(all="ignore"):
        error = float(np.max(np.abs(got.astype(np.float64) - P.reference(op, axis, inputs))))
    return P.peer_calls(op, axis, inputs, threads, peers), inputs[0].nbytes, error


def run_case(op, shape, axis, dtype, threads=None, peers=None, min_time=0.1, k=5):
    """Time nbsoftmax, its peers and the roofline on one case; returns a result dict."""
    calls, nbytes, error = _calls_and_error(op, shape, axis, dtype, threads, peers, k)
    moved = P.traffic_bytes(op, nbytes)
    times = {name: measure(fn, min_time) for name, fn in calls.items()}
    copies = {name: measure(fn, min_time) for name, fn in P.roofline_calls(nbytes).items()}
    copy_gbs = max(2 * nbytes / t for t in copies.values()) / 1e9
    best = times.get("nbsoftmax out=", times["nbsoftmax"])
    return {
        "op": op, "shape": list(shape), "axis": axis, "dtype": np.dtype(dtype).name,
        "bytes_moved": moved, "times_s": times, "copy_times_s": copies,
        "gb_per_s": moved / times["nbsoftmax"] / 1e9,
        "gb_per_s_out": moved / times["nbsoftmax out="] / 1e9 if "nbsoftmax out=" in times
        else None,
        "copy_gb_per_s": copy_gbs, "of_copy": moved / best / 1e9 / copy_gbs,
        "speedup": {name: t / times["nbsoftmax out=" if name.endswith("out=") else "nbsoftmax"]
                    for name, t in times.items() if not name.startswith("nbsoftmax")},
        "max_abs_error": error,
    }


# ------------------------------------------------------------------------- arguments


def _shape(text):
    try:
        shape = tuple(int(s) for s in text.lower().split("x"))
    except ValueError:
        raise BenchError(f"--shapes {text!r} is not a shape; expected sizes joined by x, "
                         f"like 4096x1000") from None
    if any(s <= 0 for s in shape):
        raise BenchError(f"--shapes {text} has a dimension of size {min(shape)}; expected "
                         f"sizes of at least 1 (there is nothing to time in an empty array)")
    if len(shape) > 32:
        raise BenchError(f"--shapes {text} has {len(shape)} dimensions; expected at most 32")
    return shape


def _cases(args):
    """The (op, shape, axis, dtype) work list, after checking every argument."""
    if args.shapes:
        cases = [(_shape(s), args.axis) for s in args.shapes]
        for shape, axis in cases:
            if not -len(shape) <= axis < len(shape):
                raise BenchError(f"--axis {axis} is out of range for --shapes "
                                 f"{'x'.join(map(str, shape))} ({len(shape)}-d); "
                                 f"expected {-len(shape)} to {len(shape) - 1}")
    else:
        cases = FULL_CASES if args.full else QUICK_CASES
    work = []
    for dt in args.dtypes:
        for op in args.ops:
            for shape, axis in cases:
                if op in P.REDUCING_OPS and op != "logsumexp" and (
                        len(shape) != 2 or axis not in (-1, 1)):
                    continue  # cross_entropy and softmax_topk: rows of classes, last axis
                if op == "softmax_topk" and args.k > shape[-1]:
                    raise BenchError(f"--k {args.k} is larger than the rows of --shapes "
                                     f"{'x'.join(map(str, shape))}; expected at most "
                                     f"{shape[-1]}")
                work.append((op, shape, axis, dt))
    if not work:
        raise BenchError("no case to run: cross_entropy and softmax_topk take 2-D shapes "
                         "with the last axis; give such --shapes or other --ops")
    return work


def _writable_file(option, path):
    """Check now that path can be written later, without creating it."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise BenchError(f"{option} {path} is a directory; expected a file name")
    if not os.path.isdir(folder):
        raise BenchError(f"{option} {path}: the folder {folder} does not exist")
    target = path if os.path.exists(path) else folder
    if not os.access(target, os.W_OK):
        raise BenchError(f"{option} {path} cannot be written (permission denied)")


def check_args(args):
    """Every check that can fail, before any case runs; returns the work list."""
    import numba

    if args.threads is not None and not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        raise BenchError(f"--threads {args.threads} is out of range; expected 1 to "
                         f"{numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS)")
    if not (math.isfinite(args.min_time) and args.min_time > 0):
        raise BenchError(f"--min-time {args.min_time} is not a positive number of seconds")
    if args.k < 1:
        raise BenchError(f"--k {args.k} must be at least 1")
    if args.peers is not None:
        unknown = [p for p in args.peers if p not in P.PEERS]
        if unknown:
            raise BenchError(f"--peers has unknown names {unknown}; expected some of "
                             f"{', '.join(P.PEERS)}")
    if args.json:
        _writable_file("--json", args.json)
    if args.plot:
        if importlib.util.find_spec("matplotlib") is None:
            raise BenchError(f"--plot {args.plot} needs matplotlib, which is not installed "
                             f"(pip install matplotlib)")
        _writable_file("--plot", args.plot)
    return _cases(args)


def add_parser(sub):
    p = sub.add_parser("bench", help="time nbsoftmax against its peers and the copy roofline",
                       description=_DESCRIPTION)
    p.add_argument("--ops", nargs="+", choices=BENCH_OPS, default=list(DEFAULT_OPS),
                   metavar="OP", help="functions to time (default: %(default)s); also "
                   "softmax_backward, log_softmax_backward")
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=["float32"], metavar="DTYPE",
                   help="input dtypes: float32, float64, float16 (default: float32)")
    p.add_argument("--shapes", nargs="+", metavar="RxC",
                   help="shapes like 4096x1000 or 32x1000x1024 (default: a quick suite; "
                        "see --full)")
    p.add_argument("--axis", type=int, default=-1,
                   help="the softmax axis of --shapes (default: -1, the last)")
    p.add_argument("--full", action="store_true",
                   help="the whole benchmark matrix instead of the quick suite (minutes)")
    p.add_argument("--peers", nargs="+", metavar="PEER",
                   help=f"time only these peers besides nbsoftmax: {', '.join(P.PEERS)} "
                        f"(default: every installed one)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cpu (default), or cuda: the GPU suite, against CuPy and torch")
    p.add_argument("--threads", type=int,
                   help="threads for nbsoftmax and torch (default: Numba's thread count)")
    p.add_argument("--min-time", type=float, default=0.05, metavar="SECONDS",
                   help="least time of one timing round; the median of 5 rounds is shown "
                        "(default: 0.05)")
    p.add_argument("--k", type=int, default=5, help="entries per row for softmax_topk "
                                                    "(default: 5)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also plot GB/s per case to FILE.png (needs matplotlib)")
    p.set_defaults(func=main)


# ------------------------------------------------------------------------------ run


def main(args):
    if args.device == "cuda":
        from ..cuda import _bench as cuda_bench  # the GPU suite lives with the GPU backend

        argv = [] if args.full else ["--quick"]
        if args.dtypes != ["float32"]:
            argv += ["--dtypes", ",".join(args.dtypes)]
        return cuda_bench.main(argv)
    try:
        work = check_args(args)
    except BenchError as exc:
        print(f"nbsoftmax bench: error: {exc}", file=sys.stderr)
        return 2
    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    results = []
    for n, (op, shape, axis, dt) in enumerate(work, 1):
        print(f"[{n}/{len(work)}] {op} {dt} {'x'.join(map(str, shape))} axis={axis}",
              file=sys.stderr, flush=True)
        results.append(run_case(op, shape, axis, dt, args.threads, args.peers, args.min_time,
                                args.k))
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, numba {info['numba']} with "
          f"{info['numba_threads']} threads ({info['threading_layer']} layer), "
          f"kernels compiled for {info['isa']}")
    print("speedups x PEER = peer time / nbsoftmax time (out= peers against nbsoftmax out=)")
    print(format_table(results))
    if args.full:
        print("\n".join(issue_figures(results, info["isa"])))
    missing = P.missing_peers()
    if args.peers is not None:  # only those asked for
        missing = [m for m in missing if any(p.split()[0] == m for p in args.peers)]
    if missing:
        print(f"left out (not installed): {', '.join(missing)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results, "left_out": missing}, f, indent=1)
    if args.plot:
        plot(results, args.plot)
    return 0
