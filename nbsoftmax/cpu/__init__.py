"""CPU backend: Numba kernels compiled lazily, one explicit signature at a time.

``run(op, inputs, out, tile)`` is the backend's one entry point for the dispatch layer. It
receives C-contiguous ``(rows, n)`` arrays when the softmax axis is the unit-stride one, or
``(outer, n, inner)`` arrays otherwise, already validated, with float16 data passed as its
uint16 bit pattern. It picks the serial or parallel driver by size and compiles each
(driver, storage dtype) pair on first use with an explicit signature (read-only inputs, so a
read-only array reuses the same machine code), cached on disk by ``_cache.KernelCache``.
Parallel drivers run through ``_ParallelKernel``, which applies the threading policy of
``nbsoftmax._threading`` (serial fallback where the active threading layer is unsafe).
"""

import numba
import numpy as np
from numba import types

from .. import _threading
from . import _cache, _chunks, _drivers, _slices

# The registry owns the on-disk cache (_cache.KernelCache, stamped with all kernel sources):
# the helper modules' functions carry no cache=True, which would serve stale inlined code
# after an edit of another module and fail at import where no cache directory is writable.

# Serial below this many elements. Measured here (2-core Zen 3, omp and tbb layers): one
# parallel launch costs 2.5-3 us over a serial call, and parallel overtook serial from about
# 3-10k elements for 10-column rows, ~10k for 128 columns and ~30k for 1000 columns.
PARALLEL_MIN_ELEMENTS = 32_768

# Fewer rows than twice the threads, each of at least this many bytes: rows are cut in pieces
# shared among threads (one row of 50M float32 would otherwise run on one core).
SPLIT_MIN_BYTES = 1 << 20

# Rows up to this many elements go to the block kernels of _short, per op. Measured serial,
# float32, 2M elements (GB/s, per-row -> block kernels): softmax 10 columns 1.4 -> 8.8,
# 64 columns 9.1 -> 21, but 128 columns 16.6 -> 14.5; backward passes 10 columns 0.8 -> 29,
# 128 columns 24 -> 34, 256 columns 42 -> 42, 1000 columns 54 -> 34.
SHORT_ROW = {"softmax": 64, "log_softmax": 64, "softmax_backward": 256,
             "log_softmax_backward": 256, "logsumexp": 0}

# Ops whose rows in place, longer than _slices.LONG_ROW_BYTES, or (softmax) float16 go to
# the "rows_general" kernels (see _slices.softmax_slice_general).
_GENERAL_OPS = ("softmax", "log_softmax")
# softmax rows up to one summing block (_math.sum_block), by storage itemsize, take the
# "block" kernels (one function per row).
_ONE_BLOCK = {2: 512, 4: 512, 8: 128}

# Columns per task of the non-last-axis kernels: 4096 columns keep the three per-column
# work arrays (max, sum, 1/sum: 48-64 KB) in L2 while whole row segments stream from memory.
MAX_COLUMN_TILE = 4096

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


def _use_parallel(work_items, elements):
    # (get_num_threads is only asked when the size makes it matter: it costs ~0.3 us)
    return work_items > 1 and elements >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1


def column_tile(outer, inner):
    """Columns per task: whole rows when there are enough outer slices to share out."""
    threads = numba.get_num_threads()
    tile = inner
    if outer < 2 * threads:
        tiles_wanted = -(-2 * threads // outer)
        tile = max(64, -(-inner // tiles_wanted))
    tile = min(tile, MAX_COLUMN_TILE)
    return max(1, min(tile, inner))


def _row_layout(op, first, out, in_place):
    n = first.shape[1]
    if n <= SHORT_ROW[op]:
        return "short"
    if op in _GENERAL_OPS and (
        in_place
        or n * first.itemsize > _slices.LONG_ROW_BYTES
        or (op == "softmax" and first.dtype == np.uint16)
    ):
        return "rows_general"
    if op == "softmax" and n <= _ONE_BLOCK[first.dtype.itemsize]:
        return "block"  # see _slices.softmax_one_block
    return "rows"


def run(op, inputs, out, in_place=False):
    """Run op on 2-D (rows) or 3-D (columns) C-contiguous storage views; writes out.

    in_place: out is inputs[0] itself (the dispatcher knows; the general row kernels also
    check, so a wrong False costs speed and accuracy bounds, never correctness of memory)."""
    first = inputs[0]
    if first.ndim == 2:
        rows, n = first.shape
        layout = _row_layout(op, first, out, in_place)
        if first.size < PARALLEL_MIN_ELEMENTS:
            get_kernel(op, layout, first.dtype, False)(*inputs, out)
            return
        threads = numba.get_num_threads()
        if threads > 1 and rows < 2 * threads and n * first.itemsize >= SPLIT_MIN_BYTES:
            chunk = max(SPLIT_MIN_BYTES // (2 * first.itemsize), -(-n * rows // (4 * threads)))
            get_kernel(op, "split", first.dtype, True)(*inputs, out, chunk)
            return
        parallel = _use_parallel(rows, first.size)
        _chunks.call_in_chunks(get_kernel(op, layout, first.dtype, parallel), (*inputs, out),
                               rows, n)  # rows at a time above 16M elements: Ctrl-C lands
    else:
        outer, _, inner = first.shape
        tile = column_tile(outer, inner)
        tasks = outer * (-(-inner // tile))
        parallel = _use_parallel(tasks, first.size)
        _chunks.call_in_chunks(get_kernel(op, "columns", first.dtype, parallel),
                               (*inputs, out, tile), outer, first.size // max(outer, 1))


def run_scaled(op, inputs, mask, scaling, out):
    """Run op on (rows, n) storage views of ``x * sign / T`` restricted to ``mask`` (a bool
    (rows, n) array, or None for all entries); writes out (see ``_scaled``). ``scaling``: the
    sign alone (a real number: no temperature), or ``_temperature.kernel_scaling``'s tuple."""
    first = inputs[0]
    layout = "scaled" if mask is None else "masked"
    if isinstance(scaling, tuple):
        layout = "tempered" if mask is None else "tempered_masked"
        scaling = tuple(map(float, scaling))
    else:
        scaling = float(scaling)
    parallel = _use_parallel(first.shape[0], first.size)
    _chunks.call_in_chunks(get_kernel(op, layout, first.dtype, parallel),
                           (*inputs, mask, scaling, out), first.shape[0], first.shape[1])


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


def run_xent(x, target, weight, wsum, scaling, eps, ignore_index, r, loss, grad):
    """Per-row cross-entropy of (rows, C) storage x against int64 class indices (rows,) or
    class probabilities (rows, C) of x's storage dtype; writes loss (float64 (rows,)) and grad
    ((rows, C) or None). ``scaling`` as for `run_scaled` (sign 1.0 without a temperature).
    See ``_xent``."""
    kind = "index" if target.ndim == 1 else "probs"
    tempered = isinstance(scaling, tuple)
    scaling = tuple(map(float, scaling)) if tempered else float(scaling)
    args = ((x, target, weight, wsum, scaling, eps, ignore_index, r, loss, grad)
            if kind == "index" else (x, target, weight, scaling, eps, r, loss, grad))
    variant = (kind, x.dtype, weight is not None, grad is not None, tempered)
    rows_of = (0, 1, 8, 9) if kind == "index" else (0, 1, 6, 7)  # x, target, loss, grad

    def call(kernel):
        _chunks.call_in_chunks(kernel, args, x.shape[0], x.shape[1], sliced=rows_of)

    if _use_parallel(x.shape[0], x.size):
        mode = _threading.parallel_mode()  # the policy of _ParallelKernel
        if mode is _threading.FREE:
            return call(_xent_kernel(*variant, True))
        if mode is _threading.EXCLUSIVE and _threading.parallel_lock.acquire(blocking=False):
            try:
                return call(_xent_kernel(*variant, True))
            finally:
                _threading.parallel_lock.release()
    call(_xent_kernel(*variant, False))


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


def run_topk(x, k, probs, idx):
    """Softmax top-k of each row of (rows, n) storage x: probs (rows, k) of x's storage dtype
    and idx int64 (rows, k), sorted descending (see ``_topk``)."""

    def call(kernel):  # up to ~300 ns per element at large k (sorts): smaller first chunks
        _chunks.call_in_chunks(kernel, (x, k, probs, idx), x.shape[0], x.shape[1],
                               first_elements=max(1 << 16, _chunks.FIRST_ELEMENTS // k))

    if _use_parallel(x.shape[0], x.size):
        mode = _threading.parallel_mode()  # the policy of _ParallelKernel
        if mode is _threading.FREE:
            return call(_topk_kernel(x.dtype, True))
        if mode is _threading.EXCLUSIVE and _threading.parallel_lock.acquire(blocking=False):
            try:
                return call(_topk_kernel(x.dtype, True))
            finally:
                _threading.parallel_lock.release()
    call(_topk_kernel(x.dtype, False))


def precompile(ops=tuple(_OPS), dtypes=(np.float32, np.float64)):
    """Compile (or load from the on-disk cache) every kernel variant that the public
    functions ``ops`` run for result ``dtypes`` (see ``_variants``)."""
    from . import _variants

    for variant in _variants.variants(ops, dtypes):
        _variants.build(variant)
