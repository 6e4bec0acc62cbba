"""CPU backend: Numba kernels compiled lazily, one explicit signature at a time.

The dispatch hands this backend a validated ``nbsoftmax.dispatch.plan.Plan`` of host arrays
through five entry points, the same as ``nbsoftmax.cuda``'s: ``forward``, ``backward``,
``reduction``, ``loss`` and ``topk``; none of them checks anything. Below them, ``run`` takes
C-contiguous ``(rows, n)`` arrays when the softmax axis is the unit-stride one, or
``(outer, n, inner)`` arrays otherwise, with float16 data passed as its uint16 bit pattern. It
picks the serial or parallel driver by size; ``_registry`` compiles each (driver, storage
dtype) pair on first use with an explicit signature (read-only inputs, so a read-only array
reuses the same machine code), cached on disk by ``_cache.KernelCache``. Parallel drivers run
through ``_registry._ParallelKernel``, which applies the threading policy of
``nbsoftmax._threading`` (serial fallback where the active threading layer is unsafe).
"""

import numba
import numpy as np

from .. import _threading
from . import _chunks, _lse_run, _slices
from ._registry import (  # noqa: F401  (_compiled, _compile_lock, get_kernel: read here by tests)
    _GENERAL_OPS,
    _OPS,
    _compile_lock,
    _compiled,
    _topk_kernel,
    _xent_kernel,
    get_kernel,
)

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

# softmax rows up to one summing block (_math.sum_block), by storage itemsize, take the
# "block" kernels (one function per row).
_ONE_BLOCK = {2: 512, 4: 512, 8: 128}

# Columns per task of the non-last-axis kernels: 4096 columns keep the three per-column
# work arrays (max, sum, 1/sum: 48-64 KB) in L2 while whole row segments stream from memory.
MAX_COLUMN_TILE = 4096


# ------------------------------------------------------------------ entry points (a Plan each)


def _storage(arr):
    """The array the kernels read and write: float16 as its uint16 bits, others as they are."""
    return arr.view(np.uint16) if arr is not None and arr.dtype.itemsize == 2 else arr


def forward(plan):
    """softmax / log_softmax of a host plan (``where=``/``temperature=``: the scaled kernels);
    the same for the backward passes of ``backward``. Returns the call's result."""
    # one unpacking: a namedtuple's attribute costs ~30 ns each on a ~2 us call
    op, _, _, inputs, target, result, out, _, _, form, dtype, in_place, mask, scaling, _, _ = plan
    if dtype.itemsize == 2:
        inputs, target = tuple(map(_storage, inputs)), _storage(target)
    if scaling is None:
        rows, n, inner = form
        if inner == 1 and rows * n < PARALLEL_MIN_ELEMENTS:  # run()'s small-rows case, inlined
            get_kernel(op, _row_layout(op, inputs[0], target, in_place), target.dtype,
                       False)(*inputs, target)
        else:
            run(op, inputs, target, in_place)
    else:
        run_scaled(op, inputs, mask, scaling, target)
    if out is not None:  # out's memory could not be viewed in the kernels' layout
        np.copyto(out, result)
        return out
    return result


def backward(plan):
    """softmax_backward / log_softmax_backward (as `forward`) and logsumexp_backward."""
    if plan.op != "logsumexp_backward":
        return forward(plan)
    g, x = map(_storage, plan.inputs)
    _lse_run.run_lse_backward(g, x, plan.mask, _storage(plan.target),
                              _use_parallel(x.shape[0], x.size))
    if plan.out is not None:
        np.copyto(plan.out, plan.result)
        return plan.out
    return plan.result


def reduction(plan):
    """logsumexp of a host plan: plain, over ``where=``, or with ``b=``/``return_sign=``
    (``plan.options``); writes the plan's reduced targets (the dispatch shapes the result)."""
    x = _storage(plan.inputs[0])
    options = plan.options
    if options is not None:  # the general kernels of _lse
        _lse_run.run_lse(x, _storage(options.b), plan.mask, _storage(plan.target),
                         _storage(options.sign_target), _use_parallel(x.shape[0], x.size))
    elif plan.mask is not None:
        run_scaled("logsumexp", (x,), plan.mask, plan.scaling, _storage(plan.target))
    else:
        run("logsumexp", (x,), _storage(plan.target))


def loss(plan):
    """cross_entropy of a host plan: per-row losses in float64, reduced as ``reduction`` asks;
    returns the loss, or (loss, gradient)."""
    o = plan.options
    rows = int(np.prod(o.rest_shape))
    grad = plan.result
    if plan.inputs:
        target = o.target if o.target.dtype.kind in "iu" else _storage(o.target)
        losses = np.empty(rows, np.float64)
        run_xent(_storage(plan.inputs[0]), target, o.weight, o.wsum, plan.scaling,
                 o.label_smoothing, o.ignore_index, o.factor, losses, _storage(plan.target))
    else:  # no samples or no classes
        losses = np.zeros(rows, np.float64)
        if grad is not None:
            grad[...] = 0
    rdtype = plan.dtype
    if o.reduction == "none":
        value = losses.reshape(o.rest_shape).astype(rdtype)
    elif o.reduction == "sum" or o.denominator:
        value = rdtype.type(losses.sum())
    else:
        value = rdtype.type(np.nan)  # mean over no kept samples: 0 / 0, as torch
    return (value, grad) if o.return_grad else value


def topk(plan):
    """softmax_topk of a host plan: (probabilities, int64 indices), k along ``options.axis``."""
    x = plan.inputs[0] if plan.inputs else None
    k, axis = plan.options
    rest = plan.shape[:axis] + plan.shape[axis + 1:]
    rows = int(np.prod(rest))
    probs = np.empty((rows, k), plan.dtype)
    idx = np.empty((rows, k), np.int64)
    if rows:
        run_topk(_storage(x), k, _storage(probs), idx)
    probs = np.moveaxis(probs.reshape(rest + (k,)), -1, axis)
    idx = np.moveaxis(idx.reshape(rest + (k,)), -1, axis)
    return probs, idx


# ------------------------------------------------------------------ kernels by size


def _use_parallel(work_items, elements):
    # (get_num_threads is only asked when the size makes it matter: it costs ~0.3 us)
    return work_items > 1 and elements >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1


# Ops whose parallel column drivers share out pieces of the softmax axis when the column
# tasks are too few (_drivers._row_pieces): their tiles stay whole rows, which streamed
# (4096, 1000) over axis 0 1.8x faster than tiles of 250 columns here (serial CPU time).
_ROW_PIECE_OPS = ("softmax", "log_softmax")


def column_tile(outer, inner, op=None):
    """Columns per task: whole rows when there are enough outer slices to share out (or the
    op's drivers share out the softmax axis instead, _ROW_PIECE_OPS)."""
    threads = numba.get_num_threads()
    tile = inner
    # whole rows cut in pieces only while the pieces' bounded scratch
    # (_drivers_columns.PIECE_STATS entries) still gives every thread two of them
    from ._drivers_columns import PIECE_STATS

    pieces = op in _ROW_PIECE_OPS and outer * inner * 2 * threads <= PIECE_STATS
    if outer < 2 * threads and not pieces:
        tiles_wanted = -(-2 * threads // outer)
        tile = max(64, -(-inner // tiles_wanted))
    tile = min(tile, MAX_COLUMN_TILE)
    return max(1, min(tile, inner))


def _row_layout(op, first, out, in_place):
    return _rows_kind(op, first.shape[1], first.dtype, in_place)


def _rows_kind(op, n, dtype, in_place):
    if n <= SHORT_ROW[op]:
        return "short"
    if op in _GENERAL_OPS and (
        in_place
        or n * dtype.itemsize > _slices.LONG_ROW_BYTES
        or (op == "softmax" and dtype == np.uint16)
    ):
        return "rows_general"
    if op == "softmax" and n <= _ONE_BLOCK[dtype.itemsize]:
        return "block"  # see _slices.softmax_one_block
    return "rows"


def small_rows(op, dtype, n, in_place):
    """The executor of every small (rows, n) plan of op over C-contiguous float32/float64
    storage ``dtype`` (x's own, not float16), x written in place or not: ``(row_limit,
    entry)``; a plan of fewer than ``row_limit`` rows runs as ``entry(x, target)``.

    ``entry`` is the serial kernel's compiled entry point, not its Numba dispatcher: the
    dispatcher matches argument types on every call (~0.17 us of a ~0.65 us call, 1 x 10
    float32, measured here), which the dispatch's fast path has already guaranteed; the
    entry point unboxes without checking dtype or layout, so only such a caller may use it.

    Then ``(lookup, key, kernel)``: the executor holds while ``lookup(key) is kernel``, i.e. the
    kernel table still has this kernel (tests clear the table to see which kernels calls
    reach; a cached executor would otherwise hide them)."""
    key = (op, _rows_kind(op, n, dtype, in_place), dtype, False)
    kernel = get_kernel(*key)
    overloads = getattr(kernel, "overloads", None)  # one signature per dispatcher (get_kernel)
    entry = next(iter(overloads.values())).entry_point if overloads and len(overloads) == 1 \
        else kernel
    return -(-PARALLEL_MIN_ELEMENTS // n), entry, _compiled.get, key, kernel


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
        tile = column_tile(outer, inner, op)
        tasks = outer * (-(-inner // tile)) * (first.shape[1] if tile == inner and op in
                                                _ROW_PIECE_OPS else 1)
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
