"""Split-row drivers: rows cut into pieces shared among threads, for fewer rows than
threads (one row of 50M float32 would otherwise run on one core). Parallel only."""

import math

import numpy as np
from numba import njit, prange

from . import _slices as S
from ._math import store, to_compute

# ------------------------------------------------------------- rows split in chunks
# For fewer rows than threads (e.g. one row of 50M), each row is cut into `chunk`-element
# pieces: a parallel pass gathers per-piece statistics, they are merged per row, and a
# second parallel pass writes. Only parallel versions exist: the dispatcher splits rows only
# when more than one thread is available.


@njit(error_model="numpy")
def _piece(t, pieces, chunk, n):
    i = t // pieces
    b0 = (t % pieces) * chunk
    return i, b0, min(b0 + chunk, n)


@njit(error_model="numpy")
def _merged_stats(stats, rows, pieces):
    merged = np.empty((rows, 2))
    for i in range(rows):
        m, s = stats[i * pieces, 0], stats[i * pieces, 1]
        for p in range(1, pieces):
            m, s = S.combine_stats(m, s, stats[i * pieces + p, 0], stats[i * pieces + p, 1])
        merged[i, 0] = m
        merged[i, 1] = s
    return merged


@njit(parallel=True, error_model="numpy")
def _online_stats_pieces(x, chunk):
    rows, n = x.shape
    pieces = (n + chunk - 1) // chunk
    stats = np.empty((rows * pieces, 2))
    for t in prange(rows * pieces):
        i, b0, b1 = _piece(t, pieces, chunk, n)
        m, s = S.online_stats(x, i, b0, b1)
        stats[t, 0] = m
        stats[t, 1] = s
    return _merged_stats(stats, rows, pieces)


@njit(parallel=True, error_model="numpy")
def softmax_split_parallel(x, out, chunk):
    rows, n = x.shape
    pieces = (n + chunk - 1) // chunk
    merged = _online_stats_pieces(x, chunk)
    in_place = S.same_memory(x, out)
    for t in prange(rows * pieces):
        i, b0, b1 = _piece(t, pieces, chunk, n)
        m, s = merged[i, 0], merged[i, 1]
        if not math.isfinite(m):
            S.fill_nan_range(out, i, b0, b1)
        elif in_place:
            S.write_softmax_inplace(out, i, to_compute(x, m), to_compute(out, 1.0 / s), b0, b1)
        else:
            S.write_softmax(x, out, i, to_compute(x, m), to_compute(out, 1.0 / s), b0, b1)


@njit(parallel=True, error_model="numpy")
def log_softmax_split_parallel(x, out, chunk):
    rows, n = x.shape
    pieces = (n + chunk - 1) // chunk
    merged = _online_stats_pieces(x, chunk)
    in_place = S.same_memory(x, out)
    for t in prange(rows * pieces):
        i, b0, b1 = _piece(t, pieces, chunk, n)
        m, s = merged[i, 0], merged[i, 1]
        if not math.isfinite(m):
            S.fill_nan_range(out, i, b0, b1)
        elif in_place:
            S.write_log_softmax_inplace(out, i, to_compute(x, m), to_compute(out, math.log(s)), b0, b1)
        else:
            S.write_log_softmax(x, out, i, to_compute(x, m), to_compute(out, math.log(s)), b0, b1)


@njit(parallel=True, error_model="numpy")
def _lse_stats_pieces(x, chunk):
    """Per-row (m, c, r) of _slices.lse_stats, gathered by pieces in parallel and merged."""
    rows, n = x.shape
    pieces = (n + chunk - 1) // chunk
    stats = np.empty((rows * pieces, 3))
    for t in prange(rows * pieces):
        i, b0, b1 = _piece(t, pieces, chunk, n)
        m, c, r = S.lse_stats(x, i, b0, b1)
        stats[t, 0] = m
        stats[t, 1] = c
        stats[t, 2] = r
    return stats


@njit(error_model="numpy")  # parallel inside _lse_stats_pieces; nothing left to parallelise here
def logsumexp_split_parallel(x, out, chunk):
    rows, n = x.shape
    pieces = (n + chunk - 1) // chunk
    stats = _lse_stats_pieces(x, chunk)
    for i in range(rows):
        t = i * pieces
        m, c, r = stats[t, 0], stats[t, 1], stats[t, 2]
        for p in range(1, pieces):
            m, c, r = S.combine_lse(m, c, r, stats[t + p, 0], stats[t + p, 1], stats[t + p, 2])
        store(out, i, to_compute(out, S.lse_value(m, c, r)))


@njit(parallel=True, error_model="numpy")
def _piece_sums(g, y, chunk, with_y):
    rows, n = g.shape
    pieces = (n + chunk - 1) // chunk
    sums = np.empty(rows * pieces)
    for t in prange(rows * pieces):
        i, b0, b1 = _piece(t, pieces, chunk, n)
        sums[t] = S.dot_range(g, y, i, b0, b1) if with_y else S.total_range(g, i, b0, b1)
    return sums.reshape(rows, pieces).sum(axis=1)


@njit(parallel=True, error_model="numpy")
def softmax_backward_split_parallel(g, y, out, chunk):
    rows, n = g.shape
    pieces = (n + chunk - 1) // chunk
    dots = _piece_sums(g, y, chunk, True)
    for t in prange(rows * pieces):
        i, b0, b1 = _piece(t, pieces, chunk, n)
        S.write_softmax_backward(g, y, out, i, to_compute(out, dots[i]), b0, b1)


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_split_parallel(g, y, out, chunk):
    rows, n = g.shape
    pieces = (n + chunk - 1) // chunk
    totals = _piece_sums(g, y, chunk, False)
    for t in prange(rows * pieces):
        i, b0, b1 = _piece(t, pieces, chunk, n)
        S.write_log_softmax_backward(g, y, out, i, to_compute(out, totals[i]), b0, b1)
