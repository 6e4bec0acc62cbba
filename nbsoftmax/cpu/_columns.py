"""Serial kernels for a softmax axis that is not the unit-stride one.

The array is seen as ``(outer, n, inner)`` C-contiguous (``n`` the softmax axis, ``inner`` the
product of the axes after it); a kernel call handles the columns ``c0:c1`` of outer slice
``o``, addressed by index (no views: see ``_slices``), streaming
whole contiguous rows and vectorising along them, with per-column statistics in small
work arrays. No transposed copy of the input is made. Measured on the project's machine:
streaming rows this way ran (32, 1000, 1024) over axis=1 at 0.72 of the last-axis rate;
narrow column tiles and software prefetch were slower (``shared/CPU-NOTES.md``).

Column sums are accumulated in float64 directly: each column sees one addition per row,
so the conversion is not the bottleneck here.
"""

import math

import numpy as np
from numba import njit

from ._math import (
    compute_empty,
    compute_neg_inf,
    exp_,
    fmaximum,
    keeps_exact_exp,
    load3,
    store2,
    store3,
    to_compute,
)
from ._slices import REDUCE


@njit(fastmath=REDUCE, cache=True)
def _columns_max(x, o, c0, m):
    m[:] = compute_neg_inf(x)
    for k in range(x.shape[1]):
        for j in range(m.size):
            m[j] = fmaximum(m[j], load3(x, o, k, c0 + j))


@njit(cache=True)
def _fix_bad_columns(m, out, o, c0):
    """Columns whose max is not finite are NaN throughout (see _slices.softmax_slice)."""
    nan = to_compute(out, np.nan)
    for j in range(m.size):
        if not math.isfinite(m[j]):
            for k in range(out.shape[1]):
                store3(out, o, k, c0 + j, nan)


@njit(cache=True)
def softmax_columns(x, out, o, c0, c1):
    w = c1 - c0
    m = compute_empty(x, w)
    _columns_max(x, o, c0, m)
    s = np.zeros(w, np.float64)
    for k in range(x.shape[1]):
        for j in range(w):
            e = exp_(load3(x, o, k, c0 + j) - m[j])
            if keeps_exact_exp(out):
                store3(out, o, k, c0 + j, e)
            s[j] += np.float64(e)
    inv = compute_empty(x, w)
    for j in range(w):
        inv[j] = to_compute(out, 1.0 / s[j])
    for k in range(x.shape[1]):
        if keeps_exact_exp(out):
            for j in range(w):
                store3(out, o, k, c0 + j, load3(out, o, k, c0 + j) * inv[j])
        else:
            for j in range(w):
                store3(out, o, k, c0 + j, exp_(load3(x, o, k, c0 + j) - m[j]) * inv[j])
    _fix_bad_columns(m, out, o, c0)


@njit(cache=True)
def log_softmax_columns(x, out, o, c0, c1):
    w = c1 - c0
    m = compute_empty(x, w)
    _columns_max(x, o, c0, m)
    s = np.zeros(w, np.float64)
    for k in range(x.shape[1]):
        for j in range(w):
            s[j] += np.float64(exp_(load3(x, o, k, c0 + j) - m[j]))
    log_s = compute_empty(x, w)
    for j in range(w):
        log_s[j] = to_compute(out, math.log(s[j]))
    for k in range(x.shape[1]):
        for j in range(w):
            store3(out, o, k, c0 + j, (load3(x, o, k, c0 + j) - m[j]) - log_s[j])
    _fix_bad_columns(m, out, o, c0)


@njit(cache=True)
def logsumexp_columns(x, out, o, c0, c1):
    """out[o, c0:c1] = logsumexp over axis 1 of x[o, :, c0:c1] (out is 2-D)."""
    w = c1 - c0
    m = compute_empty(x, w)
    _columns_max(x, o, c0, m)
    s = np.zeros(w, np.float64)
    for k in range(x.shape[1]):
        for j in range(w):
            s[j] += np.float64(exp_(load3(x, o, k, c0 + j) - m[j]))
    for j in range(w):
        mj = np.float64(m[j])
        value = mj + math.log(s[j]) if math.isfinite(mj) else mj
        store2(out, o, c0 + j, to_compute(out, value))


@njit(cache=True)
def softmax_backward_columns(g, y, out, o, c0, c1):
    w = c1 - c0
    d = np.zeros(w, np.float64)
    for k in range(g.shape[1]):
        for j in range(w):
            d[j] += np.float64(load3(g, o, k, c0 + j) * load3(y, o, k, c0 + j))
    dc = compute_empty(g, w)
    for j in range(w):
        dc[j] = to_compute(out, d[j])
    for k in range(g.shape[1]):
        for j in range(w):
            c = c0 + j
            store3(out, o, k, c, load3(y, o, k, c) * (load3(g, o, k, c) - dc[j]))


@njit(cache=True)
def log_softmax_backward_columns(g, y, out, o, c0, c1):
    w = c1 - c0
    s = np.zeros(w, np.float64)
    for k in range(g.shape[1]):
        for j in range(w):
            s[j] += np.float64(load3(g, o, k, c0 + j))
    sc = compute_empty(g, w)
    for j in range(w):
        sc[j] = to_compute(out, s[j])
    for k in range(g.shape[1]):
        for j in range(w):
            c = c0 + j
            store3(out, o, k, c, load3(g, o, k, c) - exp_(load3(y, o, k, c)) * sc[j])
