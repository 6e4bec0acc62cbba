"""Softmax top-k per row in one pass: an online normaliser and a sorted insertion buffer.

Row ``i`` of ``x`` is read once from memory, in L1-sized super-blocks (as
``_slices.online_stats``): each super-block's max (vectorised), its exp-sum against that max
(vectorised, float64 across blocks) merged into the running ``(max, sum)`` pair with a
rescale (Milakov & Gimelshein's online softmax), and a scan of the same block, still in L1,
for entries above the current k-th best. The buffer is the output row ``idx[i]`` itself,
kept sorted by value descending; an entry enters only if strictly greater than the k-th
best, and is inserted after equal values, so ties go to the lower index. At the end the k
probabilities ``exp(x - max) / sum`` are written. No full-size softmax is formed.

A row whose softmax is NaN by the plain conventions (a NaN or +inf present, or only -inf)
gives indices ``0..k-1`` with NaN probabilities (nbsoftmax.cli.topk's convention: all ties).
"""

import math

import numpy as np
from numba import njit

from . import _slices as S
from ._math import load2, store2, sum_block, to_compute

SUPER_BLOCKS = 8  # summing blocks per super-block: 16 KiB float32, 8 KiB float64


@njit(error_model="numpy")
def _insert(x, i, idx, count, k, v, j):
    """Insert index j (value v) into the sorted buffer idx[i, :count]; returns the new count."""
    p = min(count, k - 1)
    # shift down every entry strictly smaller than v (equal ones stay ahead: lower index)
    while p > 0 and load2(x, i, idx[i, p - 1]) < v:
        idx[i, p] = idx[i, p - 1]
        p -= 1
    idx[i, p] = j
    return min(count + 1, k)


@njit(error_model="numpy")
def topk_row(x, i, k, probs, idx):
    n = x.shape[1]
    step = sum_block(x) * SUPER_BLOCKS
    m = -np.inf
    s = 0.0
    count = 0
    thr = load2(x, i, 0)  # the k-th best value once the buffer is full
    bad = False
    for c0 in range(0, n, step):
        c1 = min(c0 + step, n)
        bm = S._block_max(x, i, c0, c1)
        if not math.isfinite(bm) and bm != -np.inf:
            bad = True  # NaN or +inf: the whole row is NaN
            break
        if bm != -np.inf:
            bs = S.exp_sum_range(x, i, bm, c0, c1)
            bm64 = np.float64(bm)
            if bm64 > m:
                s = s * math.exp(m - bm64) + bs
                m = bm64
            else:
                s += bs * math.exp(bm64 - m)
        for j in range(c0, c1):
            v = load2(x, i, j)
            if count == k and not v > thr:
                continue
            count = _insert(x, i, idx, count, k, v, j)
            if count == k:
                thr = load2(x, i, idx[i, k - 1])
    if bad or m == -np.inf:
        nan = to_compute(probs, np.nan)
        for p in range(k):
            idx[i, p] = p
            store2(probs, i, p, nan)
        return
    mc = to_compute(x, m)
    inv = 1.0 / s
    for p in range(k):
        e = math.exp(np.float64(load2(x, i, idx[i, p]) - mc))
        store2(probs, i, p, to_compute(probs, e * inv))
