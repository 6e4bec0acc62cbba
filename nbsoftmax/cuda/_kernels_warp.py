"""Warp-per-row kernels for short rows (up to 1024 elements): the row lives in registers.

The array is a flat C-contiguous ``(rows, n)`` buffer. Aligned groups of ``width`` lanes
(a power of two <= 32) share one row, so a warp takes ``32 // width`` rows when they are
tiny (n <= 16 gives 2 or more rows per warp, as in PyTorch's persistent softmax and
OneFlow's thread groups). Each lane holds ``items`` elements, strided by ``width`` so that
a warp's loads are coalesced; ``items`` is a compile-time constant so the loops unroll and
the values stay in registers (checked: no ``.local`` in the PTX for sm_90). Reductions are
butterfly shuffles, so every lane ends with the row's statistics and writes its own elements:
one read and one write per element (``nbsoftmax.cuda.verify`` counts the loads and stores
in the SASS and gates them in CI).

Indexing: a lane's first element ``row * n + lane`` is computed once in 64 bits; each next
element adds ``width`` to an unsigned index (no negative-index wraparound, no 64-bit
multiply per element) and the column number is unsigned 32-bit. The running max ignores
NaN (one ``FMNMX``, not a NaN-keeping compare and select): a NaN makes its exp, so the row's
sum and every result, NaN anyway. A non-finite row max makes the scale NaN, so each element
has one predicated store. ``python -m nbsoftmax.cuda.verify
--metrics`` prints the SASS instructions and global accesses per element.

Lanes of rows past the end still take part in the shuffles (full-mask shuffles need the
whole warp) and return only afterwards.
"""

import math

import numpy as np

from ._intrinsics import group_max, group_sum
from ._ops import LOG_SOFTMAX_BACKWARD, SOFTMAX, SOFTMAX_BACKWARD
from ._runtime import cuda

_U32 = np.uint32
_U64 = np.uint64


def warp_forward(op, items, compute):
    """softmax / log_softmax kernel ``(x, out, rows, n, width)``."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)

    def kernel(x, out, rows, n, width):
        w = _U32(width)
        cols = _U32(n)
        lane = _U32(cuda.threadIdx.x) & _U32(w - _U32(1))  # width is a power of two
        row = _U32(_U32(cuda.blockIdx.x) * _U32(cuda.blockDim.x) + _U32(cuda.threadIdx.x)) // w
        active = row < _U32(rows)
        # 64-bit row start, once per thread; per element an unsigned (no wraparound) offset
        first = _U64(row) * _U64(n) + _U64(lane)
        stride = _U64(width)
        limit = cols if active else _U32(0)  # padding rows load nothing
        vals = cuda.local.array(items, compute)
        m = neg_inf
        k = first
        j = lane
        for t in range(items):
            v = neg_inf
            if j < limit:
                v = compute(x[k])
            vals[t] = v
            m = max(m, v)  # drops a NaN, which then makes the sum (so the row) NaN
            k += stride
            j = _U32(j + w)
        m = group_max(m, width)
        # A row of -inf (or a padding row) has no shift; this avoids -inf - -inf, which is
        # harmless on a GPU but an error under the simulator's NumPy scalars.
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
        # a NaN or infinite max makes the row NaN: through the scale, one store per element
        if op == SOFTMAX:
            scale = compute(1.0 / total) if math.isfinite(m) else nan
        else:
            scale = compute(math.log(total)) if math.isfinite(m) else nan
        k = first
        j = lane
        for t in range(items):
            if op == SOFTMAX:
                r = vals[t] * scale
            else:
                r = (vals[t] - shift) - scale
            if j < cols:
                out[k] = r
            k += stride
            j = _U32(j + w)

    kernel.__qualname__ = kernel.__name__ = f"warp_forward_op{op}_items{items}"
    return kernel


def warp_backward(op, items, compute):
    """softmax_backward / log_softmax_backward kernel ``(g, y, out, rows, n, width)``."""
    zero = compute(0.0)

    def kernel(g, y, out, rows, n, width):
        w = _U32(width)
        cols = _U32(n)
        lane = _U32(cuda.threadIdx.x) & _U32(w - _U32(1))
        row = _U32(_U32(cuda.blockIdx.x) * _U32(cuda.blockDim.x) + _U32(cuda.threadIdx.x)) // w
        active = row < _U32(rows)
        first = _U64(row) * _U64(n) + _U64(lane)
        stride = _U64(width)
        limit = cols if active else _U32(0)
        gv = cuda.local.array(items, compute)
        yv = cuda.local.array(items, compute)
        acc = zero
        k = first
        j = lane
        for t in range(items):
            gi = zero
            yi = zero
            if j < limit:
                gi = compute(g[k])
                yi = compute(y[k])
            k += stride
            j = _U32(j + w)
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
        k = first
        j = lane
        for t in range(items):
            if op == LOG_SOFTMAX_BACKWARD:
                r = gv[t] - math.exp(yv[t]) * d
            else:
                r = yv[t] * (gv[t] - d)
            if j < cols:
                out[k] = r
            k += stride
            j = _U32(j + w)

    kernel.__qualname__ = kernel.__name__ = f"warp_backward_op{op}_items{items}"
    return kernel
