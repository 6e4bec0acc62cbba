"""The table of compiled CPU kernels: signatures, getters and the parallel policy wrapper.

Every driver of ``_drivers`` is compiled here on first use, one explicit signature per
(driver, storage dtype, variant), and kept in ``_compiled`` (what precompilation and the tests
inspect). A leaf of the backend: ``nbsoftmax.cpu`` (which decides *which* kernel a call
runs), ``_lse_run`` and ``_variants`` import it, it imports none of them.
"""

import numba
import numpy as np
from numba import types

from .. import _threading
from . import _cache, _drivers

# The registry owns the on-disk cache (_cache.KernelCache, stamped with all kernel sources):
# the helper modules' functions carry no cache=True, which would serve stale inlined code
# after an edit of another module and fail at import where no cache directory is writable.

# Ops whose rows in place, longer than _slices.LONG_ROW_BYTES, or (softmax) float16 go to
# the "rows_general" kernels (see _slices.softmax_slice_general).
_GENERAL_OPS = ("softmax", "log_softmax")
_STORAGE_TYPES = {
    np.dtype(np.uint16): types.uint16,
    np.dtype(np.float32): types.float32,
    np.dtype(np.float64): types.float64,
}

# op -> (number of array inputs, result dimensions relative to input: 0 same, -1 one less)
_OPS = {
    "softmax": (1, 0),
    "log_softmax": (1, 0),
    "logsumexp": (1, -1),
    "softmax_backward": (2, 0),
    "log_softmax_backward": (2, 0),
}

_compiled = {}
# Reentrant, and taken by a fork in another thread until the compile ends (see
# _threading.ForkSafeLock): a child forked mid-compile must not inherit it held.
_compile_lock = _threading.ForkSafeLock(reentrant=True, compile_guard=True)


_MASK_TYPE = types.Array(types.boolean, 2, "C", readonly=True)
# The scaled kernels' variants (one source, _drivers.*_scaled_*): with or without a mask,
# and with the sign alone (float64) or a temperature (_temperature.kernel_scaling's tuple).
_SCALED_LAYOUTS = ("scaled", "masked", "tempered", "tempered_masked")
_TEMPERED_TYPE = types.UniTuple(types.float64, 4)


def _signature(op, layout, storage):
    n_inputs, dim_change = _OPS[op]
    ndim = 3 if layout == "columns" else 2
    ro = types.Array(storage, ndim, "C", readonly=True)
    rw = types.Array(storage, ndim + dim_change, "C")
    if layout in _SCALED_LAYOUTS:  # (inputs, mask or None, scaling, out): see _scaled
        mask = _MASK_TYPE if layout in ("masked", "tempered_masked") else types.none
        scaling = _TEMPERED_TYPE if layout.startswith("tempered") else types.float64
        return types.void(*((ro,) * n_inputs), mask, scaling, rw)
    args = (ro,) * n_inputs + (rw,)
    if layout in ("columns", "split"):
        args += (types.intp,)  # tile (columns) or chunk (split)
    return types.void(*args)


def get_kernel(op, layout, dtype, parallel):
    """The compiled driver for op over layout ('rows'/'columns') with storage dtype."""
    key = (op, layout, dtype, parallel)
    kernel = _compiled.get(key)
    if kernel is None:
        with _compile_lock:
            kernel = _compiled.get(key)
            if kernel is None:
                kind = "scaled" if layout in _SCALED_LAYOUTS else layout  # one source, 4 variants
                source = getattr(_drivers, f"{op}_{kind}_{'parallel' if parallel else 'serial'}")
                sig = _signature(op, layout, _STORAGE_TYPES[np.dtype(dtype)])
                # A dispatcher per signature: with compilation disabled after this one
                # signature, Numba converts e.g. a writable input to the read-only parameter
                # type instead of compiling another specialisation.
                options = {k: source.targetoptions[k] for k in ("parallel", "fastmath")
                           if k in source.targetoptions}
                kernel = _cache.attach(numba.njit(**options)(source.py_func))
                kernel.compile(sig)  # or load it from the disk cache
                kernel.disable_compile()
                if parallel:
                    kernel = _ParallelKernel(kernel, op, layout, dtype)
                _compiled[key] = kernel
    return kernel


class _ParallelKernel:
    """A parallel driver that falls back to its serial twin where the threading layer is unsafe.

    workqueue: one Python thread at a time (others do not wait: they run serially); a child
    forked after GNU OpenMP started: always serial. See nbsoftmax._threading.
    """

    __slots__ = ("dispatcher", "op", "layout", "dtype")

    def __init__(self, dispatcher, op, layout, dtype):
        self.dispatcher, self.op, self.layout, self.dtype = dispatcher, op, layout, dtype

    def __call__(self, *args):
        mode = _threading.parallel_mode()
        if mode is _threading.FREE:
            return self.dispatcher(*args)
        if mode is _threading.EXCLUSIVE:
            lock = _threading.parallel_lock
            if lock.acquire(blocking=False):
                try:
                    return self.dispatcher(*args)
                finally:
                    lock.release()
        if self.layout == "split":  # same work as whole rows, without the chunk argument
            rows = "rows_general" if self.op in _GENERAL_OPS else "rows"
            return get_kernel(self.op, rows, self.dtype, False)(*args[:-1])
        return get_kernel(self.op, self.layout, self.dtype, False)(*args)

    def __getattr__(self, name):  # inspect_asm, signatures, stats, ...
        return getattr(self.dispatcher, name)


def _xent_kernel(kind, storage, weighted, with_grad, tempered, parallel):
    key = ("xent", kind, storage, weighted, with_grad, tempered, parallel)
    kernel = _compiled.get(key)
    if kernel is None:
        with _compile_lock:
            kernel = _compiled.get(key)
            if kernel is None:
                source = getattr(_drivers, f"xent_{kind}_{'parallel' if parallel else 'serial'}")
                st = _STORAGE_TYPES[np.dtype(storage)]
                ro = types.Array(st, 2, "C", readonly=True)
                f64 = types.float64
                weight = types.Array(f64, 1, "C", readonly=True) if weighted else types.none
                grad = types.Array(st, 2, "C") if with_grad else types.none
                loss = types.Array(f64, 1, "C")
                scaling = _TEMPERED_TYPE if tempered else f64
                if kind == "index":
                    target = types.Array(types.int64, 1, "C", readonly=True)
                    sig = types.void(ro, target, weight, f64, scaling, f64, types.int64, f64,
                                     loss, grad)
                else:
                    sig = types.void(ro, ro, weight, scaling, f64, f64, loss, grad)
                options = {k: source.targetoptions[k] for k in ("parallel", "fastmath")
                           if k in source.targetoptions}
                kernel = _cache.attach(numba.njit(**options)(source.py_func))
                kernel.compile(sig)
                kernel.disable_compile()
                _compiled[key] = kernel
    return kernel


def _topk_kernel(storage, parallel):
    key = ("topk", storage, parallel)
    kernel = _compiled.get(key)
    if kernel is None:
        with _compile_lock:
            kernel = _compiled.get(key)
            if kernel is None:
                source = _drivers.topk_rows_parallel if parallel else _drivers.topk_rows_serial
                st = _STORAGE_TYPES[np.dtype(storage)]
                sig = types.void(types.Array(st, 2, "C", readonly=True), types.int64,
                                 types.Array(st, 2, "C"), types.Array(types.int64, 2, "C"))
                options = {k: source.targetoptions[k] for k in ("parallel", "fastmath")
                           if k in source.targetoptions}
                kernel = _cache.attach(numba.njit(**options)(source.py_func))
                kernel.compile(sig)
                kernel.disable_compile()
                _compiled[key] = kernel
    return kernel
