"""Kernels with a temperature scale and an optional ``where`` mask (the GPU twin of
``nbsoftmax.cpu._scaled``, with the same conventions: see there).

One block per slice of the flat C-contiguous ``(outer, n, inner)`` array (slice ``s`` is
``o = s // inner``, ``c = s % inner``, elements ``o * n * inner + j * inner + c``); a block
strides over its slice three times (max and unmasked count; exp-sum; write), so any row
length and any ``inner`` work with one kernel. The plain calls keep their faster
warp/block/split kernels; these serve only calls with ``temperature=`` or ``where=``.
``mask`` is a flat uint8 array of x's size (a bool array's bytes); ``masked`` is a
compile-time constant, so the temperature-only variant carries no mask loads.
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._ops import LOG_SOFTMAX_BACKWARD, LOGSUMEXP, SOFTMAX
from ._runtime import cuda

_F64_ZERO = np.float64(0.0)
_F64_ONE = np.float64(1.0)


def scaled_forward(op, compute, masked):
    """softmax / log_softmax / logsumexp kernel ``(x, mask, out, scale, outer, n, inner)``;
    logsumexp writes one value per slice to ``out``."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)

    def kernel(x, mask, out, scale, outer, n, inner):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        sc = compute(scale)
        for s in range(cuda.blockIdx.x, outer * inner, cuda.gridDim.x):
            base = (s // inner) * n * inner + s % inner
            m = neg_inf
            count = _F64_ZERO
            for j in range(tid, n, threads):
                k = base + j * inner
                if not masked or mask[k] != 0:
                    count += _F64_ONE
                    m = nan_max(m, compute(x[k]) * sc)
            row_max = block_max(np.float64(m), scratch)
            unmasked = block_sum(count, scratch)
            m = compute(row_max)
            finite = math.isfinite(row_max)
            total = _F64_ZERO
            if finite:
                acc = zero
                for j in range(tid, n, threads):
                    k = base + j * inner
                    if not masked or mask[k] != 0:
                        acc += math.exp(compute(x[k]) * sc - m)
                total = block_sum(np.float64(acc), scratch)
            if op == LOGSUMEXP:
                if tid == 0:
                    out[s] = row_max + math.log(total) if finite else row_max
                continue
            if op == SOFTMAX:
                off = zero
                bad = zero if unmasked == _F64_ZERO else nan
                inv = compute(1.0 / total) if finite else zero
            else:
                off = neg_inf
                bad = neg_inf if unmasked == _F64_ZERO else nan
                inv = compute(math.log(total)) if finite else zero
            for j in range(tid, n, threads):
                k = base + j * inner
                if masked and mask[k] == 0:
                    out[k] = off
                elif not finite:
                    out[k] = bad
                elif op == SOFTMAX:
                    out[k] = math.exp(compute(x[k]) * sc - m) * inv
                else:
                    out[k] = (compute(x[k]) * sc - m) - inv

    kernel.__qualname__ = kernel.__name__ = f"scaled_forward_op{op}_masked{int(masked)}"
    return kernel


def scaled_backward(op, compute, masked):
    """softmax_backward / log_softmax_backward kernel ``(g, y, mask, out, scale, outer, n, inner)``."""
    zero = compute(0.0)

    def kernel(g, y, mask, out, scale, outer, n, inner):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        sc = compute(scale)
        for s in range(cuda.blockIdx.x, outer * inner, cuda.gridDim.x):
            base = (s // inner) * n * inner + s % inner
            acc = zero
            for j in range(tid, n, threads):
                k = base + j * inner
                if not masked or mask[k] != 0:
                    if op == LOG_SOFTMAX_BACKWARD:
                        acc += compute(g[k])
                    else:
                        acc += compute(g[k]) * compute(y[k])
            d = compute(block_sum(np.float64(acc), scratch))
            for j in range(tid, n, threads):
                k = base + j * inner
                if masked and mask[k] == 0:
                    out[k] = zero
                elif op == LOG_SOFTMAX_BACKWARD:
                    out[k] = sc * (compute(g[k]) - math.exp(compute(y[k])) * d)
                else:
                    out[k] = sc * compute(y[k]) * (compute(g[k]) - d)

    kernel.__qualname__ = kernel.__name__ = f"scaled_backward_op{op}_masked{int(masked)}"
    return kernel

