"""Softmax of slices split across blocks: per-block (max, sum of exp), combined, then applied.

When a softmax slice does not lie in one block (a Dask chunk, a piece of a file), a first
pass reduces each block to the pair ``(m, s)``: ``m`` the block's maximum over the slice axes
and ``s = sum(exp(x - m))``. Pairs combine exactly as the kernels' online update does,
``M = max(m_i)``, ``S = sum(s_i * exp(m_i - M))``, and a second pass maps each block to
``exp(x - M) / S`` (log: ``(x - M) - log(S)``). Every term is ``exp`` of a value <= 0, so
nothing overflows, and ``x - M`` is formed from the input values themselves (not from a
rounded logsumexp), which keeps the relative error of each probability at a few ulps
whatever the magnitude of ``x``. The arithmetic is float64 for every input dtype; the
result is cast to the result dtype at the end.

The value conventions are the kernels': a slice with NaN is NaN (``np.max`` propagates it);
+inf in a slice makes its softmax NaN and its logsumexp +inf; -inf entries have probability
0, and a slice made only of -inf (or empty) has ``M = -inf``, softmax NaN, logsumexp -inf.

Only NumPy functions are used, on whatever arrays the blocks are: CuPy arrays take them
through ``__array_function__`` / ``__array_ufunc__`` and stay on the GPU.
"""

import numpy as np


def _finite_or_zero(m):
    return np.where(np.isfinite(m), m, 0.0)


def block_stats(x, axes):
    """(m, s) of one block over ``axes``, float64, kept dimensions, stacked on a new last axis."""
    if any(x.shape[a] == 0 for a in axes):
        shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
        m = np.full_like(x, -np.inf, dtype=np.float64, shape=shape)
        return np.stack([m, np.zeros_like(m)], axis=-1)
    t = x.astype(np.float64)  # the one block-sized temporary
    m = np.max(t, axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        t -= _finite_or_zero(m)
        np.exp(t, out=t)
    s = np.sum(t, axis=axes, keepdims=True)
    return np.stack([m, s], axis=-1)


def combine_stats(stats, axes):
    """Pairs stacked on the last axis, several along ``axes`` -> one pair per slice."""
    m, s = stats[..., 0], stats[..., 1]
    top = np.max(m, axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.sum(s * np.exp(m - _finite_or_zero(top)), axis=axes, keepdims=True)
    return np.stack([top, total], axis=-1)


def apply_stats(op, x, top, total, dtype):
    """The second pass: softmax, log_softmax or logsumexp of a block from its slices' (M, S)."""
    finite = np.isfinite(top)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if op == "logsumexp":
            return np.where(finite, top + np.log(total), top).astype(dtype, copy=False)
        t = x.astype(np.float64)  # the one block-sized temporary
        t -= np.where(finite, top, 0.0)
        if op == "softmax":
            np.exp(t, out=t)
            t /= total
        else:
            t -= np.log(total)
        t[np.broadcast_to(~finite, t.shape)] = np.nan
    return t.astype(dtype, copy=False)
