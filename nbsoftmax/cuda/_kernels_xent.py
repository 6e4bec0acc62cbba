"""Cross-entropy kernels (the GPU twin of ``nbsoftmax.cpu._xent``; formulas there).

Logits arrive as a flat C-contiguous ``(rows, n)`` buffer (class axis last), targets as
int64 class indices ``(rows,)`` or class probabilities ``(rows, n)`` of the logits' dtype,
weights as float64 ``(n,)``. Three launches, no host round trip:

1. ``denominator`` (one block): the reduction factor ``r`` into ``factor[0]`` — 1 (sum,
   none), ``1 / rows`` (mean over probabilities) or ``1 / sum of kept targets' weights``
   (mean over class indices; NaN when nothing is kept, as torch's 0 / 0) — and the sum of
   the class weights ``W`` (n without weights) into ``factor[1]``.
2. ``rows`` (a block per row, grid-strided): max; exp-sum with the smoothing or target sums;
   the row's loss times ``r`` into ``losses[row]`` (float64); the gradient written directly
   (``with_grad``). A class index out of ``[0, n)`` (other than ``ignore_index``) gives a NaN
   loss and gradient for its row: the kernel cannot raise.
3. ``total`` (one block): the sum of ``losses`` into ``out[0]`` in the result dtype.

``probs``, ``weighted`` and ``with_grad`` are compile-time constants.
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._runtime import cuda

_F64_ZERO = np.float64(0.0)
_F64_ONE = np.float64(1.0)
_F64_NAN = np.float64(np.nan)

# reduction factor modes of `denominator`
FACTOR_ONE = 0
FACTOR_ROWS = 1
FACTOR_WEIGHTS = 2


def denominator(weighted):
    """Kernel ``(target, weight, factor, rows, n, ignore_index, mode)``; one block."""

    def kernel(target, weight, factor, rows, n, ignore_index, mode):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        acc = _F64_ZERO
        if mode == FACTOR_WEIGHTS:
            for i in range(cuda.threadIdx.x, rows, cuda.blockDim.x):
                t = target[i]
                if t != ignore_index and t >= 0 and t < n:
                    acc += weight[t] if weighted else _F64_ONE
        total = block_sum(acc, scratch)
        w = _F64_ZERO
        if weighted:
            for j in range(cuda.threadIdx.x, n, cuda.blockDim.x):
                w += weight[j]
        wsum = block_sum(w, scratch)
        if cuda.threadIdx.x == 0:
            factor[1] = wsum if weighted else np.float64(n)
            if mode == FACTOR_ONE:
                factor[0] = _F64_ONE
            elif mode == FACTOR_ROWS:
                factor[0] = _F64_ONE / np.float64(rows)
            elif total == _F64_ZERO:
                factor[0] = _F64_NAN
            else:
                factor[0] = _F64_ONE / total

    kernel.__qualname__ = kernel.__name__ = f"xent_denominator_w{int(weighted)}"
    return kernel


def rows_kernel(compute, probs, weighted, with_grad):
    """Kernel ``(x, target, weight, factor, losses, grad, rows, n, scale, eps, ignore_index)``;
    ``weight`` unused when not weighted, ``grad`` unused without with_grad."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)

    def kernel(x, target, weight, factor, losses, grad, rows, n, scale, eps, ignore_index):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        sc = compute(scale)
        r = factor[0]
        wsum = factor[1]
        keep = compute(1.0 - eps)
        eps_n = compute(eps / n)
        for row in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
            base = row * n
            t = 0
            if not probs:
                t = target[row]
                if t == ignore_index:
                    if tid == 0:
                        losses[row] = _F64_ZERO
                    if with_grad:
                        for j in range(tid, n, threads):
                            grad[base + j] = zero
                    continue
                if t < 0 or t >= n:
                    if tid == 0:
                        losses[row] = _F64_NAN
                    if with_grad:
                        for j in range(tid, n, threads):
                            grad[base + j] = nan
                    continue
            m = neg_inf
            for j in range(tid, n, threads):
                m = nan_max(m, compute(x[base + j]) * sc)
            row_max = block_max(np.float64(m), scratch)
            m = compute(row_max)
            shift = zero if row_max == -math.inf else m
            se = zero
            sx = zero
            sq = zero
            for j in range(tid, n, threads):
                v = compute(x[base + j]) * sc
                se += math.exp(v - shift)
                if probs:
                    q = compute(target[base + j]) * keep + eps_n
                    if weighted:
                        q *= compute(weight[j])
                    sx += q * v
                    sq += q
                elif eps != 0.0:
                    sx += v * compute(weight[j]) if weighted else v
            xt = _F64_ZERO
            if not probs:  # read before the barriers: in place, other threads write grad next
                xt = np.float64(compute(x[base + t]) * sc)
            total = block_sum(np.float64(se), scratch)
            lse = row_max + math.log(total) if math.isfinite(row_max) else row_max
            sum_x = block_sum(np.float64(sx), scratch)
            if probs:
                sum_q = block_sum(np.float64(sq), scratch)
                loss = -(sum_x - sum_q * lse)
                a = sum_q
            else:
                wt = np.float64(weight[t]) if weighted else _F64_ONE
                loss = -(1.0 - eps) * wt * (xt - lse)
                if eps != 0.0:
                    loss -= eps / n * (sum_x - wsum * lse)
                a = (1.0 - eps) * wt + eps / n * wsum
            if tid == 0:
                losses[row] = loss * r
            if with_grad:
                lse_c = compute(lse)
                a_c = compute(a * r * scale)
                rs = compute(r * scale)
                for j in range(tid, n, threads):
                    p = math.exp(compute(x[base + j]) * sc - lse_c)
                    if probs:
                        q = compute(target[base + j]) * keep + eps_n
                        if weighted:
                            q *= compute(weight[j])
                        grad[base + j] = p * a_c - rs * q
                    else:
                        b = eps_n
                        if weighted:
                            b *= compute(weight[j])
                        if j == t:
                            b += keep * (compute(weight[t]) if weighted else compute(1.0))
                        grad[base + j] = p * a_c - rs * b

    kernel.__qualname__ = kernel.__name__ = (
        f"xent_rows_p{int(probs)}_w{int(weighted)}_g{int(with_grad)}")
    return kernel


def total_kernel():
    """Kernel ``(losses, factor, out, rows)``: out[0] = sum(losses) (NaN if factor is NaN)."""

    def kernel(losses, factor, out, rows):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        acc = _F64_ZERO
        for i in range(cuda.threadIdx.x, rows, cuda.blockDim.x):
            acc += losses[i]
        total = block_sum(acc, scratch)
        if cuda.threadIdx.x == 0:
            if factor[0] != factor[0]:
                total = _F64_NAN
            out[0] = total

    kernel.__qualname__ = kernel.__name__ = "xent_total"
    return kernel
