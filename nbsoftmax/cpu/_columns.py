"""Serial kernels for a softmax axis that is not the unit-stride one.

The array is seen as ``(outer, n, inner)`` C-contiguous (``n`` the softmax axis, ``inner`` the
product of the axes after it); a kernel call handles the columns ``c0:c1`` of outer slice
``o``, addressed by index (no views: see ``_slices``), streaming
whole contiguous rows and vectorising along them, with per-column statistics in small
work arrays. No transposed copy of the input is made. Measured on the project's machine:
streaming rows this way ran (32, 1000, 1024) over axis=1 at 0.72 of the last-axis rate;
narrow column tiles and software prefetch were slower (``shared/CPU-NOTES.md``).

Column sums are accumulated in float64 with Neumaier compensation, element-wise across the
columns (so it vectorises): plain float64 sums over 20000 float64 rows erred 8e-14, twenty
times the float64 softmax bound.
"""

import math

import numpy as np
from numba import njit

from ._math import (
    compute_empty,
    compute_neg_inf,
    compute_zero,
    computes_in_float64,
    exp_,
    fmaximum,
    keeps_exact_exp,
    load3,
    select,
    store2,
    store3,
    to_compute,
)
from ._slices import REDUCE, lse_value


@njit(error_model="numpy")
def _accumulate(total, comp, j, v, data):
    """total[j] += v with the rounding error kept in comp[j] (Neumaier) for float64 data;
    float32 terms summed in float64 need no compensation (and it cost ~30% here)."""
    if not computes_in_float64(data):
        total[j] += v
        return
    t = total[j] + v
    if abs(total[j]) >= abs(v):
        comp[j] += (total[j] - t) + v
    else:
        comp[j] += (v - t) + total[j]
    total[j] = t


@njit(error_model="numpy")
def _finish(total, comp):
    for j in range(total.size):
        total[j] += comp[j]


@njit(fastmath=REDUCE, error_model="numpy")
def _columns_max(x, o, c0, m):
    m[:] = compute_neg_inf(x)
    c0 = np.uint64(c0)
    for k in range(x.shape[1]):
        for j in range(np.uint64(m.size)):
            m[j] = fmaximum(m[j], load3(x, o, k, c0 + j))


@njit(error_model="numpy")
def _fix_bad_columns(m, out, o, c0):
    """Columns whose max is not finite are NaN throughout (see _slices.softmax_slice)."""
    nan = to_compute(out, np.nan)
    c0 = np.uint64(c0)
    for j in range(np.uint64(m.size)):
        if not math.isfinite(m[j]):
            for k in range(out.shape[1]):
                store3(out, o, k, c0 + j, nan)


@njit(error_model="numpy")
def softmax_columns(x, out, o, c0, c1):
    w = np.uint64(c1 - c0)
    c0 = np.uint64(c0)  # unsigned column indices: see _slices on wraparound and vectorisation
    m = compute_empty(x, w)
    _columns_max(x, o, c0, m)
    s = np.zeros(w, np.float64)
    comp = np.zeros(w, np.float64)
    for k in range(x.shape[1]):
        for j in range(w):
            e = exp_(load3(x, o, k, c0 + j) - m[j])
            if keeps_exact_exp(out):
                store3(out, o, k, c0 + j, e)
            _accumulate(s, comp, j, np.float64(e), x)
    _finish(s, comp)
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


@njit(error_model="numpy")
def log_softmax_columns(x, out, o, c0, c1):
    w = np.uint64(c1 - c0)
    c0 = np.uint64(c0)  # unsigned column indices: see _slices on wraparound and vectorisation
    m = compute_empty(x, w)
    _columns_max(x, o, c0, m)
    s = np.zeros(w, np.float64)
    comp = np.zeros(w, np.float64)
    for k in range(x.shape[1]):
        for j in range(w):
            _accumulate(s, comp, j, np.float64(exp_(load3(x, o, k, c0 + j) - m[j])), x)
    _finish(s, comp)
    log_s = compute_empty(x, w)
    for j in range(w):
        log_s[j] = to_compute(out, math.log(s[j]))
    for k in range(x.shape[1]):
        for j in range(w):
            store3(out, o, k, c0 + j, (load3(x, o, k, c0 + j) - m[j]) - log_s[j])
    _fix_bad_columns(m, out, o, c0)


@njit(error_model="numpy")
def logsumexp_columns(x, out, o, c0, c1):
    """out[o, c0:c1] = logsumexp over axis 1 of x[o, :, c0:c1] (out is 2-D)."""
    w = np.uint64(c1 - c0)
    c0 = np.uint64(c0)  # unsigned column indices: see _slices on wraparound and vectorisation
    m = compute_empty(x, w)
    _columns_max(x, o, c0, m)
    # The log1p form of _slices.lse_stats: r sums exp(x - m) below the column max, c counts
    # the entries at it (a select each: the loop still vectorises).
    r = np.zeros(w, np.float64)
    comp = np.zeros(w, np.float64)
    c = np.zeros(w, np.float64)
    zero = compute_zero(x)
    one = to_compute(x, 1.0)
    for k in range(x.shape[1]):
        for j in range(w):
            v = load3(x, o, k, c0 + j)
            below = v < m[j]
            _accumulate(r, comp, j, np.float64(select(below, exp_(v - m[j]), zero)), x)
            c[j] += np.float64(select(below, zero, one))
    _finish(r, comp)
    for j in range(w):
        store2(out, o, c0 + j, to_compute(out, lse_value(np.float64(m[j]), c[j], r[j])))


@njit(error_model="numpy")
def softmax_backward_columns(g, y, out, o, c0, c1):
    w = np.uint64(c1 - c0)
    c0 = np.uint64(c0)  # unsigned column indices: see _slices on wraparound and vectorisation
    d = np.zeros(w, np.float64)
    comp = np.zeros(w, np.float64)
    for k in range(g.shape[1]):
        for j in range(w):
            _accumulate(d, comp, j, np.float64(load3(g, o, k, c0 + j) * load3(y, o, k, c0 + j)), g)
    _finish(d, comp)
    dc = compute_empty(g, w)
    for j in range(w):
        dc[j] = to_compute(out, d[j])
    for k in range(g.shape[1]):
        for j in range(w):
            c = c0 + j
            store3(out, o, k, c, load3(y, o, k, c) * (load3(g, o, k, c) - dc[j]))


@njit(error_model="numpy")
def log_softmax_backward_columns(g, y, out, o, c0, c1):
    w = np.uint64(c1 - c0)
    c0 = np.uint64(c0)  # unsigned column indices: see _slices on wraparound and vectorisation
    s = np.zeros(w, np.float64)
    comp = np.zeros(w, np.float64)
    for k in range(g.shape[1]):
        for j in range(w):
            _accumulate(s, comp, j, np.float64(load3(g, o, k, c0 + j)), g)
    _finish(s, comp)
    sc = compute_empty(g, w)
    for j in range(w):
        sc[j] = to_compute(out, s[j])
    for k in range(g.shape[1]):
        for j in range(w):
            c = c0 + j
            store3(out, o, k, c, load3(g, o, k, c) - exp_(load3(y, o, k, c)) * sc[j])
