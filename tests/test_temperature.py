"""temperature= on softmax, log_softmax and their backward passes, and softmin (CPU kernels of
nbsoftmax.cpu._scaled), against the float64 references of tests/reference.py."""

import numpy as np
import pytest

import nbsoftmax

from . import checks, reference

DTYPES = [np.float16, np.float32, np.float64]
RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}
CASES = [((7,), -1), ((4, 33), -1), ((3, 600), 1), ((3, 5, 4), 1), ((2, 3, 4), (0, 2)),
         ((2, 3), None)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", CASES)
@pytest.mark.parametrize("temperature", [0.25, 1.0, 3.0])
def test_forward(rng, dtype, shape, axis, temperature):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    got = nbsoftmax.softmax(x, axis, temperature=temperature)
    assert got.dtype == dtype and got.shape == x.shape
    want = reference.softmax_where(x, axis, temperature=temperature)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)
    got = nbsoftmax.log_softmax(x, axis, temperature=temperature)
    want = reference.log_softmax_where(x, axis, temperature=temperature)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 10)


def test_temperature_one_equals_plain(rng):
    x = rng.standard_normal((5, 70)).astype(np.float32)
    np.testing.assert_allclose(nbsoftmax.softmax(x, temperature=1), nbsoftmax.softmax(x),
                               rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", CASES)
def test_backward(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    t = 2.5
    y = nbsoftmax.softmax(x, axis, temperature=t)
    got = nbsoftmax.softmax_backward(g, y, axis, temperature=t)
    want = reference.softmax_backward_where(g, y, axis, temperature=t)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype] * 10, atol=RTOL[dtype])
    ly = nbsoftmax.log_softmax(x, axis, temperature=t)
    got = nbsoftmax.log_softmax_backward(g, ly, axis, temperature=t)
    want = reference.log_softmax_backward_where(g, ly, axis, temperature=t)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)


def test_backward_is_the_derivative(rng):
    """Central finite differences of sum(w * softmax(x / T)) match the backward pass."""
    x = rng.standard_normal(6)
    w = rng.standard_normal(6)
    t = 0.7
    grad = nbsoftmax.softmax_backward(w, nbsoftmax.softmax(x, temperature=t), temperature=t)
    lgrad = nbsoftmax.log_softmax_backward(w, nbsoftmax.log_softmax(x, temperature=t),
                                           temperature=t)
    h = 1e-6
    for j in range(6):
        e = np.zeros(6)
        e[j] = h
        fd = (w @ nbsoftmax.softmax(x + e, temperature=t)
              - w @ nbsoftmax.softmax(x - e, temperature=t)) / (2 * h)
        assert abs(fd - grad[j]) < 1e-7
        fd = (w @ nbsoftmax.log_softmax(x + e, temperature=t)
              - w @ nbsoftmax.log_softmax(x - e, temperature=t)) / (2 * h)
        assert abs(fd - lgrad[j]) < 1e-7


def test_large_shift_and_conventions():
    got = nbsoftmax.softmax([1e7, 1e7 + 2.0], temperature=2.0)
    np.testing.assert_allclose(got, reference.softmax([0.0, 1.0]), rtol=1e-12)
    got = nbsoftmax.softmax([[1.0, np.nan], [-np.inf, 0.0], [-np.inf, -np.inf]], temperature=3)
    np.testing.assert_array_equal(np.isnan(got), [[1, 1], [0, 0], [1, 1]])
    assert got[1, 0] == 0.0 and got[1, 1] == 1.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", CASES)
def test_softmin(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    got = nbsoftmax.softmin(x, axis)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, reference.softmin(x, axis), rtol=RTOL[dtype],
                               atol=RTOL[dtype] * 1e-3)
    got = nbsoftmax.softmin(x, axis, temperature=4.0)
    np.testing.assert_allclose(got, reference.softmin(x, axis, temperature=4.0),
                               rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)


def test_softmin_conventions():
    np.testing.assert_array_equal(nbsoftmax.softmin([np.inf, 0.0]), [0.0, 1.0])
    assert np.isnan(nbsoftmax.softmin([-np.inf, 0.0])).all()


@pytest.mark.parametrize("layout", sorted(reference.LAYOUTS))
def test_layouts(rng, layout):
    base = rng.standard_normal((4, 6, 5))
    x = reference.LAYOUTS[layout](base)
    axis = -1 if x.ndim else None
    want = reference.softmax_where(np.array(x, order="C"), axis, temperature=0.5)
    np.testing.assert_allclose(nbsoftmax.softmax(x, axis, temperature=0.5), want, rtol=1e-13,
                               atol=1e-300)


def test_out_and_in_place(rng):
    x = rng.standard_normal((3, 7))
    want = reference.softmax_where(x, temperature=2.0)
    out = np.empty_like(x)
    assert nbsoftmax.softmax(x, temperature=2.0, out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-13)
    fortran = np.empty_like(x, order="F")
    nbsoftmax.softmax(x, temperature=2.0, out=fortran)
    np.testing.assert_allclose(fortran, want, rtol=1e-13)
    nbsoftmax.log_softmax(x, temperature=2.0, out=x)
    np.testing.assert_allclose(x, np.log(want), rtol=1e-13)


def test_zero_d_and_empty():
    assert nbsoftmax.softmax(3.0, temperature=2.0) == 1.0
    assert nbsoftmax.log_softmax(np.float32(3.0), temperature=2.0) == 0.0
    assert nbsoftmax.softmax(np.empty((0, 3)), temperature=2.0).shape == (0, 3)
    assert nbsoftmax.softmin(np.empty((3, 0))).shape == (3, 0)


@pytest.mark.parametrize("bad,exc", [(0.0, ValueError), (-1.0, ValueError),
                                     (np.inf, ValueError), (np.nan, ValueError),
                                     ("2", TypeError), (True, TypeError), ([2.0], TypeError)])
def test_bad_temperature(bad, exc):
    x = np.ones(3)
    with pytest.raises(exc, match="temperature"):
        nbsoftmax.softmax(x, temperature=bad)
    with pytest.raises(exc, match="temperature"):
        nbsoftmax.softmax_backward(x, x, temperature=bad)
    with pytest.raises(exc, match="temperature"):
        nbsoftmax.softmin(x, temperature=bad)
    np.testing.assert_array_equal(x, 1.0)


def test_plain_calls_use_the_plain_kernels(rng):
    """The defaults do not reach the scaled kernels (they keep their own fast path)."""
    from nbsoftmax import cpu

    x = rng.standard_normal((2, 9)).astype(np.float32)
    before = {k for k in cpu._compiled if k[1] in ("scaled", "masked")}
    nbsoftmax.softmax(x)
    nbsoftmax.log_softmax_backward(x, x)
    after = {k for k in cpu._compiled if k[1] in ("scaled", "masked")}
    assert before == after
