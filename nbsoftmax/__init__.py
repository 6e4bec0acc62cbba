"""nbsoftmax: numerically stable softmax, log-softmax and their gradients as Numba kernels.

The public functions live here; ``nbsoftmax.dispatch.core`` owns validation, axes, dtypes and the
choice of kernel, and ``nbsoftmax.cpu`` / ``nbsoftmax.cuda`` hold the kernels.
"""

import sys as _sys

import numpy as _np

from . import _threading
from .dispatch import args as _args
from .dispatch import core as _dispatch
from .dispatch import logsumexp as _logsumexp
from .dispatch import loss as _loss
from .dispatch import topk as _topk
from .dispatch import scalars as _scalars
from ._layers import LogSoftmax, Softmax
from .segment import (segment_log_softmax, segment_log_softmax_backward, segment_logsumexp,
                      segment_softmax, segment_softmax_backward)

# Make pip's libtbb findable by Numba before any parallel launch (see nbsoftmax._threading).
_threading.preload_tbb()

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_backward",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "softmin",
    "cross_entropy",
    "softmax_topk",
    "segment_softmax",
    "segment_log_softmax",
    "segment_logsumexp",
    "segment_softmax_backward",
    "segment_log_softmax_backward",
    "Softmax",
    "LogSoftmax",
    "precompile",
]

__version__ = "0.1.0"


def _elementwise(op, x, axis, dtype, out, device, stream, where, temperature):
    sparse = _sys.modules.get("scipy.sparse") if type(x) is not _np.ndarray else None
    if sparse is not None and sparse.issparse(x):  # stored entries only: dispatch.sparse
        from .dispatch import sparse as _sparse

        return _sparse.elementwise(op, x, axis, dtype, out, where, temperature, device)
    return _dispatch.elementwise(op, x, axis, dtype, out, device, stream, where=where,
                                 temperature=temperature)


@_args.hide_catch_all
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

    device : {None, "cpu", "cuda"}, optional
        Where to compute. None: on the GPU for CUDA device arrays (objects exposing
        ``__cuda_array_interface__``: numba, CuPy, torch CUDA), on the CPU for host arrays.
        "cuda" with host input copies it to the GPU and the result back.
    stream : optional
        CUDA stream to enqueue GPU work on (numba stream or a raw handle); by default the
        stream the input array exports, else the default stream. Ignored on the CPU.

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
    return _scalars.scalar_if_0d(_elementwise(
        "softmax", x, axis, dtype, out, device, stream, where, temperature), out)


@_args.hide_catch_all
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

    device : {None, "cpu", "cuda"}, optional
        Where to compute. None: on the GPU for CUDA device arrays (objects exposing
        ``__cuda_array_interface__``: numba, CuPy, torch CUDA), on the CPU for host arrays.
        "cuda" with host input copies it to the GPU and the result back.
    stream : optional
        CUDA stream to enqueue GPU work on (numba stream or a raw handle); by default the
        stream the input array exports, else the default stream. Ignored on the CPU.

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
    return _scalars.scalar_if_0d(_elementwise(
        "log_softmax", x, axis, dtype, out, device, stream, where, temperature), out)


@_args.hide_catch_all
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
    out : numpy.ndarray, optional
        Writable array of the result's shape and dtype; may be either input.
    where : array_like of bool, optional
        The mask the forward pass used: the gradient is exactly 0 at masked entries and
        the sums run over the unmasked ones only.
    temperature : float, optional
        The forward pass's temperature ``T``: the gradient is ``1 / T`` times the one above
        (divided without overflowing ``1 / T`` itself, for any ``T > 0``).

    device : {None, "cpu", "cuda"}, optional
        Where to compute. None: on the GPU for CUDA device arrays (objects exposing
        ``__cuda_array_interface__``: numba, CuPy, torch CUDA), on the CPU for host arrays.
        "cuda" with host input copies it to the GPU and the result back.
    stream : optional
        CUDA stream to enqueue GPU work on (numba stream or a raw handle); by default the
        stream the input array exports, else the default stream. Ignored on the CPU.

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
    out : numpy.ndarray, optional
        Writable array of the result's shape and dtype; may be either input.
    where : array_like of bool, optional
        The mask the forward pass used: the gradient is exactly 0 at masked entries and
        the sums run over the unmasked ones only.
    temperature : float, optional
        The forward pass's temperature ``T``: the gradient is ``1 / T`` times the one above
        (divided without overflowing ``1 / T`` itself, for any ``T > 0``).

    device : {None, "cpu", "cuda"}, optional
        Where to compute. None: on the GPU for CUDA device arrays (objects exposing
        ``__cuda_array_interface__``: numba, CuPy, torch CUDA), on the CPU for host arrays.
        "cuda" with host input copies it to the GPU and the result back.
    stream : optional
        CUDA stream to enqueue GPU work on (numba stream or a raw handle); by default the
        stream the input array exports, else the default stream. Ignored on the CPU.

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


@_args.hide_catch_all
def logsumexp(x, axis=-1, *, keepdims=False, b=None, return_sign=False, where=None, device=None,
              stream=None, **unexpected):
    """``log(sum(b * exp(x), axis))`` computed without overflow, as ``scipy.special.logsumexp``.

    Computed as ``m + log1p(sum(exp(x - m)) - 1)`` with the max ``m`` and the max entries
    counted out of the sum (SciPy's form), so results near 0 keep their relative precision:
    ``logsumexp([0.0, -40.0])`` is ``4.248354255291589e-18``, as ``np.logaddexp(0, -40)``.

    Parameters
    ----------
    x : array_like
        Input; dtypes as in `softmax` (real only).
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last; SciPy's default is None, all axes).
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    b : array_like, optional
        Weights of ``exp(x)``, broadcastable against ``x`` (the reduction runs over the
        broadcast shape; the result dtype is the common float dtype of ``x`` and ``b``).
        Negative weights subtract; an entry whose weight is 0 is left out, even when it is
        NaN or infinite. Complex weights raise TypeError.
    return_sign : bool, optional
        Also return the sign of the sum: ``(log|sum|, sign)`` with sign +1, -1, 0 (a sum of
        exactly 0, an empty or all ``-inf`` slice: the log is then -inf) or NaN. Without it
        a negative sum gives NaN.
    where : array_like of bool, optional
        Mask broadcastable to ``x`` (to the broadcast shape with ``b``): the sum runs over
        the entries where it is True; a fully masked slice gives -inf.

    device : {None, "cpu", "cuda"}, optional
        Where to compute. None: on the GPU for CUDA device arrays (objects exposing
        ``__cuda_array_interface__``: numba, CuPy, torch CUDA), on the CPU for host arrays.
        "cuda" with host input copies it to the GPU and the result back.
    stream : optional
        CUDA stream to enqueue GPU work on (numba stream or a raw handle); by default the
        stream the input array exports, else the default stream. Ignored on the CPU.

    Returns
    -------
    numpy.ndarray or numpy scalar
        The reduced array; a NumPy scalar (``np.float64`` etc.) for a full reduction or a
        0-d input, as SciPy. An empty slice or one made only of -inf gives -inf; +inf
        without NaN gives +inf (with ``b``: NaN when the weights of the +inf entries sum to
        0); NaN gives NaN. With ``return_sign``, the tuple ``(result, sign)``; an empty
        slice has sign 0 (SciPy gives -1 there, JAX 0).

    Raises
    ------
    TypeError
        Complex or other unsupported dtypes of ``x`` or ``b``; a non-bool ``where``.
    ValueError
        ``b`` or ``where`` that does not broadcast; bad ``axis``.

    Examples
    --------
    >>> import nbsoftmax
    >>> nbsoftmax.logsumexp([1000.0, 1000.0])
    np.float64(1000.6931471805599)
    >>> nbsoftmax.logsumexp([0.0, -40.0])
    np.float64(4.248354255291589e-18)
    >>> nbsoftmax.logsumexp([0.0, 1e300, 0.0], where=[True, False, True]).round(4)
    np.float64(0.6931)
    >>> nbsoftmax.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    >>> nbsoftmax.logsumexp([1.0, 1.0], b=[1.0, -1.0], return_sign=True)
    (np.float64(-inf), np.float64(0.0))
    """
    if unexpected:
        raise _args.unexpected_keywords("logsumexp", unexpected)
    return _scalars.scalar_if_0d(_dispatch.logsumexp(x, axis, keepdims, device, stream,
                                                     where=where, b=b,
                                                     return_sign=return_sign))


@_args.hide_catch_all
def logsumexp_backward(grad_output, x, axis=-1, *, keepdims=False, out=None, where=None,
                       device=None, stream=None, **unexpected):
    """Gradient of a loss with respect to logsumexp's input ``x``.

    Computes ``g * exp(x - logsumexp(x, axis, keepdims=True))`` with ``g = grad_output``
    broadcast over the reduced axes, i.e. ``g * softmax(x, axis)`` (computed so, with
    softmax's accuracy and shift invariance). Slices whose max is not finite give torch
    autograd's values: a slice with ``+inf`` entries gives NaN at them and ``0 * g``
    elsewhere; an all ``-inf`` slice or one with a NaN gives NaN throughout.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to logsumexp's result: that result's shape
        (with the reduced axes kept as length 1 when ``keepdims`` is True).
    x : array_like
        The input of the forward logsumexp.
    axis : int, tuple of ints or None, optional
        The axis or axes the forward logsumexp reduced (default: the last).
    keepdims : bool, optional
        Whether the forward call kept the reduced axes (the shape of ``grad_output``).
    out : numpy.ndarray, optional
        Writable array of ``x``'s shape and the result dtype; may be ``x`` itself.
    where : array_like of bool, optional
        The mask the forward call used: the gradient is exactly 0 at masked entries.

    device : {None, "cpu", "cuda"}, optional
        Where to compute. None: on the GPU for CUDA device arrays (objects exposing
        ``__cuda_array_interface__``: numba, CuPy, torch CUDA), on the CPU for host arrays.
        "cuda" with host input copies it to the GPU and the result back.
    stream : optional
        CUDA stream to enqueue GPU work on (numba stream or a raw handle); by default the
        stream the input array exports, else the default stream. Ignored on the CPU.

    Returns
    -------
    numpy.ndarray or numpy scalar
        The gradient, of ``x``'s shape, in the common float dtype of both inputs (a NumPy
        scalar for a 0-d ``x`` without ``out``).

    Raises
    ------
    ValueError
        ``grad_output`` not of logsumexp's result shape; bad ``out``, ``axis`` or ``where``.
    TypeError
        Unsupported dtype.

    Examples
    --------
    >>> import numpy as np
    >>> import nbsoftmax
    >>> x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]])
    >>> nbsoftmax.logsumexp_backward([1.0, 2.0], x).round(4)
    array([[0.09  , 0.2447, 0.6652],
           [1.    , 1.    , 0.    ]])
    >>> nbsoftmax.logsumexp_backward(1.0, [0.0, np.inf])
    array([ 0., nan])
    """
    if unexpected:
        raise _args.unexpected_keywords("logsumexp_backward", unexpected,
                                        leading="grad_output, x, ")
    return _scalars.scalar_if_0d(_logsumexp.logsumexp_backward(
        grad_output, x, axis, keepdims, out, where, device, stream), out)


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
def cross_entropy(logits, target, axis=-1, *, reduction="mean", label_smoothing=0.0,
                  ignore_index=-100, weight=None, temperature=None, return_grad=False,
                  device=None, stream=None, **unexpected):
    """Cross-entropy of logits against class indices or class probabilities, fused.

    Equals ``torch.nn.functional.cross_entropy`` with the same arguments (with ``axis`` the
    class axis: torch's is 1, here the last by default), computed in one kernel pass per row
    (log-sum-exp and the target's terms together) without materialising the log-softmax.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores; dtypes as in `softmax`.
    target : array_like
        Integer class indices, of the logits' shape without ``axis``; or floating-point
        class probabilities of the logits' shape.
    axis : int, optional
        The class axis (default: the last).
    reduction : {"mean", "sum", "none"}, optional
        "mean": the sum of the per-sample losses divided by the number of samples not
        ignored (by their weight sum with ``weight`` and class indices); "none": one loss per
        sample.
    label_smoothing : float, optional
        In [0, 1]: the target becomes ``(1 - label_smoothing) * target + label_smoothing / C``.
    ignore_index : int, optional
        Samples with this class index count neither in the loss nor in the mean. Must be an
        int (as in torch; a float or bool raises TypeError). With class probabilities only a
        negative one is accepted (torch raises for ``ignore_index >= 0`` there too).
    weight : array_like, optional
        One weight per class.
    temperature : float, optional
        Positive temperature ``T``: the loss of ``logits / T`` (gradient still with respect
        to ``logits``).
    return_grad : bool, optional
        Also return the gradient of the loss (for "none": of the sum of the losses) with
        respect to ``logits``, written directly by the kernel.

    device : {None, "cpu", "cuda"}, optional
        Where to compute, as in `softmax`.
    stream : optional
        CUDA stream, as in `softmax`.

    Returns
    -------
    loss : numpy scalar or numpy.ndarray
        In the logits' result dtype; an array of the samples' shape for "none".
    grad : numpy.ndarray
        Only with ``return_grad=True``: of the logits' shape.

    Raises
    ------
    ValueError
        Bad ``reduction``, ``label_smoothing``, ``axis`` or shapes; class indices out of range
        (checked in the target's own dtype: a uint64 ``2**64 - 100`` is out of range, never
        the ignored -100); ``ignore_index >= 0`` with class probabilities.
    TypeError
        Unsupported dtypes of ``logits``, ``target`` or ``weight``; ``ignore_index`` not an int.

    Notes
    -----
    The loss and gradient are computed from ``(x - max) / T`` and the log of the row's sum,
    so they hold log_softmax's accuracy at any offset of the logits and for any ``T > 0``.
    A row with a NaN or +inf logit, or only -inf (log_softmax's NaN rows), has a NaN loss
    and an all-NaN gradient row, as in torch. With no classes, the "mean" of probability
    targets is NaN (torch's too). On the GPU a class index out of range cannot raise from
    device arrays: its row's loss and gradient are NaN (host arrays with ``device="cuda"``
    are checked first and raise as on the CPU).

    Nothing of the logits' size is allocated for the loss alone when the class axis is the
    last one in memory (else the logits are staged once); with ``return_grad`` the gradient
    is the only full-size allocation.

    Examples
    --------
    >>> import numpy as np
    >>> import nbsoftmax
    >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    >>> float(nbsoftmax.cross_entropy(logits, [0, 1]).round(4))
    0.3185
    >>> loss, grad = nbsoftmax.cross_entropy(logits, [0, 1], return_grad=True)
    >>> grad.round(4)
    array([[-0.1705,  0.1212,  0.0493],
           [ 0.0543, -0.0988,  0.0445]])
    >>> nbsoftmax.cross_entropy(logits, [0, -100], reduction="none", label_smoothing=0.1).round(4)
    array([0.5137, 0.    ])
    """
    if unexpected:
        raise _args.unexpected_keywords("cross_entropy", unexpected, leading="logits, target, ")
    return _scalars.scalar_if_0d(_loss.cross_entropy(
        logits, target, axis, reduction, label_smoothing, ignore_index, weight, temperature,
        return_grad, device, stream))


@_args.hide_catch_all
def softmax_topk(x, k, axis=-1, *, device=None, stream=None, **unexpected):
    """The k most likely entries of each slice's softmax, without writing the full softmax.

    One pass over each slice: an online normaliser (running max and sum of exponentials)
    and a sorted buffer of the k best entries, as Milakov & Gimelshein's fused softmax+top-k;
    for large k a selection instead (quickselect of the candidates, then a sort of the k), so
    any k costs at most about what ``np.argpartition`` and a sort of the softmax do.

    Parameters
    ----------
    x : array_like
        Input; dtypes as in `softmax`.
    k : int
        How many entries per slice, between 1 and the slice length.
    axis : int, optional
        The softmax axis (default: the last).

    device : {None, "cpu", "cuda"}, optional
        Where to compute, as in `softmax`.
    stream : optional
        CUDA stream, as in `softmax`.

    Returns
    -------
    probabilities : numpy.ndarray
        ``softmax(x, axis)`` at the chosen entries, sorted descending along ``axis``
        (x's shape with ``k`` along ``axis``), in the result dtype of `softmax`.
    indices : numpy.ndarray of int64
        Their positions along ``axis``; equal values are ordered by lower index first.

    Raises
    ------
    ValueError
        ``k`` out of range; ``axis`` not a single axis.

    Notes
    -----
    A slice whose softmax is NaN (a NaN or +inf in it, or only -inf) gives NaN
    probabilities at indices ``0..k-1``.

    Examples
    --------
    >>> import nbsoftmax
    >>> p, i = nbsoftmax.softmax_topk([1.0, 3.0, 2.0, 3.0], 3)
    >>> p.round(4), i
    (array([0.3995, 0.3995, 0.147 ]), array([1, 3, 2]))
    """
    if unexpected:
        raise _args.unexpected_keywords("softmax_topk", unexpected, leading="x, k, ")
    return _topk.softmax_topk(x, k, axis, device, stream)


def precompile(dtypes=("float32", "float64", "float16"), ops=None, *, processes=1,
               progress=None):
    """Compile every CPU kernel for ``dtypes`` now (or load it from the on-disk cache).

    Every variant the CPU functions can run is built: each function with and without
    ``where=`` and ``temperature=``, softmin, cross_entropy with and without ``weight`` and
    the gradient, for class indices and probabilities, softmax_topk, the backward passes;
    kernels for the last axis, other axes, short rows and long rows, serial and parallel.
    Useful when building container images (also ``nbsoftmax warmup``) or before timing:
    later first calls, in this process or in any later one sharing the cache directory,
    then pay no compilation.

    Parameters
    ----------
    dtypes : {"float16", "float32", "float64"} or a sequence of them, optional
        Result dtypes to compile for (bool and integer input uses float64). Default: all.
    ops : str or sequence of str, optional
        Public function names among ``softmax``, ``log_softmax``, ``logsumexp``,
        ``softmax_backward``, ``log_softmax_backward``, ``softmin``, ``cross_entropy``,
        ``softmax_topk`` and the segment functions (``segment_softmax``, ...: segments longer
        than 1 MiB run the dense kernels of the same operation); default all.
    processes : int or None, optional
        Worker processes that compile into the on-disk cache first, each a share of the
        kernels, before this process loads them (None: one per available core). Default 1:
        compile here. Without a writable cache directory everything is compiled here.
    progress : callable, optional
        Called as ``progress(phase, done, total, text)`` after each kernel, with phase
        ``"compile"`` (in the workers) or ``"load"`` (in this process).

    Returns
    -------
    dict
        ``kernels`` (how many), ``compiled`` and ``loaded`` (in this process), ``workers``,
        ``worker_errors``, ``seconds`` and ``cache`` (the cache directory, or None).

    Raises
    ------
    TypeError
        A dtype that is not float16, float32 or float64; ``processes`` not an int.
    ValueError
        An unknown name in ``ops``; ``processes`` below 1.

    Examples
    --------
    >>> import nbsoftmax
    >>> nbsoftmax.precompile(dtypes="float32", ops="softmax_topk")["kernels"]  # serial, parallel
    2
    """
    from . import _precompile
    from .dispatch import dtypes as _dtypes
    from .cpu import _variants

    if isinstance(dtypes, (str, type)) or hasattr(dtypes, "kind"):  # one dtype
        dtypes = (dtypes,)
    try:
        dtypes = tuple(dict.fromkeys(_dtypes.requested_dtype(d) for d in dtypes))
    except TypeError as exc:
        raise TypeError(f"dtypes: {exc}") from None
    known = _variants.public_ops()
    if ops is None:
        ops = known
    else:
        ops = (ops,) if isinstance(ops, str) else tuple(ops)
        unknown = [op for op in ops if op not in known]
        if unknown:
            raise ValueError(f"ops has unknown names {unknown}; expected some of {list(known)}")
    processes = _precompile.check_processes(processes)
    return _precompile.precompile(_variants.variants(ops, dtypes), processes, progress)
