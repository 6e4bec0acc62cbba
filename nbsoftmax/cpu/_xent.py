"""Per-row cross-entropy kernels: the loss of one row of logits, and optionally its gradient.

Row ``i`` of ``x`` (``(rows, C)`` storage, read as ``x / T``; ``sc`` the scaling of ``_scaled``)
against class index ``target[i]`` (``index_row``) or class probabilities ``target[i, :]``
(``probs_row``), with label smoothing ``eps`` and class weights ``weight`` (float64 ``(C,)``
or None: Numba prunes the ``weight is not None`` branches at compile time, as for the mask of
``_scaled``). Everything is computed from the shifted exponents ``v = (x - m) / T`` of
``_scaled.value`` (m the row's max) and ``log s``, ``s = sum exp(v)``: ``logp = v - log s``.
Never from ``x / T - lse``: with a large offset ``lse`` carries the offset, and ``x_t - lse``
lost everything under the offset's ulp (float32 logits 1e7 gave the gradient
``[0, 0.368, 0.135, 0.050]`` for ``[-0.356, 0.237, 0.087, 0.032]``, issue 10 item 2). So the
loss and gradient hold log_softmax's bounds at every offset.

- index: ``loss = -(1 - eps) * w[t] * logp[t] - eps / C * sum_c w[c] * logp[c]``; the smoothing
  sum is ``sum_c w[c] v[c] - W * log s`` (``W = sum w``), gathered in the exp-sum pass with
  ``v`` in float64 (``_scaled.wide_value``: float32 logits 3e38 apart give a finite sum).
- probabilities: ``q = (1 - eps) * target + eps / C``, ``loss = -sum_c w[c] q[c] logp[c]``.

Gradient (``grad`` a ``(rows, C)`` array, or None for the loss alone): ``d loss / d x[k] =
r * (p[k] * A - B[k]) / T`` with ``p = softmax`` (``exp(v) / s``, as the softmax kernels), ``A
= sum_c coefficients``, ``B`` the per-class coefficients above, ``r`` the reduction factor (1,
or 1/denominator for ``mean``) that the dispatcher computes from the targets first, and the
division by T that of ``_scaled.grad_scale`` (no overflow for a tiny T). A row whose index
equals ``ignore_index`` has loss 0 and gradient 0. A row whose max is not finite (a NaN or
+inf logit, or only -inf: log_softmax's NaN rows) has a NaN loss and an all-NaN gradient row,
as torch (issue 10 item 3: ``[[inf, 0, 1, 2]]`` gave ``(inf, [nan, -1, 0, 0])``).

Passes per row: max; exp-sum (and the smoothing or target sums); gradient write. Each row is
read from memory once for rows that stay in L2 (256,000 float32 = 1 MB): the passes after the
first hit the cache. Nothing full-size is allocated: the loss per row goes to ``loss``.
In place (x staged into grad) every pass reads element j before writing it.
"""

import math

import numpy as np
from numba import njit

from . import _scaled as Sc
from ._math import compute_zero, exp_, load2, select, store2, sum_block, to_compute
from ._slices import REDUCE


@njit(fastmath=REDUCE, error_model="numpy")
def _block_exp_sums(x, weight, i, sc, m, smooth, b0, b1):
    """(sum exp(v), float64 sum w * v or 0 unless smooth) over a block."""
    s = compute_zero(x)
    sv = 0.0
    if smooth:
        for j in range(np.uint64(b0), np.uint64(b1)):
            xv = load2(x, i, j)
            s += exp_(Sc.value(xv, m, sc))
            v = Sc.wide_value(xv, m, sc)
            if weight is not None:
                v = v * weight[j]
            sv += v
    else:
        for j in range(np.uint64(b0), np.uint64(b1)):
            s += exp_(Sc.value(load2(x, i, j), m, sc))
    return s, sv


@njit(error_model="numpy")
def _row_sums(x, weight, i, sc, m, smooth):
    """(float64 sum exp(v), float64 sum w * v if smooth)."""
    n = x.shape[1]
    block = sum_block(x)
    total = 0.0
    total_v = 0.0
    for b0 in range(0, n, block):
        s, sv = _block_exp_sums(x, weight, i, sc, m, smooth, b0, min(b0 + block, n))
        total += np.float64(s)
        total_v += sv
    return total, total_v


@njit(error_model="numpy")
def _fill(grad, i, v):
    for j in range(grad.shape[1]):
        store2(grad, i, j, v)


@njit(error_model="numpy")
def index_row(x, target, weight, wsum, i, sc, eps, ignore_index, r, grad):
    """Loss of row i against class target[i] (0 if ignored); writes grad[i] unless None."""
    n = x.shape[1]
    t = target[i]
    if t == ignore_index:
        if grad is not None:
            _fill(grad, i, compute_zero(grad))
        return 0.0
    m = Sc._max(x, None, i, sc)
    if not math.isfinite(m):
        if grad is not None:
            _fill(grad, i, to_compute(grad, np.nan))
        return np.nan
    s, sv = _row_sums(x, weight, i, sc, m, eps != 0.0)
    log_s = math.log(s)
    wt = 1.0 if weight is None else weight[t]
    # read before the write pass: in place, grad[i, t] is x[i, t]
    vt = Sc.wide_value(load2(x, i, t), m, sc)
    loss = -(1.0 - eps) * wt * (vt - log_s)
    if eps != 0.0:
        loss -= eps / n * (sv - wsum * log_s)
    if grad is not None:
        # p * ((1 - eps) w[t] + eps/C * W) - eps/C * w[k] - [k = t] (1 - eps) w[t], times r / T
        a = to_compute(grad, r * ((1.0 - eps) * wt + eps / n * wsum))
        b = to_compute(grad, r * eps / n)
        bt = to_compute(grad, r * (1.0 - eps) * wt)
        zero = compute_zero(grad)
        inv = to_compute(grad, 1.0 / s)
        for j in range(n):
            p = exp_(Sc.value(load2(x, i, j), m, sc)) * inv
            w = b
            if weight is not None:
                w = b * to_compute(grad, weight[j])
            w += select(j == t, bt, zero)
            store2(grad, i, j, Sc.grad_scale(p * a - w, sc))
    return loss * r


@njit(fastmath=REDUCE, error_model="numpy")
def _block_target_sums(x, target, weight, i, sc, m, eps_n, keep, b0, b1):
    """(sum exp(v), float64 sum_c w q v, sum_c w q) over a block, q = keep * target + eps_n."""
    s = compute_zero(x)
    sv = 0.0
    sq = compute_zero(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        xv = load2(x, i, j)
        s += exp_(Sc.value(xv, m, sc))
        q = load2(target, i, j) * keep + eps_n
        if weight is not None:
            q = q * to_compute(x, weight[j])
        sv += np.float64(q) * Sc.wide_value(xv, m, sc)
        sq += q
    return s, sv, sq


@njit(error_model="numpy")
def probs_row(x, target, weight, i, sc, eps, r, grad):
    """Loss of row i against class probabilities target[i]; writes grad[i] unless None."""
    n = x.shape[1]
    m = Sc._max(x, None, i, sc)
    if not math.isfinite(m):
        if grad is not None:
            _fill(grad, i, to_compute(grad, np.nan))
        return np.nan
    keep = to_compute(x, 1.0 - eps)
    eps_n = to_compute(x, eps / n)
    block = sum_block(x)
    s = 0.0
    sv = 0.0
    sq = 0.0
    for b0 in range(0, n, block):
        bs, bv, bq = _block_target_sums(x, target, weight, i, sc, m, eps_n, keep, b0,
                                        min(b0 + block, n))
        s += np.float64(bs)
        sv += bv
        sq += np.float64(bq)
    log_s = math.log(s)
    loss = -(sv - sq * log_s)
    if grad is not None:
        a = to_compute(grad, sq * r)
        rc = to_compute(grad, r)
        inv = to_compute(grad, 1.0 / s)
        for j in range(n):
            p = exp_(Sc.value(load2(x, i, j), m, sc)) * inv
            q = load2(target, i, j) * keep + eps_n
            if weight is not None:
                q = q * to_compute(grad, weight[j])
            store2(grad, i, j, Sc.grad_scale(p * a - rc * q, sc))
    return loss * r
