"""Dispatch of the segment functions: validation, segments as CSR offsets, work sharing.

Segments arrive as CSR ``offsets`` (non-decreasing int64, ``offsets[0] == 0``,
``offsets[-1] == len(x)``) or as ``segment_ids`` (one id per entry, any order, PyG style).
Sorted ids become offsets directly (``np.bincount`` + ``cumsum``); unsorted ids are grouped
by a stable sort, the values gathered in that order, computed as CSR and scattered back, so
both forms run the same kernels and give the same values.

Work sharing (``_tasks``): the segments are cut into runs holding about equal numbers of
elements, a few runs per thread, so that skewed (Zipf) lengths still keep every core busy.
A segment holding more than its share of the elements (and at least ``cpu.SPLIT_MIN_BYTES``)
is left out of the runs and computed as one dense row by ``cpu.run``, which splits a long
row among threads: a segment and the dense row of the same entries share their kernels.
"""


import numpy as np

from .. import _threading
from . import arrays as _arrays
from . import core as _dispatch
from . import dtypes as _dtypes

TASKS_PER_THREAD = 4


def _threads():
    import numba  # here, not at import: `import nbsoftmax` does not import Numba

    return numba.get_num_threads()


# ------------------------------------------------------------------ kernels


def _run(name, dtype, args, elements, segments):
    """Run a segment driver: parallel where the size and the threading layer allow it."""
    from .. import cpu
    from ..cpu._segment_run import kernel

    if segments > 1 and elements >= cpu.PARALLEL_MIN_ELEMENTS and _threads() > 1:
        mode = _threading.parallel_mode()  # the policy of cpu._ParallelKernel
        if mode is _threading.FREE:
            return kernel(name, dtype, True)(*args)
        if mode is _threading.EXCLUSIVE and _threading.parallel_lock.acquire(blocking=False):
            try:
                return kernel(name, dtype, True)(*args)
            finally:
                _threading.parallel_lock.release()
    kernel(name, dtype, False)(*args)


def precompile(dtypes=("float32", "float64"), parallel=(False, True)):
    """Compile (or load from the on-disk cache) every segment kernel for dtypes now
    (``nbsoftmax.precompile(ops=["segment_softmax", ...])`` and ``nbsoftmax warmup`` build
    the same ones, serial and parallel).

    Segments longer than a thread's share of the work (and at least 1 MiB) run the dense
    kernels of the same operation: ``nbsoftmax.precompile(ops=["softmax", ...])`` builds those.

    Examples
    --------
    >>> from nbsoftmax import segment
    >>> segment.precompile(dtypes=("float64",), parallel=(False,))
    """
    from ..cpu._segment_run import KINDS, kernel

    for dtype in dtypes:
        for name in KINDS:
            for par in parallel:
                kernel(name, _compute_dtype(np.dtype(dtype)), par)


# ------------------------------------------------------------------ arguments


def _compute_dtype(rdtype):
    return np.dtype(np.float32) if rdtype == np.float16 else rdtype


def values(x, name="x"):
    """x as an ndarray of 1 or 2 dimensions, and its result dtype."""
    x = _arrays.as_array(x, name)
    rdtype = _dtypes.result_dtype(x.dtype, name) if name != "x" else _dtypes.result_dtype(x.dtype)
    if x.ndim not in (1, 2):
        raise ValueError(f"{name} has {x.ndim} dimensions; expected 1 (values) or 2 (values "
                         "along axis 0, independent columns along axis 1)")
    return x, rdtype


def _int_array(arr, name):
    a = _arrays.as_array(arr, name)
    if a.dtype.kind not in "iu" or a.ndim != 1:
        raise TypeError(f"{name} has dtype {a.dtype} and {a.ndim} dimensions; expected a "
                        "1-D array of integers")
    return a


def segments(n, offsets, segment_ids, num_segments):
    """(offsets int64, order or None): CSR offsets of the segments over n entries; order is
    the stable sort of unsorted segment_ids (values are then gathered in that order)."""
    if (offsets is None) == (segment_ids is None):
        raise TypeError("give the segments either as offsets or as segment_ids= (exactly one)")
    if offsets is not None:
        if num_segments is not None:
            raise TypeError("num_segments= goes with segment_ids=; with offsets the number of "
                            "segments is len(offsets) - 1")
        off = _int_array(offsets, "offsets")
        if off.size == 0 or off[0] != 0 or off[-1] != n:
            first = off[0] if off.size else None
            last = off[-1] if off.size else None
            raise ValueError(f"offsets must start at 0 and end at len(x) = {n}; they start at "
                             f"{first} and end at {last}")
        if off.size > 1 and np.any(off[1:] < off[:-1]):
            k = int(np.argmax(off[1:] < off[:-1]))
            raise ValueError(f"offsets must be non-decreasing; offsets[{k + 1}] = "
                             f"{off[k + 1]} < offsets[{k}] = {off[k]}")
        return np.ascontiguousarray(off, np.int64), None
    ids = _int_array(segment_ids, "segment_ids")
    if ids.size != n:
        raise ValueError(f"segment_ids has {ids.size} entries; expected one per entry of x "
                         f"({n})")
    if num_segments is None:
        num_segments = int(ids.max()) + 1 if ids.size else 0
    elif isinstance(num_segments, (bool, np.bool_)) or not isinstance(
            num_segments, (int, np.integer)) or num_segments < 0:
        raise TypeError(f"num_segments must be a non-negative int, not {num_segments!r}")
    num_segments = int(num_segments)
    if ids.size and (ids.min() < 0 or ids.max() >= num_segments):
        raise ValueError(f"segment_ids must lie in [0, num_segments) = [0, {num_segments}); "
                         f"they range over [{ids.min()}, {ids.max()}]")
    counts = np.bincount(ids, minlength=num_segments) if ids.size else \
        np.zeros(num_segments, np.int64)
    off = np.zeros(num_segments + 1, np.int64)
    np.cumsum(counts, out=off[1:])
    if ids.size < 2 or not np.any(ids[1:] < ids[:-1]):
        return off, None
    return off, np.argsort(ids, kind="stable")


def inverse_temperature(temperature):
    """1 / temperature as a float (None without one), after checking it."""
    if temperature is None:
        return None
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(
            temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature must be a positive real number, not {temperature!r}")
    t = float(temperature)
    if not (t > 0 and np.isfinite(t)):
        raise ValueError(f"temperature must be positive and finite, not {temperature!r}")
    return 1.0 / t


def _tasks(offsets, n, row_bytes, threads):
    """(task_bounds, max_len, long segment indices) for the kernels (see the module notes)."""
    from .. import cpu

    segments = offsets.size - 1
    if threads <= 1 or segments <= 1:
        return np.array([0, segments], np.int64), n, ()
    tasks = TASKS_PER_THREAD * threads
    targets = np.linspace(0, n, tasks + 1)
    bounds = np.searchsorted(offsets, targets, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, segments
    bounds = np.unique(np.clip(bounds, 0, segments))
    max_len = max(n // (2 * threads), cpu.SPLIT_MIN_BYTES // max(row_bytes, 1), 1)
    lengths = np.diff(offsets)
    long_ids = np.flatnonzero(lengths > max_len)
    return bounds, max_len, long_ids


# ------------------------------------------------------------------ forward


def forward(op, x, offsets, segment_ids, num_segments, out, where, temperature):
    from ..cpu import _segment_run

    x, rdtype = values(x)
    off, order = segments(x.shape[0], offsets, segment_ids, num_segments)
    mask = None if where is None else _dispatch.check_where(where, x.shape)
    inv_t = inverse_temperature(temperature)
    if out is not None:
        _arrays.check_out(out, x.shape, rdtype)
    cdtype = _compute_dtype(rdtype)
    # The kernels transform one C-contiguous compute-dtype array in place, gathered in
    # segment order: out itself when it is one and nothing needs reordering.
    if out is not None and order is None and out.dtype == cdtype and out.flags.c_contiguous \
            and not np.may_share_memory(out, x):
        work = out
    else:
        work = np.empty(x.shape, cdtype)
    src = x if order is None else x[order]
    m = None
    if mask is not None:
        m = np.broadcast_to(mask, x.shape)
        m = np.ascontiguousarray(m if order is None else m[order])
    source = work  # the kernels' input: work itself (staged, in place), or x read in place
    if m is None and inv_t is None:
        if src.dtype == cdtype and src.flags.c_contiguous and src.flags.aligned \
                and src.dtype.isnative and work is not src:
            source = src  # one read of x and one write less than staging a copy
        else:
            _arrays.cast_copy(work, src)
    elif inv_t is None:
        _segment_run.stage_masked(src, m, -np.inf, work)
    else:
        cols = x.shape[1] if x.ndim == 2 else 1
        _segment_run.stage_temperature(src.reshape(-1, cols),
                                       None if m is None else m.reshape(-1, cols), off, inv_t,
                                       work.reshape(-1, cols))
    _compute_forward(op, source, work, off)
    if m is not None:
        _segment_run.finish_masked(work, m, 1.0, 0.0 if op == "softmax" else -np.inf)
    result = work
    if order is not None:
        result = np.empty(x.shape, cdtype)
        result[order] = work
    if out is not None:
        if result is not out:
            _arrays.cast_copy(out, result)
        return out
    return result.astype(rdtype, copy=False)


def _rows2(a):
    """(N,) -> (1, N) rows view; (N, C) as is."""
    return a.reshape(1, -1) if a.ndim == 1 else a


def _compute_forward(op, source, work, off):
    """softmax / log_softmax of every segment of source (C-contiguous) into work (the same
    array, in place, or one of its shape)."""
    from .. import cpu

    n = work.shape[0]
    columns = work.ndim == 2
    row_bytes = work.itemsize * (work.shape[1] if columns else 1)
    bounds, max_len, long_ids = _tasks(off, n, row_bytes, _threads())
    rows = (lambda a: a) if columns else _rows2
    _run("forward", work.dtype, (op == "log_softmax", rows(source), off, bounds, max_len, columns,
                                 rows(work)), work.size, off.size - 1)
    for k in long_ids:
        b0, b1 = off[k], off[k + 1]
        shape = (1, b1 - b0, work.shape[1]) if columns else (1, b1 - b0)
        cpu.run(op, (source[b0:b1].reshape(shape),), work[b0:b1].reshape(shape), source is work)


def logsumexp(x, offsets, segment_ids, num_segments, where):
    from ..cpu import _segment_run

    x, rdtype = values(x)
    off, order = segments(x.shape[0], offsets, segment_ids, num_segments)
    mask = None if where is None else _dispatch.check_where(where, x.shape)
    cdtype = _compute_dtype(rdtype)
    src = x if order is None else x[order]
    if mask is None:
        work = np.ascontiguousarray(src, cdtype)
    else:
        m = np.broadcast_to(mask, x.shape)
        work = np.empty(x.shape, cdtype)
        _segment_run.stage_masked(src, m if order is None else m[order], -np.inf, work)
    columns = work.ndim == 2
    cols = work.shape[1] if columns else 1
    segs = off.size - 1
    result = np.empty((segs, cols), cdtype)
    if segs:
        from .. import cpu

        bounds, max_len, long_ids = _tasks(off, work.shape[0], work.itemsize * cols,
                                           _threads())
        x2 = work if columns else _rows2(work)
        _run("logsumexp", cdtype, (x2, off, bounds, max_len, columns, result), work.size, segs)
        for k in long_ids:
            b0, b1 = off[k], off[k + 1]
            if columns:
                cpu.run("logsumexp", (work[b0:b1].reshape(1, b1 - b0, cols),), result[k:k + 1])
            else:
                cpu.run("logsumexp", (work[b0:b1].reshape(1, -1),), result[k])
    result = result if columns else result[:, 0]
    return result.astype(rdtype, copy=False)


# ------------------------------------------------------------------ backward


def backward(op, grad_output, output, offsets, segment_ids, num_segments, out, where,
             temperature):
    from ..cpu import _segment_run

    g, gdtype = values(grad_output, "grad_output")
    y, ydtype = values(output, "output")
    if g.shape != y.shape:
        raise ValueError(f"grad_output has shape {g.shape} but output has shape {y.shape}; "
                         "they must match")
    rdtype = np.result_type(gdtype, ydtype)
    off, order = segments(g.shape[0], offsets, segment_ids, num_segments)
    mask = None if where is None else _dispatch.check_where(where, g.shape)
    inv_t = inverse_temperature(temperature)
    scale = 1.0 if inv_t is None else inv_t
    if out is not None:
        _arrays.check_out(out, g.shape, rdtype)
    cdtype = _compute_dtype(rdtype)
    gs = g if order is None else g[order]
    ys = y if order is None else y[order]
    m = None
    if mask is not None:
        m = np.broadcast_to(mask, g.shape)
        m = np.ascontiguousarray(m if order is None else m[order])
    work = np.empty(g.shape, cdtype)
    if m is None:
        _arrays.cast_copy(work, gs)
        yw = np.ascontiguousarray(ys, cdtype)
    else:
        _segment_run.stage_masked(gs, m, 0.0, work)
        y_fill = 0.0 if op == "softmax_backward" else -np.inf  # exp(-inf) = 0: no part
        yw = np.empty(g.shape, cdtype)
        _segment_run.stage_masked(ys, m, y_fill, yw)
    _compute_backward(op, work, yw, off)
    if m is not None or scale != 1.0:
        _segment_run.finish_masked(work, m, scale, 0.0)
    result = work
    if order is not None:
        result = np.empty(g.shape, cdtype)
        result[order] = work
    if out is not None:
        _arrays.cast_copy(out, result)
        return out
    return result.astype(rdtype, copy=False)


def _compute_backward(op, work, y, off):
    from .. import cpu

    n = work.shape[0]
    columns = work.ndim == 2
    row_bytes = work.itemsize * (work.shape[1] if columns else 1)
    bounds, max_len, long_ids = _tasks(off, n, row_bytes, _threads())
    g2, y2 = (work, y) if columns else (_rows2(work), _rows2(y))
    _run("backward", work.dtype, (op == "log_softmax_backward", g2, y2, off, bounds, max_len,
                                  columns, g2), work.size, off.size - 1)
    for k in long_ids:
        b0, b1 = off[k], off[k + 1]
        if columns:
            shape = (1, b1 - b0, work.shape[1])
            gk, yk = work[b0:b1].reshape(shape), y[b0:b1].reshape(shape)
        else:
            gk, yk = work[b0:b1].reshape(1, -1), y[b0:b1].reshape(1, -1)
        cpu.run(op, (gk, yk), gk)
