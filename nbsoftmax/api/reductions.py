"""logsumexp, its gradient, cross_entropy and softmax_topk: the public functions (signatures
and numpydoc docstrings); each hands its arguments to its dispatch module."""

from ..dispatch import args as _args
from ..dispatch import core as _dispatch
from ..dispatch import logsumexp as _logsumexp
from ..dispatch import loss as _loss
from ..dispatch import scalars as _scalars
from ..dispatch import topk as _topk
from . import docs


@_args.hide_catch_all
@docs.sections
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

    {device}

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
@docs.sections
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

    {device}

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
