"""softmax, log_softmax, softmin and their gradients: the public functions (signatures and
numpydoc docstrings); each hands its arguments to the dispatch (``nbsoftmax.dispatch.core``)."""

import sys as _sys

import numpy as _np

from ..dispatch import args as _args
from ..dispatch import core as _dispatch
from ..dispatch import scalars as _scalars
from . import docs


def _sparse(x):
    """Whether x is a scipy.sparse array or matrix (only asked when SciPy is imported): its
    stored entries run through the segment kernels (nbsoftmax.dispatch.sparse), before the
    dispatch of dense arrays."""
    sparse = _sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


def _sparse_elementwise(op, x, axis, dtype, out, device, where, temperature):
    from ..dispatch import sparse

    return sparse.elementwise(op, x, axis, dtype, out, where, temperature, device)


@_args.hide_catch_all
@docs.sections
def softmax(x, axis=-1, *, dtype=None, out=None, where=None, temperature=None, device=None,
            stream=None, **unexpected):
    """Softmax along ``axis``: ``exp(x - max(x)) / sum(exp(x - max(x)))``.

    Parameters
    ----------
    x : array_like
        Input. bool and integer input is computed and returned as float64; float16 is
        computed in float32 and returned as float16. A ``numpy.matrix`` is read as its 2-d
        array and gives a plain ndarray, as ``scipy.special.softmax``.
    axis : int, tuple of ints or None, optional
        Axis or axes over which the probabilities sum to one (jointly, for a tuple), or
        None for the whole array. Default: the last axis.
    dtype : {float16, float32, float64}, optional
        Cast ``x`` to this dtype first; the result has this dtype.
    out : numpy.ndarray, optional
        Writable array of the result's shape and dtype, with any strides. It may be ``x``
        itself (in-place), or overlap ``x`` or ``where`` in any way: the result is as if
        every input were read first. A ``numpy.matrix`` raises TypeError (before anything
        is written); ``np.asarray(out)`` is a plain view of it.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: only entries where it is True take part. Masked
        entries get probability 0; a fully masked slice gives zeros (not NaN), as
        ``jax.nn.softmax(where=)``.
    temperature : float, optional
        Positive temperature ``T``: computes ``softmax(x / T)`` without a scaled copy of
        ``x`` (the kernels scale while reading), within the plain accuracy bounds for any
        ``T > 0`` and at any offset of ``x``: ``(x - max) / T`` is rounded once. Tiny ``T``
        gives one-hot rows (ties shared), huge ``T`` uniform ones.

    {device}

    Returns
    -------
    numpy.ndarray
        Probabilities of ``x``'s shape, or ``out``.

    Raises
    ------
    numpy.exceptions.AxisError
        ``axis`` is out of range.
    ValueError
        Repeated axes; ``out`` of the wrong shape or read-only.
    TypeError
        Unsupported dtype (complex, object, string, datetime, ...); ``out`` of the wrong dtype
        or a ``numpy.matrix``.

    Notes
    -----
    A slice containing NaN or +inf, or made only of -inf, is NaN throughout; -inf entries
    elsewhere have probability 0. Results do not depend on a constant shift of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> import nbsoftmax
    >>> nbsoftmax.softmax([1.0, 2.0, 3.0]).round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> batch = np.array([[1.0, 1.0], [0.0, np.log(3.0)]], dtype=np.float32)
    >>> nbsoftmax.softmax(batch, axis=1).round(4)
    array([[0.5 , 0.5 ],
           [0.25, 0.75]], dtype=float32)

    A mask, and a temperature:

    >>> nbsoftmax.softmax([1.0, 2.0, 3.0], where=[True, False, True]).round(4)
    array([0.1192, 0.    , 0.8808])
    >>> nbsoftmax.softmax([1.0, 2.0, 3.0], temperature=2.0).round(4)
    array([0.1863, 0.3072, 0.5065])
    """
    if unexpected:
        raise _args.unexpected_keywords("softmax", unexpected)
    if type(x) is not _np.ndarray and _sparse(x):
        return _sparse_elementwise("softmax", x, axis, dtype, out, device, where, temperature)
    return _scalars.scalar_if_0d(_dispatch.elementwise(
        "softmax", x, axis, dtype, out, device, stream, where, temperature), out)


@_args.hide_catch_all
@docs.sections
def log_softmax(x, axis=-1, *, dtype=None, out=None, where=None, temperature=None, device=None,
                stream=None, **unexpected):
    """Logarithm of the softmax along ``axis``: ``x - max(x) - log(sum(exp(x - max(x))))``.

    Accurate where ``log(softmax(x))`` is not: large negative values stay finite.

    Parameters
    ----------
    x : array_like
        Input; dtypes as in `softmax`.
    axis : int, tuple of ints or None, optional
        Axis or axes of the distribution (default: the last).
    dtype : {float16, float32, float64}, optional
        Cast ``x`` to this dtype first; the result has this dtype.
    out : numpy.ndarray, optional
        Writable array of the result's shape and dtype; may be ``x`` itself.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: only entries where it is True take part. Masked
        entries get -inf; a fully masked slice gives -inf (not NaN), as
        ``jax.nn.log_softmax(where=)``.
    temperature : float, optional
        Positive temperature ``T``: computes ``log_softmax(x / T)`` without a scaled copy of
        ``x`` (the kernels scale while reading), for any ``T > 0`` as in `softmax` (values
        beyond the dtype's range are -inf).

    {device}

    Returns
    -------
    numpy.ndarray
        Log-probabilities of ``x``'s shape, or ``out``.

    Raises
    ------
    numpy.exceptions.AxisError, ValueError, TypeError
        As for `softmax`.

    Examples
    --------
    >>> import nbsoftmax
    >>> nbsoftmax.log_softmax([1000.0, 1.0])
    array([   0., -999.])
    >>> nbsoftmax.log_softmax([1.0, 2.0, 3.0], where=[True, False, True]).round(4)
    array([-2.1269,    -inf, -0.1269])
    """
    if unexpected:
        raise _args.unexpected_keywords("log_softmax", unexpected)
    if type(x) is not _np.ndarray and _sparse(x):
        return _sparse_elementwise("log_softmax", x, axis, dtype, out, device, where,
                                   temperature)
    return _scalars.scalar_if_0d(_dispatch.elementwise(
        "log_softmax", x, axis, dtype, out, device, stream, where, temperature), out)


@_args.hide_catch_all
def softmin(x, axis=-1, *, dtype=None, out=None, where=None, temperature=None, device=None,
            stream=None, **unexpected):
    """Softmin along ``axis``: ``softmax(-x / T)``, as ``torch.nn.Softmin(dim)``.

    The sign and temperature are applied inside the kernel; no negated copy of ``x``.

    Parameters
    ----------
    x : array_like
        Input; dtypes as in `softmax`.
    axis : int, tuple of ints or None, optional
        Axis or axes of the distribution (default: the last).
    dtype, out, where, device, stream
        As for `softmax`.
    temperature : float, optional
        Positive temperature ``T`` (default 1).

    Returns
    -------
    numpy.ndarray
        Probabilities of ``x``'s shape (smallest entries most likely), or ``out``.

    Notes
    -----
    An entry of +inf has probability 0; -inf (like NaN) makes its slice NaN. The gradient
    is ``-softmax_backward(g, y, temperature=T)`` with ``y`` this function's output.

    Examples
    --------
    >>> import nbsoftmax
    >>> nbsoftmax.softmin([1.0, 2.0, 3.0]).round(4)
    array([0.6652, 0.2447, 0.09  ])
    """
    if unexpected:
        raise _args.unexpected_keywords("softmin", unexpected)
    return _scalars.scalar_if_0d(_dispatch.scaled(
        "softmax", x, axis, dtype, out, device, stream, where=where, temperature=temperature,
        sign=-1.0), out)


@_args.hide_catch_all
@docs.sections
def softmax_backward(grad_output, output, axis=-1, *, out=None, where=None, temperature=None,
                     device=None, stream=None, **unexpected):
    """Gradient of a loss with respect to softmax's input, from the softmax output.

    Computes ``y * (g - sum(g * y, axis))`` with ``g = grad_output`` and ``y = output``
    (the vector-Jacobian product of softmax), in one pass over each slice for the sum and
    one for the result.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the softmax output.
    output : array_like
        The softmax output ``y``, of the same shape.
    axis : int, tuple of ints or None, optional
        The axis or axes the softmax was taken over (default: the last).
    {backward}

    {device}

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the softmax input, in the common float dtype of the inputs.

    Raises
    ------
    ValueError
        The shapes of ``grad_output`` and ``output`` differ; bad ``out`` or ``axis``.
    TypeError
        Unsupported dtype.

    Examples
    --------
    >>> import numpy as np
    >>> import nbsoftmax
    >>> y = nbsoftmax.softmax([1.0, 2.0, 3.0])
    >>> nbsoftmax.softmax_backward([1.0, 0.0, 0.0], y).round(4)
    array([ 0.0819, -0.022 , -0.0599])

    With a mask, even a huge masked entry gives a gradient of exactly 0 there:

    >>> x, keep = np.array([36.0, 10000.0]), np.array([True, False])
    >>> y = nbsoftmax.softmax(x, where=keep)
    >>> nbsoftmax.softmax_backward([1.0, 1.0], y, where=keep)
    array([0., 0.])
    """
    if unexpected:
        raise _args.unexpected_keywords("softmax_backward", unexpected,
                                        leading="grad_output, output, ")
    return _scalars.scalar_if_0d(_dispatch.backward(
        "softmax_backward", grad_output, output, axis, out, device, stream, where=where,
        temperature=temperature), out)


@_args.hide_catch_all
@docs.sections
def log_softmax_backward(grad_output, output, axis=-1, *, out=None, where=None, temperature=None,
                         device=None, stream=None, **unexpected):
    """Gradient of a loss with respect to log_softmax's input, from the log_softmax output.

    Computes ``g - exp(y) * sum(g, axis)`` with ``g = grad_output`` and ``y = output``.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the log_softmax output.
    output : array_like
        The log_softmax output ``y``, of the same shape.
    axis : int, tuple of ints or None, optional
        The axis or axes the log_softmax was taken over (default: the last).
    {backward}

    {device}

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the log_softmax input.

    Raises
    ------
    ValueError, TypeError
        As for `softmax_backward`.

    Examples
    --------
    Cross-entropy with target class 2: the gradient is ``softmax(x) - onehot``.

    >>> import numpy as np
    >>> import nbsoftmax
    >>> y = nbsoftmax.log_softmax([1.0, 2.0, 3.0])
    >>> nbsoftmax.log_softmax_backward([0.0, 0.0, -1.0], y).round(4)
    array([ 0.09  ,  0.2447, -0.3348])
    >>> y = nbsoftmax.log_softmax([1.0, 2.0, 3.0], temperature=2.0)
    >>> nbsoftmax.log_softmax_backward([0.0, 0.0, -1.0], y, temperature=2.0).round(4)
    array([ 0.0932,  0.1536, -0.2468])
    """
    if unexpected:
        raise _args.unexpected_keywords("log_softmax_backward", unexpected,
                                        leading="grad_output, output, ")
    return _scalars.scalar_if_0d(_dispatch.backward(
        "log_softmax_backward", grad_output, output, axis, out, device, stream, where=where,
        temperature=temperature), out)
