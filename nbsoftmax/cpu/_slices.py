"""Serial kernels over one contiguous slice (the softmax axis is the last, unit-stride one).

Each function takes 1-D C-contiguous views: ``x``/``g``/``y`` read-only inputs, ``out`` the
output, which may be the input itself (every pass reads element i before writing element i).
Storage may be float16 bits (uint16), float32 or float64; see ``_math.load``/``store``.

Passes per slice, chosen by measurement on the project's 2-core Zen 3 (``shared/CPU-NOTES.md``):
softmax is max / exp+store+sum / scale with the slice resident in L1/L2, which beat the
online (fused max+sum) variant everywhere but 4M-element rows. float16 output cannot hold
exp values exactly, so its scale pass recomputes exp from the input instead (one rounding).

Sums are float32 (compute type) partial sums over blocks of ``BLOCK`` elements, so that
the inner loop vectorises, totalled in float64 with Neumaier compensation: rows of 50M
float32 elements still sum to 1 within 1e-7.
"""

import math

import numpy as np
from numba import njit

from ._math import (
    compute_neg_inf,
    compute_zero,
    exp_,
    fmaximum,
    keeps_exact_exp,
    load,
    store,
    to_compute,
)

BLOCK = 512

# Reductions only vectorise when LLVM may reorder them; 'nnan'/'ninf' are left out on purpose
# (full fastmath turned NaN rows into finite wrong ones), and these four were measured as
# fast as full fastmath.
REDUCE = {"reassoc", "contract", "nsz", "arcp"}


@njit(fastmath=REDUCE, cache=True)
def slice_max(x):
    m = compute_neg_inf(x)
    for i in range(x.size):
        m = fmaximum(m, load(x, i))
    return m


@njit(cache=True)
def _neumaier_add(total, comp, v):
    t = total + v
    if abs(total) >= abs(v):
        comp += (total - t) + v
    else:
        comp += (v - t) + total
    return t, comp


@njit(fastmath=REDUCE, cache=True)
def _block_exp_store_sum(x, m, out):
    s = compute_zero(x)
    for i in range(x.size):
        e = exp_(load(x, i) - m)
        if keeps_exact_exp(out):
            store(out, i, e)
        s += e
    return s


@njit(fastmath=REDUCE, cache=True)
def _block_exp_sum(x, m):
    s = compute_zero(x)
    for i in range(x.size):
        s += exp_(load(x, i) - m)
    return s


@njit(fastmath=REDUCE, cache=True)
def _block_dot(g, y):
    s = compute_zero(g)
    for i in range(g.size):
        s += load(g, i) * load(y, i)
    return s


@njit(fastmath=REDUCE, cache=True)
def _block_sum(g):
    s = compute_zero(g)
    for i in range(g.size):
        s += load(g, i)
    return s


@njit(cache=True)
def exp_store_sum(x, m, out):
    """sum(exp(x - m)) in float64; also writes the exp values to out where it can hold them."""
    total = 0.0
    comp = 0.0
    for b0 in range(0, x.size, BLOCK):
        b1 = min(b0 + BLOCK, x.size)
        total, comp = _neumaier_add(total, comp, np.float64(_block_exp_store_sum(x[b0:b1], m, out[b0:b1])))
    return total + comp


@njit(cache=True)
def exp_sum(x, m):
    total = 0.0
    comp = 0.0
    for b0 in range(0, x.size, BLOCK):
        b1 = min(b0 + BLOCK, x.size)
        total, comp = _neumaier_add(total, comp, np.float64(_block_exp_sum(x[b0:b1], m)))
    return total + comp


@njit(cache=True)
def dot(g, y):
    total = 0.0
    comp = 0.0
    for b0 in range(0, g.size, BLOCK):
        b1 = min(b0 + BLOCK, g.size)
        total, comp = _neumaier_add(total, comp, np.float64(_block_dot(g[b0:b1], y[b0:b1])))
    return total + comp


@njit(cache=True)
def total(g):
    t = 0.0
    comp = 0.0
    for b0 in range(0, g.size, BLOCK):
        b1 = min(b0 + BLOCK, g.size)
        t, comp = _neumaier_add(t, comp, np.float64(_block_sum(g[b0:b1])))
    return t + comp


@njit(cache=True)
def fill_nan(out):
    nan = to_compute(out, np.nan)
    for i in range(out.size):
        store(out, i, nan)


@njit(cache=True)
def _scale(out, inv):
    for i in range(out.size):
        store(out, i, load(out, i) * inv)


@njit(cache=True)
def _write_scaled_exp(x, m, inv, out):
    for i in range(x.size):
        store(out, i, exp_(load(x, i) - m) * inv)


@njit(cache=True)
def softmax_slice(x, out):
    m = slice_max(x)
    # max is NaN (a NaN present), +inf (the slice is NaN by convention) or -inf (every
    # entry -inf, or an empty slice): the whole slice is NaN, as in scipy and torch.
    if not math.isfinite(m):
        fill_nan(out)
        return
    s = exp_store_sum(x, m, out)
    inv = to_compute(out, 1.0 / s)
    if keeps_exact_exp(out):
        _scale(out, inv)
    else:
        _write_scaled_exp(x, m, inv, out)


@njit(cache=True)
def log_softmax_slice(x, out):
    m = slice_max(x)
    if not math.isfinite(m):
        fill_nan(out)
        return
    log_s = to_compute(out, math.log(exp_sum(x, m)))
    for i in range(x.size):
        store(out, i, (load(x, i) - m) - log_s)


@njit(cache=True)
def logsumexp_slice(x):
    """log(sum(exp(x))) in float64 (the caller rounds it to the result type)."""
    m = slice_max(x)
    if not math.isfinite(m):
        # NaN stays NaN, all -inf (or empty) gives -inf, any +inf without NaN gives +inf.
        return np.float64(m)
    return np.float64(m) + math.log(exp_sum(x, m))


@njit(cache=True)
def softmax_backward_slice(g, y, out):
    d = to_compute(out, dot(g, y))
    for i in range(g.size):
        store(out, i, load(y, i) * (load(g, i) - d))


@njit(cache=True)
def log_softmax_backward_slice(g, y, out):
    s = to_compute(out, total(g))
    for i in range(g.size):
        store(out, i, load(g, i) - exp_(load(y, i)) * s)
