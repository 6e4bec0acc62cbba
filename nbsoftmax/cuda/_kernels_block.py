"""Block-per-row kernels for medium rows, and the split kernels for rows too long for a block.

The array is a flat C-contiguous ``(rows, n)`` buffer. Each thread holds ``items`` elements
(strided by the block size, so loads are coalesced) in registers, a compile-time constant
so the loops unroll and the values stay there. Each pass is its own compiled kernel (a
runtime phase argument made one kernel pay the registers of all phases: 64, the cap, for
every block kernel; compile-time phases need 24-48 at 4-8 items, sm_90):

- ``block_forward`` / ``block_backward`` (FUSED): block ``r`` takes row ``r`` whole; one
  read and one write per element (backward: two reads, one write).
- ``split_stats``: block ``b`` takes the chunk ``c = b % chunks`` (``chunk = threads *
  items`` columns) of row ``b // chunks`` and writes its float64 partial statistics to
  ``partials[2 * b + 0/1]`` (max and sum of exp(x - max); backward: the sum).
- ``merge_partials``: one block per row merges the row's ``chunks`` partials once, into
  ``partials[2 * row * chunks + 0/1]`` (before: every APPLY block re-merged all of its row's
  partials, +24% L2 traffic at 16 x 4M).
- ``split_apply``: re-reads its chunk and writes the results from the merged statistics.
  With STATS before it, two reads and one write per element for a row of any length, spread
  over ``rows * chunks`` blocks, so 16 rows of 4,000,000 still fill the GPU.

Indexing: a thread's first element ``row * n + c0 + tid`` is computed once in 64 bits; each
next element adds the block size to an unsigned (no negative-index wraparound) index, and
column numbers are unsigned 32-bit (``n < 2**32``). The softmax max ignores NaN (a NaN
makes the sum, hence the row, NaN; the partials' merge keeps NaN). A non-finite row
max makes the scale NaN: one store per element. Launch bounds (``_variants.BOUNDS``): FUSED
``(1024, 1)`` (64 registers: 50% occupancy at 1024 threads, more at fewer), the split
kernels ``(512, 2)`` (two 512-thread blocks per SM).
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._ops import LOG_SOFTMAX_BACKWARD, SOFTMAX, SOFTMAX_BACKWARD
from ._runtime import cuda

_F64_NEG_INF = np.float64(-np.inf)
_F64_ZERO = np.float64(0.0)
_U32 = np.uint32
_U64 = np.uint64


def block_forward(op, items, compute):
    """FUSED softmax / log_softmax kernel ``(x, out, rows, n)``: block r takes row r."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)

    def kernel(x, out, rows, n):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = _U32(cuda.threadIdx.x)
        threads = _U32(cuda.blockDim.x)
        cols = _U32(n)
        first = _U64(cuda.blockIdx.x) * _U64(n) + _U64(tid)
        vals = cuda.local.array(items, compute)
        m = neg_inf
        k = first
        j = tid
        for t in range(items):
            v = neg_inf
            if j < cols:
                v = compute(x[k])
            vals[t] = v
            if op == SOFTMAX:
                m = max(m, v)  # drops a NaN, which then makes the sum (so the row) NaN
            else:
                # log_softmax at 16 items spills 8-16 bytes with max() (64 registers)
                m = nan_max(m, v)
            k += _U64(threads)
            j = _U32(j + threads)
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
        # a NaN or infinite max makes the row NaN, through the scale
        if op == SOFTMAX:
            scale = compute(1.0 / total) if math.isfinite(m) else nan
        else:
            scale = compute(math.log(total)) if math.isfinite(m) else nan
        k = first
        j = tid
        for t in range(items):
            if op == SOFTMAX:
                r = vals[t] * scale
            else:
                r = (vals[t] - shift) - scale
            if j < cols:
                out[k] = r
            k += _U64(threads)
            j = _U32(j + threads)

    kernel.__qualname__ = kernel.__name__ = f"block_forward_op{op}_items{items}"
    return kernel


def block_backward(op, items, compute):
    """FUSED softmax_backward / log_softmax_backward kernel ``(g, y, out, rows, n)``."""
    zero = compute(0.0)

    def kernel(g, y, out, rows, n):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = _U32(cuda.threadIdx.x)
        threads = _U32(cuda.blockDim.x)
        cols = _U32(n)
        first = _U64(cuda.blockIdx.x) * _U64(n) + _U64(tid)
        gv = cuda.local.array(items, compute)
        yv = cuda.local.array(items, compute)
        acc = zero
        k = first
        j = tid
        for t in range(items):
            gi = zero
            yi = zero
            if j < cols:
                gi = compute(g[k])
                yi = compute(y[k])
            gv[t] = gi
            yv[t] = yi
            if op == SOFTMAX_BACKWARD:
                acc += gi * yi
            else:
                acc += gi
            k += _U64(threads)
            j = _U32(j + threads)
        d = compute(block_sum(np.float64(acc), scratch))
        k = first
        j = tid
        for t in range(items):
            if op == LOG_SOFTMAX_BACKWARD:
                r = gv[t] - math.exp(yv[t]) * d
            else:
                r = yv[t] * (gv[t] - d)
            if j < cols:
                out[k] = r
            k += _U64(threads)
            j = _U32(j + threads)

    kernel.__qualname__ = kernel.__name__ = f"block_backward_op{op}_items{items}"
    return kernel


def split_stats(op, items, compute):
    """STATS kernel: forward ``(x, partials, rows, n, chunk, chunks)``, backward
    ``(g, y, partials, rows, n, chunk, chunks)``; block b writes partials[2b], [2b + 1]."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    backward = op in (SOFTMAX_BACKWARD, LOG_SOFTMAX_BACKWARD)

    def forward(x, partials, rows, n, chunk, chunks):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        b = _U64(cuda.blockIdx.x)
        tid = _U32(cuda.threadIdx.x)
        threads = _U32(cuda.blockDim.x)
        c0 = (b % _U64(chunks)) * _U64(chunk)
        count = _U32(min(_U64(chunk), _U64(n) - c0))  # the last chunk may be short
        k = (b // _U64(chunks)) * _U64(n) + c0 + _U64(tid)
        vals = cuda.local.array(items, compute)
        m = neg_inf
        j = tid
        for t in range(items):
            v = neg_inf
            if j < count:
                v = compute(x[k])
            vals[t] = v
            m = max(m, v)  # drops a NaN, which then makes the sum (so the row) NaN
            k += _U64(threads)
            j = _U32(j + threads)
        m = compute(block_max(m, scratch))
        shift = zero if m == neg_inf else m
        s = zero
        for t in range(items):
            s += math.exp(vals[t] - shift)
        total = block_sum(np.float64(s), scratch)
        if tid == 0:
            partials[2 * b] = np.float64(m)
            partials[2 * b + 1] = total

    def backward_stats(g, y, partials, rows, n, chunk, chunks):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        b = _U64(cuda.blockIdx.x)
        tid = _U32(cuda.threadIdx.x)
        threads = _U32(cuda.blockDim.x)
        c0 = (b % _U64(chunks)) * _U64(chunk)
        count = _U32(min(_U64(chunk), _U64(n) - c0))
        k = (b // _U64(chunks)) * _U64(n) + c0 + _U64(tid)
        acc = zero
        j = tid
        for t in range(items):
            if j < count:
                if op == SOFTMAX_BACKWARD:
                    acc += compute(g[k]) * compute(y[k])
                else:
                    acc += compute(g[k])
            k += _U64(threads)
            j = _U32(j + threads)
        total = block_sum(np.float64(acc), scratch)
        if tid == 0:
            partials[2 * b] = total

    kernel = backward_stats if backward else forward
    kernel.__qualname__ = kernel.__name__ = f"split_stats_op{op}_items{items}"
    return kernel


def merge_partials(backward):
    """MERGE kernel ``(partials, rows, chunks)``: block r merges row r's partials into
    ``partials[2 * r * chunks + 0/1]`` (max and sum; backward: the sum in slot 0)."""

    def kernel(partials, rows, chunks):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        first = cuda.blockIdx.x * chunks
        if backward:
            acc = _F64_ZERO
            for c in range(tid, chunks, cuda.blockDim.x):
                acc += partials[2 * (first + c)]
            total = block_sum(acc, scratch)  # every read is done: its barrier orders them
            if tid == 0:
                partials[2 * first] = total
            return
        pm = _F64_NEG_INF
        for c in range(tid, chunks, cuda.blockDim.x):
            pm = nan_max(pm, partials[2 * (first + c)])
        row_max = block_max(pm, scratch)
        ps = _F64_ZERO
        if row_max != _F64_NEG_INF:
            for c in range(tid, chunks, cuda.blockDim.x):
                ps += partials[2 * (first + c) + 1] * math.exp(partials[2 * (first + c)] - row_max)
        total = block_sum(ps, scratch)
        if tid == 0:
            partials[2 * first] = row_max
            partials[2 * first + 1] = total

    kernel.__qualname__ = kernel.__name__ = f"merge_partials_b{int(backward)}"
    return kernel


def split_apply(op, items, compute):
    """APPLY kernel: forward ``(x, out, partials, rows, n, chunk, chunks)``, backward
    ``(g, y, out, partials, rows, n, chunk, chunks)``; reads the merged row statistics."""
    nan = compute(np.nan)
    zero = compute(0.0)
    backward = op in (SOFTMAX_BACKWARD, LOG_SOFTMAX_BACKWARD)

    def forward(x, out, partials, rows, n, chunk, chunks):
        b = _U64(cuda.blockIdx.x)
        tid = _U32(cuda.threadIdx.x)
        threads = _U32(cuda.blockDim.x)
        row = b // _U64(chunks)
        c0 = (b % _U64(chunks)) * _U64(chunk)
        count = _U32(min(_U64(chunk), _U64(n) - c0))
        k = row * _U64(n) + c0 + _U64(tid)
        row_max = partials[2 * row * _U64(chunks)]
        total = partials[2 * row * _U64(chunks) + _U64(1)]
        m = compute(row_max)
        finite = math.isfinite(m)
        shift = m if finite else zero
        if op == SOFTMAX:
            scale = compute(1.0 / total) if finite else nan
        else:
            scale = compute(math.log(total)) if finite else nan
        j = tid
        for t in range(items):
            if j < count:
                v = compute(x[k])
                # a non-finite row is NaN through the scale; min(., 0) (a no-op for a finite
                # max) keeps exp of a row with shift 0 from overflowing, an error under the
                # simulator's Python floats
                if op == SOFTMAX:
                    out[k] = math.exp(min(v - shift, zero)) * scale
                else:
                    out[k] = (v - shift) - scale
            k += _U64(threads)
            j = _U32(j + threads)

    def backward_apply(g, y, out, partials, rows, n, chunk, chunks):
        b = _U64(cuda.blockIdx.x)
        tid = _U32(cuda.threadIdx.x)
        threads = _U32(cuda.blockDim.x)
        row = b // _U64(chunks)
        c0 = (b % _U64(chunks)) * _U64(chunk)
        count = _U32(min(_U64(chunk), _U64(n) - c0))
        k = row * _U64(n) + c0 + _U64(tid)
        d = compute(partials[2 * row * _U64(chunks)])
        j = tid
        for t in range(items):
            if j < count:
                if op == LOG_SOFTMAX_BACKWARD:
                    out[k] = compute(g[k]) - math.exp(compute(y[k])) * d
                else:
                    out[k] = compute(y[k]) * (compute(g[k]) - d)
            k += _U64(threads)
            j = _U32(j + threads)

    kernel = backward_apply if backward else forward
    kernel.__qualname__ = kernel.__name__ = f"split_apply_op{op}_items{items}"
    return kernel
