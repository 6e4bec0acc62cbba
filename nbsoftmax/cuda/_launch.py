"""Which kernel runs a call, with which launch configuration, and their compiled variants.

``run`` is the one entry point: it takes flat C-contiguous device views and the
``(outer, n, inner)`` geometry that ``nbsoftmax._layout`` found, picks a strategy, and
enqueues the launches on ``stream``:

================================  =======================================================
unit-stride softmax axis, n <=    a warp (or 1..16 lanes) per row, row in registers
``warp_max_cols`` (1024)          (``_kernels_warp``), 128 threads per block
n <= ``max_threads * items``      a block per row, row in registers (``_kernels_block``
(16,384 four-byte / 8,192 f64;    FUSED), ``threads = ceil(n / items)`` rounded to warps
backward 8,192 / 4,096)
longer rows, or too few rows      the row split over blocks of ``split_threads`` x items,
to fill the GPU                   STATS then APPLY (two reads, one write per element)
non-unit-stride axis (inner > 1)  ``(tx, ty)`` blocks over column tiles (``_kernels_columns``)
================================  =======================================================

Kernels are compiled on first use per (kernel, op, items, storage dtype) with an explicit
signature and ``cache=True``; plans are memoised per geometry so a repeated call does no
planning. ``set_limits`` shrinks the thresholds (the simulator tests use it so that tiny
inputs cross warp, block and split boundaries).
"""

import dataclasses
import threading
import warnings

import numpy as np

from . import _ops
from ._runtime import SIMULATOR, compile_kernel, cuda, multiprocessor_count

# ------------------------------------------------------------------ limits


@dataclasses.dataclass(frozen=True)
class Limits:
    """Strategy thresholds and block sizes (see the module docstring).

    Attributes
    ----------
    warp_max_cols : int
        Longest row of the warp kernels (a power of two <= 1024).
    warp_threads : int
        Threads per block of the warp kernels (a multiple of 32).
    max_threads : int
        Most threads per block of the block kernels (a multiple of 32, <= 1024).
    split_threads : int
        Threads per block when a row is split over blocks.
    max_items : int
        Most elements a thread holds in registers in the block kernels (4, 8 or 16;
        lower per dtype and operation, see ``_items_cap``).
    column_threads : int
        Threads per block of the column kernels (a power of two <= 1024).
    """

    warp_max_cols: int = 1024
    warp_threads: int = 128
    max_threads: int = 1024
    split_threads: int = 512
    max_items: int = 16
    column_threads: int = 256


_limits = Limits()
_plans = {}


def set_limits(**changes):
    """Replace some of the launch limits; returns the previous ``Limits`` (to restore them).

    Examples
    --------
    >>> import dataclasses
    >>> from nbsoftmax.cuda import _launch
    >>> previous = _launch.set_limits(max_threads=64)
    >>> _ = _launch.set_limits(**dataclasses.asdict(previous))
    """
    global _limits
    previous = _limits
    _limits = dataclasses.replace(_limits, **changes)
    _plans.clear()
    return previous


def _next_pow2(v):
    return 1 << max(0, (int(v) - 1).bit_length())


def _round_up(v, multiple):
    return -(-v // multiple) * multiple


def _items_cap(op, itemsize):
    # Register budget of a 1024-thread block: 64 per thread (launch_bounds (1024, 1)).
    # ptxas -v for sm_90 (CUDA 13.4), spill stores per thread at 4 / 8 / 16 items:
    # softmax f32 0/0/104 B, log_softmax f32 0/8/52 B, softmax f64 0/20/164 B,
    # softmax_backward f32 0/0/48 B, f64 0/16/420 B; 32 items spilled 450+ B (f32).
    # The caps below keep spills at a few dozen bytes (L1-resident); longer rows split.
    backward = op in _ops.BACKWARD
    if itemsize <= 4:
        cap = 8 if backward else 16
    else:
        cap = 4 if backward else 8
    return min(cap, _limits.max_items)


# ------------------------------------------------------------------ compiled kernels

_compiled = {}
_compile_lock = threading.Lock()


def _types():
    from numba.cuda import types

    return types


def _array_type(dtype):
    from numba.cuda.np import numpy_support

    return _types().Array(numpy_support.from_dtype(dtype), 1, "C")


def _compute(dtype):
    return np.float64 if dtype == np.float64 else np.float32


def get_kernel(kind, op, items, dtype):
    """The compiled kernel ``kind`` ('warp', 'block', 'columns') for op on storage dtype."""
    key = (kind, op, items, dtype)
    kernel = _compiled.get(key)
    if kernel is not None:
        return kernel
    with _compile_lock:
        kernel = _compiled.get(key)
        if kernel is None:
            kernel = _build(kind, op, items, dtype)
            _compiled[key] = kernel
    return kernel


def _build(kind, op, items, dtype):
    t = _types()
    arr = _array_type(dtype)
    code = _ops.CODES[op]
    compute = _compute(dtype)
    backward = op in _ops.BACKWARD
    inputs = (arr, arr) if backward else (arr,)
    launch_bounds = None
    if kind == "warp":
        from . import _kernels_warp as K

        source = (K.warp_backward if backward else K.warp_forward)(code, items, compute)
        args = (*inputs, arr, t.int64, t.int64, t.int64)
    elif kind == "block":
        from . import _kernels_block as K

        source = (K.block_backward if backward else K.block_forward)(code, items, compute)
        args = (*inputs, arr, _array_type(np.dtype(np.float64)), *(t.int64,) * 5)
        launch_bounds = (1024, 1)
    elif kind == "columns":
        from . import _kernels_columns as K

        source = (K.columns_backward if backward else K.columns_forward)(code, compute)
        args = (*inputs, arr, t.int64, t.int64, t.int64)
    else:  # pragma: no cover
        raise ValueError(kind)
    return compile_kernel(source, t.void(*args), launch_bounds=launch_bounds)


def get_scaled_kernel(op, dtype, masked):
    """The compiled kernel of ``_kernels_scaled`` for op on storage dtype, with or without a mask."""
    key = ("scaled", op, masked, dtype)
    kernel = _compiled.get(key)
    if kernel is not None:
        return kernel
    with _compile_lock:
        kernel = _compiled.get(key)
        if kernel is None:
            from . import _kernels_scaled as K

            t = _types()
            arr = _array_type(dtype)
            mask = _array_type(np.dtype(np.uint8))
            code = _ops.CODES[op]
            if op in _ops.BACKWARD:
                source = K.scaled_backward(code, _compute(dtype), masked)
                args = (arr, arr, mask, arr)
            else:
                source = K.scaled_forward(code, _compute(dtype), masked)
                args = (arr, mask, arr)
            sig = t.void(*args, t.float64, t.int64, t.int64, t.int64)
            kernel = compile_kernel(source, sig)
            _compiled[key] = kernel
    return kernel


def _get_xent_kernel(name, dtype, probs, weighted, with_grad):
    key = ("xent", name, dtype, probs, weighted, with_grad)
    kernel = _compiled.get(key)
    if kernel is not None:
        return kernel
    with _compile_lock:
        kernel = _compiled.get(key)
        if kernel is None:
            from . import _kernels_xent as K

            t = _types()
            arr = _array_type(dtype)
            f64 = _array_type(np.dtype(np.float64))
            index = _array_type(np.dtype(np.int64))
            if name == "denominator":
                source = K.denominator(weighted)
                sig = t.void(index, f64, f64, t.int64, t.int64, t.int64, t.int64)
            elif name == "rows":
                source = K.rows_kernel(_compute(dtype), probs, weighted, with_grad)
                sig = t.void(arr, arr if probs else index, f64, f64, f64, arr, t.int64, t.int64,
                             t.float64, t.float64, t.int64)
            else:
                source = K.total_kernel()
                sig = t.void(f64, f64, arr, t.int64)
            kernel = compile_kernel(source, sig)
            _compiled[key] = kernel
    return kernel


def run_cross_entropy(x, target, weight, grad, losses, factor, total, rows, n, scale, eps,
                      ignore_index, factor_mode, stream):
    """Enqueue the three cross-entropy launches of ``_kernels_xent`` on flat device views:
    per-row losses into ``losses`` (float64), the gradient into ``grad`` (or None), and their
    sum into ``total[0]`` (or None for reduction "none")."""
    dtype = np.dtype(x.dtype)
    probs = np.dtype(target.dtype) != np.int64
    weighted = weight is not None
    dummy = _dummy_partials()
    threads = _limits.max_threads
    kernel = _get_xent_kernel("denominator", dtype, probs, weighted, False)
    _configure(kernel, 1, threads, stream)(_dummy_index() if probs else target,
                                           weight if weighted else dummy, factor, rows, n,
                                           ignore_index, factor_mode)
    with_grad = grad is not None
    kernel = _get_xent_kernel("rows", dtype, probs, weighted, with_grad)
    _configure(kernel, min(rows, 65_536), min(_limits.max_threads, max(32, _round_up(n, 32))),
               stream)(x, target, weight if weighted else dummy, factor, losses,
                       grad if with_grad else x, rows, n, scale, eps, ignore_index)
    if total is not None:
        kernel = _get_xent_kernel("total", dtype, False, False, False)
        _configure(kernel, 1, threads, stream)(losses, factor, total, rows)


_NO_INDEX = None


def run_topk(x, probs, idx, rows, n, k, stream):
    """Enqueue the softmax top-k kernel (``_kernels_topk``) on flat device views."""
    dtype = np.dtype(x.dtype)
    key = ("topk", dtype)
    kernel = _compiled.get(key)
    if kernel is None:
        with _compile_lock:
            kernel = _compiled.get(key)
            if kernel is None:
                from ._kernels_topk import topk_kernel

                t = _types()
                arr = _array_type(dtype)
                sig = t.void(arr, arr, _array_type(np.dtype(np.int64)), t.int64, t.int64, t.int64)
                kernel = _compiled[key] = compile_kernel(topk_kernel(_compute(dtype)), sig)
    threads = min(_limits.max_threads, max(32, _round_up(n, 32)))
    _configure(kernel, min(rows, 65_536), threads, stream)(x, probs, idx, rows, n, k)


def _dummy_index():
    global _NO_INDEX
    if _NO_INDEX is None:
        _NO_INDEX = cuda.device_array(1, np.int64)
    return _NO_INDEX


def get_copy_kernel(src_dtype, dst_dtype, ndim):
    """The compiled strided copy from src_dtype to dst_dtype for ndim-d arrays."""
    key = ("copy", src_dtype, dst_dtype, ndim)
    kernel = _compiled.get(key)
    if kernel is not None:
        return kernel
    with _compile_lock:
        kernel = _compiled.get(key)
        if kernel is None:
            from ._kernels_copy import strided_copy

            t = _types()
            tup = t.UniTuple(t.int64, ndim)
            sig = t.void(_array_type(src_dtype), _array_type(dst_dtype), tup, tup, tup,
                         t.int64, t.int64, t.int64)
            kernel = compile_kernel(strided_copy(ndim), sig)
            _compiled[key] = kernel
    return kernel


# ------------------------------------------------------------------ launching


def _configure(kernel, grid, block, stream):
    if SIMULATOR:
        return kernel[grid, block]
    if grid < 128:
        # numba-cuda warns below 128 blocks; for a small input that is the right grid.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return kernel[grid, block, stream]
    return kernel[grid, block, stream]


def copy(src, dst, shape, src_strides, dst_strides, stream, src_at0=0, dst_at0=0):
    """dst[...] = src[...] over shape; flat views, element strides, flat index of [0, ..., 0]."""
    size = int(np.prod(shape, dtype=np.int64))
    if size == 0:
        return
    if len(shape) == 0:
        shape, src_strides, dst_strides = (1,), (0,), (0,)
    kernel = get_copy_kernel(np.dtype(src.dtype), np.dtype(dst.dtype), len(shape))
    threads = 256
    grid = min(-(-size // threads), 65_536)
    _configure(kernel, grid, threads, stream)(src, dst, tuple(shape), tuple(src_strides),
                                              tuple(dst_strides), src_at0, dst_at0, size)


def _plan(op, dtype, outer, n, inner):
    lim = _limits
    if inner > 1:
        width = min(32, _next_pow2(inner))
        height = min(max(1, lim.column_threads // width), _next_pow2(n))
        tiles = -(-inner // width)
        return ("columns", None, outer * tiles, (width, height), None)
    rows = outer
    if n <= lim.warp_max_cols:
        width = min(32, _next_pow2(n))
        items = _next_pow2(-(-n // width))
        rows_per_block = lim.warp_threads // width
        return ("warp", items, -(-rows // rows_per_block), lim.warp_threads, width)
    cap = _items_cap(op, dtype.itemsize)
    split_chunk = lim.split_threads * cap
    fits = n <= lim.max_threads * cap
    if fits and (n <= split_chunk or rows >= multiprocessor_count()):
        items = min(4, cap)
        while items < cap and -(-n // items) > lim.max_threads:
            items *= 2
        threads = max(32, _round_up(-(-n // items), 32))
        return ("block", items, rows, threads, (n, 1))
    chunks = -(-n // split_chunk)
    return ("split", cap, rows, lim.split_threads, (split_chunk, chunks))


# Partials of the split kernels, one buffer per stream, grown as needed: a per-call
# allocation would go through cuMemAlloc/cuMemFree, which can synchronise the device.
_workspaces = {}
_workspace_lock = threading.Lock()


def _stream_key(stream):
    if SIMULATOR or not stream:
        return 0
    return int(stream)


def _workspace(stream, size):
    key = _stream_key(stream)
    entry = _workspaces.get(key)
    if entry is None or entry[0].size < size:
        entry = (cuda.device_array(max(size, 1024), np.float64), threading.Lock())
        _workspaces[key] = entry
    return entry


_NO_PARTIALS = None


def run(op, inputs, out, outer, n, inner, stream):
    """Enqueue op on flat device views: inputs -> out (which may be one of the inputs)."""
    dtype = np.dtype(inputs[0].dtype)
    key = (op, dtype, outer, n, inner)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = _plan(op, dtype, outer, n, inner)
    kind, items, grid, block, extra = plan
    if kind == "columns":
        kernel = get_kernel("columns", op, None, dtype)
        _configure(kernel, grid, block, stream)(*inputs, out, outer, n, inner)
    elif kind == "warp":
        kernel = get_kernel("warp", op, items, dtype)
        _configure(kernel, grid, block, stream)(*inputs, out, outer, n, extra)
    elif kind == "block":
        kernel = get_kernel("block", op, items, dtype)
        partials = _dummy_partials()
        _configure(kernel, grid, block, stream)(*inputs, out, partials, outer, n, n, 1, _ops.FUSED)
    else:
        chunk, chunks = extra
        kernel = get_kernel("block", op, items, dtype)
        partials, lock = _workspace(stream, 2 * outer * chunks)
        apply_grid = outer if op == "logsumexp" else outer * chunks
        with lock:  # the STATS/APPLY pair of one call must not interleave with another's
            _configure(kernel, outer * chunks, block, stream)(
                *inputs, out, partials, outer, n, chunk, chunks, _ops.STATS)
            _configure(kernel, apply_grid, block, stream)(
                *inputs, out, partials, outer, n, chunk, chunks, _ops.APPLY)


_NO_MASK = None


def run_scaled(op, inputs, mask, out, scale, outer, n, inner, stream):
    """Enqueue op of ``_kernels_scaled`` on flat device views: x * scale over the entries where
    the flat uint8 ``mask`` is nonzero (None: all); a block per slice, grid-strided."""
    global _NO_MASK
    dtype = np.dtype(inputs[0].dtype)
    masked = mask is not None
    if not masked:
        if _NO_MASK is None:
            _NO_MASK = cuda.device_array(1, np.uint8)
        mask = _NO_MASK
    threads = min(_limits.max_threads, max(32, _round_up(n, 32)))
    grid = min(outer * inner, 65_536)
    kernel = get_scaled_kernel(op, dtype, masked)
    if op in _ops.BACKWARD:
        _configure(kernel, grid, threads, stream)(*inputs, mask, out, float(scale), outer, n, inner)
    else:
        _configure(kernel, grid, threads, stream)(inputs[0], mask, out, float(scale), outer, n,
                                                  inner)


def _dummy_partials():
    global _NO_PARTIALS
    if _NO_PARTIALS is None:
        _NO_PARTIALS = cuda.device_array(2, np.float64)
    return _NO_PARTIALS
