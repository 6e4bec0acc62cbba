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
    sum_block,
    load2,
    select,
    store2,
    to_compute,
)

BLOCK = 512  # float32/float16; float64 sums in blocks of 128 (see _math.sum_block)
ONLINE_BLOCKS = 32  # summing blocks per step of online_stats
LONG_ROW_BYTES = 4 << 20

# Loops over j in range(b0, b1) run on unsigned indices: with a signed j whose sign LLVM
# cannot prove (b0 comes from an outer loop), Numba's negative-index wraparound blocks
# vectorisation, and exp+store+sum over 4096 x 1000 float32 took 5.4 ms instead of 0.7 ms.

# Reductions only vectorise when LLVM may reorder them; 'nnan'/'ninf' are left out on purpose
# (full fastmath turned NaN rows into finite wrong ones), and these four were measured as
# fast as full fastmath.
REDUCE = {"reassoc", "contract", "nsz", "arcp"}


@njit(fastmath=REDUCE, error_model="numpy")
def slice_max(x, i):
    m = compute_neg_inf(x)
    for j in range(x.shape[1]):
        m = fmaximum(m, load2(x, i, j))
    return m


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


@njit(error_model="numpy")
def fill_nan_range(out, i, b0, b1):
    nan = to_compute(out, np.nan)
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(out, i, j, nan)


@njit(error_model="numpy")
def fill_nan(out, i):
    fill_nan_range(out, i, 0, out.shape[1])


@njit(error_model="numpy")
def _scale(out, i, inv):
    for j in range(out.shape[1]):
        store2(out, i, j, load2(out, i, j) * inv)


@njit(error_model="numpy")
def write_softmax(x, out, i, m, inv, b0, b1):
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(out, i, j, exp_(load2(x, i, j) - m) * inv)


@njit(error_model="numpy")
def write_softmax_inplace(a, i, m, inv, b0, b1):
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(a, i, j, exp_(load2(a, i, j) - m) * inv)


@njit(error_model="numpy")
def write_log_softmax_inplace(a, i, m, log_s, b0, b1):
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(a, i, j, (load2(a, i, j) - m) - log_s)


@njit(error_model="numpy")
def same_memory(x, out):
    """Whether out is x itself (in place): the dispatcher passes either that or disjoint arrays.

    LLVM guards each vectorised loop reading x and writing out with a runtime overlap check;
    in place it fails, the loop runs scalar, and a sum taken in that loop is then a plain
    sequential float32 sum (1.8x the float32 accuracy bound on 1000 repeated values). In
    place, the kernels therefore sum in read-only loops and write through one array.
    """
    return x.ctypes.data == out.ctypes.data


@njit(error_model="numpy")
def write_log_softmax(x, out, i, m, log_s, b0, b1):
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(out, i, j, (load2(x, i, j) - m) - log_s)


@njit(error_model="numpy")
def is_long(x):
    """Rows whose input and output no longer share L2 (1 MiB a core here) take two passes
    over memory (online max+sum, then recompute exp while writing) instead of three (max,
    exp+store+sum, scale), whose last two would then miss the cache: 3 accesses per element
    instead of 5."""
    return x.shape[1] * x.itemsize > LONG_ROW_BYTES


@njit(fastmath=REDUCE, error_model="numpy")
def softmax_one_block(x, out, i):
    """softmax_slice for a row of at most one summing block, in one function called straight
    from the driver loop: each level of calls with array arguments costs ~15 ns a row here,
    as much as the work (serial, float32, 2M elements: 128 columns 16.3 -> 22.4 GB/s, 256
    columns 22.9 -> 28.8 GB/s)."""
    n = x.shape[1]
    m = compute_neg_inf(x)
    for j in range(n):
        m = fmaximum(m, load2(x, i, j))
    if not math.isfinite(m):
        fill_nan(out, i)
        return
    s = compute_zero(x)
    for j in range(n):
        e = exp_(load2(x, i, j) - m)
        store2(out, i, j, e)
        s += e
    inv = to_compute(out, 1.0 / np.float64(s))
    for j in range(n):
        store2(out, i, j, load2(out, i, j) * inv)


@njit(error_model="numpy")
def fits_one_block(x):
    return x.shape[1] <= sum_block(x)


@njit(error_model="numpy")
def softmax_slice(x, out, i):
    """The common case: a row that fits in cache, out not x, float32/float64 storage."""
    m = slice_max(x, i)
    # max is NaN (a NaN present), +inf (the slice is NaN by convention) or -inf (every
    # entry -inf, or an empty slice): the whole slice is NaN, as in scipy and torch.
    if not math.isfinite(m):
        fill_nan(out, i)
        return
    s = exp_store_sum(x, i, m, out)
    _scale(out, i, to_compute(out, 1.0 / s))


@njit(error_model="numpy")
def softmax_slice_general(x, out, i):
    """Long rows, in place or float16: exp is recomputed while writing (one pass over memory
    less for long rows, one rounding for float16, a read-only summing loop in place: see
    same_memory). Kept apart from softmax_slice so that the common kernel compiles alone:
    1.5 s instead of 3.0 s serial, 2.9 s instead of 6.2 s parallel, measured here."""
    n = x.shape[1]
    if is_long(x):
        m64, s = online_stats(x, i, 0, n)
        m = to_compute(x, m64)
    else:
        m = slice_max(x, i)
        s = exp_sum(x, i, m) if math.isfinite(m) else 0.0
    if not math.isfinite(m):
        fill_nan(out, i)
        return
    inv = to_compute(out, 1.0 / s)
    if same_memory(x, out):
        write_softmax_inplace(out, i, m, inv, 0, n)
    else:
        write_softmax(x, out, i, m, inv, 0, n)


@njit(error_model="numpy")
def log_softmax_slice(x, out, i):
    """The common case: a row that fits in cache, out not x."""
    m = slice_max(x, i)
    if not math.isfinite(m):
        fill_nan(out, i)
        return
    log_s = to_compute(out, math.log(exp_sum(x, i, m)))
    write_log_softmax(x, out, i, m, log_s, 0, x.shape[1])


@njit(error_model="numpy")
def log_softmax_slice_general(x, out, i):
    """Long rows or in place (see softmax_slice_general)."""
    if is_long(x):
        m64, s = online_stats(x, i, 0, x.shape[1])
        m = to_compute(x, m64)
    else:
        m = slice_max(x, i)
        s = exp_sum(x, i, m) if math.isfinite(m) else 0.0
    if not math.isfinite(m):
        fill_nan(out, i)
        return
    log_s = to_compute(out, math.log(s))
    if same_memory(x, out):
        write_log_softmax_inplace(out, i, m, log_s, 0, x.shape[1])
    else:
        write_log_softmax(x, out, i, m, log_s, 0, x.shape[1])


# logsumexp in the log1p form (SciPy's, gh-18295): with m the max, c the number of entries
# equal to it and r the sum of exp(x - m) over the others, log(sum(exp(x))) =
# m + log1p((c - 1) + r). Near 0 this keeps relative precision that m + log(c + r) loses:
# float64 [0, -40] is 4.248354255291589e-18, not 0.0 (1 + 4e-18 rounds to 1). r must be
# summed without the max entries, whose 1.0 would absorb the small terms (subtracting 1.0
# afterwards cannot bring them back), so the summing loop keeps two sums: exp(x - m) below
# m, and the count of entries at m (a select each, which vectorises).


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


@njit(error_model="numpy")
def write_softmax_backward(g, y, out, i, d, b0, b1):
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(out, i, j, load2(y, i, j) * (load2(g, i, j) - d))


@njit(error_model="numpy")
def write_log_softmax_backward(g, y, out, i, s, b0, b1):
    for j in range(np.uint64(b0), np.uint64(b1)):
        store2(out, i, j, load2(g, i, j) - exp_(load2(y, i, j)) * s)


@njit(error_model="numpy")
def softmax_backward_slice(g, y, out, i):
    n = g.shape[1]
    write_softmax_backward(g, y, out, i, to_compute(out, dot_range(g, y, i, 0, n)), 0, n)


@njit(error_model="numpy")
def log_softmax_backward_slice(g, y, out, i):
    n = g.shape[1]
    write_log_softmax_backward(g, y, out, i, to_compute(out, total_range(g, i, 0, n)), 0, n)
