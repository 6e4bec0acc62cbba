"""Column drivers: a softmax axis that is not the unit-stride one, ``(outer, n, inner)``
arrays cut into ``outer * ceil(inner / tile)`` tasks of up to ``tile`` adjacent columns (so
that even one outer slice keeps every core busy), and, for too few tasks, pieces of the
softmax axis too (``_row_pieces``). Serial and ``prange`` twins written out (see
``_drivers``)."""

import numpy as np
from numba import njit, prange

from . import _columns as C
from ._drivers_split import _piece
from ._math import compute_empty, to_compute

# ------------------------------------------------------------------------- columns


@njit(error_model="numpy")
def _tile_bounds(task, tiles, tile, inner):
    o = task // tiles
    c0 = (task % tiles) * tile
    return o, c0, min(c0 + tile, inner)


# Fewer column tasks than this: the parallel softmax/log_softmax column drivers also cut the
# softmax axis into pieces of about PIECE_ELEMENTS (their column stats merged per column):
# (4096, 1000) over axis 0 is one task of whole rows, and column tiles of 250 instead ran
# 1.8x slower than whole rows of 1000 here (serial CPU time: a scalar remainder every row).
# By size, not by thread count, so that results do not depend on the number of threads (and
# the number of threads, a ctypes call, would keep the driver out of the on-disk cache).
MIN_TASKS = 16
PIECE_ELEMENTS = 1 << 16
# The pieces' column statistics (max, sum, factor: 16-24 bytes per piece and column) are
# scratch beside the result: at most PIECE_STATS entries (<= 48 KiB), so no call allocates
# anything array-sized besides its result (tests/test_memory.py). Uncapped, (2048, 4096) over
# axis 0 took 8 MiB of scratch.
PIECE_STATS = 2048


@njit(error_model="numpy")
def _row_pieces(tasks, n, tile):
    if tasks >= MIN_TASKS:
        return 1
    return max(1, min(n // 16, (n * tile) // PIECE_ELEMENTS, PIECE_STATS // (tasks * tile)))


@njit(error_model="numpy")
def softmax_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.softmax_columns(x, out, o, c0, c1)


@njit(parallel=True, error_model="numpy")
def softmax_columns_parallel(x, out, tile):
    outer, n, inner = x.shape
    tiles = (inner + tile - 1) // tile
    tasks = outer * tiles
    pieces = _row_pieces(tasks, n, min(tile, inner))
    if pieces == 1:
        for t in prange(tasks):
            o, c0, c1 = _tile_bounds(t, tiles, tile, inner)
            C.softmax_columns(x, out, o, c0, c1)
        return
    # Row pieces: per-piece column stats (exp terms stored), merged into per-piece factors,
    # then each piece scaled: the passes of softmax_columns with the work shared by rows.
    m = compute_empty(x, tasks * pieces * tile).reshape((tasks * pieces, tile))
    s = np.empty((tasks * pieces, tile))
    for t in prange(tasks * pieces):
        o, c0, c1 = _tile_bounds(t // pieces, tiles, tile, inner)
        i, k0, k1 = _piece(t, pieces, (n + pieces - 1) // pieces, n)
        C.softmax_columns_stats(x, out, o, c0, c1 - c0, k0, k1, m[t], s[t])
    f = compute_empty(out, tasks * pieces * tile).reshape((tasks * pieces, tile))
    for task in prange(tasks):
        o, c0, c1 = _tile_bounds(task, tiles, tile, inner)
        C.merge_pieces(m, s, task * pieces, pieces, c1 - c0, False)
        for t in range(task * pieces, task * pieces + pieces):
            for j in range(c1 - c0):
                f[t, j] = to_compute(out, s[t, j])
    for t in prange(tasks * pieces):
        o, c0, c1 = _tile_bounds(t // pieces, tiles, tile, inner)
        i, k0, k1 = _piece(t, pieces, (n + pieces - 1) // pieces, n)
        C.softmax_columns_scale(x, out, o, c0, c1 - c0, k0, k1, m[t], f[t])


@njit(error_model="numpy")
def log_softmax_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.log_softmax_columns(x, out, o, c0, c1)


@njit(parallel=True, error_model="numpy")
def log_softmax_columns_parallel(x, out, tile):
    outer, n, inner = x.shape
    tiles = (inner + tile - 1) // tile
    tasks = outer * tiles
    pieces = _row_pieces(tasks, n, min(tile, inner))
    if pieces == 1:
        for t in prange(tasks):
            o, c0, c1 = _tile_bounds(t, tiles, tile, inner)
            C.log_softmax_columns(x, out, o, c0, c1)
        return
    m = compute_empty(x, tasks * pieces * tile).reshape((tasks * pieces, tile))
    s = np.empty((tasks * pieces, tile))
    for t in prange(tasks * pieces):
        o, c0, c1 = _tile_bounds(t // pieces, tiles, tile, inner)
        i, k0, k1 = _piece(t, pieces, (n + pieces - 1) // pieces, n)
        C.log_softmax_columns_stats(x, o, c0, c1 - c0, k0, k1, m[t], s[t])
    log_s = compute_empty(out, tasks * tile).reshape((tasks, tile))
    for task in prange(tasks):
        o, c0, c1 = _tile_bounds(task, tiles, tile, inner)
        C.merge_pieces(m, s, task * pieces, pieces, c1 - c0, True)
        for j in range(c1 - c0):
            log_s[task, j] = to_compute(out, s[task * pieces, j])
    for t in prange(tasks * pieces):
        o, c0, c1 = _tile_bounds(t // pieces, tiles, tile, inner)
        i, k0, k1 = _piece(t, pieces, (n + pieces - 1) // pieces, n)
        C.log_softmax_columns_write(x, out, o, c0, c1 - c0, k0, k1, m[(t // pieces) * pieces],
                                    log_s[t // pieces])


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
