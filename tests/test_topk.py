"""softmax_topk (CPU kernels of nbsoftmax.cpu._topk) against tests/reference.softmax_topk."""

import numpy as np
import pytest

import nbsoftmax

from . import reference

RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,k", [((7,), -1, 3), ((5, 40), -1, 1), ((5, 40), -1, 40),
                                          ((3, 5000), 1, 7), ((4, 6, 3), 1, 2),
                                          ((4, 6, 3), 0, 4)])
def test_against_reference(rng, dtype, shape, axis, k):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    probs, idx = nbsoftmax.softmax_topk(x, k, axis)
    want_p, want_i = reference.softmax_topk(x, k, axis)
    assert probs.dtype == dtype and idx.dtype == np.int64
    assert probs.shape == idx.shape == want_i.shape
    np.testing.assert_array_equal(idx, want_i)
    # float16: results below 6e-5 are subnormal, with absolute steps of 6e-8
    np.testing.assert_allclose(probs, want_p, rtol=RTOL[dtype],
                               atol=1e-7 if dtype == np.float16 else 1e-300)


def test_ties_go_to_the_lower_index(rng):
    x = rng.integers(0, 4, (50, 30)).astype(np.float32)  # many equal values
    probs, idx = nbsoftmax.softmax_topk(x, 10)
    want_p, want_i = reference.softmax_topk(x, 10)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_allclose(probs, want_p, rtol=1e-6)
    _, idx = nbsoftmax.softmax_topk(np.zeros(6), 4)
    np.testing.assert_array_equal(idx, [0, 1, 2, 3])


def test_special_values():
    x = np.array([[1.0, -np.inf, 2.0, -np.inf], [np.nan, 1.0, 2.0, 3.0], [np.inf, 0.0, 1.0, 2.0],
                  [-np.inf] * 4, [-np.inf, 5.0, -np.inf, -np.inf]])
    probs, idx = nbsoftmax.softmax_topk(x, 3)
    want_p, want_i = reference.softmax_topk(x, 3)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_allclose(probs, want_p, rtol=1e-13)
    np.testing.assert_array_equal(idx[0], [2, 0, 1])
    np.testing.assert_array_equal(idx[1:4], [[0, 1, 2]] * 3)
    np.testing.assert_array_equal(probs[4], [1.0, 0.0, 0.0])


def test_large_shift_and_long_rows(rng):
    x = rng.standard_normal(300_000) * 5 + 1e4
    probs, idx = nbsoftmax.softmax_topk(x, 5)
    want_p, want_i = reference.softmax_topk(x, 5)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_allclose(probs, want_p, rtol=1e-12)


def test_layouts_and_empty(rng):
    base = rng.standard_normal((6, 9))
    for x in (base.T, base[:, ::-2], np.asfortranarray(base)):
        probs, idx = nbsoftmax.softmax_topk(x, 2)
        want_p, want_i = reference.softmax_topk(np.ascontiguousarray(x), 2)
        np.testing.assert_array_equal(idx, want_i)
        np.testing.assert_allclose(probs, want_p, rtol=1e-13)
    probs, idx = nbsoftmax.softmax_topk(np.empty((0, 5)), 2)
    assert probs.shape == idx.shape == (0, 2)


@pytest.mark.parametrize("k,axis,exc,match", [(0, -1, ValueError, "k=0"),
                                              (6, -1, ValueError, "k=6"),
                                              (2.0, -1, TypeError, "k must be an int"),
                                              (2, (0, 1), ValueError, "axis"),
                                              (2, 2, np.exceptions.AxisError, "axis")])
def test_errors(k, axis, exc, match):
    with pytest.raises(exc, match=match):
        nbsoftmax.softmax_topk(np.ones((3, 5)), k, axis)


# ------------------------------------------------------------------ selection (large k)
# nbsoftmax.cpu._topk: large k (use_insertion false) selects by partition; smaller k inserts
# into a sorted buffer, finished by selection when a row's order makes insertion quadratic.

def _check(x, k):
    probs, idx = nbsoftmax.softmax_topk(x, k)
    want_p, want_i = reference.softmax_topk(x, k)
    np.testing.assert_array_equal(idx, want_i)
    tol = RTOL[x.dtype.type]
    np.testing.assert_allclose(probs, want_p, rtol=tol,
                               atol=1e-7 if x.dtype == np.float16 else 1e-300)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("order", ["random", "ascending", "descending"])
def test_selection_against_reference(rng, dtype, order):
    from nbsoftmax.cpu import _topk

    n = 3000  # above 4 * SAMPLE: the sampled threshold estimate is used
    assert _topk.use_insertion(5, n) and not _topk.use_insertion(40, n)
    x = (rng.standard_normal((4, n)) * 3).astype(dtype)
    if order != "random":
        x.sort(axis=1)
        if order == "descending":
            x = np.ascontiguousarray(x[:, ::-1])
    for k in (40, 700, n - 1, n, 5):  # 5: insertion (which gives up on ascending rows)
        _check(x, k)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_selection_ties_go_to_the_lower_index(rng, dtype):
    x = rng.integers(0, 10, (6, 2000)).astype(dtype)  # about 200 of each value
    for k in (150, 200, 1999):
        _check(x, k)
    x = np.zeros((2, 1500), dtype)
    x[:, 1::2] = -0.0  # equal values, whatever their sign bit
    probs, idx = nbsoftmax.softmax_topk(x, 300)
    np.testing.assert_array_equal(idx, np.broadcast_to(np.arange(300), (2, 300)))


def test_selection_with_infinities_and_a_misleading_sample(rng):
    from nbsoftmax.cpu import _topk

    x = rng.standard_normal((3, 4096))
    x[0, :4000] = -np.inf  # fewer finite entries than k: the rest ranked by index
    x[1, :: 4096 // _topk.SAMPLE] = 10.0  # the sample sees only these: too few reach its estimate
    x[2, ::3] = -np.inf
    for k in (300, 2000):
        _check(x, k)

