"""Segment kernels: softmax over the ragged segments ``x[offsets[k]:offsets[k + 1]]``.

One source of truth with the dense kernels: a 1-D ``x`` is seen as one ``(1, N)`` row and a
segment is the range ``b0:b1`` of it, handed to the range functions of ``_slices`` (max,
compensated exp-sum, the write loops, the online statistics for segments that outgrow L2),
so a segment gives the values of a dense row with the same entries. A 2-D ``x`` of shape
``(N, C)`` (C independent columns, e.g. attention heads) gives each segment to the column
kernels of ``_columns`` as an ``(1, length, C)`` view.

Work is shared among threads by element counts, not segment counts: the dispatcher cuts the
segments into ``task_bounds`` runs of about equal numbers of elements (a Zipf length
distribution puts most of the elements in a few segments). Segments longer than ``max_len``
are skipped here: the dispatcher hands each to the dense row kernels, which split one row
among threads.

Arrays: ``x``/``g``/``y`` ``(1, N)`` or ``(N, C)`` C-contiguous (read-only), ``out`` the same
(it may be ``x`` itself), ``offsets`` int64 ``(S + 1,)``, ``task_bounds`` int64 segment indices.
"""

import math

import numpy as np
from numba import njit, prange

from . import _columns as C
from . import _slices as S
from ._math import (
    compute_neg_inf,
    compute_zero,
    exp_,
    fmaximum,
    load2,
    store2,
    sum_block,
    to_compute,
)

# ------------------------------------------------------------- one segment, 1-D values


@njit(error_model="numpy")
def _stats(x, b0, b1):
    """(max in the compute type, float64 sum of exp(x - max)) of x[0, b0:b1]; max not finite
    (NaN, +inf, or -inf for an empty or all -inf segment) marks a NaN segment."""
    if (b1 - b0) * x.itemsize > S.LONG_ROW_BYTES:
        m64, s = S.online_stats(x, 0, b0, b1)
        return to_compute(x, m64), s
    m = S._block_max(x, 0, b0, b1)
    if not math.isfinite(m):
        return m, 0.0
    return m, S.exp_sum_range(x, 0, m, b0, b1)


@njit(error_model="numpy")
def _exp_store_sum_range(x, out, m, b0, b1):
    """_slices.exp_store_sum over x[0, b0:b1]: exp(x - m) stored in out, summed per block of
    _math.sum_block and totalled with compensation (the blocks of a dense row's sum)."""
    block = sum_block(x)
    if b1 - b0 <= block:
        return np.float64(S._block_exp_store_sum(x, 0, m, out, b0, b1))
    total = 0.0
    comp = 0.0
    for c0 in range(b0, b1, block):
        part = S._block_exp_store_sum(x, 0, m, out, c0, min(c0 + block, b1))
        total, comp = S._neumaier_add(total, comp, np.float64(part))
    return total + comp


@njit(error_model="numpy")
def _scale_range(out, inv, b0, b1):
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(out, 0, j, load2(out, 0, j) * inv)


# Short segments: each level of calls with array arguments costs ~15 ns a segment here (as
# _slices.softmax_one_block notes for rows); through softmax_range a segment of 1-3 values
# took 60-65 ns (Zipf lengths, median 1: 5M values in 100k segments ran at a third of the
# dense kernel's rate). Runs of segments of at most one summing block, out of place, are
# therefore done by one call (softmax: 13 ns a segment of 1 value, 23 of 3, measured with
# process time on the loaded 2-core machine), and log_softmax segments one level lower.


@njit(fastmath=S.REDUCE, error_model="numpy")
def softmax_short_run(x, out, offsets, k, k1, block):
    """softmax of the segments k, k + 1, ... (before k1) of at most `block` values, out not
    x: the loops of _block_max, _block_exp_store_sum and the scaling of softmax_range (the
    same values). Returns the first segment not done (a longer one, or k1)."""
    while k < k1:
        b0 = offsets[k]
        b1 = offsets[k + 1]
        if b1 - b0 > block:
            return k
        k += 1
        m = compute_neg_inf(x)
        for j in range(np.uint64(b0), np.uint64(b1)):
            m = fmaximum(m, load2(x, 0, j))
        if not math.isfinite(m):
            S.fill_nan_range(out, 0, b0, b1)
            continue
        s = compute_zero(x)
        for j in range(np.uint64(b0), np.uint64(b1)):
            e = exp_(load2(x, 0, j) - m)
            store2(out, 0, j, e)
            s += e
        inv = to_compute(out, 1.0 / np.float64(s))
        for j in range(np.uint64(b0), np.uint64(b1)):
            store2(out, 0, j, load2(out, 0, j) * inv)
    return k


@njit(error_model="numpy")
def log_softmax_one_block(x, out, b0, b1):
    """log_softmax of x[0, b0:b1] (at most one summing block, out not x): log_softmax_range
    without its _stats level. The write loop stays a call of its own, out of the fast-math
    reductions (reassociation could turn (x - m) - log_s into x - (m + log_s)); inlined
    here, float64 values differed from log_softmax_range's in the last bit."""
    m = S._block_max(x, 0, b0, b1)
    if not math.isfinite(m):
        S.fill_nan_range(out, 0, b0, b1)
        return
    log_s = to_compute(out, math.log(S.exp_sum_range(x, 0, m, b0, b1)))
    S.write_log_softmax(x, out, 0, m, log_s, b0, b1)


@njit(error_model="numpy")
def softmax_range(x, out, b0, b1, in_place):
    """Out of place and in cache: max; exp stored and summed; scaled (exp computed once, as
    the dense softmax_slice does). In place (a staged input) or long: the statistics first,
    then exp recomputed while writing (see _slices.same_memory and is_long)."""
    if not in_place and (b1 - b0) * x.itemsize <= S.LONG_ROW_BYTES:
        m = S._block_max(x, 0, b0, b1)
        if not math.isfinite(m):
            S.fill_nan_range(out, 0, b0, b1)
            return
        s = _exp_store_sum_range(x, out, m, b0, b1)
        _scale_range(out, to_compute(out, 1.0 / s), b0, b1)
        return
    m, s = _stats(x, b0, b1)
    if not math.isfinite(m):
        S.fill_nan_range(out, 0, b0, b1)
    elif in_place:
        S.write_softmax_inplace(out, 0, m, to_compute(out, 1.0 / s), b0, b1)
    else:
        S.write_softmax(x, out, 0, m, to_compute(out, 1.0 / s), b0, b1)


@njit(error_model="numpy")
def log_softmax_range(x, out, b0, b1, in_place):
    m, s = _stats(x, b0, b1)
    if not math.isfinite(m):
        S.fill_nan_range(out, 0, b0, b1)
    elif in_place:
        S.write_log_softmax_inplace(out, 0, m, to_compute(out, math.log(s)), b0, b1)
    else:
        S.write_log_softmax(x, out, 0, m, to_compute(out, math.log(s)), b0, b1)


@njit(error_model="numpy")
def logsumexp_range(x, b0, b1):
    """The dense logsumexp of x[0, b0:b1] in float64: _slices' log1p form
    m + log1p((c - 1) + r), which keeps [0, -40] at 4.2e-18 rather than 0."""
    m, c, r = S.lse_stats(x, 0, b0, b1)
    return S.lse_value(m, c, r)


# ------------------------------------------------------------------------- drivers


@njit(error_model="numpy")
def _segment_task(log, x, offsets, k0, k1, max_len, columns, in_place, out):
    """softmax (log: log_softmax) of segments k0:k1; columns: x is (N, C), else (1, N)."""
    block = sum_block(x)
    short_runs = not (columns or log or in_place)
    k = k0
    while k < k1:
        if short_runs:
            k = softmax_short_run(x, out, offsets, k, k1, block)
            if k == k1:
                break
        b0 = offsets[k]
        b1 = offsets[k + 1]
        k += 1
        if b1 - b0 > max_len:
            continue
        if not columns:
            if log and not in_place and b1 - b0 <= block:
                log_softmax_one_block(x, out, b0, b1)
            elif log:
                log_softmax_range(x, out, b0, b1, in_place)
            else:
                softmax_range(x, out, b0, b1, in_place)
            continue
        shape = (1, b1 - b0, x.shape[1])
        xs, os = x[b0:b1].reshape(shape), out[b0:b1].reshape(shape)
        if log:
            C.log_softmax_columns(xs, os, 0, 0, shape[2])
        else:
            C.softmax_columns(xs, os, 0, 0, shape[2])


@njit(error_model="numpy")
def forward_serial(log, x, offsets, task_bounds, max_len, columns, out):
    in_place = S.same_memory(x, out)
    for t in range(task_bounds.size - 1):
        _segment_task(log, x, offsets, task_bounds[t], task_bounds[t + 1], max_len, columns,
                      in_place, out)


@njit(parallel=True, error_model="numpy")
def forward_parallel(log, x, offsets, task_bounds, max_len, columns, out):
    in_place = S.same_memory(x, out)
    for t in prange(task_bounds.size - 1):
        _segment_task(log, x, offsets, task_bounds[t], task_bounds[t + 1], max_len, columns,
                      in_place, out)


@njit(error_model="numpy")
def _logsumexp_task(x, offsets, k0, k1, max_len, columns, out):
    """out[k] (out is (S, C); C = 1 for 1-D x) for segments k0:k1."""
    for k in range(k0, k1):
        b0 = offsets[k]
        b1 = offsets[k + 1]
        if b1 - b0 > max_len:
            continue
        if not columns:
            store2(out, k, 0, to_compute(out, logsumexp_range(x, b0, b1)))
        else:
            cols = x.shape[1]
            C.logsumexp_columns(x[b0:b1].reshape((1, b1 - b0, cols)), out[k:k + 1], 0, 0, cols)


@njit(error_model="numpy")
def logsumexp_serial(x, offsets, task_bounds, max_len, columns, out):
    for t in range(task_bounds.size - 1):
        _logsumexp_task(x, offsets, task_bounds[t], task_bounds[t + 1], max_len, columns, out)


@njit(parallel=True, error_model="numpy")
def logsumexp_parallel(x, offsets, task_bounds, max_len, columns, out):
    for t in prange(task_bounds.size - 1):
        _logsumexp_task(x, offsets, task_bounds[t], task_bounds[t + 1], max_len, columns, out)


@njit(error_model="numpy")
def _backward_task(log, g, y, offsets, k0, k1, max_len, columns, out):
    for k in range(k0, k1):
        b0 = offsets[k]
        b1 = offsets[k + 1]
        if b1 - b0 > max_len:
            continue
        if not columns:
            if log:
                t = S.total_range(g, 0, b0, b1)
                S.write_log_softmax_backward(g, y, out, 0, to_compute(out, t), b0, b1)
            else:
                d = S.dot_range(g, y, 0, b0, b1)
                S.write_softmax_backward(g, y, out, 0, to_compute(out, d), b0, b1)
        else:
            cols = g.shape[1]
            shape = (1, b1 - b0, cols)
            gs, ys, os = g[b0:b1].reshape(shape), y[b0:b1].reshape(shape), out[b0:b1].reshape(shape)
            if log:
                C.log_softmax_backward_columns(gs, ys, os, 0, 0, cols)
            else:
                C.softmax_backward_columns(gs, ys, os, 0, 0, cols)


@njit(error_model="numpy")
def backward_serial(log, g, y, offsets, task_bounds, max_len, columns, out):
    for t in range(task_bounds.size - 1):
        _backward_task(log, g, y, offsets, task_bounds[t], task_bounds[t + 1], max_len, columns,
                       out)


@njit(parallel=True, error_model="numpy")
def backward_parallel(log, g, y, offsets, task_bounds, max_len, columns, out):
    for t in prange(task_bounds.size - 1):
        _backward_task(log, g, y, offsets, task_bounds[t], task_bounds[t + 1], max_len, columns,
                       out)
