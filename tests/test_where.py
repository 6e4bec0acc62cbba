"""where= on softmax, log_softmax, logsumexp and the backward passes (jax.nn semantics),
against the references of tests/reference.py."""

import numpy as np
import pytest

import nbsoftmax

from . import reference

RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}
CASES = [((7,), -1, (7,)), ((4, 33), -1, (4, 33)), ((4, 33), -1, (33,)),
         ((3, 600), 1, (3, 1)), ((3, 5, 4), 1, (5, 1)), ((2, 3, 4), (0, 2), (2, 3, 4)),
         ((2, 3), None, (2, 3))]


def _mask(rng, shape):
    mask = rng.random(shape) < 0.6
    if mask.ndim >= 1 and mask.shape[0] > 1:
        mask[0] = False  # a fully masked slice for row-like cases
    return mask


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,mshape", CASES)
def test_forward(rng, dtype, shape, axis, mshape):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    mask = _mask(rng, mshape)
    rt = RTOL[dtype]
    got = nbsoftmax.softmax(x, axis, where=mask)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, reference.softmax_where(x, axis, mask), rtol=rt, atol=rt * 1e-3)
    got = nbsoftmax.log_softmax(x, axis, where=mask)
    np.testing.assert_allclose(got, reference.log_softmax_where(x, axis, mask), rtol=rt,
                               atol=rt * 10)
    got = nbsoftmax.logsumexp(x, axis, where=mask)
    np.testing.assert_allclose(got, reference.logsumexp_where(x, axis, mask), rtol=rt)
    got = nbsoftmax.softmax(x, axis, where=mask, temperature=0.3)
    np.testing.assert_allclose(got, reference.softmax_where(x, axis, mask, 0.3), rtol=rt,
                               atol=rt * 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,mshape", CASES)
def test_backward(rng, dtype, shape, axis, mshape):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    mask = _mask(rng, mshape)
    rt = RTOL[dtype] * 10
    y = nbsoftmax.softmax(x, axis, where=mask)
    got = nbsoftmax.softmax_backward(g, y, axis, where=mask, temperature=2.0)
    np.testing.assert_allclose(got, reference.softmax_backward_where(g, y, axis, mask, 2.0),
                               rtol=rt, atol=rt)
    ly = nbsoftmax.log_softmax(x, axis, where=mask)
    got = nbsoftmax.log_softmax_backward(g, ly, axis, where=mask)
    np.testing.assert_allclose(got, reference.log_softmax_backward_where(g, ly, axis, mask),
                               rtol=rt, atol=rt)
    assert np.all(got[~np.broadcast_to(mask, shape)] == 0)


def test_issue_example():
    """x = [36, 10000], mask x < 1000: gradient 0 at the masked entry, finite elsewhere."""
    x = np.array([36.0, 10000.0])
    mask = x < 1000
    y = nbsoftmax.softmax(x, where=mask)
    np.testing.assert_array_equal(y, [1.0, 0.0])
    for g in ([1.0, 1.0], [0.3, np.inf], [2.0, np.nan]):
        grad = nbsoftmax.softmax_backward(g, y, where=mask)
        assert grad[1] == 0.0 and np.isfinite(grad[0])
    ly = nbsoftmax.log_softmax(x, where=mask)
    np.testing.assert_array_equal(ly, [0.0, -np.inf])
    grad = nbsoftmax.log_softmax_backward([1.0, 1.0], ly, where=mask)
    np.testing.assert_array_equal(grad, [0.0, 0.0])


def test_fully_masked_and_conventions():
    x = np.array([[1.0, 2.0], [np.nan, 1.0], [np.inf, 1.0], [-np.inf, -np.inf], [5.0, np.nan]])
    mask = np.array([[False, False], [True, True], [False, True], [True, False], [True, False]])
    np.testing.assert_array_equal(nbsoftmax.softmax(x, where=mask),
                                  [[0, 0], [np.nan, np.nan], [0, 1], [np.nan, 0], [1, 0]])
    np.testing.assert_array_equal(
        nbsoftmax.log_softmax(x, where=mask),
        [[-np.inf, -np.inf], [np.nan, np.nan], [-np.inf, 0], [np.nan, -np.inf], [0, -np.inf]])
    np.testing.assert_array_equal(nbsoftmax.logsumexp(x, where=mask),
                                  [-np.inf, np.nan, 1.0, -np.inf, 5.0])


def test_keepdims_and_broadcast_scalar_mask(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(nbsoftmax.logsumexp(x, 0, keepdims=True, where=True),
                               reference.logsumexp(x, 0, keepdims=True), rtol=1e-13)
    assert np.all(nbsoftmax.softmax(x, where=False) == 0)
    assert np.all(nbsoftmax.logsumexp(x, where=np.zeros(4, bool)) == -np.inf)


@pytest.mark.parametrize("layout", sorted(reference.LAYOUTS))
def test_layouts(rng, layout):
    base = rng.standard_normal((4, 6, 5))
    x = reference.LAYOUTS[layout](base)
    axis = -1 if x.ndim else None
    mask = reference.LAYOUTS[layout](rng.random((4, 6, 5)) < 0.5)
    xc, mc = np.array(x, order="C"), np.array(mask, order="C")
    np.testing.assert_allclose(nbsoftmax.softmax(x, axis, where=mask),
                               reference.softmax_where(xc, axis, mc), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(nbsoftmax.logsumexp(x, axis, where=mask),
                               reference.logsumexp_where(xc, axis, mc), rtol=1e-13)


def test_mask_in_another_memory_order(rng):
    x = rng.standard_normal((5, 6))
    mask = np.asfortranarray(rng.random((5, 6)) < 0.5)
    np.testing.assert_allclose(nbsoftmax.softmax(x, where=mask),
                               reference.softmax_where(x, -1, mask), rtol=1e-13)


@pytest.mark.parametrize("where,exc,match", [
    (np.ones(3, np.int64), TypeError, "where has dtype int64"),
    (np.ones((2, 3), bool), ValueError, "does not broadcast"),
    (np.ones(5, bool), ValueError, r"where has shape \(5,\)"),
])
def test_bad_where(where, exc, match):
    x = np.ones((4, 3))
    out = np.full((4, 3), 7.0)
    for call in (lambda: nbsoftmax.softmax(x, where=where, out=out),
                 lambda: nbsoftmax.log_softmax_backward(x, x, where=where, out=out),
                 lambda: nbsoftmax.logsumexp(x, where=where)):
        with pytest.raises(exc, match=match):
            call()
    np.testing.assert_array_equal(out, 7.0)
    np.testing.assert_array_equal(x, 1.0)
