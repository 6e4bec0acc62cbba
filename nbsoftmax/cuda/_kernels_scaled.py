"""Kernels with a temperature and an optional ``where`` mask (the GPU twin of
``nbsoftmax.cpu._scaled``, with the same conventions: see there).

One block per slice of the flat C-contiguous ``(outer, n, inner)`` array (slice ``s`` is
``o = s // inner``, ``c = s % inner``, elements ``o * n * inner + j * inner + c``); a block
strides over its slice three times (max and unmasked count; exp-sum; write), so any row
length and any ``inner`` work with one kernel. The plain calls keep their faster
warp/block/split kernels; these serve only calls with ``temperature=`` or ``where=``.
``mask`` is a flat uint8 array of x's size (a bool array's bytes); ``masked`` is a
compile-time constant, so the unmasked variant carries no mask loads.

``scaling`` is ``nbsoftmax.dispatch.temperature.kernel_scaling``'s tuple ``(sp, ih, il, post)``, or
``(sign, 1, 0, 1)`` without a temperature (then ``value`` is ``x * sign - max`` exactly as the
plain kernels round it). Every pass gets its exponent from the one device function of
``scaled_value`` — ``(x * sign - max) / T`` rounded once, any T > 0 (see ``_temperature``) —
so the passes agree to the bit whatever the compiler contracts into FMAs (the CPU kernels'
row sums of 1.04 with ``temperature=0.7``, issue 10 item 1, came from passes that did not).
The backward passes divide by T through ``scaled_gradient``, which cannot overflow spuriously.
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._ops import LOG_SOFTMAX_BACKWARD, LOGSUMEXP, SOFTMAX
from ._runtime import cuda, device_function

_F64_ZERO = np.float64(0.0)
_F64_ONE = np.float64(1.0)
_F64_INF = np.float64(np.inf)


def scaled_value(compute, wide=False):
    """Device function ``(xv, m, scaling) -> (xv * sign - m) / T`` in compute, rounded once
    (float32: through float64, which ``wide=True`` returns unrounded)."""
    if compute == np.float64:

        @device_function
        def value64(xv, m, scaling):
            sp, ih, il, post = scaling
            u = xv * sp  # exact: a sign or a power of two
            d = u - m
            bv = d - u  # TwoSum(u, -m): e is the exact rounding error of d
            av = d - bv
            e = (u - av) + ((-m) - bv)
            c = cuda.fma(d, il, e * ih)
            if not abs(c) < _F64_INF:  # d infinite, or e * ih overflowed (then so does d * ih)
                c = _F64_ZERO
            return cuda.fma(d, ih, c) * post

        return value64

    if wide:

        @device_function
        def wide32(xv, m, scaling):
            u = np.float32(xv * np.float32(scaling[0]))
            return (np.float64(u) - np.float64(m)) * scaling[1]

        return wide32

    @device_function
    def value32(xv, m, scaling):
        u = np.float32(xv * np.float32(scaling[0]))
        return np.float32((np.float64(u) - np.float64(m)) * scaling[1])

    return value32


def scaled_key(compute):
    """Device function ``(xv, scaling) -> xv * sign`` in compute (exact), the max's key."""

    @device_function
    def key(xv, scaling):
        return xv * compute(scaling[0])

    return key


def scaled_gradient(compute):
    """Device function ``(w, scaling) -> w / T`` in compute, without a spurious overflow."""
    if compute == np.float64:

        @device_function
        def grad64(w, scaling):
            return ((w * abs(scaling[0])) * scaling[1]) * scaling[3]

        return grad64

    @device_function
    def grad32(w, scaling):
        return np.float32(np.float64(w) * scaling[1])

    return grad32


def scaled_forward(op, compute, masked):
    """softmax / log_softmax / logsumexp kernel ``(x, mask, out, scaling, outer, n, inner)``;
    logsumexp writes one value per slice to ``out`` (it takes no temperature: its scaling
    is ``(1, 1, 0, 1)``)."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)
    value = scaled_value(compute)
    wide = scaled_value(compute, wide=True)
    key = scaled_key(compute)

    def kernel(x, mask, out, scaling, outer, n, inner):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        for s in range(cuda.blockIdx.x, outer * inner, cuda.gridDim.x):
            base = (s // inner) * n * inner + s % inner
            m = neg_inf
            count = _F64_ZERO
            for j in range(tid, n, threads):
                k = base + j * inner
                if not masked or mask[k] != 0:
                    count += _F64_ONE
                    m = nan_max(m, key(compute(x[k]), scaling))
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
                        acc += math.exp(value(compute(x[k]), m, scaling))
                total = block_sum(np.float64(acc), scratch)
            if op == LOGSUMEXP:
                if tid == 0:
                    out[s] = row_max + math.log(total) if finite else row_max
                continue
            if op == SOFTMAX:
                off = zero
                bad = zero if unmasked == _F64_ZERO else nan
                inv = compute(1.0 / total) if finite else zero
                log_s = _F64_ZERO
            else:
                off = neg_inf
                bad = neg_inf if unmasked == _F64_ZERO else nan
                inv = zero
                log_s = math.log(total) if finite else _F64_ZERO
            for j in range(tid, n, threads):
                k = base + j * inner
                if masked and mask[k] == 0:
                    out[k] = off
                elif not finite:
                    out[k] = bad
                elif op == SOFTMAX:
                    out[k] = math.exp(value(compute(x[k]), m, scaling)) * inv
                else:  # one rounding of v - log(s) (float32: v still in float64)
                    out[k] = compute(wide(compute(x[k]), m, scaling) - log_s)

    kernel.__qualname__ = kernel.__name__ = f"scaled_forward_op{op}_masked{int(masked)}"
    return kernel


def scaled_backward(op, compute, masked):
    """softmax_backward / log_softmax_backward kernel
    ``(g, y, mask, out, scaling, outer, n, inner)``."""
    zero = compute(0.0)
    gradient = scaled_gradient(compute)

    def kernel(g, y, mask, out, scaling, outer, n, inner):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
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
                    out[k] = gradient(compute(g[k]) - math.exp(compute(y[k])) * d, scaling)
                else:
                    out[k] = gradient(compute(y[k]) * (compute(g[k]) - d), scaling)

    kernel.__qualname__ = kernel.__name__ = f"scaled_backward_op{op}_masked{int(masked)}"
    return kernel
