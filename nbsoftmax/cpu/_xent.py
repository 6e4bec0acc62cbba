"""Per-row cross-entropy kernels: the loss of one row of logits, and optionally its gradient.

Row ``i`` of ``x`` (``(rows, C)`` storage, read as ``x * scale``, ``scale = 1/T``) against
class index ``target[i]`` (``index_row``) or class probabilities ``target[i, :]``
(``probs_row``), with label smoothing ``eps`` and class weights ``weight`` (float64 ``(C,)``
or None: Numba prunes the ``weight is not None`` branches at compile time, as for the mask of
``_scaled``). With ``lse`` the row's log-sum-exp and ``logp = x * scale - lse``:

- index: ``loss = -(1 - eps) * w[t] * logp[t] - eps / C * sum_c w[c] * logp[c]``; the smoothing
  sum is ``sum_c w[c] x[c] * scale - W * lse`` (``W = sum w``), gathered in the exp-sum pass.
- probabilities: ``q = (1 - eps) * target + eps / C``, ``loss = -sum_c w[c] q[c] logp[c]``.

Gradient (``grad`` a ``(rows, C)`` array, or None for the loss alone): ``d loss / d x[k] =
r * scale * (p[k] * A - B[k])`` with ``p = softmax``, ``A = sum_c coefficients``, ``B`` the
per-class coefficients above, and ``r`` the reduction factor (1, or 1/denominator for
``mean``) that the dispatcher computes from the targets first. A row whose index equals
``ignore_index`` has loss 0 and gradient 0.

Passes per row: max; exp-sum (and the smoothing or target sums); gradient write. Each row is
read from memory once for rows that stay in L2 (256,000 float32 = 1 MB): the passes after the
first hit the cache. Nothing full-size is allocated: the loss per row goes to ``loss``.
"""

import math

import numpy as np
from numba import njit

from . import _scaled as Sc
from ._math import compute_zero, exp_, load2, store2, sum_block, to_compute
from ._slices import REDUCE


@njit(fastmath=REDUCE, error_model="numpy")
def _block_weighted_sum(x, weight, i, b0, b1):
    s = compute_zero(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        v = load2(x, i, j)
        if weight is not None:
            v = v * to_compute(x, weight[j])
        s += v
    return s


@njit(error_model="numpy")
def _weighted_sum(x, weight, i):
    """sum_c w[c] * x[i, c] (w = 1 without weights), in float64."""
    n = x.shape[1]
    block = sum_block(x)
    total = 0.0
    for b0 in range(0, n, block):
        total += np.float64(_block_weighted_sum(x, weight, i, b0, min(b0 + block, n)))
    return total


@njit(error_model="numpy")
def _lse(x, i, scale):
    """(float64 log-sum-exp of x[i] * scale, the max in the compute type)."""
    m = Sc._max(x, None, i, scale)
    if not math.isfinite(m):
        return np.float64(m), m
    return np.float64(m) + math.log(Sc._exp_sum(x, None, i, scale, m)), m


@njit(error_model="numpy")
def _write_grad(x, grad, weight, i, scale, factor, lse, a, b):
    """grad[i, k] = factor * (exp(x[i, k] * scale - lse) * a - b * w[k])."""
    lse_c = to_compute(x, lse)
    a_c = to_compute(grad, a * factor)
    b_c = to_compute(grad, b * factor)
    for j in range(x.shape[1]):
        w = to_compute(grad, 1.0)
        if weight is not None:
            w = to_compute(grad, weight[j])
        store2(grad, i, j, exp_(load2(x, i, j) * scale - lse_c) * a_c - b_c * w)


@njit(error_model="numpy")
def index_row(x, target, weight, wsum, i, scale, eps, ignore_index, r, grad):
    """Loss of row i against class target[i] (0 if ignored); writes grad[i] unless None."""
    n = x.shape[1]
    t = target[i]
    if t == ignore_index:
        if grad is not None:
            zero = compute_zero(grad)
            for j in range(n):
                store2(grad, i, j, zero)
        return 0.0
    lse, _ = _lse(x, i, scale)
    wt = 1.0 if weight is None else weight[t]
    xt = np.float64(load2(x, i, t)) * np.float64(scale)
    loss = -(1.0 - eps) * wt * (xt - lse)
    if eps != 0.0:
        smooth = _weighted_sum(x, weight, i) * np.float64(scale) - wsum * lse
        loss -= eps / n * smooth
    if grad is not None:
        # p * ((1 - eps) w[t] + eps/C * W) - eps/C * w[k], then - (1 - eps) w[t] at k = t
        _write_grad(x, grad, weight, i, scale, np.float64(scale) * r, lse,
                    (1.0 - eps) * wt + eps / n * wsum, eps / n)
        g = np.float64(load2(grad, i, t)) - r * np.float64(scale) * (1.0 - eps) * wt
        store2(grad, i, t, to_compute(grad, g))
    return loss * r


@njit(fastmath=REDUCE, error_model="numpy")
def _block_target_sums(x, target, weight, i, scale, eps_n, keep, b0, b1):
    """(sum_c w q x * scale, sum_c w q) over a block, q = keep * target + eps_n."""
    sx = compute_zero(x)
    sq = compute_zero(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        q = load2(target, i, j) * keep + eps_n
        if weight is not None:
            q = q * to_compute(x, weight[j])
        sx += q * (load2(x, i, j) * scale)
        sq += q
    return sx, sq


@njit(error_model="numpy")
def probs_row(x, target, weight, i, scale, eps, r, grad):
    """Loss of row i against class probabilities target[i]; writes grad[i] unless None."""
    n = x.shape[1]
    lse, _ = _lse(x, i, scale)
    keep = to_compute(x, 1.0 - eps)
    eps_n = to_compute(x, eps / n)
    block = sum_block(x)
    sx = 0.0
    sq = 0.0
    for b0 in range(0, n, block):
        bx, bq = _block_target_sums(x, target, weight, i, scale, eps_n, keep, b0,
                                    min(b0 + block, n))
        sx += np.float64(bx)
        sq += np.float64(bq)
    loss = -(sx - sq * lse)
    if grad is not None:
        lse_c = to_compute(x, lse)
        a = to_compute(grad, sq * r * scale)
        rs = to_compute(grad, r * scale)
        for j in range(n):
            q = load2(target, i, j) * keep + eps_n
            if weight is not None:
                q = q * to_compute(grad, weight[j])
            store2(grad, i, j, exp_(load2(x, i, j) * scale - lse_c) * a - rs * q)
    return loss * r

