"""Softmax top-k per row: an online normaliser with either a sorted insertion buffer (small k)
or a selection by partition (large k, or rows whose order defeats the buffer).

Ranking is by the logits (the softmax is monotone in them): descending, equal values ordered
by lower index first. Two ways to find the k best of row ``i``:

* **Insertion** (small k: ``use_insertion``): row ``i`` of ``x`` is read once from memory, in
  L1-sized super-blocks (as ``_slices.online_stats``): each super-block's max (vectorised),
  its exp-sum against that max (vectorised, float64 across blocks) merged into the running
  ``(max, sum)`` pair with a rescale (Milakov & Gimelshein's online softmax), and a scan of
  the same block, still in L1, for entries above the current k-th best. The buffer is the
  output row ``idx[i]`` itself, kept sorted by value descending; an entry enters only if
  strictly greater than the k-th best, and is inserted after equal values, so ties go to the
  lower index. Cheap while few entries enter (random rows: about ``k log(n/k)``), but each
  entry shifts up to ``k - 1`` others: an ascending row costs ``n k``. So the shifts are
  counted, and past ``SHIFT_BUDGET`` shifts per element the row is finished by selection.
* **Selection** (``_select_row``): the row's values are copied (float64, exact for every
  storage dtype) and partitioned at the k-th largest value ``v`` (``np.partition``,
  introselect: O(n)); one scan takes the entries above ``v`` in index order, then those equal
  to ``v`` in index order until there are k; a stable sort of the ones above ``v`` by value
  descending orders them (equal values keep their index order). O(n + k log k) whatever the
  order of the row.

At the end the k probabilities ``exp(x - max) / sum`` are written. No full-size softmax is
formed. A row whose softmax is NaN by the plain conventions (a NaN or +inf present, or only
-inf) gives indices ``0..k-1`` with NaN probabilities (nbsoftmax.cli.topk's convention: all
ties).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from . import _slices as S
from ._math import load2, store2, sum_block, to_compute

SUPER_BLOCKS = 8  # summing blocks per super-block: 16 KiB float32, 8 KiB float64

# Insertion or selection, by k and the row length n. Insertion costs about k^2 log(n/k)
# beyond the scan (k log(n/k) entries enter a random row, each shifting up to k), selection
# about n (copying candidates, quickselect cuts, a final sort of k): insertion while
# k^2 (1 + log2(n/k)) < INSERTION_RATIO * n (the 1: at k ~ n every entry enters).
# Measured serial, float32, random normal rows * 3, 2-core Zen 3 under a load average of
# 12-14 (other jobs: +-30%), insertion / selection / NumPy (softmax + argpartition + stable
# argsort of the k) in ms:
#   1000 x 2000: k=8 17/47/128, k=16 24/35/99, k=32 82/60/115, k=64 145/48/124,
#                k=256 724/182/229, k=2000 5690/910/838 (first run) and -/462/- (keyed sort)
#   64 x 32000:  k=16 11/17/78, k=64 13/24/70, k=2000 -/94/135
#   ascending 1000 x 2000: k=4 78/25/89, k=16 245/44/89, k=256 2948/87/148, k=2000 -/372/380
# so the crossover is k ~ 24 at n = 2000 and above 64 at n = 32000 (k = 24, n = 2000 gives
# 2.1 n). Ascending rows, insertion's worst case, are caught by SHIFT_BUDGET. Through the
# public function (2 threads, load average 27): k=2000 on 1000 x 2000 took 0.67 s against
# 0.96 s for NumPy's softmax + argpartition + sort and 0.27 s for a bare np.argsort (issue 11:
# 2.0 s before, 0.28 s for np.argsort, quiet machine); k=256 0.17 s against 0.20 s.
INSERTION_RATIO = 2.0


@njit(error_model="numpy")
def use_insertion(k, n):
    return k * k * (1.0 + math.log2(max(n / k, 1.0))) < INSERTION_RATIO * n


# Insertion shifts allowed per element of the row before it is finished by selection: an
# ascending row would otherwise cost ~k shifts per element.
SHIFT_BUDGET = 1

# Room in the candidate buffer of _select_row beyond the k kept: each cut of the buffer costs
# O(k + room), so an ascending row (every entry a candidate) pays O(1 + k / room) per entry.
CANDIDATES_MIN = 512

# Entries of a row sampled (strided) to estimate the selection's first threshold.
SAMPLE = 256


@njit(error_model="numpy")
def _insert(x, i, idx, count, k, v, j):
    """Insert index j (value v) into the sorted buffer idx[i, :count]; returns the number of
    entries shifted down (the new count is min(count + 1, k))."""
    p = min(count, k - 1)
    start = p
    # shift down every entry strictly smaller than v (equal ones stay ahead: lower index)
    while p > 0 and load2(x, i, idx[i, p - 1]) < v:
        idx[i, p] = idx[i, p - 1]
        p -= 1
    idx[i, p] = j
    return start - p


@njit(error_model="numpy")
def _kth_largest(vals, count, r):
    """The r-th largest (r >= 1) of vals[:count], reordering vals[:count]: quickselect with a
    median-of-three pivot (Hoare partition), finished by a sort past 2 log2(count) rounds
    (introselect's guard against quadratic inputs). Numba's np.partition took ~30 ns per
    element of a random row here; this, 3-5."""
    target = count - r  # its position in ascending order
    lo, hi = 0, count - 1
    rounds = 2 * (int(math.log2(count)) + 1)
    while lo < hi:
        if rounds == 0:
            vals[lo:hi + 1].sort()
            break
        rounds -= 1
        a, b, c = vals[lo], vals[(lo + hi) >> 1], vals[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        p, q = lo, hi
        while p <= q:
            while vals[p] < pivot:
                p += 1
            while vals[q] > pivot:
                q -= 1
            if p <= q:
                vals[p], vals[q] = vals[q], vals[p]
                p += 1
                q -= 1
        if target <= q:
            hi = q
        elif target >= p:
            lo = p
        else:
            break  # vals[q + 1:p] all equal the pivot
    return vals[target]


@njit(error_model="numpy")
def _keep_best(cand_i, cand_v, work, count, k):
    """Reduce the candidates (index order) to the k best, still in index order; returns the
    k-th best value. Entries equal to it are kept from the lowest index up."""
    for p in range(count):
        work[p] = cand_v[p]
    kth = _kth_largest(work, count, k)
    equal_wanted = k
    for p in range(count):
        if cand_v[p] > kth:
            equal_wanted -= 1
    kept = 0
    for p in range(count):
        v = cand_v[p]
        if v > kth or (v == kth and equal_wanted > 0):
            if v == kth:
                equal_wanted -= 1
            cand_i[kept] = cand_i[p]
            cand_v[kept] = v
            kept += 1
    return kth


@njit(error_model="numpy")
def _estimate_threshold(x, i, k, work):
    """A value a bit below the k-th largest of row i, from a strided sample of SAMPLE
    entries (work holds at least SAMPLE), so that about 1.25 k entries reach it."""
    n = x.shape[1]
    stride = n // SAMPLE
    for p in range(SAMPLE):
        work[p] = load2(x, i, p * stride)
    rank = min(SAMPLE, (k * SAMPLE * 5) // (4 * n) + 8)
    return _kth_largest(work, SAMPLE, rank)


@njit(error_model="numpy")
def _select_row(x, i, k, idx):
    """idx[i, :k] = the k largest entries of row i (without NaN) by value descending, ties to
    the lower index, in O(n + k log k) for any order of the row.

    One scan keeps candidates (index, value), in index order, in a buffer of
    k + max(k, CANDIDATES_MIN): first every entry at or above a threshold estimated from a
    sample (when k is small against the row); when the buffer is full, a quickselect cuts it
    to the k best, and the k-th best value becomes the threshold (later entries must then be
    strictly greater: they have higher indices). If fewer than k entries reached the
    estimate, the scan is redone from -inf. A random row rarely passes the threshold (about
    one compare per element); an ascending one at worst fills the buffer every
    CANDIDATES_MIN entries, each cut costing O(k + CANDIDATES_MIN)."""
    n = x.shape[1]
    cap = min(k + max(k, CANDIDATES_MIN), n)
    cand_i = np.empty(cap, np.int64)
    cand_v = np.empty(cap, np.float64)
    work = np.empty(max(cap, SAMPLE), np.float64)
    estimate = cap < n and 4 * k <= n and n >= 4 * SAMPLE
    thr = _estimate_threshold(x, i, k, work) if estimate else -np.inf
    while True:
        count = 0
        strict = False  # entries equal to thr are candidates until the first cut
        for j in range(n):
            v = np.float64(load2(x, i, j))
            if v < thr or (strict and v == thr):
                continue
            if count == cap:
                thr = _keep_best(cand_i, cand_v, work, count, k)
                count = k
                strict = True
                if not v > thr:
                    continue
            cand_i[count] = j
            cand_v[count] = v
            count += 1
        if count >= k:
            break
        thr = -np.inf  # the estimate was above the k-th largest: take every entry
    if count > k:
        _keep_best(cand_i, cand_v, work, count, k)
    if x.itemsize == 8 or n > _INDEX_MASK:
        _sort_by_argsort(cand_i, cand_v, work, k, i, idx)
    else:
        _sort_by_keys(cand_i, cand_v, k, i, idx)


@intrinsic
def _float32_bits(typingctx, v):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


_INDEX_MASK = np.uint64(0xFFFFFFFF)
_SIGN32 = np.uint64(0x80000000)


@njit(error_model="numpy")
def _sort_by_keys(cand_i, cand_v, k, i, idx):
    """idx[i, :k] = cand_i[:k] by cand_v (float32-exact values) descending, ties to the lower
    index: one sort of uint64 keys (order-preserving bits of -v above the index), unique, so
    no tie pass. 1000 rows x 2000, k = 2000: 0.42 s against 0.65 s for an argsort (noisy)."""
    keys = np.empty(k, np.uint64)
    for p in range(k):
        v = np.float32(cand_v[p]) + np.float32(0.0)  # -0.0 -> +0.0: equal values tie
        b = np.uint64(_float32_bits(v))
        ascending = _INDEX_MASK - b if b >= _SIGN32 else b + _SIGN32
        keys[p] = ((_INDEX_MASK - ascending) << np.uint64(32)) | np.uint64(cand_i[p])
    keys.sort()
    for p in range(k):
        idx[i, p] = np.int64(keys[p] & _INDEX_MASK)


@njit(error_model="numpy")
def _sort_by_argsort(cand_i, cand_v, work, k, i, idx):
    """As _sort_by_keys for float64 values (or indices beyond 32 bits): Numba's quicksort
    argsort (mergesort, stable, was 1.5-2x slower at k = 2000), then runs of equal values,
    rare, put back in index order."""
    for p in range(k):
        work[p] = -cand_v[p]
    order = np.argsort(work[:k])
    for p in range(k):
        idx[i, p] = cand_i[order[p]]
    p = 0
    while p < k:
        q = p + 1
        while q < k and work[order[q]] == work[order[p]]:
            q += 1
        if q - p > 1:
            idx[i, p:q].sort()
        p = q


@njit(error_model="numpy")
def topk_row(x, i, k, probs, idx):
    _topk_row(x, i, k, probs, idx, use_insertion(k, x.shape[1]))


@njit(error_model="numpy")
def _topk_row(x, i, k, probs, idx, insert):
    """topk_row with the choice of method as an argument (benchmarks force either with it)."""
    n = x.shape[1]
    step = sum_block(x) * SUPER_BLOCKS
    m = -np.inf
    s = 0.0
    count = 0
    thr = load2(x, i, 0)  # the k-th best value once the buffer is full
    bad = False
    budget = SHIFT_BUDGET * n
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
        if not insert:
            continue
        for j in range(c0, c1):
            v = load2(x, i, j)
            if count == k and not v > thr:
                continue
            budget -= _insert(x, i, idx, count, k, v, j)
            count = min(count + 1, k)
            if count == k:
                thr = load2(x, i, idx[i, k - 1])
        if budget < 0:
            insert = False  # too many shifts (a row in ascending order): select instead
    if bad or m == -np.inf:
        nan = to_compute(probs, np.nan)
        for p in range(k):
            idx[i, p] = p
            store2(probs, i, p, nan)
        return
    if not insert:
        _select_row(x, i, k, idx)
    mc = to_compute(x, m)
    inv = 1.0 / s
    for p in range(k):
        e = math.exp(np.float64(load2(x, i, idx[i, p]) - mc))
        store2(probs, i, p, to_compute(probs, e * inv))
