"""Stateful layer objects for NumPy "from scratch" networks: ``Softmax`` and ``LogSoftmax``.

Each keeps the output of its last ``forward`` (the only thing its backward pass needs: the
softmax gradients are functions of the output) and hands both passes to the public
functions, so they run on whatever backend the arrays select (host arrays on the CPU, CUDA
device arrays on the GPU).
"""

from .dispatch import args as _args
from .dispatch import core as _dispatch


class _SoftmaxLayer:
    __slots__ = ("axis", "temperature", "output")
    _forward = _backward = None  # op names, set by the subclasses

    @_args.hide_catch_all
    def __init__(self, axis=-1, *, temperature=None, **unexpected):
        if unexpected:  # named for the public class (Softmax), not this private base
            raise _args.unexpected_keywords(type(self).__name__, unexpected, leading="")
        self.axis = axis
        self.temperature = temperature
        self.output = None

    def forward(self, x):
        """The layer's output for ``x``; kept for `backward`."""
        self.output = _dispatch.elementwise(self._forward, x, self.axis, None, None,
                                            temperature=self.temperature)
        return self.output

    __call__ = forward

    def backward(self, grad):
        """Gradient with respect to the last ``forward``'s input, from the gradient ``grad``
        with respect to its output."""
        if self.output is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return _dispatch.backward(self._backward, grad, self.output, self.axis, None,
                                  temperature=self.temperature)

    def __repr__(self):
        t = "" if self.temperature is None else f", temperature={self.temperature!r}"
        return f"{type(self).__name__}(axis={self.axis!r}{t})"


class Softmax(_SoftmaxLayer):
    """Softmax layer with a backward pass, as ``torch.nn.Softmax(dim)``.

    Parameters
    ----------
    axis : int, tuple of ints or None, optional
        Axis or axes of the distribution (default: the last).
    temperature : float, optional
        Positive temperature ``T``: the layer computes ``softmax(x / T)``.

    Attributes
    ----------
    output : numpy.ndarray or None
        The output of the last `forward` (None before the first), used by `backward`.

    Examples
    --------
    >>> import numpy as np
    >>> import nbsoftmax
    >>> layer = nbsoftmax.Softmax(axis=1)
    >>> layer.forward(np.array([[1.0, 2.0, 3.0]])).round(4)
    array([[0.09  , 0.2447, 0.6652]])
    >>> layer.backward(np.array([[1.0, 0.0, 0.0]])).round(4)
    array([[ 0.0819, -0.022 , -0.0599]])
    """

    __slots__ = ()
    _forward, _backward = "softmax", "softmax_backward"


class LogSoftmax(_SoftmaxLayer):
    """Log-softmax layer with a backward pass, as ``torch.nn.LogSoftmax(dim)``.

    Parameters
    ----------
    axis : int, tuple of ints or None, optional
        Axis or axes of the distribution (default: the last).
    temperature : float, optional
        Positive temperature ``T``: the layer computes ``log_softmax(x / T)``.

    Attributes
    ----------
    output : numpy.ndarray or None
        The output of the last `forward` (None before the first), used by `backward`.

    Examples
    --------
    Negative log-likelihood of class 2, and its gradient ``softmax(x) - onehot``:

    >>> import numpy as np
    >>> import nbsoftmax
    >>> layer = nbsoftmax.LogSoftmax()
    >>> float(-layer.forward(np.array([1.0, 2.0, 3.0]))[2].round(4))
    0.4076
    >>> layer.backward(np.array([0.0, 0.0, -1.0])).round(4)
    array([ 0.09  ,  0.2447, -0.3348])
    """

    __slots__ = ()
    _forward, _backward = "log_softmax", "log_softmax_backward"
