"""Warp-per-row kernels for short rows (up to 1024 elements): the row lives in registers.

The array is a flat C-contiguous ``(rows, n)`` buffer. Aligned groups of ``width`` lanes
(a power of two <= 32) share one row, so a warp takes ``32 // width`` rows when they are
tiny (n <= 16 gives 2 or more rows per warp, as in PyTorch's persistent softmax and
OneFlow's thread groups). Each lane holds ``items`` elements, strided by ``width`` so that
a warp's loads are coalesced; ``items`` is a compile-time constant so the loops unroll and
the values stay in registers (checked: no ``.local`` in the PTX for sm_90). Reductions are
butterfly shuffles, so every lane ends with the row's statistics and writes its own elements:
one read and one write per element.

Lanes of rows past the end still take part in the shuffles (full-mask shuffles need the
whole warp) and return only afterwards.
"""

import math

import numpy as np

from ._intrinsics import group_max, group_sum, nan_max
from ._ops import LOG_SOFTMAX_BACKWARD, LOGSUMEXP, SOFTMAX, SOFTMAX_BACKWARD
from ._runtime import cuda


def warp_forward(op, items, compute):
    """softmax / log_softmax / logsumexp kernel ``(x, out, rows, n, width)``."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)

    def kernel(x, out, rows, n, width):
        tid = cuda.threadIdx.x
        lane = tid % width
        row = (cuda.blockIdx.x * cuda.blockDim.x + tid) // width
        active = row < rows
        base = row * n
        vals = cuda.local.array(items, compute)
        m = neg_inf
        for t in range(items):
            j = t * width + lane
            v = neg_inf
            if active and j < n:
                v = compute(x[base + j])
            vals[t] = v
            m = nan_max(m, v)
        m = group_max(m, width)
        # A row of -inf (or a padding row) has no shift; this avoids -inf - -inf, which is
        # harmless on a GPU but an error under the simulator's NumPy scalars.
        finite = math.isfinite(m)
        shift = zero if m == neg_inf else m
        s = zero
        for t in range(items):
            e = math.exp(vals[t] - shift)
            if op == SOFTMAX:
                vals[t] = e
            s += e
        total = group_sum(np.float64(s), width)
        if not active:
            return
        if op == LOGSUMEXP:
            if lane == 0:
                out[row] = np.float64(m) + math.log(total) if finite else np.float64(m)
            return
        if not finite:
            total = np.float64(1.0)
        if op == SOFTMAX:
            scale = compute(1.0 / total)
        else:
            scale = compute(math.log(total))
        for t in range(items):
            j = t * width + lane
            if j < n:
                if not finite:
                    out[base + j] = nan
                elif op == SOFTMAX:
                    out[base + j] = vals[t] * scale
                else:
                    out[base + j] = (vals[t] - m) - scale

    kernel.__qualname__ = kernel.__name__ = f"warp_forward_op{op}_items{items}"
    return kernel


def warp_backward(op, items, compute):
    """softmax_backward / log_softmax_backward kernel ``(g, y, out, rows, n, width)``."""
    zero = compute(0.0)

    def kernel(g, y, out, rows, n, width):
        tid = cuda.threadIdx.x
        lane = tid % width
        row = (cuda.blockIdx.x * cuda.blockDim.x + tid) // width
        active = row < rows
        base = row * n
        gv = cuda.local.array(items, compute)
        yv = cuda.local.array(items, compute)
        acc = zero
        for t in range(items):
            j = t * width + lane
            gi = zero
            yi = zero
            if active and j < n:
                gi = compute(g[base + j])
                yi = compute(y[base + j])
            gv[t] = gi
            yv[t] = yi
            if op == SOFTMAX_BACKWARD:
                acc += gi * yi
            else:
                acc += gi
        total = group_sum(np.float64(acc), width)
        if not active:
            return
        d = compute(total)
        for t in range(items):
            j = t * width + lane
            if j < n:
                if op == LOG_SOFTMAX_BACKWARD:
                    out[base + j] = gv[t] - math.exp(yv[t]) * d
                else:
                    out[base + j] = yv[t] * (gv[t] - d)

    kernel.__qualname__ = kernel.__name__ = f"warp_backward_op{op}_items{items}"
    return kernel
