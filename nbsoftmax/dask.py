"""nbsoftmax on Dask arrays: lazy softmax, log_softmax, logsumexp and the backward passes.

Install with ``pip install "nbsoftmax[dask]"``. Each function takes ``dask.array`` input of
any chunking and returns a lazy dask array equal to what the NumPy function returns on the
computed input (same dtype rules, axes and value conventions):

- When every softmax slice lies in one chunk (each softmax axis is a single chunk), each
  chunk goes through the nbsoftmax kernel (``map_blocks``): one pass, no extra memory.
- When the softmax axes are split across chunks, a two-pass reduction runs instead: each
  chunk is reduced to per-slice (max, sum of exp) pairs, the pairs are combined along the
  split axes, and a second pass over the chunks applies them (``nbsoftmax._blockstats``).
  The arithmetic of this path is NumPy in float64; its results equal the kernels' within
  their accuracy bounds. The input is read twice, so rechunking to whole slices
  (``x.rechunk({axis: -1})``) is faster when a slice fits in a chunk.

Chunks that are CuPy arrays run on the GPU: the nbsoftmax kernels dispatch CUDA arrays to
the GPU backend, and the two-pass path uses only NumPy functions, which CuPy implements.
(This is not covered by CI, which has no GPU.)

Examples
--------
>>> import dask.array as da
>>> import nbsoftmax.dask
>>> x = da.from_array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], chunks=(1, 2))
>>> nbsoftmax.dask.softmax(x, axis=1).compute().round(4)
array([[0.09  , 0.2447, 0.6652],
       [0.3333, 0.3333, 0.3333]])
"""

import dask.array as da
import numpy as np
from dask.array.utils import meta_from_array

import nbsoftmax

from . import _blockstats
from .dispatch import dtypes as _dtypes
from .dispatch.core import normalize_axes

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward"]


def _as_dask(x, name):
    if isinstance(x, da.Array):
        return x
    try:
        return da.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be converted to a dask array: {exc}") from exc


def _spans_chunks(x, axes):
    """Whether some softmax axis is split into several chunks."""
    return any(len(x.chunks[a]) > 1 for a in axes)


def _reduced_chunks(chunks, axes):
    return tuple((1,) * len(c) if a in axes else c for a, c in enumerate(chunks))


# ------------------------------------------------------------------ block functions
# Module-level functions (not lambdas): Dask pickles them to worker processes.


def _forward_block(block, op, axes, dtype):
    return getattr(nbsoftmax, op)(block, axis=axes, dtype=dtype)


def _logsumexp_block(block, axes, dtype):
    return nbsoftmax.logsumexp(block, axis=axes, keepdims=True).astype(dtype, copy=False)


def _backward_block(grad_output, output, op, axes):
    return getattr(nbsoftmax, op)(grad_output, output, axis=axes)


def _apply_block(block, top, total, op, dtype):
    return _blockstats.apply_stats(op, block, top, total, dtype)


def _softmax_backward_finish(grad_output, output, dot, dtype):
    g, y = grad_output.astype(np.float64), output.astype(np.float64)
    return (y * (g - dot)).astype(dtype, copy=False)


def _log_softmax_backward_finish(grad_output, output, total, dtype):
    g, y = grad_output.astype(np.float64), output.astype(np.float64)
    return (g - np.exp(y) * total).astype(dtype, copy=False)


# ------------------------------------------------------------------ the two-pass reduction


def _slice_stats(x, axes):
    """Per-slice (M, S) of the softmax over ``axes``: two dask arrays of x's shape with
    length 1 on ``axes`` and one chunk there, float64."""
    nd = x.ndim
    stats = x.map_blocks(
        _blockstats.block_stats, axes,
        chunks=_reduced_chunks(x.chunks, axes) + ((2,),), new_axis=nd,
        dtype=np.float64, meta=meta_from_array(x, nd + 1, np.float64),
    )
    stats = stats.rechunk({a: -1 for a in axes})
    combined = stats.map_blocks(
        _blockstats.combine_stats, axes,
        chunks=tuple((1,) if a in axes else c for a, c in enumerate(stats.chunks)),
        dtype=np.float64, meta=meta_from_array(x, nd + 1, np.float64),
    )
    return combined[..., 0], combined[..., 1]


def _two_pass(op, x, axes, dtype):
    top, total = _slice_stats(x, axes)
    if op == "logsumexp":
        return da.map_blocks(_apply_block, top, top, total, op, dtype, dtype=dtype,
                             meta=meta_from_array(x, x.ndim, dtype))
    return da.map_blocks(_apply_block, x, top, total, op, dtype, dtype=dtype,
                         meta=meta_from_array(x, x.ndim, dtype))


# ------------------------------------------------------------------ public functions


def _prepare(x, axis, dtype):
    x = _as_dask(x, "x")
    if dtype is not None:
        _dtypes.result_dtype(x.dtype)  # rejects complex, object, ... even when cast
        rdtype = _dtypes.requested_dtype(dtype)
    else:
        rdtype = _dtypes.result_dtype(x.dtype)
    return x, normalize_axes(axis, x.ndim), rdtype


def _forward(op, x, axis, dtype):
    x, axes, rdtype = _prepare(x, axis, dtype)
    if _spans_chunks(x, axes):
        return _two_pass(op, x, axes, rdtype)
    return x.map_blocks(_forward_block, op, axes, rdtype, dtype=rdtype,
                        meta=meta_from_array(x, x.ndim, rdtype))


def softmax(x, axis=-1, *, dtype=None):
    """Softmax of a dask array along ``axis``, lazily; see `nbsoftmax.softmax`.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input, of any chunking (NumPy or CuPy chunks).
    axis : int, tuple of ints or None, optional
        Axis or axes of the distribution (default: the last).
    dtype : {float16, float32, float64}, optional
        Cast ``x`` to this dtype first; the result has this dtype.

    Returns
    -------
    dask.array.Array
        Probabilities, chunked as ``x``.

    Raises
    ------
    numpy.exceptions.AxisError, ValueError, TypeError
        As `nbsoftmax.softmax`, when called (not when computed).
    """
    return _forward("softmax", x, axis, dtype)


def log_softmax(x, axis=-1, *, dtype=None):
    """Log-softmax of a dask array along ``axis``, lazily; see `nbsoftmax.log_softmax`.

    Parameters and errors as for `softmax`.

    Examples
    --------
    >>> import dask.array as da
    >>> import nbsoftmax.dask
    >>> x = da.from_array([1000.0, 1.0], chunks=1)
    >>> nbsoftmax.dask.log_softmax(x).compute()
    array([   0., -999.])
    """
    return _forward("log_softmax", x, axis, dtype)


def logsumexp(x, axis=-1, *, keepdims=False):
    """``log(sum(exp(x), axis))`` of a dask array, lazily; see `nbsoftmax.logsumexp`.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input, of any chunking.
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last).
    keepdims : bool, optional
        Keep the reduced axes with length 1.

    Returns
    -------
    dask.array.Array
        The reduced array (0-d for a full reduction).
    """
    x, axes, rdtype = _prepare(x, axis, None)
    if _spans_chunks(x, axes):
        result = _two_pass("logsumexp", x, axes, rdtype)
    else:
        result = x.map_blocks(_logsumexp_block, axes, rdtype,
                              chunks=_reduced_chunks(x.chunks, axes), dtype=rdtype,
                              meta=meta_from_array(x, x.ndim, rdtype))
    if not keepdims and axes:
        result = result.squeeze(axis=axes)
    return result


def _backward(op, grad_output, output, axis):
    g = _as_dask(grad_output, "grad_output")
    y = _as_dask(output, "output")
    if g.shape != y.shape:
        raise ValueError(
            f"grad_output has shape {g.shape} but output has shape {y.shape}; they must match"
        )
    rdtype = np.result_type(_dtypes.result_dtype(g.dtype, "grad_output"),
                            _dtypes.result_dtype(y.dtype, "output"))
    axes = normalize_axes(axis, g.ndim)
    if y.chunks != g.chunks:
        y = y.rechunk(g.chunks)
    meta = meta_from_array(g, g.ndim, rdtype)
    if not _spans_chunks(g, axes):
        return da.map_blocks(_backward_block, g, y, op, axes, dtype=rdtype, meta=meta)
    # Split slices: the per-slice sum is a plain float64 reduction, then one elementwise pass.
    g64 = g.astype(np.float64)
    if op == "softmax_backward":
        dot = (g64 * y.astype(np.float64)).sum(axis=axes, keepdims=True)
        return da.map_blocks(_softmax_backward_finish, g, y, dot, rdtype, dtype=rdtype,
                             meta=meta)
    total = g64.sum(axis=axes, keepdims=True)
    return da.map_blocks(_log_softmax_backward_finish, g, y, total, rdtype, dtype=rdtype,
                         meta=meta)


def softmax_backward(grad_output, output, axis=-1):
    """Gradient through softmax of dask arrays, lazily; see `nbsoftmax.softmax_backward`.

    Parameters
    ----------
    grad_output, output : dask.array.Array or array_like
        The upstream gradient and the softmax output, of the same shape (chunks may differ:
        ``output`` is rechunked like ``grad_output``).
    axis : int, tuple of ints or None, optional
        The axis or axes the softmax was taken over (default: the last).

    Returns
    -------
    dask.array.Array
        ``output * (grad_output - sum(grad_output * output, axis))``.
    """
    return _backward("softmax_backward", grad_output, output, axis)


def log_softmax_backward(grad_output, output, axis=-1):
    """Gradient through log_softmax of dask arrays, lazily; see
    `nbsoftmax.log_softmax_backward`.

    Parameters as for `softmax_backward`; returns
    ``grad_output - exp(output) * sum(grad_output, axis)``.
    """
    return _backward("log_softmax_backward", grad_output, output, axis)
