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


@pytest.mark.parametrize("layer_type", [nbsoftmax.Softmax, nbsoftmax.LogSoftmax])
@pytest.mark.parametrize("temperature", [0.7, 1e-300, 1e300])
def test_layers_with_temperature_are_shift_invariant(rng, layer_type, temperature):
    """Both passes on x and x + c (c = k * 2**j: exact on a grid of 1/4) are bit-identical for
    any temperature (issue 10 item 1: T = 0.7 at an offset broke normalisation), and match
    the float64 references of x / T."""
    x = np.round(rng.standard_normal((3, 7)) * 20) / 4
    g = rng.standard_normal((3, 7))
    c = 3.0 * 2.0**30
    assert np.all((x + c) - c == x)
    a, b = layer_type(temperature=temperature), layer_type(temperature=temperature)
    np.testing.assert_array_equal(a.forward(x + c), b.forward(x))
    np.testing.assert_array_equal(a.backward(g), b.backward(g))
    if layer_type is nbsoftmax.Softmax:
        want = reference.softmax_exact((x - x.max(-1, keepdims=True)) / np.longdouble(temperature))
        np.testing.assert_allclose(b.output, want.astype(np.float64), rtol=1e-13, atol=1e-300)
        assert np.all(np.abs(b.output.sum(-1) - 1) <= 1e-13)


def test_layer_float32_offset_and_tiny_temperature(rng):
    x = (rng.standard_normal((4, 50)) * 5 + 1e6).astype(np.float32)
    y = nbsoftmax.Softmax(temperature=0.7).forward(x)
    assert np.all(np.abs(y.astype(np.float64).sum(-1) - 1) <= 1e-5)  # was up to 5e-2
    layer = nbsoftmax.LogSoftmax(temperature=1e-40)
    y = layer.forward(np.float32([[0.5, -1.2, 1.7, 0.3]]))
    np.testing.assert_array_equal(y, np.float32([[-np.inf, -np.inf, 0, -np.inf]]))
    np.testing.assert_array_equal(layer.backward(np.float32([[0, 0, 1, 0]])), 0)
