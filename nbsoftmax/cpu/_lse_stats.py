"""logsumexp statistics of a row range in the log1p form (SciPy's, gh-18295).

With m the max, c the number of entries equal to it and r the sum of exp(x - m) over the
others, log(sum(exp(x))) = m + log1p((c - 1) + r). Near 0 this keeps relative precision that
m + log(c + r) loses: float64 [0, -40] is 4.248354255291589e-18, not 0.0 (1 + 4e-18 rounds to
1). r must be summed without the max entries, whose 1.0 would absorb the small terms
(subtracting 1.0 afterwards cannot bring them back), so the summing loop keeps two sums:
exp(x - m) below m, and the count of entries at m (a select each, which vectorises)."""

import math

import numpy as np
from numba import njit

from ._math import compute_zero, exp_, load2, select, sum_block, to_compute
from ._sums import ONLINE_BLOCKS, REDUCE, _block_max, _neumaier_add


@njit(fastmath=REDUCE, error_model="numpy")
def _block_lse_sums(x, i, m, b0, b1):
    """(sum of exp(x - m) over entries below m, number of entries equal to m) of
    x[i, b0:b1], for a finite m that is at least every entry (no NaN in the range)."""
    r = compute_zero(x)
    c = compute_zero(x)
    zero = compute_zero(x)
    one = to_compute(x, 1.0)
    for j in range(np.uint64(b0), np.uint64(b1)):
        v = load2(x, i, j)
        below = v < m
        r += select(below, exp_(v - m), zero)
        c += select(below, zero, one)
    return r, c


@njit(error_model="numpy")
def _lse_sums_range(x, i, m, b0, b1):
    """_block_lse_sums over any range: r compensated across blocks in float64, c exact."""
    block = sum_block(x)
    if b1 - b0 <= block:
        r, c = _block_lse_sums(x, i, m, b0, b1)
        return np.float64(r), np.float64(c)
    total = 0.0
    comp = 0.0
    count = 0.0
    for c0 in range(b0, b1, block):
        r, c = _block_lse_sums(x, i, m, c0, min(c0 + block, b1))
        total, comp = _neumaier_add(total, comp, np.float64(r))
        count += np.float64(c)
    return total + comp, count


@njit(error_model="numpy")
def lse_stats(x, i, b0, b1):
    """(m, c, r) of x[i, b0:b1] (see above) in one read from memory, by super-blocks as in
    online_stats: when the max grows, the old max entries join r. m is NaN or +inf when the
    slice is NaN or +inf by convention (c, r then 0); all -inf (or empty) gives (-inf, 0, 0)."""
    step = sum_block(x) * ONLINE_BLOCKS
    m = np.float64(-np.inf)
    c = 0.0
    r = 0.0
    for c0 in range(b0, b1, step):
        c1 = min(c0 + step, b1)
        bm = _block_max(x, i, c0, c1)
        if bm == -np.inf:
            continue
        if not math.isfinite(bm):
            return np.float64(bm), 0.0, 0.0
        br, bc = _lse_sums_range(x, i, bm, c0, c1)
        m, c, r = combine_lse(m, c, r, np.float64(bm), bc, br)
    return m, c, r


@njit(error_model="numpy")
def combine_lse(m1, c1, r1, m2, c2, r2):
    """Merge two (m, c, r) triples of lse_stats."""
    if not math.isfinite(m1) and m1 != -np.inf:
        return m1, c1, r1
    if not math.isfinite(m2) and m2 != -np.inf:
        return m2, c2, r2
    if m2 == -np.inf:
        return m1, c1, r1
    if m1 == -np.inf:
        return m2, c2, r2
    if m1 == m2:
        return m1, c1 + c2, r1 + r2
    if m2 > m1:
        return m2, c2, r2 + (c1 + r1) * math.exp(m1 - m2)
    return m1, c1, r1 + (c2 + r2) * math.exp(m2 - m1)


@njit(error_model="numpy")
def lse_value(m, c, r):
    """m + log1p((c - 1) + r), or m itself when it is not finite: NaN stays NaN, all -inf
    (or empty) gives -inf, any +inf without NaN gives +inf."""
    if not math.isfinite(m):
        return m
    return m + math.log1p((c - 1.0) + r)


@njit(error_model="numpy")
def logsumexp_slice(x, i):
    """log(sum(exp(x[i]))) in float64 (the caller rounds it to the result type)."""
    m, c, r = lse_stats(x, i, 0, x.shape[1])
    return lse_value(m, c, r)
