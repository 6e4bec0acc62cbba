"""Block-per-row kernels for medium rows, and the split kernels for rows too long for a block.

The array is a flat C-contiguous ``(rows, n)`` buffer; the grid has ``rows * chunks_in_grid``
blocks, block ``b`` taking row ``b // chunks_in_grid`` and the columns
``[c * chunk, (c + 1) * chunk)`` of it with ``c = b % chunks_in_grid``. Each thread holds
``items`` elements (strided by the block size, so loads are coalesced) in registers, a
compile-time constant so they stay there; ``chunk = threads * items``.

``phase`` (uniform over the grid) selects what a block does with its chunk:

- FUSED: the chunk is the whole row; statistics and results in one kernel, one read and
  one write per element.
- STATS: write the chunk's partial statistics to ``partials[(row * chunks + c) * 2 + 0/1]``
  (float64 max and sum of exp(x - max); or the backward sum) and stop.
- APPLY: merge the row's ``chunks`` partials, re-read the chunk and write the results. With
  STATS before it this is two reads and one write per element for a row of any length,
  spread over ``rows * chunks`` blocks, so 16 rows of 4,000,000 still fill the GPU.
  logsumexp's APPLY grid has one block per row (``chunks_in_grid == 1``) and reads no
  input.

Launched with ``launch_bounds=(1024, 1)`` so a 1024-thread block always fits in the register
file (64 registers per thread); ``_launch._items_cap`` bounds ``items`` by the spills ptxas
reports at that budget.
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._ops import APPLY, FUSED, LOG_SOFTMAX_BACKWARD, LOGSUMEXP, SOFTMAX, SOFTMAX_BACKWARD, STATS
from ._runtime import cuda

_F64_NEG_INF = np.float64(-np.inf)
_F64_ZERO = np.float64(0.0)
_F64_ONE = np.float64(1.0)


def block_forward(op, items, compute):
    """softmax / log_softmax / logsumexp kernel ``(x, out, partials, rows, n, chunk, chunks, phase)``."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)

    def kernel(x, out, partials, rows, n, chunk, chunks, phase):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        chunks_in_grid = cuda.gridDim.x // rows
        row = cuda.blockIdx.x // chunks_in_grid
        c = cuda.blockIdx.x % chunks_in_grid
        c0 = c * chunk
        c1 = min(c0 + chunk, n)
        base = row * n
        vals = cuda.local.array(items, compute)
        m = neg_inf
        if phase != APPLY or op != LOGSUMEXP:
            for t in range(items):
                j = c0 + t * threads + tid
                v = neg_inf
                if j < c1:
                    v = compute(x[base + j])
                vals[t] = v
                m = nan_max(m, v)
        if phase == APPLY:
            first = row * chunks
            pm = _F64_NEG_INF
            for k in range(tid, chunks, threads):
                pm = nan_max(pm, partials[2 * (first + k)])
            row_max = block_max(pm, scratch)
            ps = _F64_ZERO
            if row_max != _F64_NEG_INF:
                for k in range(tid, chunks, threads):
                    ps += partials[2 * (first + k) + 1] * math.exp(partials[2 * (first + k)] - row_max)
            total = block_sum(ps, scratch)
            m = compute(row_max)
        else:
            m = compute(block_max(m, scratch))
            # No shift for a row of -inf: avoids -inf - -inf (an error under the simulator).
            shift = zero if m == neg_inf else m
            s = zero
            for t in range(items):
                e = math.exp(vals[t] - shift)
                if op == SOFTMAX:
                    vals[t] = e
                s += e
            total = block_sum(np.float64(s), scratch)
            if phase == STATS:
                if tid == 0:
                    partials[2 * (row * chunks + c)] = np.float64(m)
                    partials[2 * (row * chunks + c) + 1] = total
                return
        finite = math.isfinite(m)
        if op == LOGSUMEXP:
            if tid == 0:
                out[row] = np.float64(m) + math.log(total) if finite else np.float64(m)
            return
        if not finite:
            total = _F64_ONE
        if op == SOFTMAX:
            scale = compute(1.0 / total)
        else:
            scale = compute(math.log(total))
        for t in range(items):
            j = c0 + t * threads + tid
            if j < c1:
                if not finite:
                    out[base + j] = nan
                elif op == SOFTMAX:
                    if phase == FUSED:
                        out[base + j] = vals[t] * scale
                    else:
                        out[base + j] = math.exp(vals[t] - m) * scale
                else:
                    out[base + j] = (vals[t] - m) - scale

    kernel.__qualname__ = kernel.__name__ = f"block_forward_op{op}_items{items}"
    return kernel


def block_backward(op, items, compute):
    """softmax_backward / log_softmax_backward kernel ``(g, y, out, partials, rows, n, chunk, chunks, phase)``."""
    zero = compute(0.0)

    def kernel(g, y, out, partials, rows, n, chunk, chunks, phase):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        chunks_in_grid = cuda.gridDim.x // rows
        row = cuda.blockIdx.x // chunks_in_grid
        c = cuda.blockIdx.x % chunks_in_grid
        c0 = c * chunk
        c1 = min(c0 + chunk, n)
        base = row * n
        gv = cuda.local.array(items, compute)
        yv = cuda.local.array(items, compute)
        acc = zero
        for t in range(items):
            j = c0 + t * threads + tid
            gi = zero
            yi = zero
            if j < c1:
                gi = compute(g[base + j])
                yi = compute(y[base + j])
            gv[t] = gi
            yv[t] = yi
            if op == SOFTMAX_BACKWARD:
                acc += gi * yi
            else:
                acc += gi
        if phase == APPLY:
            partial = _F64_ZERO
            for k in range(tid, chunks, threads):
                partial += partials[2 * (row * chunks + k)]
            total = block_sum(partial, scratch)
        else:
            total = block_sum(np.float64(acc), scratch)
            if phase == STATS:
                if tid == 0:
                    partials[2 * (row * chunks + c)] = total
                return
        d = compute(total)
        for t in range(items):
            j = c0 + t * threads + tid
            if j < c1:
                if op == LOG_SOFTMAX_BACKWARD:
                    out[base + j] = gv[t] - math.exp(yv[t]) * d
                else:
                    out[base + j] = yv[t] * (gv[t] - d)

    kernel.__qualname__ = kernel.__name__ = f"block_backward_op{op}_items{items}"
    return kernel
