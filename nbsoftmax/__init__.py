"""nbsoftmax: numerically stable softmax, log-softmax and their gradients as Numba kernels.

The public functions are defined in ``nbsoftmax.api`` (signatures and numpydoc docstrings) and
re-exported here; ``nbsoftmax.dispatch`` validates each call once into a plan, and the backends
``nbsoftmax.cpu`` / ``nbsoftmax.cuda`` run it.
"""

from . import _threading
from ._layers import LogSoftmax, Softmax
from .api.reductions import cross_entropy, logsumexp, logsumexp_backward, softmax_topk
from .api.softmax import log_softmax, log_softmax_backward, softmax, softmax_backward, softmin
from .segment import (segment_log_softmax, segment_log_softmax_backward, segment_logsumexp,
                      segment_softmax, segment_softmax_backward)

# Make pip's libtbb findable by Numba before any parallel launch (see nbsoftmax._threading).
_threading.preload_tbb()

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_backward",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "softmin",
    "cross_entropy",
    "softmax_topk",
    "segment_softmax",
    "segment_log_softmax",
    "segment_logsumexp",
    "segment_softmax_backward",
    "segment_log_softmax_backward",
    "Softmax",
    "LogSoftmax",
    "precompile",
]

__version__ = "0.1.0"


def precompile(dtypes=("float32", "float64", "float16"), ops=None, *, processes=1,
               progress=None):
    """Compile every CPU kernel for ``dtypes`` now (or load it from the on-disk cache).

    Every variant the CPU functions can run is built: each function with and without
    ``where=`` and ``temperature=``, softmin, cross_entropy with and without ``weight`` and
    the gradient, for class indices and probabilities, softmax_topk, the backward passes;
    kernels for the last axis, other axes, short rows and long rows, serial and parallel.
    Useful when building container images (also ``nbsoftmax warmup``) or before timing:
    later first calls, in this process or in any later one sharing the cache directory,
    then pay no compilation.

    Parameters
    ----------
    dtypes : {"float16", "float32", "float64"} or a sequence of them, optional
        Result dtypes to compile for (bool and integer input uses float64). Default: all.
    ops : str or sequence of str, optional
        Public function names among ``softmax``, ``log_softmax``, ``logsumexp``,
        ``softmax_backward``, ``log_softmax_backward``, ``softmin``, ``cross_entropy``,
        ``softmax_topk`` and the segment functions (``segment_softmax``, ...: segments longer
        than 1 MiB run the dense kernels of the same operation); default all.
    processes : int or None, optional
        Worker processes that compile into the on-disk cache first, each a share of the
        kernels, before this process loads them (None: one per available core). Default 1:
        compile here. Without a writable cache directory everything is compiled here.
    progress : callable, optional
        Called as ``progress(phase, done, total, text)`` after each kernel, with phase
        ``"compile"`` (in the workers) or ``"load"`` (in this process).

    Returns
    -------
    dict
        ``kernels`` (how many), ``compiled`` and ``loaded`` (in this process), ``workers``,
        ``worker_errors``, ``seconds`` and ``cache`` (the cache directory, or None).

    Raises
    ------
    TypeError
        A dtype that is not float16, float32 or float64; ``processes`` not an int.
    ValueError
        An unknown name in ``ops``; ``processes`` below 1.

    Examples
    --------
    >>> import nbsoftmax
    >>> nbsoftmax.precompile(dtypes="float32", ops="softmax_topk")["kernels"]  # serial, parallel
    2
    """
    from . import _precompile
    from .dispatch import dtypes as _dtypes
    from .cpu import _variants

    if isinstance(dtypes, (str, type)) or hasattr(dtypes, "kind"):  # one dtype
        dtypes = (dtypes,)
    try:
        dtypes = tuple(dict.fromkeys(_dtypes.requested_dtype(d) for d in dtypes))
    except TypeError as exc:
        raise TypeError(f"dtypes: {exc}") from None
    known = _variants.public_ops()
    if ops is None:
        ops = known
    else:
        ops = (ops,) if isinstance(ops, str) else tuple(ops)
        unknown = [op for op in ops if op not in known]
        if unknown:
            raise ValueError(f"ops has unknown names {unknown}; expected some of {list(known)}")
    processes = _precompile.check_processes(processes)
    return _precompile.precompile(_variants.variants(ops, dtypes), processes, progress)
