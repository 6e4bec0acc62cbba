"""cross_entropy (CPU kernels of nbsoftmax.cpu._xent) against tests/reference.cross_entropy,
whose torch semantics tests/test_oracles.py pins where torch is installed."""

import numpy as np
import pytest

import nbsoftmax

from . import reference

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
OPTIONS = [dict(), dict(label_smoothing=0.1), dict(weight=True), dict(ignore_index=2),
           dict(weight=True, label_smoothing=0.25, ignore_index=1), dict(temperature=0.5)]


def _case(rng, shape, axis, dtype, probs):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    n = shape[axis]
    rest = tuple(s for a, s in enumerate(shape) if a != axis % len(shape))
    if probs:
        t = rng.random(shape)
        t = (t / t.sum(axis=axis, keepdims=True)).astype(dtype)
    else:
        t = rng.integers(0, n, rest)
    return x, t, rng.random(n) + 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((6, 11), -1), ((3, 700), 1), ((2, 5, 4), 1),
                                        ((4, 3, 6), -1), ((7,), 0)])
@pytest.mark.parametrize("probs", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_against_reference(rng, dtype, shape, axis, probs, reduction, options):
    x, t, w = _case(rng, shape, axis, dtype, probs)
    kwargs = dict(options)
    if kwargs.get("weight"):
        kwargs["weight"] = w
    if probs:
        kwargs.pop("ignore_index", None)
    loss, grad = nbsoftmax.cross_entropy(x, t, axis, reduction=reduction, return_grad=True,
                                         **kwargs)
    want_loss, want_grad = reference.cross_entropy(x, t, axis, reduction, **kwargs)
    rt = RTOL[dtype]
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype and grad.shape == x.shape
    np.testing.assert_allclose(loss, want_loss, rtol=rt, atol=rt * 1e-3)
    np.testing.assert_allclose(grad, want_grad, rtol=rt * 10, atol=rt * 1e-2)
    alone = nbsoftmax.cross_entropy(x, t, axis, reduction=reduction, **kwargs)
    np.testing.assert_array_equal(alone, loss)


def test_float16(rng):
    x, t, _ = _case(rng, (5, 40), -1, np.float16, False)
    loss, grad = nbsoftmax.cross_entropy(x, t, return_grad=True)
    want, want_grad = reference.cross_entropy(x, t)
    assert loss.dtype == np.float16 and grad.dtype == np.float16
    np.testing.assert_allclose(loss, want, rtol=2e-3)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-2, atol=1e-4)


def test_gradient_by_finite_differences(rng):
    x, t, w = _case(rng, (3, 6), -1, np.float64, False)
    kwargs = dict(weight=w, label_smoothing=0.2, temperature=1.5)
    _, grad = nbsoftmax.cross_entropy(x, t, return_grad=True, **kwargs)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd = (nbsoftmax.cross_entropy(x + e, t, **kwargs)
              - nbsoftmax.cross_entropy(x - e, t, **kwargs)) / (2 * h)
        assert abs(fd - grad[idx]) < 1e-8


def test_large_vocabulary_rows(rng):
    x = rng.standard_normal((3, 300_001)).astype(np.float32) * 4
    t = rng.integers(0, 300_001, 3)
    loss, grad = nbsoftmax.cross_entropy(x, t, return_grad=True)
    want, want_grad = reference.cross_entropy(x, t)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-9)


def test_ignored_everything_and_empty():
    x = np.ones((2, 3))
    loss, grad = nbsoftmax.cross_entropy(x, [-100, -100], return_grad=True)
    assert np.isnan(loss) and np.all(grad == 0)
    assert nbsoftmax.cross_entropy(x, [-100, -100], reduction="sum") == 0
    assert np.isnan(nbsoftmax.cross_entropy(np.ones((0, 3)), np.zeros(0, int)))
    assert nbsoftmax.cross_entropy(np.ones((0, 3)), np.zeros(0, int), reduction="none").shape == (0,)


def test_layouts_and_inputs_untouched(rng):
    x = np.asfortranarray(rng.standard_normal((5, 7)))
    t = rng.integers(0, 7, 5)
    keep = x.copy()
    loss, grad = nbsoftmax.cross_entropy(x, t, return_grad=True)
    want, want_grad = reference.cross_entropy(x, t)
    np.testing.assert_allclose(loss, want, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-11, atol=1e-16)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_allclose(nbsoftmax.cross_entropy(x[:, ::-1], t), 
                               reference.cross_entropy(x[:, ::-1], t)[0], rtol=1e-12)
    np.testing.assert_allclose(nbsoftmax.cross_entropy(x.T, t, axis=0),
                               reference.cross_entropy(x.T, t, axis=0)[0], rtol=1e-12)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(target=[0, 3]), ValueError, "outside"),
    (dict(target=[0, 1, 2]), ValueError, "target has shape"),
    (dict(target=np.ones((2, 2))), ValueError, "class probabilities"),
    (dict(target=["a", "b"]), TypeError, "target has unsupported dtype"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
    (dict(weight=[1.0, 2.0]), ValueError, "weight has shape"),
    (dict(axis=(0, 1)), ValueError, "axis"),
    (dict(temperature=0), ValueError, "temperature"),
])
def test_errors(kwargs, exc, match):
    args = dict(logits=np.zeros((2, 3)), target=[0, 1])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        nbsoftmax.cross_entropy(**args)
