"""Per-row kernels with a temperature scale and an optional ``where`` mask.

The same operations as ``_slices`` on ``x * scale`` (``scale = 1/T``; ``-1/T`` for softmin),
restricted to the entries where ``mask`` is True. They are separate kernels rather than
branches in ``_slices`` so that plain calls keep their kernels untouched. ``mask`` is a
C-contiguous bool ``(rows, n)`` array or None: Numba prunes the ``mask is not None`` branches
at compile time (argument typed ``none``), so the temperature-only variant carries no mask
code. Masking is an LLVM select (``_math.select``), never a multiply: a masked NaN or inf
cannot leak into a row's statistics.

Conventions (those of ``jax.nn.softmax(where=)``): masked entries give probability 0
(log_softmax: -inf; the backward passes: exactly 0) and do not count in the row's max or
sums; a fully masked row gives 0 (log_softmax and logsumexp: -inf). Among the unmasked
entries the plain conventions hold: a NaN or +inf (of ``x * scale``), or only -inf, make
them NaN.

Passes per row: max; exp-sum (float32 partial sums per ``sum_block`` totalled in float64, as
``_slices``); write, recomputing exp. Like ``_slices``' in-place path, every pass reads
element j before writing it, so ``out`` may be ``x``.
"""

import math

import numpy as np
from numba import njit

from ._math import (
    compute_neg_inf,
    compute_zero,
    exp_,
    fmaximum,
    load2,
    select,
    store2,
    sum_block,
    to_compute,
)
from ._slices import REDUCE


@njit(fastmath=REDUCE, error_model="numpy")
def _max(x, mask, i, scale):
    m = compute_neg_inf(x)
    # -inf that LLVM cannot see as a constant: maximum(m, select(c, v, -inf)) with the
    # constant identity is rewritten into a conditional reduction that does not vectorise
    # (2000 x 1000 float32, masked max: 3.5 ms with the constant, 0.13 ms with this).
    neg_inf = abs(scale) * compute_neg_inf(x)
    for j in range(x.shape[1]):
        v = load2(x, i, j) * scale
        if mask is not None:
            v = select(mask[i, j], v, neg_inf)
        m = fmaximum(m, v)
    return m


@njit(error_model="numpy")
def _any(mask, i):
    for j in range(mask.shape[1]):
        if mask[i, j]:
            return True
    return False


@njit(fastmath=REDUCE, error_model="numpy")
def _block_exp_sum(x, mask, i, scale, m, b0, b1):
    s = compute_zero(x)
    zero = compute_zero(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        e = exp_(load2(x, i, j) * scale - m)
        if mask is not None:
            e = select(mask[i, j], e, zero)
        s += e
    return s


@njit(error_model="numpy")
def _exp_sum(x, mask, i, scale, m):
    n = x.shape[1]
    block = sum_block(x)
    total = 0.0
    for b0 in range(0, n, block):
        total += np.float64(_block_exp_sum(x, mask, i, scale, m, b0, min(b0 + block, n)))
    return total


@njit(fastmath=REDUCE, error_model="numpy")
def _block_dot(g, y, mask, i, b0, b1):
    s = compute_zero(g)
    zero = compute_zero(g)
    for j in range(np.uint64(b0), np.uint64(b1)):
        v = load2(g, i, j) * load2(y, i, j)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        s += v
    return s


@njit(fastmath=REDUCE, error_model="numpy")
def _block_sum(g, mask, i, b0, b1):
    s = compute_zero(g)
    zero = compute_zero(g)
    for j in range(np.uint64(b0), np.uint64(b1)):
        v = load2(g, i, j)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        s += v
    return s


@njit(error_model="numpy")
def _fill(out, mask, i, unmasked, masked):
    """out[i] = unmasked where mask (everywhere without a mask), masked elsewhere."""
    for j in range(out.shape[1]):
        v = unmasked
        if mask is not None:
            v = select(mask[i, j], v, masked)
        store2(out, i, j, v)


@njit(error_model="numpy")
def _row_stats(x, mask, i, scale):
    """(max in the compute type, float64 exp-sum, state): state 0 normal, 1 the unmasked
    entries are NaN by convention, 2 the row is fully masked."""
    m = _max(x, mask, i, scale)
    if math.isfinite(m):
        return m, _exp_sum(x, mask, i, scale, m), 0
    if mask is not None and m == -np.inf and not _any(mask, i):
        return m, 0.0, 2
    return m, 0.0, 1


@njit(error_model="numpy")
def softmax_row(x, mask, out, i, scale):
    m, s, state = _row_stats(x, mask, i, scale)
    zero = compute_zero(out)
    if state:
        _fill(out, mask, i, zero if state == 2 else to_compute(out, np.nan), zero)
        return
    inv = to_compute(out, 1.0 / s)
    for j in range(x.shape[1]):
        p = exp_(load2(x, i, j) * scale - m) * inv
        if mask is not None:
            p = select(mask[i, j], p, zero)
        store2(out, i, j, p)


@njit(error_model="numpy")
def log_softmax_row(x, mask, out, i, scale):
    m, s, state = _row_stats(x, mask, i, scale)
    neg_inf = compute_neg_inf(out)
    if state:
        _fill(out, mask, i, neg_inf if state == 2 else to_compute(out, np.nan), neg_inf)
        return
    log_s = to_compute(out, math.log(s))
    for j in range(x.shape[1]):
        v = (load2(x, i, j) * scale - m) - log_s
        if mask is not None:
            v = select(mask[i, j], v, neg_inf)
        store2(out, i, j, v)


@njit(error_model="numpy")
def logsumexp_row(x, mask, i, scale):
    """log(sum(exp(x[i] * scale))) over the unmasked entries, in float64."""
    m = _max(x, mask, i, scale)
    if not math.isfinite(m):
        return np.float64(m)  # NaN, +inf, or -inf (all -inf, or fully masked)
    return np.float64(m) + math.log(_exp_sum(x, mask, i, scale, m))


@njit(error_model="numpy")
def _total(g, y, mask, i, with_y):
    n = g.shape[1]
    block = sum_block(g)
    total = 0.0
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        part = _block_dot(g, y, mask, i, b0, b1) if with_y else _block_sum(g, mask, i, b0, b1)
        total += np.float64(part)
    return total


@njit(error_model="numpy")
def softmax_backward_row(g, y, mask, out, i, scale):
    """scale * y * (g - sum(g * y)) over the unmasked entries; exactly 0 at masked ones."""
    d = to_compute(out, _total(g, y, mask, i, True))
    zero = compute_zero(out)
    for j in range(g.shape[1]):
        v = scale * load2(y, i, j) * (load2(g, i, j) - d)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        store2(out, i, j, v)


@njit(error_model="numpy")
def log_softmax_backward_row(g, y, mask, out, i, scale):
    """scale * (g - exp(y) * sum(g)) over the unmasked entries; exactly 0 at masked ones."""
    s = to_compute(out, _total(g, y, mask, i, False))
    zero = compute_zero(out)
    for j in range(g.shape[1]):
        v = scale * (load2(g, i, j) - exp_(load2(y, i, j)) * s)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        store2(out, i, j, v)
