"""Device functions for your own ``@cuda.jit`` kernels: one row done by one warp or one block.

The numerics of the library's warp and block kernels (``_kernels_warp``, ``_kernels_block``):
max with NaN propagation, ``exp(x - max)`` in the row's precision (float32 or float64),
per-thread partial sums in that precision totalled across threads in float64 by shuffles
(and, for a block, a shared float64 scratch of ``SCRATCH_SIZE`` entries), results rounded
once to the row's type. A row holding NaN or +inf, or made only of -inf, is NaN throughout;
an empty row's logsumexp is -inf.

Rules of use (those of the shuffles and barriers inside):

- ``warp_*``: every lane of the warp calls with the same row (lane = ``threadIdx.x % 32``);
  blocks are 1-D with ``blockDim.x`` a multiple of 32.
- ``block_*``: every thread of the (1-D) block calls with the same row and the block's
  ``scratch = cuda.shared.array(SCRATCH_SIZE, numba.float64)`` (``from
  nbsoftmax.cuda.device import SCRATCH_SIZE``: numba-cuda takes a shape from an imported
  name as a constant, not from ``device.SCRATCH_SIZE``); ``blockDim.x`` a multiple of 32.
- ``row_in`` and ``row_out`` are 1-D arrays (any stride: ``x[i]``, ``x[a:b]``, ``x[:, j]``)
  of the same float type; ``row_out`` may be ``row_in`` itself. ``n`` entries are used.

Example (see the README for a complete one)::

    @cuda.jit
    def rows_softmax(x, out):          # one warp per row
        row = (cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x) // 32
        if row < x.shape[0]:           # the same for every lane of a warp
            device.warp_softmax(x[row], out[row], x.shape[1])
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, WARP_SIZE, block_max, block_sum, group_max, group_sum, nan_max
from ._runtime import SIMULATOR, cuda, device_function

__all__ = ["warp_softmax", "warp_log_softmax", "warp_logsumexp", "block_softmax",
           "block_log_softmax", "block_logsumexp", "SCRATCH_SIZE"]

SCRATCH_SIZE = MAX_WARPS  # float64 entries of the block functions' shared scratch


def _like(a, v):
    """v converted to array a's element type (the simulator runs this Python function)."""
    return a.dtype.type(v)


if cuda is not None and not SIMULATOR:
    from numba.cuda.extending import overload

    @overload(_like, target="cuda")
    def _like_overload(a, v):
        dtype = a.dtype
        return lambda a, v: dtype(v)


# ------------------------------------------------------------------ statistics


@device_function
def _lane_max(row, n, first, step):
    m = _like(row, -math.inf)
    for j in range(first, n, step):
        m = nan_max(m, row[j])
    return m


@device_function
def _lane_sum(row, n, first, step, m):
    """This thread's sum of exp(row - m), in the row's precision (0 where m is not finite)."""
    s = _like(row, 0.0)
    if math.isfinite(m):
        for j in range(first, n, step):
            s += math.exp(row[j] - m)
    return s


@device_function
def _lane_lse_sums(row, n, first, step, m):
    """This thread's (sum of exp(row - m) over the entries below m, in the row's precision;
    count of entries equal to m): the log1p form's r and c ((0, 0) where m is not finite)."""
    r = _like(row, 0.0)
    c = 0
    if math.isfinite(m):
        for j in range(first, n, step):
            v = row[j]
            if v < m:
                r += math.exp(v - m)
            else:
                c += 1
    return r, np.float64(c)


@device_function
def _warp_stats(row, n):
    """(max in the row's type, float64 sum of exp(row - max)), the same on every lane."""
    lane = cuda.threadIdx.x % WARP_SIZE
    m = group_max(_lane_max(row, n, lane, WARP_SIZE), WARP_SIZE)
    total = group_sum(np.float64(_lane_sum(row, n, lane, WARP_SIZE, m)), WARP_SIZE)
    return m, total


@device_function
def _block_stats(row, n, scratch):
    tid = cuda.threadIdx.x
    step = cuda.blockDim.x
    m = _like(row, block_max(_lane_max(row, n, tid, step), scratch))
    total = block_sum(np.float64(_lane_sum(row, n, tid, step, m)), scratch)
    return m, total


# ------------------------------------------------------------------ writes


@device_function
def _fill_nan(row_out, n, first, step):
    nan = _like(row_out, math.nan)
    for j in range(first, n, step):
        row_out[j] = nan


@device_function
def _write_softmax(row_in, row_out, n, first, step, m, total):
    if not math.isfinite(m):
        _fill_nan(row_out, n, first, step)
        return
    inv = _like(row_out, 1.0 / total)
    for j in range(first, n, step):
        row_out[j] = math.exp(row_in[j] - m) * inv


@device_function
def _write_log_softmax(row_in, row_out, n, first, step, m, total):
    if not math.isfinite(m):
        _fill_nan(row_out, n, first, step)
        return
    log_s = _like(row_out, math.log(total))
    for j in range(first, n, step):
        row_out[j] = (row_in[j] - m) - log_s


# logsumexp in the log1p form of the dense kernels (cpu._slices, cuda._kernels_lse): with c
# the count of entries equal to the max m and r the sum of exp(x - m) over the others, the
# value is m + log1p((c - 1) + r), which keeps relative precision near 0 ([0, -40] gives
# 4.2e-18 where m + log(c + r) gives 0.0: 1 + 4e-18 rounds to 1).


@device_function
def _lse_value(m, r, c):
    m64 = np.float64(m)
    if not math.isfinite(m64):
        return m64  # NaN stays NaN; +inf; all -inf or empty: -inf
    return m64 + math.log1p((c - np.float64(1.0)) + r)


@device_function
def _warp_lse(row, n):
    lane = cuda.threadIdx.x % WARP_SIZE
    m = group_max(_lane_max(row, n, lane, WARP_SIZE), WARP_SIZE)
    # (every lane shuffles, whatever m: the simulator's shuffles meet at block barriers)
    r, c = _lane_lse_sums(row, n, lane, WARP_SIZE, m)
    return _lse_value(m, group_sum(np.float64(r), WARP_SIZE), group_sum(c, WARP_SIZE))


@device_function
def _block_lse(row, n, scratch):
    tid = cuda.threadIdx.x
    step = cuda.blockDim.x
    m = _like(row, block_max(_lane_max(row, n, tid, step), scratch))
    r, c = _lane_lse_sums(row, n, tid, step, m)
    return _lse_value(m, block_sum(np.float64(r), scratch), block_sum(c, scratch))


# ------------------------------------------------------------------ public


@device_function
def warp_softmax(row_in, row_out, n):
    """row_out[:n] = softmax(row_in[:n]), by the 32 lanes of one warp."""
    m, total = _warp_stats(row_in, n)
    _write_softmax(row_in, row_out, n, cuda.threadIdx.x % WARP_SIZE, WARP_SIZE, m, total)


@device_function
def warp_log_softmax(row_in, row_out, n):
    """row_out[:n] = log_softmax(row_in[:n]), by the 32 lanes of one warp."""
    m, total = _warp_stats(row_in, n)
    _write_log_softmax(row_in, row_out, n, cuda.threadIdx.x % WARP_SIZE, WARP_SIZE, m, total)


@device_function
def warp_logsumexp(row_in, n):
    """logsumexp(row_in[:n]) as float64, returned to every lane of the warp."""
    return _warp_lse(row_in, n)


@device_function
def block_softmax(row_in, row_out, n, scratch):
    """row_out[:n] = softmax(row_in[:n]), by every thread of the block."""
    m, total = _block_stats(row_in, n, scratch)
    _write_softmax(row_in, row_out, n, cuda.threadIdx.x, cuda.blockDim.x, m, total)


@device_function
def block_log_softmax(row_in, row_out, n, scratch):
    """row_out[:n] = log_softmax(row_in[:n]), by every thread of the block."""
    m, total = _block_stats(row_in, n, scratch)
    _write_log_softmax(row_in, row_out, n, cuda.threadIdx.x, cuda.blockDim.x, m, total)


@device_function
def block_logsumexp(row_in, n, scratch):
    """logsumexp(row_in[:n]) as float64, returned to every thread of the block."""
    return _block_lse(row_in, n, scratch)
