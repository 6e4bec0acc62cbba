"""Per-row logsumexp with weights ``b``, a sign, a ``where`` mask, and its gradient.

The general twin of ``_slices.logsumexp_slice`` for calls with ``b=``, ``return_sign=`` or
``where=``, and the kernel of ``logsumexp_backward``. Rows are C-contiguous ``(rows, n)``
storage views (the dispatcher brings the reduced axes last in memory); ``b`` is a
``(rows, n)`` array of the storage dtype or None, ``mask`` a bool ``(rows, n)`` array or None.
Numba prunes the ``is not None`` branches at compile time, so each variant carries only its
own loads.

Semantics (SciPy's ``logsumexp(a, b=b, return_sign=True)``, with ``where=`` as JAX's): an
entry takes part when it is unmasked and its weight is not 0 (a weight of 0 drops even a NaN
or inf entry). With ``m`` the max of the entries taking part, ``W`` the sum of the weights of
the entries equal to ``m`` and ``R`` the sum of ``b * exp(x - m)`` over the others,
``sum(b * exp(x)) = exp(m) * W * (1 + R / W)``: the result is ``m + log|W| + log1p(R / W)``
with the sign of ``W``, or, when ``R / W < -1``, ``m + log|W| + log1p(-2 - R / W)`` with the
opposite sign (``-2 - q`` is exact there). This is the log1p form of ``_slices`` (relative
precision near 0) extended to weights of any sign. Unweighted, ``W`` is the count ``c`` of max
entries and the value is ``m + log1p((c - 1) + R)``, exactly as the plain kernels give it.
A sum of exactly 0 gives ``(-inf, 0)``; NaN gives ``(NaN, NaN)``; an all ``-inf`` (or empty,
or fully masked) row gives ``(-inf, 0)``; ``+inf`` entries give ``(+inf, sign of their
weights' sum)``, or NaN when those weights cancel. Non-finite weights propagate as in
``b * exp(x)`` (``inf * exp(-inf)`` is NaN).

Sums: compute-type partial sums per ``sum_block`` elements totalled in float64 with Neumaier
compensation, as ``_slices``.
"""

import math

import numpy as np
from numba import njit

from ._math import (
    compute_neg_inf,
    compute_zero,
    exp_,
    fmaximum,
    load,
    load2,
    select,
    store,
    store2,
    sum_block,
    to_compute,
)
from ._slices import REDUCE, _neumaier_add


@njit(error_model="numpy")
def _opaque_neg_inf(x, n):
    # -inf that LLVM cannot fold into the max reduction as a constant (see _scaled._max: the
    # constant made the masked max a conditional reduction that did not vectorise).
    return compute_neg_inf(x) * to_compute(x, np.float64(n >= 0))


@njit(fastmath=REDUCE, error_model="numpy")
def _row_max(x, b, mask, i):
    """max of x[i] over the entries taking part (NaN-propagating); -inf when none do."""
    m = compute_neg_inf(x)
    neg_inf = _opaque_neg_inf(x, x.shape[1])
    zero = compute_zero(x)
    for j in range(x.shape[1]):
        v = load2(x, i, j)
        if b is not None:
            v = select(load2(b, i, j) != zero, v, neg_inf)
        if mask is not None:
            v = select(mask[i, j], v, neg_inf)
        m = fmaximum(m, v)
    return m


@njit(fastmath=REDUCE, error_model="numpy")
def _block_sums(x, b, mask, i, m, b0, b1):
    """(R, W) partial sums of x[i, b0:b1] against the row max m (see the module notes)."""
    r = compute_zero(x)
    w = compute_zero(x)
    zero = compute_zero(x)
    one = to_compute(x, 1.0)
    for j in range(np.uint64(b0), np.uint64(b1)):
        v = load2(x, i, j)
        below = v < m
        e = exp_(v - m)
        weight = one
        keep = True
        if b is not None:
            weight = load2(b, i, j)
            e = e * weight
            keep = weight != zero
        if mask is not None:
            keep = keep & mask[i, j]
        # (& and ^ rather than `and`/`not`: no short-circuit branches in the loop)
        r += select(keep & below, e, zero)
        w += select(keep & (below ^ True), weight, zero)
    return r, w


@njit(error_model="numpy")
def row_sums(x, b, mask, i, m):
    """(R, W) of row i in float64, compensated across blocks."""
    n = x.shape[1]
    block = sum_block(x)
    r_total = 0.0
    r_comp = 0.0
    w_total = 0.0
    w_comp = 0.0
    for b0 in range(0, n, block):
        r, w = _block_sums(x, b, mask, i, m, b0, min(b0 + block, n))
        r_total, r_comp = _neumaier_add(r_total, r_comp, np.float64(r))
        w_total, w_comp = _neumaier_add(w_total, w_comp, np.float64(w))
    # (an infinite weight makes the compensation inf - inf: NaN; the plain total is right)
    r = r_total + r_comp if math.isfinite(r_total) else r_total
    w = w_total + w_comp if math.isfinite(w_total) else w_total
    return r, w


@njit(error_model="numpy")
def _sign(v):
    if v > 0.0:
        return 1.0
    if v < 0.0:
        return -1.0
    return v  # 0.0 or NaN


@njit(error_model="numpy")
def lse_row(x, b, mask, i):
    """(log|sum(b * exp(x[i]))|, sign of the sum) over the entries taking part, in float64."""
    m = _row_max(x, b, mask, i)
    m64 = np.float64(m)
    if m64 != m64:
        return np.nan, np.nan
    r, w = row_sums(x, b, mask, i, m)
    if m64 == -np.inf:  # no entry, or only -inf ones: sum(b * 0) is 0 (NaN for b inf or NaN)
        total = w * 0.0 + r
        if total != total:
            return np.nan, np.nan
        return -np.inf, 0.0
    if m64 == np.inf:  # sum(b * inf) over the +inf entries; b * exp(-inf) over the rest
        if r != r or w == 0.0 or w != w:
            return np.nan, np.nan
        return np.inf, _sign(w)
    if b is None:  # w is the count of max entries, r >= 0
        return m64 + math.log1p((w - 1.0) + r), 1.0
    if w == 0.0:  # the max entries' weights cancel: the rest is the whole sum
        if r != r:
            return np.nan, np.nan
        return (m64 + math.log(abs(r)), _sign(r)) if r != 0.0 else (-np.inf, 0.0)
    if math.isinf(w):  # an infinite weight at the max: +-inf unless the rest cancels it
        if math.isinf(r) and _sign(r) != _sign(w):
            return np.nan, np.nan
        return np.inf, _sign(w)
    q = r / w
    log_w = math.log(abs(w))
    if q > -1.0:
        return m64 + (log_w + math.log1p(q)), _sign(w)
    if q < -1.0:
        return m64 + (log_w + math.log1p(-2.0 - q)), -_sign(w)
    if q == -1.0:
        return -np.inf, 0.0
    return np.nan, np.nan


@njit(error_model="numpy")
def store_lse(x, b, mask, i, out, sign):
    """out[i] = the value of lse_row; sign[i] = its sign when sign is given, else a
    negative sum gives NaN (SciPy's return_sign=False)."""
    value, s = lse_row(x, b, mask, i)
    if sign is not None:
        store(sign, i, to_compute(sign, s))
    elif s < 0.0:
        value = np.nan
    store(out, i, to_compute(out, value))


@njit(error_model="numpy")
def lse_backward_row(g, x, mask, out, i):
    """out[i] = g[i] * exp(x[i] - logsumexp(x[i])) over the unmasked entries, 0 at masked
    ones. Computed as g * exp(x - m) / sum (softmax's accuracy, shift-invariant); on rows
    whose max m is not finite as g * exp(x - m), torch autograd's values: 0 below a +inf max
    and NaN at it, NaN throughout an all -inf or NaN row."""
    m = _row_max(x, None, mask, i)
    inv = to_compute(out, 1.0)
    if math.isfinite(m):
        r, c = row_sums(x, None, mask, i, m)
        inv = to_compute(out, 1.0 / (c + r))
    gi = load(g, i)
    zero = compute_zero(out)
    for j in range(x.shape[1]):
        v = gi * (exp_(load2(x, i, j) - m) * inv)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        store2(out, i, j, v)
