"""nbsoftmax: numerically stable softmax, log-softmax and their gradients as Numba kernels.

The public functions live here; ``nbsoftmax._dispatch`` owns validation, axes, dtypes and the
choice of kernel, and ``nbsoftmax.cpu`` / ``nbsoftmax.cuda`` hold the kernels.
"""

from . import _dispatch, _threading

# Make pip's libtbb findable by Numba before any parallel launch (see nbsoftmax._threading).
_threading.preload_tbb()

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_backward",
    "log_softmax_backward",
    "logsumexp",
    "precompile",
]

__version__ = "0.1.0"


def softmax(x, axis=-1, *, dtype=None, out=None, device=None, stream=None):
    """Softmax along ``axis``: ``exp(x - max(x)) / sum(exp(x - max(x)))``.

    Parameters
    ----------
    x : array_like
        Input. bool and integer input is computed and returned as float64; float16 is
        computed in float32 and returned as float16.
    axis : int, tuple of ints or None, optional
        Axis or axes over which the probabilities sum to one (jointly, for a tuple), or
        None for the whole array. Default: the last axis.
    dtype : {float16, float32, float64}, optional
        Cast ``x`` to this dtype first; the result has this dtype.
    out : numpy.ndarray, optional
        Writable array of the result's shape and dtype, with any strides. It may be ``x``
        itself (in-place).

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
        Unsupported dtype (complex, object, string, datetime, ...); ``out`` of the wrong dtype.

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
    """
    return _dispatch.elementwise("softmax", x, axis, dtype, out, device, stream)


def log_softmax(x, axis=-1, *, dtype=None, out=None, device=None, stream=None):
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
    """
    return _dispatch.elementwise("log_softmax", x, axis, dtype, out, device, stream)


def softmax_backward(grad_output, output, axis=-1, *, out=None, device=None, stream=None):
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
    """
    return _dispatch.backward("softmax_backward", grad_output, output, axis, out, device, stream)


def log_softmax_backward(grad_output, output, axis=-1, *, out=None, device=None, stream=None):
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
    """
    return _dispatch.backward("log_softmax_backward", grad_output, output, axis, out, device, stream)


def logsumexp(x, axis=-1, *, keepdims=False, device=None, stream=None):
    """``log(sum(exp(x), axis))`` computed without overflow.

    Parameters
    ----------
    x : array_like
        Input; dtypes as in `softmax`.
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last).
    keepdims : bool, optional
        Keep the reduced axes with length 1.

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
        The reduced array (0-d for a full reduction). An empty slice or one made only of
        -inf gives -inf; +inf without NaN gives +inf; NaN gives NaN.

    Examples
    --------
    >>> import nbsoftmax
    >>> float(nbsoftmax.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    return _dispatch.logsumexp(x, axis, keepdims, device, stream)


def precompile(dtypes=("float32", "float64", "float16"), ops=None):
    """Compile every CPU kernel for ``dtypes`` now (or load it from the on-disk cache).

    Useful when building container images (also ``nbsoftmax warmup``) or before timing:
    later first calls, in this process or in any later one sharing the cache directory,
    then pay no compilation.

    Parameters
    ----------
    dtypes : sequence of {"float16", "float32", "float64"}
        Result dtypes to compile for (bool and integer input uses float64).
    ops : sequence of str, optional
        Function names among ``softmax``, ``log_softmax``, ``logsumexp``,
        ``softmax_backward`` and ``log_softmax_backward``; default all.

    Examples
    --------
    >>> import nbsoftmax
    >>> nbsoftmax.precompile(dtypes=("float32",), ops=("softmax",))
    """
    from . import _dtypes, cpu

    dtypes = tuple(_dtypes.requested_dtype(d) for d in dtypes)
    if ops is None:
        ops = tuple(cpu._OPS)
    else:
        ops = tuple(ops)
        unknown = [op for op in ops if op not in cpu._OPS]
        if unknown:
            raise ValueError(f"ops has unknown names {unknown}; expected some of {list(cpu._OPS)}")
    cpu.precompile(ops=ops, dtypes=dtypes)
