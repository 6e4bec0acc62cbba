"""Loops over slices: serial and ``prange`` drivers for the slice and column kernels.

``*_rows_*`` take the array as ``(rows, n)``, one softmax slice per row. ``*_columns_*``
take it as ``(outer, n, inner)`` and split the work into ``outer * ceil(inner / tile)``
tasks of up to ``tile`` adjacent columns, so that even one outer slice (``(4096, 1000)`` over
axis 0) keeps every core busy. Work arrays are allocated inside the serial kernels each
task calls, so they are private to a thread.

The drivers are written out one by one rather than made by a factory: Numba's on-disk
cache keys closures by their shared qualified name, so factory-made drivers would evict
each other from the cache.
"""

import math

import numpy as np
from numba import njit, prange

from . import _columns as C
from . import _lse as L
from . import _scaled as Sc
from . import _topk as T
from . import _xent as X
from . import _short as Sh
from . import _slices as S
from ._math import store, to_compute

# ---------------------------------------------------------------------------- rows


@njit(error_model="numpy")
def softmax_rows_serial(x, out):
    for i in range(x.shape[0]):
        S.softmax_slice(x, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        S.softmax_slice(x, out, i)


@njit(error_model="numpy")
def log_softmax_rows_serial(x, out):
    for i in range(x.shape[0]):
        S.log_softmax_slice(x, out, i)


@njit(parallel=True, error_model="numpy")
def log_softmax_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        S.log_softmax_slice(x, out, i)


# Rows of one summing block (_slices.softmax_one_block): their own drivers, so that each
# compiles only its path (cold parallel compile 3.0 s, against 4.1 s for one driver holding
# both). Not for log_softmax: Numba applies a function's fast-math flags to every float
# instruction in it, and 'reassoc' turned (x - m) - log_s into x - (m + log_s) (700x the
# error bound near 1e4); its kernels keep the reductions in separate functions.


@njit(error_model="numpy")
def softmax_block_serial(x, out):
    for i in range(x.shape[0]):
        S.softmax_one_block(x, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_block_parallel(x, out):
    for i in prange(x.shape[0]):
        S.softmax_one_block(x, out, i)


@njit(error_model="numpy")
def softmax_rows_general_serial(x, out):
    for i in range(x.shape[0]):
        S.softmax_slice_general(x, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_rows_general_parallel(x, out):
    for i in prange(x.shape[0]):
        S.softmax_slice_general(x, out, i)


@njit(error_model="numpy")
def log_softmax_rows_general_serial(x, out):
    for i in range(x.shape[0]):
        S.log_softmax_slice_general(x, out, i)


@njit(parallel=True, error_model="numpy")
def log_softmax_rows_general_parallel(x, out):
    for i in prange(x.shape[0]):
        S.log_softmax_slice_general(x, out, i)


@njit(error_model="numpy")
def logsumexp_rows_serial(x, out):
    for i in range(x.shape[0]):
        store(out, i, to_compute(out, S.logsumexp_slice(x, i)))


@njit(parallel=True, error_model="numpy")
def logsumexp_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        store(out, i, to_compute(out, S.logsumexp_slice(x, i)))


@njit(error_model="numpy")
def softmax_backward_rows_serial(g, y, out):
    for i in range(g.shape[0]):
        S.softmax_backward_slice(g, y, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_backward_rows_parallel(g, y, out):
    for i in prange(g.shape[0]):
        S.softmax_backward_slice(g, y, out, i)


@njit(error_model="numpy")
def log_softmax_backward_rows_serial(g, y, out):
    for i in range(g.shape[0]):
        S.log_softmax_backward_slice(g, y, out, i)


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_rows_parallel(g, y, out):
    for i in prange(g.shape[0]):
        S.log_softmax_backward_slice(g, y, out, i)


# ------------------------------------------------------------------------- columns


@njit(error_model="numpy")
def _tile_bounds(task, tiles, tile, inner):
    o = task // tiles
    c0 = (task % tiles) * tile
    return o, c0, min(c0 + tile, inner)


@njit(error_model="numpy")
def softmax_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.softmax_columns(x, out, o, c0, c1)


@njit(parallel=True, error_model="numpy")
def softmax_columns_parallel(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in prange(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.softmax_columns(x, out, o, c0, c1)


@njit(error_model="numpy")
def log_softmax_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.log_softmax_columns(x, out, o, c0, c1)


@njit(parallel=True, error_model="numpy")
def log_softmax_columns_parallel(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in prange(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.log_softmax_columns(x, out, o, c0, c1)


@njit(error_model="numpy")
def logsumexp_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.logsumexp_columns(x, out, o, c0, c1)


@njit(parallel=True, error_model="numpy")
def logsumexp_columns_parallel(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in prange(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.logsumexp_columns(x, out, o, c0, c1)


@njit(error_model="numpy")
def softmax_backward_columns_serial(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in range(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.softmax_backward_columns(g, y, out, o, c0, c1)


@njit(parallel=True, error_model="numpy")
def softmax_backward_columns_parallel(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in prange(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.softmax_backward_columns(g, y, out, o, c0, c1)


@njit(error_model="numpy")
def log_softmax_backward_columns_serial(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in range(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.log_softmax_backward_columns(g, y, out, o, c0, c1)


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_columns_parallel(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in prange(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.log_softmax_backward_columns(g, y, out, o, c0, c1)


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


# ------------------------------------------------------------------ short rows in blocks


@njit(error_model="numpy")
def softmax_short_serial(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def softmax_short_parallel(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(error_model="numpy")
def log_softmax_short_serial(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.log_softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def log_softmax_short_parallel(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.log_softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(error_model="numpy")
def softmax_backward_short_serial(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def softmax_backward_short_parallel(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))


@njit(error_model="numpy")
def log_softmax_backward_short_serial(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.log_softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_short_parallel(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.log_softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))


# ------------------------------------------------- rows with a temperature and a mask
# (x * scale, entries where mask; mask None for temperature alone: see _scaled). Rows only:
# the dispatcher brings the softmax axes last in memory for these calls.


@njit(error_model="numpy")
def softmax_scaled_serial(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        Sc.softmax_row(x, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def softmax_scaled_parallel(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        Sc.softmax_row(x, mask, out, i, sc)


@njit(error_model="numpy")
def log_softmax_scaled_serial(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        Sc.log_softmax_row(x, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def log_softmax_scaled_parallel(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        Sc.log_softmax_row(x, mask, out, i, sc)


# logsumexp takes no temperature: its where= drivers run _lse's masked row (the log1p form)
# and ignore scale, which the dispatcher passes as 1.


@njit(error_model="numpy")
def logsumexp_scaled_serial(x, mask, scale, out):
    for i in range(x.shape[0]):
        L.store_lse(x, None, mask, i, out, None)


@njit(parallel=True, error_model="numpy")
def logsumexp_scaled_parallel(x, mask, scale, out):
    for i in prange(x.shape[0]):
        L.store_lse(x, None, mask, i, out, None)


# ------------------------------------------- logsumexp with b= / return_sign=, its gradient
# (x, b or None, mask or None, out, sign or None) and (g, x, mask or None, out): see _lse.


@njit(error_model="numpy")
def lse_rows_serial(x, b, mask, out, sign):
    for i in range(x.shape[0]):
        L.store_lse(x, b, mask, i, out, sign)


@njit(parallel=True, error_model="numpy")
def lse_rows_parallel(x, b, mask, out, sign):
    for i in prange(x.shape[0]):
        L.store_lse(x, b, mask, i, out, sign)


@njit(error_model="numpy")
def lse_backward_rows_serial(g, x, mask, out):
    for i in range(x.shape[0]):
        L.lse_backward_row(g, x, mask, out, i)


@njit(parallel=True, error_model="numpy")
def lse_backward_rows_parallel(g, x, mask, out):
    for i in prange(x.shape[0]):
        L.lse_backward_row(g, x, mask, out, i)


@njit(error_model="numpy")
def softmax_backward_scaled_serial(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in range(g.shape[0]):
        Sc.softmax_backward_row(g, y, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def softmax_backward_scaled_parallel(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in prange(g.shape[0]):
        Sc.softmax_backward_row(g, y, mask, out, i, sc)


@njit(error_model="numpy")
def log_softmax_backward_scaled_serial(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in range(g.shape[0]):
        Sc.log_softmax_backward_row(g, y, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_scaled_parallel(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in prange(g.shape[0]):
        Sc.log_softmax_backward_row(g, y, mask, out, i, sc)


# ---------------------------------------------------------------- cross-entropy rows
# One loss per row into loss (float64); grad (rows, C) or None for the loss alone; weight
# (C,) float64 or None. See _xent.


@njit(error_model="numpy")
def xent_index_serial(x, target, weight, wsum, scale, eps, ignore_index, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        loss[i] = X.index_row(x, target, weight, wsum, i, sc, eps, ignore_index, r, grad)


@njit(parallel=True, error_model="numpy")
def xent_index_parallel(x, target, weight, wsum, scale, eps, ignore_index, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        loss[i] = X.index_row(x, target, weight, wsum, i, sc, eps, ignore_index, r, grad)


@njit(error_model="numpy")
def xent_probs_serial(x, target, weight, scale, eps, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        loss[i] = X.probs_row(x, target, weight, i, sc, eps, r, grad)


@njit(parallel=True, error_model="numpy")
def xent_probs_parallel(x, target, weight, scale, eps, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        loss[i] = X.probs_row(x, target, weight, i, sc, eps, r, grad)


# ------------------------------------------------------------------- softmax top-k rows


@njit(error_model="numpy")
def topk_rows_serial(x, k, probs, idx):
    for i in range(x.shape[0]):
        T.topk_row(x, i, k, probs, idx)


@njit(parallel=True, error_model="numpy")
def topk_rows_parallel(x, k, probs, idx):
    for i in prange(x.shape[0]):
        T.topk_row(x, i, k, probs, idx)
