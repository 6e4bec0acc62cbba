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

Sums (``_sums``) are float32 (compute type) partial sums over blocks of ``BLOCK`` elements, so
that the inner loop vectorises, totalled in float64 with Neumaier compensation: rows of 50M
float32 elements still sum to 1 within 1e-7.
"""

import math

import numpy as np
from numba import njit

# Re-exported: the kernels of other modules read these as _slices names.
from ._lse_stats import combine_lse, logsumexp_slice, lse_stats, lse_value  # noqa: F401
from ._math import (
    compute_neg_inf,
    compute_zero,
    exp_,
    fmaximum,
    sum_block,
    load2,
    store2,
    to_compute,
)
from ._sums import (  # noqa: F401
    BLOCK,
    ONLINE_BLOCKS,
    REDUCE,
    _block_exp_store_sum,
    _block_max,
    _neumaier_add,
    combine_stats,
    dot_range,
    exp_store_sum,
    exp_sum,
    exp_sum_range,
    online_stats,
    total_range,
)

LONG_ROW_BYTES = 4 << 20

# Loops over j in range(b0, b1) run on unsigned indices: with a signed j whose sign LLVM
# cannot prove (b0 comes from an outer loop), Numba's negative-index wraparound blocks
# vectorisation, and exp+store+sum over 4096 x 1000 float32 took 5.4 ms instead of 0.7 ms.


@njit(fastmath=REDUCE, error_model="numpy")
def slice_max(x, i):
    m = compute_neg_inf(x)
    for j in range(x.shape[1]):
        m = fmaximum(m, load2(x, i, j))
    return m


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
