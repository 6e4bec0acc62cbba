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
   loss and gradient for its row: the kernel cannot raise (the host path checks first and
   raises ValueError, as the CPU path). So does a row whose max logit is not finite.
3. ``total`` (one block): the sum of ``losses`` into ``out[0]`` in the result dtype.

``probs``, ``weighted`` and ``with_grad`` are compile-time constants.
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._kernels_scaled import scaled_gradient, scaled_key, scaled_value
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
    """Kernel ``(x, target, weight, factor, losses, grad, rows, n, scaling, eps, ignore)``;
    ``weight`` unused when not weighted, ``grad`` unused without with_grad; ``scaling`` the
    tuple of ``_kernels_scaled`` (``(1, 1, 0, 1)`` without a temperature); ``ignore`` is
    ``(ignore_index, active)``: inactive for unsigned targets and a negative ignore_index,
    whose wrapped int64 values (uint64 ``2**64 - 100`` as -100) must read as out of range.

    As the CPU kernels (``cpu._xent``), everything comes from ``v = (x - max) / T`` and
    ``log s``, never from ``x / T - lse``; a row with a NaN or +inf logit, or only -inf, has
    a NaN loss and an all-NaN gradient row."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)
    value = scaled_value(compute)
    wide = scaled_value(compute, wide=True)
    key = scaled_key(compute)
    gradient = scaled_gradient(compute)

    def kernel(x, target, weight, factor, losses, grad, rows, n, scaling, eps, ignore):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        r = factor[0]
        wsum = factor[1]
        keep = compute(1.0 - eps)
        eps_n = compute(eps / n)
        ignore_index, ignoring = ignore
        for row in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
            base = row * n
            t = 0
            if not probs:
                t = target[row]
                if ignoring != 0 and t == ignore_index:
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
                m = nan_max(m, key(compute(x[base + j]), scaling))
            row_max = block_max(np.float64(m), scratch)
            if not math.isfinite(row_max):  # the same for every thread: no barrier skipped
                if tid == 0:
                    losses[row] = _F64_NAN
                if with_grad:
                    for j in range(tid, n, threads):
                        grad[base + j] = nan
                continue
            m = compute(row_max)
            se = zero
            sv = _F64_ZERO
            sq = zero
            for j in range(tid, n, threads):
                xv = compute(x[base + j])
                se += math.exp(value(xv, m, scaling))
                if probs:
                    q = compute(target[base + j]) * keep + eps_n
                    if weighted:
                        q *= compute(weight[j])
                    sv += np.float64(q) * wide(xv, m, scaling)
                    sq += q
                elif eps != 0.0:
                    v = wide(xv, m, scaling)
                    sv += v * weight[j] if weighted else v
            vt = _F64_ZERO
            if not probs:  # read before the barriers: in place, other threads write grad next
                vt = np.float64(wide(compute(x[base + t]), m, scaling))
            total = block_sum(np.float64(se), scratch)
            log_s = math.log(total)
            sum_v = block_sum(sv, scratch)
            if probs:
                sum_q = block_sum(np.float64(sq), scratch)
                loss = -(sum_v - sum_q * log_s)
                a = sum_q
            else:
                wt = np.float64(weight[t]) if weighted else _F64_ONE
                loss = -(1.0 - eps) * wt * (vt - log_s)
                if eps != 0.0:
                    loss -= eps / n * (sum_v - wsum * log_s)
                a = (1.0 - eps) * wt + eps / n * wsum
            if tid == 0:
                losses[row] = loss * r
            if with_grad:
                inv = compute(1.0 / total)
                a_c = compute(a * r)
                rc = compute(r)
                for j in range(tid, n, threads):
                    p = math.exp(value(compute(x[base + j]), m, scaling)) * inv
                    if probs:
                        q = compute(target[base + j]) * keep + eps_n
                        if weighted:
                            q *= compute(weight[j])
                        grad[base + j] = gradient(p * a_c - rc * q, scaling)
                    else:
                        b = eps_n
                        if weighted:
                            b *= compute(weight[j])
                        if j == t:
                            b += keep * (compute(weight[t]) if weighted else compute(1.0))
                        grad[base + j] = gradient(p * a_c - rc * b, scaling)

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
