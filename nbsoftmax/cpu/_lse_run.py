"""The backend entry points of logsumexp with ``b=``/``return_sign=`` and of its gradient.

Same contract as ``nbsoftmax.cpu.run`` (the entry points ``reduction`` and ``backward`` of
``nbsoftmax.cpu`` call these): C-contiguous ``(rows, n)`` storage views, already
validated; each (driver, variant) is compiled on first use with an explicit signature,
cached on disk by ``_cache``, registered in the backend's table, and parallel drivers
follow the threading policy of ``nbsoftmax._threading``. The variants are the Numba types
of the optional arguments (None or an array): one compiled kernel per combination used.
"""

import numba
import numpy as np
from numba import types

from .. import _threading
from . import _cache, _drivers
from ._registry import _MASK_TYPE, _STORAGE_TYPES, _compile_lock, _compiled


def _kernel(name, storage, weighted, masked, signed, parallel):
    key = (name, np.dtype(storage), weighted, masked, signed, parallel)
    kernel = _compiled.get(key)
    if kernel is None:
        with _compile_lock:
            kernel = _compiled.get(key)
            if kernel is None:
                source = getattr(_drivers, f"{name}_rows_{'parallel' if parallel else 'serial'}")
                st = _STORAGE_TYPES[np.dtype(storage)]
                ro2 = types.Array(st, 2, "C", readonly=True)
                rw1 = types.Array(st, 1, "C")
                mask = _MASK_TYPE if masked else types.none
                if name == "lse":  # (x, b, mask, out, sign)
                    sig = types.void(ro2, ro2 if weighted else types.none, mask, rw1,
                                     rw1 if signed else types.none)
                else:  # lse_backward: (g, x, mask, out)
                    sig = types.void(types.Array(st, 1, "C", readonly=True), ro2, mask,
                                     types.Array(st, 2, "C"))
                options = {k: source.targetoptions[k] for k in ("parallel", "fastmath")
                           if k in source.targetoptions}
                kernel = _cache.attach(numba.njit(**options)(source.py_func))
                kernel.compile(sig)
                kernel.disable_compile()
                _compiled[key] = kernel
    return kernel


def _call(name, x, flags, args, parallel):
    if parallel:
        mode = _threading.parallel_mode()  # the policy of cpu._ParallelKernel
        if mode is _threading.FREE:
            return _kernel(name, x.dtype, *flags, True)(*args)
        if mode is _threading.EXCLUSIVE and _threading.parallel_lock.acquire(blocking=False):
            try:
                return _kernel(name, x.dtype, *flags, True)(*args)
            finally:
                _threading.parallel_lock.release()
    _kernel(name, x.dtype, *flags, False)(*args)


def run_lse(x, b, mask, out, sign, parallel):
    """logsumexp of each row of (rows, n) storage x with weights b ((rows, n) of x's storage
    dtype, or None) over mask (bool (rows, n), or None): out[i] = log|sum|, sign[i] = its
    sign when sign is given (else a negative sum gives NaN); ``parallel``: the parallel
    drivers are worth their start (``nbsoftmax.cpu`` decides by size). See ``_lse``."""
    _call("lse", x, (b is not None, mask is not None, sign is not None), (x, b, mask, out, sign),
          parallel)


def run_lse_backward(g, x, mask, out, parallel):
    """out = g[:, None] * exp(x - logsumexp(x)) per row, over mask (0 where masked)."""
    _call("lse_backward", x, (False, mask is not None, False), (g, x, mask, out), parallel)
