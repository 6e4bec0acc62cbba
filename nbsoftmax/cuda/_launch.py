"""Which kernel runs a call, with which launch configuration, and their compiled variants.

``run`` is the one entry point of the plain ops: it takes flat C-contiguous device views and
the ``(outer, n, inner)`` geometry that ``nbsoftmax.dispatch.layout`` found, picks a strategy, and
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

Kernels are compiled on first use per variant (``_variants``: source, signature and launch
bounds) with ``cache=True``; plans are memoised per device and geometry so a repeated call
does no planning. No launch asks for more threads than the compiled kernel takes: every
family has launch bounds (``_variants.BOUNDS``), and the thread counts are also capped by
the limit the driver reports for the compiled kernel on the device at hand
(``max_threads``), which covers any GPU. ``set_limits`` shrinks the thresholds (the
simulator tests use it so that tiny inputs cross warp, block and split boundaries).
"""

import dataclasses
import functools

import numpy as np

from .._threading import ForkSafeLock
from . import _arrays, _launcher, _ops, _variants, _workspace
from ._arrays import stream_handle
from ._runtime import SIMULATOR, compile_kernel, cuda, device_id, multiprocessor_count

# ------------------------------------------------------------------ limits


@dataclasses.dataclass(frozen=True)
class Limits:
    """Strategy thresholds and block sizes (see the module docstring).

    Attributes
    ----------
    warp_max_cols : int
        Longest row of the warp kernels (a power of two <= 1024).
    warp_threads : int
        Threads per block of the warp kernels (a multiple of 32, <= their bound of 128).
    max_threads : int
        Most threads per block of the block kernels (a multiple of 32, <= 1024), and of
        the grid-strided kernels (capped by their bounds).
    split_threads : int
        Threads per block when a row is split over blocks.
    max_items : int
        Most elements a thread holds in registers in the block kernels (4, 8 or 16;
        lower per dtype and operation, see ``_variants.items_cap``).
    column_threads : int
        Threads per block of the column kernels (a power of two <= their bound of 256).
    """

    warp_max_cols: int = 1024
    warp_threads: int = 128
    max_threads: int = 1024
    split_threads: int = 512
    max_items: int = 16
    column_threads: int = 256


_limits = Limits()
_plans = {}
_generation = 0  # of the limits: part of the key of the per-thread launch plans
_BOUNDED = {"warp_threads": "warp", "max_threads": "block", "split_threads": "split",
            "column_threads": "columns"}


def set_limits(**changes):
    """Replace some of the launch limits; returns the previous ``Limits`` (to restore them).

    Raises ValueError for a block size above the launch bounds the kernels are compiled
    with (``_variants.BOUNDS``): such launches could not start.

    Examples
    --------
    >>> import dataclasses
    >>> from nbsoftmax.cuda import _launch
    >>> previous = _launch.set_limits(max_threads=64)
    >>> _ = _launch.set_limits(**dataclasses.asdict(previous))
    """
    global _limits, _generation
    for field, family in _BOUNDED.items():
        value = changes.get(field)
        if value is not None and value > _variants.BOUNDS[family][0]:
            raise ValueError(f"{field}={value} is above the launch bound of the {family} "
                             f"kernels ({_variants.BOUNDS[family][0]} threads)")
    previous = _limits
    _limits = dataclasses.replace(_limits, **changes)
    _plans.clear()
    _generation += 1
    return previous


def _next_pow2(v):
    return 1 << max(0, (int(v) - 1).bit_length())


def _round_up(v, multiple):
    return -(-v // multiple) * multiple


def _items_cap(op, itemsize):
    return _variants.items_cap(op, itemsize, _limits.max_items)


# ------------------------------------------------------------------ compiled kernels

_compiled = {}
_compile_lock = ForkSafeLock()  # a forked child gets it fresh (nbsoftmax._threading)


def get(key):
    """The compiled kernel of variant ``key`` (see ``_variants``), compiled on first use."""
    kernel = _compiled.get(key)
    if kernel is not None:
        return kernel
    with _compile_lock:
        kernel = _compiled.get(key)
        if kernel is None:
            fn, signature, bounds = _variants.source(key)
            kernel = _compiled[key] = compile_kernel(fn, signature, bounds)
    return kernel


def get_kernel(kind, op, items, dtype):
    """The compiled kernel ``kind`` ('warp', 'block', 'columns') for op on storage dtype."""
    dtype = np.dtype(dtype)
    return get(("columns", op, dtype) if kind == "columns" else (kind, op, items, dtype))


def get_scaled_kernel(op, dtype, masked):
    """The compiled ``_kernels_scaled`` kernel for op on storage dtype, with or without a mask."""
    return get(("scaled", op, np.dtype(dtype), bool(masked)))


def max_threads(key):
    """Most threads per block a launch of variant key may ask on the current device: its
    launch bound, and the limit the driver reports for the compiled kernel (registers)."""
    bound = _variants.BOUNDS[key[0]][0]
    if SIMULATOR:
        return bound
    return min(bound, _driver_limit(key, device_id()))


@functools.cache
def _driver_limit(key, device):
    return int(get(key).get_max_threads_per_block())


def _threads_for(key, n):
    """Threads per block of a grid-strided kernel over rows of n: a warp multiple, at most
    ``max_threads`` of the limits and of the kernel."""
    cap = min(_limits.max_threads, max_threads(key))
    return max(32, min(cap // 32 * 32, _round_up(n, 32)))


# ------------------------------------------------------------------ launching


def _configure(kernel, grid, block, stream):
    """A callable launching kernel on (grid, block) on stream (``_launcher.launch_once``:
    numba-cuda's launcher costs 36-70 us of host time per launch, this ~5 us).

    ``kernel[grid, block, stream]`` would also warn (NumbaPerformanceWarning) below 128
    blocks, the right grid for a small input, and silencing that with
    ``warnings.catch_warnings()`` would change the process's warning filters under other
    threads. Under the simulator the kernel is called as numba-cuda runs it.
    """
    if SIMULATOR:
        return kernel[grid, block]
    handle = stream_handle(stream)

    def launch(*args):
        _launcher.launch_once(kernel, grid, block, args, handle)

    return launch


def copy(src, dst, shape, src_strides, dst_strides, stream, src_at0=0, dst_at0=0):
    """dst[...] = src[...] over shape; flat views, element strides, flat index of [0, ..., 0]."""
    size = int(np.prod(shape, dtype=np.int64))
    if size == 0:
        return
    if len(shape) == 0:
        shape, src_strides, dst_strides = (1,), (0,), (0,)
    key = ("copy", np.dtype(src.dtype), np.dtype(dst.dtype), len(shape))
    threads = max_threads(key) // 32 * 32
    grid = min(-(-size // threads), 65_536)
    _configure(get(key), grid, threads, stream)(src, dst, tuple(shape), tuple(src_strides),
                                                tuple(dst_strides), src_at0, dst_at0, size)


def _plan(op, dtype, outer, n, inner):
    """(kind, items, grid, block, extra) for op over a flat (outer, n, inner) array."""
    lim = _limits
    if inner > 1:
        cap = max_threads(("columns", op, dtype))
        width = min(32, _next_pow2(inner))
        threads = min(lim.column_threads, _next_pow2(cap + 1) // 2)  # a power of two <= cap
        height = min(max(1, threads // width), _next_pow2(n))
        tiles = -(-inner // width)
        return ("columns", None, outer * tiles, (width, height), None)
    rows = outer
    if n <= lim.warp_max_cols:
        width = min(32, _next_pow2(n))
        items = _next_pow2(-(-n // width))
        block = min(lim.warp_threads, max_threads(("warp", op, items, dtype)) // 32 * 32)
        rows_per_block = block // width
        return ("warp", items, -(-rows // rows_per_block), block, width)
    cap = _items_cap(op, dtype.itemsize)
    if n <= lim.split_threads * cap or rows >= multiprocessor_count():
        items = min(4, cap)
        while items <= cap:
            threads = max(32, _round_up(-(-n // items), 32))
            if threads <= min(lim.max_threads, max_threads(("block", op, items, dtype))):
                return ("block", items, rows, threads, (n, 1))
            items *= 2
    split_threads = min(lim.split_threads,
                        max_threads(("split", op, "apply", cap, dtype)) // 32 * 32)
    split_chunk = split_threads * cap
    chunks = -(-n // split_chunk)
    return ("split", cap, rows, split_threads, (split_chunk, chunks))


def _strategy(op, dtype, outer, n, inner):
    key = (op, dtype, outer, n, inner, device_id())
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = _plan(op, dtype, outer, n, inner)
    return plan


def run(op, inputs, out, outer, n, inner, stream):
    """Enqueue op on flat device views: inputs -> out (which may be one of the inputs)."""
    dtype = np.dtype(inputs[0].dtype)
    if not SIMULATOR and _strategy(op, dtype, outer, n, inner)[0] != "split":
        pointers = [a.device_ctypes_pointer.value for a in inputs]
        pointers.append(out.device_ctypes_pointer.value)
        run_pointers(op, dtype, pointers, outer, n, inner, stream)
        return
    _enqueue(op, inputs, out, outer, n, inner, stream, _configure)


def run_pointers(op, dtype, pointers, outer, n, inner, stream, handle=None):
    """``run`` on raw device pointers (the inputs', then the output's) of flat C-ordered
    arrays of ``outer * n * inner`` elements of ``dtype``, through a launch plan.

    A plan (``_plan_launches``) is kept per thread for each (op, dtype, geometry, stream,
    device): the kernels, launch configurations and packed arguments, so that a repeated
    call only writes its pointers and calls ``cuLaunchKernel`` (``_launcher``). Under the
    simulator, and for the split strategy (its scratch buffer may be replaced between
    calls), the launches go through numba-cuda on flat views instead. ``handle``: the raw
    handle of ``stream`` when the caller has it already.
    """
    if handle is None:
        handle = stream_handle(stream)
    key = (op, dtype, outer, n, inner, handle, device_id(), _generation)
    table = _launcher.thread_table("plans")
    launches = table.get(key)
    if launches is None:
        launches = table[key] = _plan_launches(op, dtype, pointers, outer, n, inner, stream)
    if launches is False:
        size = outer * n * inner
        views = [_arrays.flat_view(p, size, dtype, None) for p in pointers]
        _enqueue(op, views[:-1], views[-1], outer, n, inner, stream, _configure)
        return
    for launch, picks in launches:
        launch([pointers[i] for i in picks])


def _plan_launches(op, dtype, pointers, outer, n, inner, stream):
    """The prepacked launches of one call (``_launcher.record``), or False when the
    strategy cannot be prepacked."""
    if SIMULATOR or _strategy(op, dtype, outer, n, inner)[0] == "split":
        return False
    size = outer * n * inner
    views = [_arrays.flat_view(p, size, dtype, None) for p in pointers]
    return _launcher.record(
        lambda configure: _enqueue(op, views[:-1], views[-1], outer, n, inner, stream,
                                   configure), views, stream_handle(stream))


def _enqueue(op, inputs, out, outer, n, inner, stream, configure):
    """The launches of op on flat device views, each made by ``configure(kernel, grid,
    block, stream)(*args)``."""
    dtype = np.dtype(inputs[0].dtype)
    kind, items, grid, block, extra = _strategy(op, dtype, outer, n, inner)
    if kind == "columns":
        kernel = get(("columns", op, dtype))
        configure(kernel, grid, block, stream)(*inputs, out, outer, n, inner)
    elif kind == "warp":
        kernel = get(("warp", op, items, dtype))
        configure(kernel, grid, block, stream)(*inputs, out, outer, n, extra)
    elif kind == "block":
        kernel = get(("block", op, items, dtype))
        configure(kernel, grid, block, stream)(*inputs, out, outer, n)
    else:
        # STATS per chunk, MERGE once per row, APPLY per chunk (_kernels_block)
        chunk, chunks = extra
        merge = ("merge", op in _ops.BACKWARD)
        merge_threads = min(max_threads(merge), max(32, _round_up(chunks, 32)))
        space = _workspace.workspace(stream)
        with space.lock:  # the launches of one call must not interleave with another's
            partials = space.take(2 * outer * chunks, stream)
            configure(get(("split", op, "stats", items, dtype)), outer * chunks, block, stream)(
                *inputs, partials, outer, n, chunk, chunks)
            configure(get(merge), outer, merge_threads, stream)(partials, outer, chunks)
            configure(get(("split", op, "apply", items, dtype)), outer * chunks, block, stream)(
                *inputs, out, partials, outer, n, chunk, chunks)


def run_scaled(op, inputs, mask, out, scaling, outer, n, inner, stream):
    """Enqueue op of ``_kernels_scaled`` on flat device views: x * sign / T over the entries
    where the flat uint8 ``mask`` is nonzero (None: all); a block per slice, grid-strided.
    ``scaling``: ``_temperature.kernel_scaling``'s tuple, or a sign alone (no temperature)."""
    if not isinstance(scaling, tuple):
        scaling = (float(scaling), 1.0, 0.0, 1.0)
    scaling = tuple(map(float, scaling))
    dtype = np.dtype(inputs[0].dtype)
    masked = mask is not None
    if not masked:
        mask = _placeholder(np.uint8, 1)
    key = ("scaled", op, dtype, masked)
    kernel = get(key)
    threads = _threads_for(key, n)
    grid = min(outer * inner, 65_536)
    if op in _ops.BACKWARD:
        _configure(kernel, grid, threads, stream)(*inputs, mask, out, scaling, outer, n, inner)
    else:
        _configure(kernel, grid, threads, stream)(inputs[0], mask, out, scaling, outer, n, inner)


def run_cross_entropy(x, target, weight, grad, losses, factor, total, rows, n, scaling, eps,
                      ignore_index, factor_mode, stream, ignoring=True):
    """Enqueue the three cross-entropy launches of ``_kernels_xent`` on flat device views:
    per-row losses into ``losses`` (float64), the gradient into ``grad`` (or None), and their
    sum into ``total[0]`` (or None for reduction "none"). ``scaling`` as for `run_scaled`;
    ``ignoring`` False: no target is ignored (unsigned targets, negative ignore_index)."""
    if not isinstance(scaling, tuple):
        scaling = (float(scaling), 1.0, 0.0, 1.0)
    scaling = tuple(map(float, scaling))
    dtype = np.dtype(x.dtype)
    probs = np.dtype(target.dtype) != np.int64
    weighted = weight is not None
    dummy = _placeholder(np.float64, 2)
    i8 = np.dtype(np.int64)
    key = ("xent", "denominator", i8, False, weighted, False)
    _configure(get(key), 1, _threads_for(key, rows), stream)(
        _placeholder(np.int64, 1) if probs else target, weight if weighted else dummy, factor,
        rows, n, ignore_index, factor_mode)
    with_grad = grad is not None
    key = ("xent", "rows", dtype, probs, weighted, with_grad)
    _configure(get(key), min(rows, 65_536), _threads_for(key, n), stream)(
        x, target, weight if weighted else dummy, factor, losses, grad if with_grad else x, rows,
        n, scaling, eps, (int(ignore_index), int(bool(ignoring))))
    if total is not None:
        key = ("xent", "total", dtype, False, False, False)
        _configure(get(key), 1, _threads_for(key, rows), stream)(losses, factor, total, rows)


def run_topk(x, probs, idx, rows, n, k, stream):
    """Enqueue the softmax top-k kernel (``_kernels_topk``) on flat device views."""
    key = ("topk", np.dtype(x.dtype))
    _configure(get(key), min(rows, 65_536), _threads_for(key, n), stream)(
        x, probs, idx, rows, n, k)


# Small arrays passed for the arguments a variant does not read (no mask, no partials, no
# class indices), one per device: a device array is valid only in its own context.
_placeholders = {}


def _placeholder(dtype, size):
    key = (device_id(), np.dtype(dtype))
    array = _placeholders.get(key)
    if array is None:
        array = _placeholders[key] = cuda.device_array(max(size, 2), dtype)
    return array
