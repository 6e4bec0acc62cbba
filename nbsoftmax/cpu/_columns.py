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
from ._slices import _neumaier_add, lse_value


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
def _finish(total, comp, w):
    for j in range(w):
        total[j] += comp[j]


@njit(error_model="numpy")
def _columns_max(x, o, c0, m, k0, k1, w):
    for j in range(w):
        m[j] = compute_neg_inf(x)
    for k in range(k0, k1):
        for j in range(w):
            m[j] = fmaximum(m[j], load3(x, o, k, c0 + j))


@njit(error_model="numpy")
def _shift(m, w):
    """The shift each column's exp uses: its max, or 0 where the max is -inf (every entry
    -inf: exp(-inf - 0) is an exact 0, where exp(-inf - -inf) would be NaN)."""
    sh = np.empty_like(m)
    zero = compute_zero(m)
    for j in range(w):
        sh[j] = select(m[j] == -np.inf, zero, m[j])
    return sh


@njit(error_model="numpy")
def softmax_columns_stats(x, out, o, c0, w, k0, k1, m, s):
    """Per column j of x[o, k0:k1, c0:c0 + w]: m[j] its max and s[j] (float64) the sum of
    exp(x - shift) (see _shift), whose terms are also stored in out where it can hold them."""
    w = np.uint64(w)
    c0 = np.uint64(c0)  # unsigned column indices: see _slices on wraparound and vectorisation
    _columns_max(x, o, c0, m, k0, k1, w)
    sh = _shift(m, w)
    comp = np.zeros(w, np.float64)
    for j in range(w):
        s[j] = 0.0
    for k in range(k0, k1):
        for j in range(w):
            e = exp_(load3(x, o, k, c0 + j) - sh[j])
            if keeps_exact_exp(out):
                store3(out, o, k, c0 + j, e)
            _accumulate(s, comp, j, np.float64(e), x)
    _finish(s, comp, w)


@njit(error_model="numpy")
def softmax_columns_scale(x, out, o, c0, w, k0, k1, m, f):
    """out[o, k0:k1, c0:c0 + w] *= f[j] per column (float16: exp recomputed from x and the
    shift of m, one rounding). f NaN marks a NaN column: every product is NaN then."""
    w = np.uint64(w)
    c0 = np.uint64(c0)
    if keeps_exact_exp(out):
        for k in range(k0, k1):
            for j in range(w):
                store3(out, o, k, c0 + j, load3(out, o, k, c0 + j) * f[j])
    else:
        sh = _shift(m, w)
        for k in range(k0, k1):
            for j in range(w):
                store3(out, o, k, c0 + j, exp_(load3(x, o, k, c0 + j) - sh[j]) * f[j])


@njit(error_model="numpy")
def softmax_columns(x, out, o, c0, c1):
    w = c1 - c0
    m = compute_empty(x, w)
    s = np.empty(w, np.float64)
    softmax_columns_stats(x, out, o, c0, w, 0, x.shape[1], m, s)
    f = compute_empty(out, w)
    nan = to_compute(out, np.nan)
    for j in range(w):
        f[j] = to_compute(out, 1.0 / s[j]) if math.isfinite(m[j]) else nan
    softmax_columns_scale(x, out, o, c0, w, 0, x.shape[1], m, f)


@njit(error_model="numpy")
def log_softmax_columns_stats(x, o, c0, w, k0, k1, m, s):
    """As softmax_columns_stats, without storing the terms."""
    w = np.uint64(w)
    c0 = np.uint64(c0)
    _columns_max(x, o, c0, m, k0, k1, w)
    sh = _shift(m, w)
    comp = np.zeros(w, np.float64)
    for j in range(w):
        s[j] = 0.0
    for k in range(k0, k1):
        for j in range(w):
            _accumulate(s, comp, j, np.float64(exp_(load3(x, o, k, c0 + j) - sh[j])), x)
    _finish(s, comp, w)


@njit(error_model="numpy")
def log_softmax_columns_write(x, out, o, c0, w, k0, k1, m, log_s):
    """out = (x - m) - log_s per column; log_s NaN marks a NaN column."""
    w = np.uint64(w)
    c0 = np.uint64(c0)
    for k in range(k0, k1):
        for j in range(w):
            store3(out, o, k, c0 + j, (load3(x, o, k, c0 + j) - m[j]) - log_s[j])


@njit(error_model="numpy")
def log_softmax_columns(x, out, o, c0, c1):
    w = c1 - c0
    m = compute_empty(x, w)
    s = np.empty(w, np.float64)
    log_softmax_columns_stats(x, o, c0, w, 0, x.shape[1], m, s)
    log_s = compute_empty(x, w)
    nan = to_compute(out, np.nan)
    for j in range(w):
        log_s[j] = to_compute(out, math.log(s[j])) if math.isfinite(m[j]) else nan
    log_softmax_columns_write(x, out, o, c0, w, 0, x.shape[1], m, log_s)


@njit(error_model="numpy")
def merge_pieces(m, s, t0, pieces, w, log):
    """Merge the per-piece column statistics m[t0:t0 + pieces], s[...] (from *_stats over
    consecutive row pieces of one column tile) in place: each piece's s[t0 + p, j] becomes
    the factor of its terms, exp(shift_p - M) / S (softmax), or row t0 of m, s the overall
    max and log(S) (log). M is the column max, S the float64 sum; NaN factor or log(S) where
    M is not finite (a NaN column by convention)."""
    for j in range(w):
        big = np.float64(-np.inf)
        for p in range(pieces):
            big = fmaximum(big, np.float64(m[t0 + p, j]))
        total = 0.0
        comp = 0.0
        if math.isfinite(big):
            for p in range(pieces):
                mp = np.float64(m[t0 + p, j])
                if mp != -np.inf:  # an all -inf piece adds nothing (its terms are exact 0s)
                    total, comp = _neumaier_add(total, comp, s[t0 + p, j] * math.exp(mp - big))
        total += comp
        if log:
            m[t0, j] = big
            s[t0, j] = math.log(total) if math.isfinite(big) else np.nan
            continue
        for p in range(pieces):
            mp = np.float64(m[t0 + p, j])
            if not math.isfinite(big):
                s[t0 + p, j] = np.nan
            elif mp == -np.inf:
                s[t0 + p, j] = 0.0
            else:
                s[t0 + p, j] = math.exp(mp - big) / total


@njit(error_model="numpy")
def logsumexp_columns(x, out, o, c0, c1):
    """out[o, c0:c1] = logsumexp over axis 1 of x[o, :, c0:c1] (out is 2-D)."""
    w = np.uint64(c1 - c0)
    c0 = np.uint64(c0)  # unsigned column indices: see _slices on wraparound and vectorisation
    m = compute_empty(x, w)
    _columns_max(x, o, c0, m, 0, x.shape[1], w)
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
    _finish(r, comp, w)
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
    _finish(d, comp, w)
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
    _finish(s, comp, w)
    sc = compute_empty(g, w)
    for j in range(w):
        sc[j] = to_compute(out, s[j])
    for k in range(g.shape[1]):
        for j in range(w):
            c = c0 + j
            store3(out, o, k, c, load3(g, o, k, c) - exp_(load3(y, o, k, c)) * sc[j])
