"""Softmax over ragged segments: candidates per user, tokens per document, edges per node.

A segment is a run of entries of ``x`` along axis 0, given by CSR-style ``offsets``
(segment ``k`` is ``x[offsets[k]:offsets[k + 1]]``, the fast path) or by ``segment_ids``
(entry ``i`` belongs to segment ``segment_ids[i]``, in any order, as PyG's
``softmax(src, index)`` and ``torch_scatter.scatter_softmax`` take them). ``x`` is 1-D, or
2-D with independent columns along axis 1 (e.g. attention heads). Each segment follows the
dense conventions of `nbsoftmax.softmax`: a segment holding NaN or +inf, or made only of
-inf, is NaN throughout; an empty segment has no entries, and its logsumexp is -inf.

CUDA device arrays run on the GPU (``nbsoftmax.cuda``); host arrays on the CPU, in parallel
with threads sharing the work by element counts (skewed lengths stay balanced).
"""

from .dispatch import segment as _segment_dispatch
from .dispatch.plan import is_device_array
from .dispatch.segment import precompile

__all__ = [
    "segment_softmax",
    "segment_log_softmax",
    "segment_logsumexp",
    "segment_softmax_backward",
    "segment_log_softmax_backward",
    "precompile",
]


def _gpu(*arrays):
    if any(is_device_array(a) for a in arrays):
        from .cuda import _segment_api

        return _segment_api
    return None


def segment_softmax(x, offsets=None, *, segment_ids=None, num_segments=None, out=None,
                    where=None, temperature=None):
    """Softmax of ``x`` within each segment.

    Parameters
    ----------
    x : array_like, 1-D or 2-D
        Values; segments run along axis 0, columns (axis 1) are independent. bool and
        integer input gives float64; float16 is computed in float32.
    offsets : array_like of int, optional
        CSR offsets, non-decreasing, from 0 to ``len(x)``: ``len(offsets) - 1`` segments.
    segment_ids : array_like of int, optional
        Instead of ``offsets``: the segment of each entry of ``x`` (any order).
    num_segments : int, optional
        With ``segment_ids``: the number of segments (default ``max(segment_ids) + 1``).
    out : numpy.ndarray, optional
        Writable array of ``x``'s shape and the result dtype.
    where : array_like of bool, optional
        Mask of ``x``'s shape: only entries where it is True take part; the others get 0
        (a fully masked segment gives zeros), as `nbsoftmax.softmax` with ``where=``.
    temperature : float, optional
        Computes the softmax of ``x / temperature``.

    Returns
    -------
    numpy.ndarray
        Probabilities of ``x``'s shape summing to 1 within each segment (per column).

    Raises
    ------
    TypeError
        Both or neither of ``offsets`` and ``segment_ids``; non-integer segments.
    ValueError
        Offsets not from 0 to ``len(x)`` or decreasing; segment ids outside
        ``[0, num_segments)``; ``x`` not 1-D or 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> from nbsoftmax import segment_softmax
    >>> x = np.array([1.0, 2.0, 3.0, 0.0, 0.0])
    >>> segment_softmax(x, [0, 3, 3, 5]).round(4)
    array([0.09  , 0.2447, 0.6652, 0.5   , 0.5   ])
    >>> segment_softmax(x, segment_ids=[1, 0, 1, 0, 1]).round(4)
    array([0.1142, 0.8808, 0.8438, 0.1192, 0.042 ])
    """
    gpu = _gpu(x, out)
    if gpu is not None:
        return gpu.forward("softmax", x, offsets, segment_ids, num_segments, out, where,
                           temperature)
    return _segment_dispatch.forward("softmax", x, offsets, segment_ids, num_segments, out,
                                     where, temperature)


def segment_log_softmax(x, offsets=None, *, segment_ids=None, num_segments=None, out=None,
                        where=None, temperature=None):
    """Logarithm of `segment_softmax`, computed without forming it (masked entries: -inf).

    Arguments as in `segment_softmax`.

    Examples
    --------
    >>> from nbsoftmax import segment_log_softmax
    >>> segment_log_softmax([0.0, 0.0, 1.0], [0, 2, 3]).round(4)
    array([-0.6931, -0.6931,  0.    ])
    """
    gpu = _gpu(x, out)
    if gpu is not None:
        return gpu.forward("log_softmax", x, offsets, segment_ids, num_segments, out, where,
                           temperature)
    return _segment_dispatch.forward("log_softmax", x, offsets, segment_ids, num_segments, out,
                                     where, temperature)


def segment_logsumexp(x, offsets=None, *, segment_ids=None, num_segments=None, where=None):
    """``log(sum(exp(x)))`` of each segment: shape ``(num_segments,)`` for 1-D ``x``,
    ``(num_segments, x.shape[1])`` for 2-D. Empty (or fully masked) segments give -inf.

    Arguments as in `segment_softmax` (no temperature: scale ``x`` yourself).

    Examples
    --------
    >>> from nbsoftmax import segment_logsumexp
    >>> segment_logsumexp([0.0, 0.0, 5.0], [0, 2, 2, 3]).round(4)
    array([0.6931,   -inf, 5.    ])
    """
    gpu = _gpu(x)
    if gpu is not None:
        return gpu.logsumexp(x, offsets, segment_ids, num_segments, where)
    return _segment_dispatch.logsumexp(x, offsets, segment_ids, num_segments, where)


def segment_softmax_backward(grad_output, output, offsets=None, *, segment_ids=None,
                             num_segments=None, out=None, where=None, temperature=None):
    """Gradient of `segment_softmax` with respect to ``x``: ``y * (g - sum(g * y))`` within
    each segment, from ``output`` ``y`` and the gradient ``grad_output`` ``g`` of the loss
    with respect to ``y`` (times ``1 / temperature``; 0 at masked entries).

    Examples
    --------
    >>> import numpy as np
    >>> from nbsoftmax import segment_softmax, segment_softmax_backward
    >>> y = segment_softmax([1.0, 1.0, 2.0], [0, 2, 3])
    >>> segment_softmax_backward(np.array([1.0, 0.0, 1.0]), y, [0, 2, 3]).round(4)
    array([ 0.25, -0.25,  0.  ])
    """
    gpu = _gpu(grad_output, output, out)
    if gpu is not None:
        return gpu.backward("softmax_backward", grad_output, output, offsets, segment_ids,
                            num_segments, out, where, temperature)
    return _segment_dispatch.backward("softmax_backward", grad_output, output, offsets,
                                      segment_ids, num_segments, out, where, temperature)


def segment_log_softmax_backward(grad_output, output, offsets=None, *, segment_ids=None,
                                 num_segments=None, out=None, where=None, temperature=None):
    """Gradient of `segment_log_softmax`: ``g - exp(y) * sum(g)`` within each segment.

    Examples
    --------
    >>> import numpy as np
    >>> from nbsoftmax import segment_log_softmax, segment_log_softmax_backward
    >>> y = segment_log_softmax([0.0, 0.0, 3.0], [0, 2, 3])
    >>> segment_log_softmax_backward(np.array([1.0, 0.0, 1.0]), y, [0, 2, 3]).round(4)
    array([ 0.5, -0.5,  0. ])
    """
    gpu = _gpu(grad_output, output, out)
    if gpu is not None:
        return gpu.backward("log_softmax_backward", grad_output, output, offsets, segment_ids,
                            num_segments, out, where, temperature)
    return _segment_dispatch.backward("log_softmax_backward", grad_output, output, offsets,
                                      segment_ids, num_segments, out, where, temperature)
