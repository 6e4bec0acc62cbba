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

from numba import njit, prange

from . import _columns as C
from . import _slices as S
from ._math import store, to_compute

# ---------------------------------------------------------------------------- rows


@njit(cache=True)
def softmax_rows_serial(x, out):
    for i in range(x.shape[0]):
        S.softmax_slice(x, out, i)


@njit(parallel=True, cache=True)
def softmax_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        S.softmax_slice(x, out, i)


@njit(cache=True)
def log_softmax_rows_serial(x, out):
    for i in range(x.shape[0]):
        S.log_softmax_slice(x, out, i)


@njit(parallel=True, cache=True)
def log_softmax_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        S.log_softmax_slice(x, out, i)


@njit(cache=True)
def logsumexp_rows_serial(x, out):
    for i in range(x.shape[0]):
        store(out, i, to_compute(out, S.logsumexp_slice(x, i)))


@njit(parallel=True, cache=True)
def logsumexp_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        store(out, i, to_compute(out, S.logsumexp_slice(x, i)))


@njit(cache=True)
def softmax_backward_rows_serial(g, y, out):
    for i in range(g.shape[0]):
        S.softmax_backward_slice(g, y, out, i)


@njit(parallel=True, cache=True)
def softmax_backward_rows_parallel(g, y, out):
    for i in prange(g.shape[0]):
        S.softmax_backward_slice(g, y, out, i)


@njit(cache=True)
def log_softmax_backward_rows_serial(g, y, out):
    for i in range(g.shape[0]):
        S.log_softmax_backward_slice(g, y, out, i)


@njit(parallel=True, cache=True)
def log_softmax_backward_rows_parallel(g, y, out):
    for i in prange(g.shape[0]):
        S.log_softmax_backward_slice(g, y, out, i)


# ------------------------------------------------------------------------- columns


@njit(cache=True)
def _tile_bounds(task, tiles, tile, inner):
    o = task // tiles
    c0 = (task % tiles) * tile
    return o, c0, min(c0 + tile, inner)


@njit(cache=True)
def softmax_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.softmax_columns(x, out, o, c0, c1)


@njit(parallel=True, cache=True)
def softmax_columns_parallel(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in prange(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.softmax_columns(x, out, o, c0, c1)


@njit(cache=True)
def log_softmax_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.log_softmax_columns(x, out, o, c0, c1)


@njit(parallel=True, cache=True)
def log_softmax_columns_parallel(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in prange(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.log_softmax_columns(x, out, o, c0, c1)


@njit(cache=True)
def logsumexp_columns_serial(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in range(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.logsumexp_columns(x, out, o, c0, c1)


@njit(parallel=True, cache=True)
def logsumexp_columns_parallel(x, out, tile):
    tiles = (x.shape[2] + tile - 1) // tile
    for t in prange(x.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, x.shape[2])
        C.logsumexp_columns(x, out, o, c0, c1)


@njit(cache=True)
def softmax_backward_columns_serial(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in range(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.softmax_backward_columns(g, y, out, o, c0, c1)


@njit(parallel=True, cache=True)
def softmax_backward_columns_parallel(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in prange(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.softmax_backward_columns(g, y, out, o, c0, c1)


@njit(cache=True)
def log_softmax_backward_columns_serial(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in range(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.log_softmax_backward_columns(g, y, out, o, c0, c1)


@njit(parallel=True, cache=True)
def log_softmax_backward_columns_parallel(g, y, out, tile):
    tiles = (g.shape[2] + tile - 1) // tile
    for t in prange(g.shape[0] * tiles):
        o, c0, c1 = _tile_bounds(t, tiles, tile, g.shape[2])
        C.log_softmax_backward_columns(g, y, out, o, c0, c1)
