"""Sums along one row of a 2-D C-contiguous array: float32 (compute type) partial sums over
blocks of ``sum_block`` elements, so that the inner loop vectorises, totalled in float64 with
Neumaier compensation (rows of 50M float32 elements still sum to 1 within 1e-7); and the
online (max, sum) statistics of a row range read once from memory (``online_stats``).
Loops over j in range(b0, b1) run on unsigned indices (see ``_slices``)."""

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
    sum_block,
)


BLOCK = 512  # float32/float16; float64 sums in blocks of 128 (see _math.sum_block)
ONLINE_BLOCKS = 32  # summing blocks per step of online_stats

# Reductions only vectorise when LLVM may reorder them; 'nnan'/'ninf' are left out on purpose
# (full fastmath turned NaN rows into finite wrong ones), and these four were measured as
# fast as full fastmath.
REDUCE = {"reassoc", "contract", "nsz", "arcp"}


@njit(error_model="numpy")
def _neumaier_add(total, comp, v):
    t = total + v
    if abs(total) >= abs(v):
        comp += (total - t) + v
    else:
        comp += (v - t) + total
    return t, comp


@njit(fastmath=REDUCE, error_model="numpy")
def _block_exp_store_sum(x, i, m, out, b0, b1):
    s = compute_zero(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        e = exp_(load2(x, i, j) - m)
        if keeps_exact_exp(out):
            store2(out, i, j, e)
        s += e
    return s


@njit(fastmath=REDUCE, error_model="numpy")
def _block_exp_sum(x, i, m, b0, b1):
    s = compute_zero(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        s += exp_(load2(x, i, j) - m)
    return s


@njit(fastmath=REDUCE, error_model="numpy")
def _block_dot(g, y, i, b0, b1):
    s = compute_zero(g)
    for j in range(np.uint64(b0), np.uint64(b1)):
        s += load2(g, i, j) * load2(y, i, j)
    return s


@njit(fastmath=REDUCE, error_model="numpy")
def _block_sum(g, i, b0, b1):
    s = compute_zero(g)
    for j in range(np.uint64(b0), np.uint64(b1)):
        s += load2(g, i, j)
    return s


@njit(fastmath=REDUCE, error_model="numpy")
def _block_max(x, i, b0, b1):
    m = compute_neg_inf(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        m = fmaximum(m, load2(x, i, j))
    return m


@njit(error_model="numpy")
def online_stats(x, i, b0, b1):
    """(max, sum(exp(x - max))) of x[i, b0:b1] in one read from memory.

    Super-blocks of ONLINE_BLOCKS summing blocks (16-32 KiB, in L1) are read twice from
    cache: their max, then their compensated exp-sum against it; the running sum is
    rescaled when the max grows (Milakov & Gimelshein's online softmax at super-block
    granularity). Rescaling per 128-element block instead put float64 log_softmax of a
    600,000-element row at 1.18x its bound: each rescale is one more rounding. max is NaN
    or +inf when the slice is NaN by convention; an all -inf (or empty) slice gives (-inf, 0).
    """
    step = sum_block(x) * ONLINE_BLOCKS
    m = np.float64(-np.inf)
    s = 0.0
    for c0 in range(b0, b1, step):
        c1 = min(c0 + step, b1)
        bm = _block_max(x, i, c0, c1)
        if bm == -np.inf:
            continue  # contributes exp(-inf) = 0; and exp(-inf - -inf) would be NaN
        if not math.isfinite(bm):
            return np.float64(bm), 0.0
        bs = exp_sum_range(x, i, bm, c0, c1)
        bm64 = np.float64(bm)
        if bm64 > m:
            s = s * math.exp(m - bm64) + bs
            m = bm64
        else:
            s += bs * math.exp(bm64 - m)
    return m, s


@njit(error_model="numpy")
def combine_stats(m1, s1, m2, s2):
    """Merge two (max, sum) pairs from online_stats."""
    if not math.isfinite(m1) and m1 != -np.inf:
        return m1, s1
    if not math.isfinite(m2) and m2 != -np.inf:
        return m2, s2
    if m2 == -np.inf:
        return m1, s1
    if m1 == -np.inf:
        return m2, s2
    if m2 > m1:
        return m2, s1 * math.exp(m1 - m2) + s2
    return m1, s1 + s2 * math.exp(m2 - m1)


@njit(error_model="numpy")
def exp_store_sum(x, i, m, out):
    """sum(exp(x[i] - m)) in float64; also writes the exp values to out where it can hold them."""
    block = sum_block(x)
    n = x.shape[1]
    if n <= block:  # short rows: no block loop (100000 x 10 went from 4.3 to ~9 GB/s)
        return np.float64(_block_exp_store_sum(x, i, m, out, 0, n))
    total = 0.0
    comp = 0.0
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        total, comp = _neumaier_add(total, comp, np.float64(_block_exp_store_sum(x, i, m, out, b0, b1)))
    return total + comp


@njit(error_model="numpy")
def exp_sum_range(x, i, m, b0, b1):
    """sum(exp(x[i, b0:b1] - m)) in float64, compensated across blocks."""
    block = sum_block(x)
    if b1 - b0 <= block:
        return np.float64(_block_exp_sum(x, i, m, b0, b1))
    total = 0.0
    comp = 0.0
    for c0 in range(b0, b1, block):
        c1 = min(c0 + block, b1)
        total, comp = _neumaier_add(total, comp, np.float64(_block_exp_sum(x, i, m, c0, c1)))
    return total + comp


@njit(error_model="numpy")
def exp_sum(x, i, m):
    return exp_sum_range(x, i, m, 0, x.shape[1])


@njit(error_model="numpy")
def dot_range(g, y, i, b0, b1):
    """sum(g[i, b0:b1] * y[i, b0:b1]) in float64."""
    block = sum_block(g)
    if b1 - b0 <= block:
        return np.float64(_block_dot(g, y, i, b0, b1))
    total = 0.0
    comp = 0.0
    for c0 in range(b0, b1, block):
        c1 = min(c0 + block, b1)
        total, comp = _neumaier_add(total, comp, np.float64(_block_dot(g, y, i, c0, c1)))
    return total + comp


@njit(error_model="numpy")
def total_range(g, i, b0, b1):
    """sum(g[i, b0:b1]) in float64."""
    block = sum_block(g)
    if b1 - b0 <= block:
        return np.float64(_block_sum(g, i, b0, b1))
    t = 0.0
    comp = 0.0
    for c0 in range(b0, b1, block):
        c1 = min(c0 + block, b1)
        t, comp = _neumaier_add(t, comp, np.float64(_block_sum(g, i, c0, c1)))
    return t + comp
