"""Softmax / LogSoftmax layer objects: forward, backward from the kept output."""

import numpy as np
import pytest

import nbsoftmax

from . import reference


@pytest.mark.parametrize("axis", [-1, 0, (0, 1)])
@pytest.mark.parametrize("temperature", [None, 2.0])
def test_softmax_layer(rng, axis, temperature):
    x = rng.standard_normal((3, 4, 5))
    g = rng.standard_normal((3, 4, 5))
    t = 1.0 if temperature is None else temperature
    layer = nbsoftmax.Softmax(axis, temperature=temperature)
    y = layer.forward(x)
    np.testing.assert_allclose(y, reference.softmax_where(x, axis, temperature=t), rtol=1e-13)
    assert layer.output is y
    np.testing.assert_allclose(layer.backward(g),
                               reference.softmax_backward_where(g, y, axis, temperature=t),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("axis", [-1, 1])
def test_log_softmax_layer(rng, axis):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    g = rng.standard_normal((4, 6)).astype(np.float32)
    layer = nbsoftmax.LogSoftmax(axis=axis)
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, reference.log_softmax(x, axis), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.backward(g), reference.log_softmax_backward(g, y, axis),
                               rtol=1e-5, atol=1e-6)


def test_nll_training_step_gradient(rng):
    """LogSoftmax + NLL: the input gradient is (softmax - onehot) / batch."""
    x = rng.standard_normal((8, 10))
    target = rng.integers(0, 10, 8)
    layer = nbsoftmax.LogSoftmax(axis=1)
    layer.forward(x)
    grad_out = np.zeros_like(x)
    grad_out[np.arange(8), target] = -1 / 8
    onehot = np.eye(10)[target]
    np.testing.assert_allclose(layer.backward(grad_out), (reference.softmax(x) - onehot) / 8,
                               rtol=1e-12, atol=1e-16)


def test_backward_before_forward_and_repr():
    with pytest.raises(RuntimeError, match="before forward"):
        nbsoftmax.Softmax().backward(np.ones(3))
    assert repr(nbsoftmax.LogSoftmax(0)) == "LogSoftmax(axis=0)"
    assert repr(nbsoftmax.Softmax(temperature=2.0)) == "Softmax(axis=-1, temperature=2.0)"
