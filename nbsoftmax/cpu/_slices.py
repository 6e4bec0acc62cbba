"""Serial kernels over one contiguous slice (the softmax axis is the last, unit-stride one).

Each function works on row ``i`` of 2-D C-contiguous arrays: ``x``/``g``/``y`` read-only
inputs, ``out`` the output, which may be the input itself (every pass reads element j before
writing element j). Rows are addressed by index rather than as ``x[i]`` views: each Numba
view increments the parent's reference count atomically, and with two threads bouncing that
cache line the 100000 x 10 case ran at 4.2 GB/s with views against 10.1 GB/s by index.
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
    load2,
    store2,
    to_compute,
)

BLOCK = 512

# Reductions only vectorise when LLVM may reorder them; 'nnan'/'ninf' are left out on purpose
# (full fastmath turned NaN rows into finite wrong ones), and these four were measured as
# fast as full fastmath.
REDUCE = {"reassoc", "contract", "nsz", "arcp"}


@njit(fastmath=REDUCE, cache=True)
def slice_max(x, i):
    m = compute_neg_inf(x)
    for j in range(x.shape[1]):
        m = fmaximum(m, load2(x, i, j))
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
def _block_exp_store_sum(x, i, m, out, b0, b1):
    s = compute_zero(x)
    for j in range(b0, b1):
        e = exp_(load2(x, i, j) - m)
        if keeps_exact_exp(out):
            store2(out, i, j, e)
        s += e
    return s


@njit(fastmath=REDUCE, cache=True)
def _block_exp_sum(x, i, m, b0, b1):
    s = compute_zero(x)
    for j in range(b0, b1):
        s += exp_(load2(x, i, j) - m)
    return s


@njit(fastmath=REDUCE, cache=True)
def _block_dot(g, y, i, b0, b1):
    s = compute_zero(g)
    for j in range(b0, b1):
        s += load2(g, i, j) * load2(y, i, j)
    return s


@njit(fastmath=REDUCE, cache=True)
def _block_sum(g, i, b0, b1):
    s = compute_zero(g)
    for j in range(b0, b1):
        s += load2(g, i, j)
    return s


@njit(cache=True)
def exp_store_sum(x, i, m, out):
    """sum(exp(x[i] - m)) in float64; also writes the exp values to out where it can hold them."""
    n = x.shape[1]
    total = 0.0
    comp = 0.0
    for b0 in range(0, n, BLOCK):
        b1 = min(b0 + BLOCK, n)
        total, comp = _neumaier_add(total, comp, np.float64(_block_exp_store_sum(x, i, m, out, b0, b1)))
    return total + comp


@njit(cache=True)
def exp_sum(x, i, m):
    n = x.shape[1]
    total = 0.0
    comp = 0.0
    for b0 in range(0, n, BLOCK):
        b1 = min(b0 + BLOCK, n)
        total, comp = _neumaier_add(total, comp, np.float64(_block_exp_sum(x, i, m, b0, b1)))
    return total + comp


@njit(cache=True)
def dot(g, y, i):
    n = g.shape[1]
    total = 0.0
    comp = 0.0
    for b0 in range(0, n, BLOCK):
        b1 = min(b0 + BLOCK, n)
        total, comp = _neumaier_add(total, comp, np.float64(_block_dot(g, y, i, b0, b1)))
    return total + comp


@njit(cache=True)
def total(g, i):
    n = g.shape[1]
    t = 0.0
    comp = 0.0
    for b0 in range(0, n, BLOCK):
        b1 = min(b0 + BLOCK, n)
        t, comp = _neumaier_add(t, comp, np.float64(_block_sum(g, i, b0, b1)))
    return t + comp


@njit(cache=True)
def fill_nan(out, i):
    nan = to_compute(out, np.nan)
    for j in range(out.shape[1]):
        store2(out, i, j, nan)


@njit(cache=True)
def _scale(out, i, inv):
    for j in range(out.shape[1]):
        store2(out, i, j, load2(out, i, j) * inv)


@njit(cache=True)
def _write_scaled_exp(x, i, m, inv, out):
    for j in range(x.shape[1]):
        store2(out, i, j, exp_(load2(x, i, j) - m) * inv)


@njit(cache=True)
def softmax_slice(x, out, i):
    m = slice_max(x, i)
    # max is NaN (a NaN present), +inf (the slice is NaN by convention) or -inf (every
    # entry -inf, or an empty slice): the whole slice is NaN, as in scipy and torch.
    if not math.isfinite(m):
        fill_nan(out, i)
        return
    s = exp_store_sum(x, i, m, out)
    inv = to_compute(out, 1.0 / s)
    if keeps_exact_exp(out):
        _scale(out, i, inv)
    else:
        _write_scaled_exp(x, i, m, inv, out)


@njit(cache=True)
def log_softmax_slice(x, out, i):
    m = slice_max(x, i)
    if not math.isfinite(m):
        fill_nan(out, i)
        return
    log_s = to_compute(out, math.log(exp_sum(x, i, m)))
    for j in range(x.shape[1]):
        store2(out, i, j, (load2(x, i, j) - m) - log_s)


@njit(cache=True)
def logsumexp_slice(x, i):
    """log(sum(exp(x[i]))) in float64 (the caller rounds it to the result type)."""
    m = slice_max(x, i)
    if not math.isfinite(m):
        # NaN stays NaN, all -inf (or empty) gives -inf, any +inf without NaN gives +inf.
        return np.float64(m)
    return np.float64(m) + math.log(exp_sum(x, i, m))


@njit(cache=True)
def softmax_backward_slice(g, y, out, i):
    d = to_compute(out, dot(g, y, i))
    for j in range(g.shape[1]):
        store2(out, i, j, load2(y, i, j) * (load2(g, i, j) - d))


@njit(cache=True)
def log_softmax_backward_slice(g, y, out, i):
    s = to_compute(out, total(g, i))
    for j in range(g.shape[1]):
        store2(out, i, j, load2(g, i, j) - exp_(load2(y, i, j)) * s)
