"""``nbsoftmax bench``: nbsoftmax side by side with its peers and the memory roofline.

One table of peers (``peer_calls``) serves this command and the pytest-benchmark suite in
``benchmarks/``: NumPy's max-subtract expression, ``scipy.special``, torch on the CPU with
the same thread count (as users call it and with a preallocated ``out=``) and ``jax.jit``,
each only when importable; plus the roofline, ``np.copyto`` of the input's bytes and a
copy by Numba's thread pool, measured in the same run.

Bytes moved, counted as every byte read and written once: forward ``2 * x.nbytes`` (read x,
write y), backward ``3 * x.nbytes`` (read g and y, write the gradient). A copy moves
``2 * x.nbytes``; "of copy" is the operation's GB/s over the faster copy's GB/s.
"""

import json
import os
import platform
import sys
import time

import numpy as np

OPS = ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward")
FORWARD = ("softmax", "log_softmax")

# (shape, axis) of the benchmark matrix.
FULL_CASES = (
    ((4096, 1000), -1),
    ((256, 32000), -1),
    ((64, 262144), -1),
    ((100000, 10), -1),
    ((8192, 4096), -1),
    ((16, 4_000_000), -1),
    ((1_000_000, 128), -1),
    ((32, 1000, 1024), 1),
    ((4096, 1000), 0),
)
# The default suite of `nbsoftmax bench`: about a minute on a 2-core machine.
QUICK_CASES = (
    ((4096, 1000), -1),
    ((256, 32000), -1),
    ((100000, 10), -1),
    ((16, 4_000_000), -1),
    ((4096, 1000), 0),
    ((1, 10), -1),
)


def traffic_bytes(op, nbytes):
    return (2 if op in FORWARD else 3) * nbytes


# ---------------------------------------------------------------------------- inputs


def make_inputs(op, shape, axis, dtype, seed=0):
    """Logits x (forward) or (grad_output, output) (backward) of the given shape and dtype."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape, dtype=np.float32) * 4).astype(dtype)
    if op in FORWARD:
        return (x,)
    import nbsoftmax

    g = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    y = nbsoftmax.softmax(x, axis) if op == "softmax_backward" else nbsoftmax.log_softmax(x, axis)
    return g, y


# ----------------------------------------------------------------------------- peers


def _numpy_call(op, axis):
    def softmax(x):
        e = np.exp(x - x.max(axis, keepdims=True))
        return e / e.sum(axis, keepdims=True)

    def log_softmax(x):
        shifted = x - x.max(axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))

    def softmax_backward(g, y):
        return y * (g - (g * y).sum(axis, keepdims=True))

    def log_softmax_backward(g, y):
        return g - np.exp(y) * g.sum(axis, keepdims=True)

    return locals()[op]


def _scipy_call(op, axis):
    try:
        import scipy.special
    except ImportError:
        return None
    if op == "softmax":
        return lambda x: scipy.special.softmax(x, axis=axis)
    if op == "log_softmax":
        return lambda x: scipy.special.log_softmax(x, axis=axis)
    return None  # SciPy has no softmax gradients


def _torch_calls(op, axis, inputs, threads):
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(threads)
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
    dim = axis % inputs[0].ndim
    out = torch.empty_like(tensors[0])
    dtype = tensors[0].dtype
    aten = torch.ops.aten
    if op == "softmax":
        return {"torch": lambda: torch.softmax(tensors[0], dim),
                "torch out=": lambda: torch.softmax(tensors[0], dim, out=out)}
    if op == "log_softmax":
        return {"torch": lambda: torch.log_softmax(tensors[0], dim),
                "torch out=": lambda: torch.log_softmax(tensors[0], dim, out=out)}
    g, y = tensors
    if op == "softmax_backward":  # what autograd runs for softmax's backward
        return {"torch": lambda: aten._softmax_backward_data(g, y, dim, dtype),
                "torch out=": lambda: aten._softmax_backward_data.out(g, y, dim, dtype,
                                                                      grad_input=out)}
    return {"torch": lambda: aten._log_softmax_backward_data(g, y, dim, dtype),
            "torch out=": lambda: aten._log_softmax_backward_data.out(g, y, dim, dtype, out=out)}


def _jax_call(op, axis, inputs):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    if any(a.dtype == np.float64 for a in inputs):
        jax.config.update("jax_enable_x64", True)
    arrays = [jax.device_put(a) for a in inputs]
    if op == "softmax":
        fn = jax.jit(lambda x: jax.nn.softmax(x, axis=axis))
    elif op == "log_softmax":
        fn = jax.jit(lambda x: jax.nn.log_softmax(x, axis=axis))
    elif op == "softmax_backward":  # the VJP jax.grad would build, jitted
        fn = jax.jit(lambda g, y: y * (g - jnp.sum(g * y, axis=axis, keepdims=True)))
    else:
        fn = jax.jit(lambda g, y: g - jnp.exp(y) * jnp.sum(g, axis=axis, keepdims=True))
    return lambda: fn(*arrays).block_until_ready()


def peer_calls(op, axis, inputs, threads=None, peers=None):
    """{name: zero-argument callable} for nbsoftmax (allocating and out=) and each peer."""
    import numba

    import nbsoftmax

    threads = threads or numba.get_num_threads()
    fn = getattr(nbsoftmax, op)
    out = np.empty_like(inputs[0])
    calls = {
        "nbsoftmax": lambda: fn(*inputs, axis=axis),
        "nbsoftmax out=": lambda: fn(*inputs, axis=axis, out=out),
    }
    numpy_fn = _numpy_call(op, axis)
    calls["numpy"] = lambda: numpy_fn(*inputs)
    scipy_fn = _scipy_call(op, axis)
    if scipy_fn is not None:
        calls["scipy"] = lambda: scipy_fn(*inputs)
    calls.update(_torch_calls(op, axis, inputs, threads))
    jax_fn = _jax_call(op, axis, inputs)
    if jax_fn is not None:
        calls["jax.jit"] = jax_fn
    if peers is not None:
        calls = {k: v for k, v in calls.items() if k.startswith("nbsoftmax") or k in peers}
    return calls


# --------------------------------------------------- cross-entropy (forward + backward)
# Least traffic: the logits read once and the gradient written once (2 x their bytes).


def xent_inputs(rows, classes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((rows, classes), np.float32) * 3).astype(dtype)
    return logits, rng.integers(0, classes, rows)


def xent_peer_calls(logits, target, threads=None, peers=None):
    """{name: zero-argument callable} computing the mean cross-entropy and its gradient with
    respect to the logits, for nbsoftmax and each importable peer."""
    import numba

    import nbsoftmax

    threads = threads or numba.get_num_threads()
    rows = np.arange(logits.shape[0])

    def numpy_xent():
        shifted = logits - logits.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        logp = shifted - lse
        grad = np.exp(logp)
        grad[rows, target] -= 1
        return -logp[rows, target].mean(), grad / len(rows)

    calls = {"nbsoftmax": lambda: nbsoftmax.cross_entropy(logits, target, return_grad=True),
             "numpy": numpy_xent}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads)
        tl = torch.from_numpy(logits)
        tt = torch.from_numpy(target)

        def torch_xent():
            x = tl.detach().requires_grad_()
            loss = torch.nn.functional.cross_entropy(x, tt)
            loss.backward()
            return loss, x.grad

        calls["torch"] = torch_xent
    if peers is not None:
        calls = {k: v for k, v in calls.items() if k.startswith("nbsoftmax") or k in peers}
    return calls


# ------------------------------------------------------------------------- softmax top-k
# Least traffic: the input read once (the k results are negligible).


def topk_peer_calls(x, k, threads=None, peers=None):
    """{name: zero-argument callable} giving the k most likely entries of each row's softmax
    and their indices, for nbsoftmax and each importable peer."""
    import numba

    import nbsoftmax

    threads = threads or numba.get_num_threads()

    def numpy_topk():  # softmax of the whole row, then argpartition and a sort of the k
        p = np.exp(x - x.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        part = np.argpartition(-p, k - 1, axis=-1)[:, :k]
        vals = np.take_along_axis(p, part, axis=-1)
        order = np.argsort(-vals, axis=-1, kind="stable")
        return np.take_along_axis(vals, order, -1), np.take_along_axis(part, order, -1)

    calls = {"nbsoftmax": lambda: nbsoftmax.softmax_topk(x, k), "numpy": numpy_topk}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads)
        t = torch.from_numpy(x)
        calls["torch"] = lambda: torch.topk(torch.softmax(t, -1), k, -1)
    if peers is not None:
        calls = {k_: v for k_, v in calls.items() if k_.startswith("nbsoftmax") or k_ in peers}
    return calls


def reference(op, axis, inputs):
    """float64 result to measure nbsoftmax's error against (SciPy where it has the op)."""
    as64 = [np.asarray(a, np.float64) for a in inputs]
    scipy_fn = _scipy_call(op, axis)
    return (scipy_fn or _numpy_call(op, axis))(*as64)


def _parallel_copy():
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def copy_threads(src, dst):
        for i in prange(src.size):
            dst[i] = src[i]

    return copy_threads


def roofline_calls(nbytes):
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    copy_threads = _parallel_copy()
    return {"np.copyto": lambda: np.copyto(dst, src),
            "copy (threads)": lambda: copy_threads(src, dst)}


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


def machine():
    import numba

    import nbsoftmax

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
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


def run_case(op, shape, axis, dtype, threads=None, peers=None, min_time=0.1):
    """Time nbsoftmax, its peers and the roofline on one case; returns a result dict."""
    inputs = make_inputs(op, shape, axis, dtype)
    nbytes = inputs[0].nbytes
    moved = traffic_bytes(op, nbytes)
    import nbsoftmax

    got = getattr(nbsoftmax, op)(*inputs, axis=axis)
    with np.errstate(all="ignore"):
        error = float(np.max(np.abs(got.astype(np.float64) - reference(op, axis, inputs))))
    times = {}
    for name, fn in peer_calls(op, axis, inputs, threads, peers).items():
        times[name] = measure(fn, min_time)
    copies = {name: measure(fn, min_time) for name, fn in roofline_calls(nbytes).items()}
    copy_gbs = max(2 * nbytes / t for t in copies.values()) / 1e9
    gbs = moved / times["nbsoftmax"] / 1e9
    return {
        "op": op, "shape": list(shape), "axis": axis, "dtype": np.dtype(dtype).name,
        "bytes_moved": moved, "times_s": times, "copy_times_s": copies,
        "gb_per_s": gbs, "gb_per_s_out": moved / times["nbsoftmax out="] / 1e9,
        "copy_gb_per_s": copy_gbs, "of_copy": moved / times["nbsoftmax out="] / 1e9 / copy_gbs,
        "speedup": {name: t / times["nbsoftmax out=" if name.endswith("out=") else "nbsoftmax"]
                    for name, t in times.items() if not name.startswith("nbsoftmax")},
        "max_abs_error": error,
    }


# ------------------------------------------------------------------------------ report


def _fmt_time(t):
    return f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def format_table(results):
    peers = []
    for r in results:
        peers += [p for p in r["speedup"] if p not in peers]
    head = ["case", "dtype", "nbsoftmax", "GB/s", "out= GB/s", "of copy"] + \
        [f"x {p}" for p in peers] + ["max err"]
    rows = []
    for r in results:
        case = f"{r['op']} {'x'.join(map(str, r['shape']))} axis={r['axis']}"
        rows.append([case, r["dtype"], _fmt_time(r["times_s"]["nbsoftmax"]), f"{r['gb_per_s']:.1f}",
                     f"{r['gb_per_s_out']:.1f}", f"{r['of_copy']:.2f}"]
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


# --------------------------------------------------------------------------------- CLI


def _shape(text):
    return tuple(int(s) for s in text.lower().split("x"))


def add_parser(sub):
    p = sub.add_parser("bench", help="time nbsoftmax against its peers and the copy roofline",
                       description=__doc__.splitlines()[0])
    p.add_argument("--ops", nargs="+", choices=OPS, default=["softmax", "log_softmax"])
    p.add_argument("--dtypes", nargs="+", choices=["float32", "float64", "float16"],
                   default=["float32"])
    p.add_argument("--shapes", nargs="+", type=_shape, metavar="RxC",
                   help="shapes like 4096x1000 (default: a quick suite; see --full)")
    p.add_argument("--axis", type=int, default=-1, help="softmax axis for --shapes (default -1)")
    p.add_argument("--full", action="store_true", help="the whole benchmark matrix (minutes)")
    p.add_argument("--peers", nargs="+", help="only these peers (numpy scipy torch 'torch out=' jax.jit)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, help="thread count for nbsoftmax and torch")
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per timing round")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="also plot GB/s per case (needs matplotlib)")
    p.set_defaults(func=main)


def main(args):
    import numba

    if args.device == "cuda":
        from ..cuda import _bench as cuda_bench  # the GPU suite lives with the GPU backend

        argv = [] if args.full else ["--quick"]
        if args.dtypes != ["float32"]:
            argv += ["--dtypes", ",".join(args.dtypes)]
        return cuda_bench.main(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    if args.shapes:
        cases = [(s, args.axis) for s in args.shapes]
    else:
        cases = FULL_CASES if args.full else QUICK_CASES
    work = [(op, shape, axis, dt) for dt in args.dtypes for op in args.ops for shape, axis in cases]
    results = []
    for k, (op, shape, axis, dt) in enumerate(work, 1):
        print(f"[{k}/{len(work)}] {op} {dt} {'x'.join(map(str, shape))} axis={axis}",
              file=sys.stderr, flush=True)
        results.append(run_case(op, shape, axis, dt, args.threads, args.peers, args.min_time))
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, numba {info['numba']} with "
          f"{info['numba_threads']} threads ({info['threading_layer']} layer)")
    print("speedups x PEER = peer time / nbsoftmax time (out= peers against nbsoftmax out=)")
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)
    if args.plot:
        plot(results, args.plot)
    return 0
