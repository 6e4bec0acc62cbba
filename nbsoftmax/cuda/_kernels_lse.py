"""logsumexp (with weights ``b``, a sign and a ``where`` mask) and its gradient on the GPU:
the twins of ``nbsoftmax.cpu._lse``, with the same semantics (see there).

Every GPU logsumexp runs here, so that all of them use the log1p form: with ``m`` the max of
the entries taking part, ``W`` the weights of the entries equal to it and ``R`` the sum of
``b * exp(x - m)`` over the others, the result is ``m + log|W| + log1p(R / W)`` (unweighted:
``m + log1p((c - 1) + R)``), which keeps relative precision near 0 (``[0, -40]`` gives
4.2e-18, not 0). One block per slice of the flat C-contiguous ``(outer, n, inner)`` array,
grid-strided, as ``_kernels_scaled``: a pass for the max, one for ``(R, W)`` (float64 sums),
and thread 0 combines them; the gradient kernel writes ``g * exp(x - m) / (c + R)``.
``weighted``, ``masked`` and ``signed`` are compile-time constants: a variant carries only
its own loads. Non-finite cases are decided without arithmetic on infinities (which the
simulator's NumPy scalars would report as errors).
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._runtime import cuda

_F64_ZERO = np.float64(0.0)
_F64_ONE = np.float64(1.0)
_F64_NAN = np.float64(np.nan)
_F64_INF = np.float64(np.inf)

BOUNDS = (512, 1)  # as the other grid-strided families (_variants.BOUNDS["scaled"])


@cuda.jit(device=True)
def _sign(v):
    if v > _F64_ZERO:
        return _F64_ONE
    if v < _F64_ZERO:
        return -_F64_ONE
    return v  # 0 or NaN


@cuda.jit(device=True)
def _combine(m, r, w, weighted):
    """(log|sum|, sign) from the row max m and the float64 sums r (below m) and w (at m)."""
    if m != m or r != r or w != w:
        return _F64_NAN, _F64_NAN
    if m == -_F64_INF:  # nothing, or only -inf entries: a sum of zeros (inf * 0: NaN)
        if math.isinf(w):
            return _F64_NAN, _F64_NAN
        return -_F64_INF, _F64_ZERO
    if m == _F64_INF:
        if w == _F64_ZERO:
            return _F64_NAN, _F64_NAN  # the +inf entries' weights cancel: inf - inf
        return _F64_INF, _sign(w)
    if not weighted:
        return m + math.log1p((w - _F64_ONE) + r), _F64_ONE
    if w == _F64_ZERO:
        if r == _F64_ZERO:
            return -_F64_INF, _F64_ZERO
        return m + math.log(abs(r)), _sign(r)
    if math.isinf(w):
        if math.isinf(r) and _sign(r) != _sign(w):
            return _F64_NAN, _F64_NAN
        return _F64_INF, _sign(w)
    q = r / w
    log_w = math.log(abs(w))
    if q > -_F64_ONE:
        return m + (log_w + math.log1p(q)), _sign(w)
    if q < -_F64_ONE:
        return m + (log_w + math.log1p(-2.0 - q)), -_sign(w)
    return -_F64_INF, _F64_ZERO


def lse_forward(compute, weighted, masked, signed):
    """Kernel ``(x, b, mask, out, sign, outer, n, inner)``: one value (and sign) per slice;
    ``b``/``mask``/``sign`` are placeholders in the variants without them."""
    neg_inf = compute(-np.inf)
    zero = compute(0.0)
    one = compute(1.0)

    def kernel(x, b, mask, out, sign, outer, n, inner):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        for s in range(cuda.blockIdx.x, outer * inner, cuda.gridDim.x):
            base = (s // inner) * n * inner + s % inner
            m = neg_inf
            for j in range(tid, n, threads):
                k = base + j * inner
                if (not masked or mask[k] != 0) and (not weighted or compute(b[k]) != zero):
                    m = nan_max(m, compute(x[k]))
            row_max = block_max(np.float64(m), scratch)
            mc = compute(row_max)
            r = _F64_ZERO
            w = _F64_ZERO
            if row_max == row_max:
                for j in range(tid, n, threads):
                    k = base + j * inner
                    wt = one
                    if weighted:
                        wt = compute(b[k])
                    if (not masked or mask[k] != 0) and wt != zero:
                        v = compute(x[k])
                        if v < mc:
                            e = compute(math.exp(v - mc))
                            if e != zero:  # (inf * 0 is NaN, as b * exp(x): kept so below)
                                r += np.float64(wt * e)
                            elif not math.isfinite(wt):
                                r += _F64_NAN
                        else:
                            w += np.float64(wt)
            r = block_sum(r, scratch)
            w = block_sum(w, scratch)
            if tid == 0:
                value, sg = _combine(row_max, r, w, weighted)
                if signed:
                    sign[s] = sg
                elif sg < _F64_ZERO:
                    value = _F64_NAN
                out[s] = value

    kernel.__qualname__ = kernel.__name__ = (
        f"lse_forward_w{int(weighted)}_m{int(masked)}_s{int(signed)}")
    return kernel


def lse_backward(compute, masked):
    """Kernel ``(g, x, mask, out, outer, n, inner)``: out = g[s] * exp(x - logsumexp(x)) over
    each slice s, 0 at masked entries; torch autograd's values where the max is not finite."""
    neg_inf = compute(-np.inf)
    pos_inf = compute(np.inf)
    zero = compute(0.0)
    nan = compute(np.nan)

    def kernel(g, x, mask, out, outer, n, inner):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        for s in range(cuda.blockIdx.x, outer * inner, cuda.gridDim.x):
            base = (s // inner) * n * inner + s % inner
            m = neg_inf
            for j in range(tid, n, threads):
                k = base + j * inner
                if not masked or mask[k] != 0:
                    m = nan_max(m, compute(x[k]))
            row_max = block_max(np.float64(m), scratch)
            mc = compute(row_max)
            finite = math.isfinite(row_max)
            acc = _F64_ZERO
            if finite:
                for j in range(tid, n, threads):
                    k = base + j * inner
                    if not masked or mask[k] != 0:
                        acc += np.float64(math.exp(compute(x[k]) - mc))
            total = block_sum(acc, scratch)
            inv = compute(1.0 / total) if finite else zero
            gi = compute(g[s])
            for j in range(tid, n, threads):
                k = base + j * inner
                if masked and mask[k] == 0:
                    out[k] = zero
                elif finite:
                    out[k] = gi * (compute(math.exp(compute(x[k]) - mc)) * inv)
                elif mc == pos_inf and x[k] != pos_inf and math.isfinite(gi):
                    out[k] = gi * zero  # exp(x - inf) = 0 below a +inf max
                else:
                    out[k] = nan  # at a +inf max (inf - inf), all -inf, NaN; inf * 0

    kernel.__qualname__ = kernel.__name__ = f"lse_backward_m{int(masked)}"
    return kernel
