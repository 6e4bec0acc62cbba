"""The table of peers: what nbsoftmax is timed against, shared by ``nbsoftmax bench`` and
the pytest-benchmark suite in ``benchmarks/``.

NumPy's max-subtract expressions, ``scipy.special``, torch on the CPU with the same thread
count (as users call it, and with a preallocated ``out=``) and ``jax.jit``, each only when
importable (``missing_peers`` names those that are not); plus the roofline, ``np.copyto``
of the input's bytes and a copy by Numba's thread pool.

Bytes moved, counted as every byte read and written once: softmax and log_softmax
``2 * x.nbytes`` (read x, write y), the backward passes ``3 * x.nbytes`` (read g and y,
write the gradient), logsumexp and softmax_topk ``x.nbytes`` (the results are small), and
cross_entropy with its gradient ``2 * x.nbytes`` (read the logits, write the gradient).
"""

import importlib
import importlib.util

import numpy as np

OPS = ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward")
FORWARD = ("softmax", "log_softmax")
# Operations timed by `nbsoftmax bench` besides OPS; they take 2-D last-axis cases only.
REDUCING_OPS = ("logsumexp", "cross_entropy", "softmax_topk")
PEERS = ("numpy", "scipy", "torch", "torch out=", "jax.jit")
_PEER_MODULES = {"scipy": "scipy", "torch": "torch", "jax.jit": "jax"}


def traffic_bytes(op, nbytes):
    """The bytes op must move for an input of nbytes (see the module docstring)."""
    if op in ("logsumexp", "softmax_topk"):
        return nbytes
    return (2 if op in FORWARD or op == "cross_entropy" else 3) * nbytes


def missing_peers():
    """The peers left out because their package is not installed."""
    return [name for name, module in _PEER_MODULES.items()
            if importlib.util.find_spec(module) is None]


def _installed(module):
    """The module imported, or None when it is not installed (as missing_peers sees it)."""
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# ---------------------------------------------------------------------------- inputs


def make_inputs(op, shape, axis, dtype, seed=0):
    """Logits x (forward) or (grad_output, output) (backward) of the given shape and dtype."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape, dtype=np.float32) * 4).astype(dtype)
    if op not in ("softmax_backward", "log_softmax_backward"):
        return (x,)
    import nbsoftmax

    g = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    y = nbsoftmax.softmax(x, axis) if op == "softmax_backward" else nbsoftmax.log_softmax(x, axis)
    return g, y


def xent_inputs(rows, classes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((rows, classes), np.float32) * 3).astype(dtype)
    return logits, rng.integers(0, classes, rows)


# ------------------------------------------------- softmax, log_softmax, backward passes


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

    def logsumexp(x):
        m = x.max(axis, keepdims=True)
        return (m + np.log(np.exp(x - m).sum(axis, keepdims=True))).squeeze(axis)

    return locals()[op]


def _scipy_call(op, axis):
    scipy_special = _installed("scipy.special")
    if scipy_special is None:
        return None
    if op == "softmax":
        return lambda x: scipy_special.softmax(x, axis=axis)
    if op == "log_softmax":
        return lambda x: scipy_special.log_softmax(x, axis=axis)
    if op == "logsumexp":
        return lambda x: scipy_special.logsumexp(x, axis=axis)
    return None  # SciPy has no softmax gradients


def _torch_calls(op, axis, inputs, threads):
    torch = _installed("torch")
    if torch is None:
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
    if op == "logsumexp":
        return {"torch": lambda: torch.logsumexp(tensors[0], dim)}
    g, y = tensors
    if op == "softmax_backward":  # what autograd runs for softmax's backward
        return {"torch": lambda: aten._softmax_backward_data(g, y, dim, dtype),
                "torch out=": lambda: aten._softmax_backward_data.out(g, y, dim, dtype,
                                                                      grad_input=out)}
    return {"torch": lambda: aten._log_softmax_backward_data(g, y, dim, dtype),
            "torch out=": lambda: aten._log_softmax_backward_data.out(g, y, dim, dtype, out=out)}


def _jax_call(op, axis, inputs):
    jax, jnp = _installed("jax"), _installed("jax.numpy")
    if jax is None or jnp is None:
        return None
    if any(a.dtype == np.float64 for a in inputs):
        jax.config.update("jax_enable_x64", True)
    arrays = [jax.device_put(a) for a in inputs]
    if op == "softmax":
        fn = jax.jit(lambda x: jax.nn.softmax(x, axis=axis))
    elif op == "log_softmax":
        fn = jax.jit(lambda x: jax.nn.log_softmax(x, axis=axis))
    elif op == "logsumexp":
        fn = jax.jit(lambda x: jax.nn.logsumexp(x, axis=axis))
    elif op == "softmax_backward":  # the VJP jax.grad would build, jitted
        fn = jax.jit(lambda g, y: y * (g - jnp.sum(g * y, axis=axis, keepdims=True)))
    else:
        fn = jax.jit(lambda g, y: g - jnp.exp(y) * jnp.sum(g, axis=axis, keepdims=True))
    return lambda: fn(*arrays).block_until_ready()


def _only(calls, peers):
    if peers is None:
        return calls
    return {k: v for k, v in calls.items() if k.startswith("nbsoftmax") or k in peers}


def peer_calls(op, axis, inputs, threads=None, peers=None):
    """{name: zero-argument callable} for nbsoftmax (allocating, and with out= where the
    function has it) and each importable peer; op among OPS and "logsumexp"."""
    import numba

    import nbsoftmax

    threads = threads or numba.get_num_threads()
    fn = getattr(nbsoftmax, op)
    calls = {"nbsoftmax": lambda: fn(*inputs, axis=axis)}
    if op != "logsumexp":
        out = np.empty_like(inputs[0])
        calls["nbsoftmax out="] = lambda: fn(*inputs, axis=axis, out=out)
    numpy_fn = _numpy_call(op, axis)
    calls["numpy"] = lambda: numpy_fn(*inputs)
    scipy_fn = _scipy_call(op, axis)
    if scipy_fn is not None:
        calls["scipy"] = lambda: scipy_fn(*inputs)
    calls.update(_torch_calls(op, axis, inputs, threads))
    jax_fn = _jax_call(op, axis, inputs)
    if jax_fn is not None:
        calls["jax.jit"] = jax_fn
    return _only(calls, peers)


def reference(op, axis, inputs):
    """float64 result to measure nbsoftmax's error against (SciPy where it has the op)."""
    as64 = [np.asarray(a, np.float64) for a in inputs]
    scipy_fn = _scipy_call(op, axis)
    return (scipy_fn or _numpy_call(op, axis))(*as64)


# --------------------------------------------------- cross-entropy (forward + backward)


def _numpy_xent(logits, target):
    rows = np.arange(logits.shape[0])
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    grad = np.exp(logp)
    grad[rows, target] -= 1
    return -logp[rows, target].mean(), grad / len(rows)


def xent_peer_calls(logits, target, threads=None, peers=None):
    """{name: zero-argument callable} computing the mean cross-entropy and its gradient with
    respect to the logits, for nbsoftmax and each importable peer."""
    import numba

    import nbsoftmax

    threads = threads or numba.get_num_threads()
    calls = {"nbsoftmax": lambda: nbsoftmax.cross_entropy(logits, target, return_grad=True),
             "numpy": lambda: _numpy_xent(logits, target)}
    torch = _installed("torch")
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
    return _only(calls, peers)


def xent_error(logits, target):
    """Largest absolute error of nbsoftmax's loss and gradient against float64 NumPy."""
    import nbsoftmax

    loss, grad = nbsoftmax.cross_entropy(logits, target, return_grad=True)
    ref_loss, ref_grad = _numpy_xent(logits.astype(np.float64), target)
    return max(abs(float(loss) - ref_loss),
               float(np.max(np.abs(grad.astype(np.float64) - ref_grad))))


# ------------------------------------------------------------------------- softmax top-k


def _numpy_topk(x, k):
    """Softmax of the whole row, then argpartition and a sort of the k."""
    p = np.exp(x - x.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    part = np.argpartition(-p, k - 1, axis=-1)[:, :k]
    vals = np.take_along_axis(p, part, axis=-1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    return np.take_along_axis(vals, order, -1), np.take_along_axis(part, order, -1)


def topk_peer_calls(x, k, threads=None, peers=None):
    """{name: zero-argument callable} giving the k most likely entries of each row's softmax
    and their indices, for nbsoftmax and each importable peer."""
    import numba

    import nbsoftmax

    threads = threads or numba.get_num_threads()
    calls = {"nbsoftmax": lambda: nbsoftmax.softmax_topk(x, k),
             "numpy": lambda: _numpy_topk(x, k)}
    torch = _installed("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        t = torch.from_numpy(x)
        calls["torch"] = lambda: torch.topk(torch.softmax(t, -1), k, -1)
    return _only(calls, peers)


def topk_error(x, k):
    """Largest absolute error of nbsoftmax's top-k probabilities against float64 NumPy."""
    import nbsoftmax

    probs, _ = nbsoftmax.softmax_topk(x, k)
    ref, _ = _numpy_topk(x.astype(np.float64), k)
    return float(np.max(np.abs(probs.astype(np.float64) - ref)))


# ----------------------------------------------------------------------------- roofline


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
