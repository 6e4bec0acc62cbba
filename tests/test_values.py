"""Values and conventions: examples from the issue and README, and special values (-inf, +inf, NaN)."""

import numpy as np
import pytest

import nbsoftmax
from tests import checks, reference

inf, nan = np.inf, np.nan
FLOATS = [np.float16, np.float32, np.float64]


def test_readme_example():
    got = nbsoftmax.softmax([1.0, 2.0, 3.0])
    checks.assert_softmax(got, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(got.round(4), [0.0900, 0.2447, 0.6652])


def test_batch_of_rows_axis_1():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    got = nbsoftmax.softmax(x, axis=1)
    checks.assert_softmax(got, x, axis=1)
    np.testing.assert_allclose(got[1], [1 / 3] * 3, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_does_not_underflow(dtype):
    got = nbsoftmax.log_softmax(np.array([1000.0, 1.0], dtype))
    np.testing.assert_array_equal(got, np.array([0.0, -999.0], dtype))


def test_logsumexp_does_not_overflow():
    assert float(nbsoftmax.logsumexp([1000.0, 1000.0])) == pytest.approx(1000 + np.log(2), rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shift_by_1e7(dtype):
    x = np.array([1.0, 2.0, 3.0], dtype)  # x + 1e7 is exact in both: integers below 2**24
    shifted = x + dtype(1e7)
    np.testing.assert_array_equal(nbsoftmax.softmax(shifted), nbsoftmax.softmax(x))
    np.testing.assert_array_equal(nbsoftmax.log_softmax(shifted), nbsoftmax.log_softmax(x))
    checks.assert_softmax(nbsoftmax.softmax(shifted), shifted)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_finite_values(dtype):
    big = np.finfo(dtype).max
    x = np.array([big, big, -big], dtype)
    np.testing.assert_array_equal(nbsoftmax.softmax(x), np.array([0.5, 0.5, 0.0], dtype))
    checks.assert_log_softmax(nbsoftmax.log_softmax(x), x)
    assert nbsoftmax.log_softmax(x)[2] == -inf
    checks.assert_logsumexp(nbsoftmax.logsumexp(x), x)


# Slices with special values: (input row, what the conventions give, see the "Values").
SPECIAL_ROWS = {
    "neg_inf_entry": [-inf, 0.0, 1.0],
    "two_neg_inf": [-inf, 2.0, -inf, 2.0],
    "all_neg_inf": [-inf, -inf, -inf],
    "nan": [0.0, nan, 1.0],
    "nan_and_neg_inf": [-inf, nan],
    "pos_inf": [0.0, inf, 1.0],
    "pos_inf_and_neg_inf": [inf, -inf],
    "two_pos_inf": [inf, inf],
    "nan_and_pos_inf": [inf, nan],
    "single_neg_inf": [-inf],
    "single_pos_inf": [inf],
    "single_nan": [nan],
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", SPECIAL_ROWS)
def test_special_values(name, dtype):
    x = np.array(SPECIAL_ROWS[name], dtype)
    checks.assert_softmax(nbsoftmax.softmax(x), x)
    checks.assert_log_softmax(nbsoftmax.log_softmax(x), x)
    checks.assert_logsumexp(nbsoftmax.logsumexp(x), x)


@pytest.mark.parametrize("dtype", FLOATS)
def test_special_value_conventions_spelled_out(dtype):
    """The conventions themselves, independently of the reference."""
    x = np.array([[-inf, 0.0, 0.0], [-inf, -inf, -inf], [nan, 0.0, 1.0], [inf, 0.0, 1.0],
                  [inf, 0.0, -inf]], dtype)
    sm = nbsoftmax.softmax(x)
    np.testing.assert_array_equal(sm[0], np.array([0.0, 0.5, 0.5], dtype))
    assert np.isnan(sm[1:]).all()
    ls = nbsoftmax.log_softmax(x)
    assert ls[0, 0] == -inf and np.isnan(ls[1:]).all()
    lse = nbsoftmax.logsumexp(x)
    assert lse[1] == -inf and np.isnan(lse[2]) and lse[3] == inf and lse[4] == inf


@pytest.mark.parametrize("axis", [0, 1, None, (0, 1)])
def test_special_values_in_2d_over_each_axis(axis):
    x = np.array([[-inf, 1.0, 2.0, 0.5], [2.0, -inf, 3.0, nan], [-inf, -inf, inf, 0.0]])
    checks.assert_softmax(nbsoftmax.softmax(x, axis=axis), x, axis)
    checks.assert_log_softmax(nbsoftmax.log_softmax(x, axis=axis), x, axis)
    checks.assert_logsumexp(nbsoftmax.logsumexp(x, axis=axis), x, axis)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", FLOATS)
def test_special_values_in_long_rows(axis, dtype, rng):
    """Special values past the first block of a long slice (kernels work in blocks)."""
    x = rng.standard_normal((5, 2000)).astype(dtype)
    x[0, 1500] = nan
    x[1, 1999] = inf
    x[2, :] = -inf
    x[3, 700:] = -inf
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    checks.assert_softmax(nbsoftmax.softmax(x, axis=axis), x, axis)
    checks.assert_log_softmax(nbsoftmax.log_softmax(x, axis=axis), x, axis)
    checks.assert_logsumexp(nbsoftmax.logsumexp(x, axis=axis), x, axis)


@pytest.mark.parametrize("dtype", FLOATS)
def test_underflowing_entries_are_zero_not_nan(dtype):
    x = np.array([0.0, -1e4, -np.finfo(dtype).max], dtype)
    np.testing.assert_array_equal(nbsoftmax.softmax(x), np.array([1.0, 0.0, 0.0], dtype))
    checks.assert_log_softmax(nbsoftmax.log_softmax(x), x)


@pytest.mark.parametrize(
    "func, check, ref",
    [
        (nbsoftmax.softmax, checks.assert_softmax, reference.softmax),
        (nbsoftmax.log_softmax, checks.assert_log_softmax, reference.log_softmax),
    ],
    ids=["softmax", "log_softmax"],
)
def test_random_rows_float64(func, check, ref, rng):
    x = rng.standard_normal((6, 37)) * 5
    got = func(x)
    check(got, x)
    np.testing.assert_allclose(got, ref(x), rtol=1e-13)


def test_backward_examples():
    y = nbsoftmax.softmax([1.0, 2.0, 3.0])
    g = np.array([1.0, 0.0, 0.0])
    checks.assert_softmax_backward(nbsoftmax.softmax_backward(g, y), g, y)
    ly = nbsoftmax.log_softmax([1.0, 2.0, 3.0])
    onehot = np.array([0.0, 0.0, -1.0])
    got = nbsoftmax.log_softmax_backward(onehot, ly)
    checks.assert_log_softmax_backward(got, onehot, ly)
    # Cross-entropy: the gradient is softmax(x) - onehot.
    np.testing.assert_allclose(got, y + onehot, rtol=1e-14)


@pytest.mark.parametrize("dtype", FLOATS)
def test_backward_with_zero_probabilities(dtype):
    x = np.array([[-inf, 0.0, 1.0], [0.0, -inf, -inf]], dtype)
    g = np.array([[5.0, -1.0, 2.0], [1.0, 3.0, -2.0]], dtype)
    y = nbsoftmax.softmax(x)
    got = nbsoftmax.softmax_backward(g, y)
    checks.assert_softmax_backward(got, g, y)
    assert got[0, 0] == 0 and (got[1] == 0).all()
    ly = nbsoftmax.log_softmax(x)
    checks.assert_log_softmax_backward(nbsoftmax.log_softmax_backward(g, ly), g, ly)
