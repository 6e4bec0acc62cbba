"""axis: ints, negative ints, tuples (non-adjacent too), None, on 0-d to 4-D shapes incl. empty ones."""

import itertools

import numpy as np
import pytest

import nbsoftmax
from tests import checks

SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 3, 4, 5), (1,), (1, 1), (4, 1), (1, 6), (3, 1, 4),
          (0,), (3, 0), (0, 4), (2, 0, 3), (2, 3, 0, 1)]


def _axes(ndim):
    """Every int axis (negative too), every tuple of 2 and 3 axes, all axes, and None."""
    axes = list(range(-ndim, ndim))
    for k in (2, 3):
        for combo in itertools.combinations(range(ndim), k):
            axes.append(combo)
    if ndim >= 2:
        axes.append((-1, 0))  # negative and unsorted
        axes.append(tuple(range(ndim))[::-1])
    axes.append(None)
    return axes


CASES = [(shape, axis) for shape in SHAPES for axis in _axes(len(shape))]


def _case_id(case):
    shape, axis = case
    return f"{'x'.join(map(str, shape))}-axis{axis}".replace(" ", "")


def _input(shape, rng):
    return rng.standard_normal(shape) * 4


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_softmax_axes(case, rng):
    shape, axis = case
    x = _input(shape, rng)
    checks.assert_softmax(nbsoftmax.softmax(x, axis=axis), x, axis)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_log_softmax_axes(case, rng):
    shape, axis = case
    x = _input(shape, rng)
    checks.assert_log_softmax(nbsoftmax.log_softmax(x, axis=axis), x, axis)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_logsumexp_axes(case, keepdims, rng):
    shape, axis = case
    x = _input(shape, rng)
    checks.assert_logsumexp(nbsoftmax.logsumexp(x, axis=axis, keepdims=keepdims), x, axis, keepdims)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_softmax_backward_axes(case, rng):
    shape, axis = case
    g = _input(shape, rng)
    y = checks.reference.softmax(_input(shape, rng), axis)
    checks.assert_softmax_backward(nbsoftmax.softmax_backward(g, y, axis=axis), g, y, axis)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_log_softmax_backward_axes(case, rng):
    shape, axis = case
    g = _input(shape, rng)
    y = checks.reference.log_softmax(_input(shape, rng), axis)
    checks.assert_log_softmax_backward(nbsoftmax.log_softmax_backward(g, y, axis=axis), g, y, axis)


def test_default_axis_is_last(rng):
    x = _input((3, 4, 5), rng)
    np.testing.assert_array_equal(nbsoftmax.softmax(x), nbsoftmax.softmax(x, axis=-1))
    np.testing.assert_array_equal(nbsoftmax.softmax(x), nbsoftmax.softmax(x, axis=2))
    np.testing.assert_array_equal(nbsoftmax.logsumexp(x), nbsoftmax.logsumexp(x, axis=(2,)))


def test_axis_none_is_all_axes(rng):
    x = _input((3, 4, 5), rng)
    checks.assert_softmax(nbsoftmax.softmax(x, axis=None), x, (0, 1, 2))
    assert abs(nbsoftmax.softmax(x, axis=None).sum() - 1) < 1e-13
    lse = nbsoftmax.logsumexp(x, axis=None)
    assert type(lse) is np.float64  # a full reduction gives a NumPy scalar, as NumPy's
    assert type(nbsoftmax.logsumexp(x, axis=None, keepdims=True)) is np.ndarray


def test_numpy_integer_axes_accepted(rng):
    x = _input((3, 4), rng)
    np.testing.assert_array_equal(nbsoftmax.softmax(x, axis=np.int64(0)), nbsoftmax.softmax(x, axis=0))
    np.testing.assert_array_equal(
        nbsoftmax.softmax(x, axis=(np.int8(0), np.intp(1))), nbsoftmax.softmax(x, axis=None)
    )


# ------------------------------------------------------------------ 0-d input


@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("value", [3.0, -1e300, 0.0])
def test_zero_d(axis, value):
    x = np.float64(value)
    sm, ls, lse = (nbsoftmax.softmax(x, axis=axis), nbsoftmax.log_softmax(x, axis=axis),
                   nbsoftmax.logsumexp(x, axis=axis))
    for result in (sm, ls, lse):  # NumPy scalars, as NumPy's and SciPy's 0-d results
        assert type(result) is np.float64
    assert sm == 1.0 and ls == 0.0 and lse == value
    keep = nbsoftmax.logsumexp(x, axis=axis, keepdims=True)
    assert type(keep) is np.float64 and keep == value
    g = np.float64(2.0)
    for grad in (nbsoftmax.softmax_backward(g, sm, axis=axis),  # 1 * (2 - 2 * 1)
                 nbsoftmax.log_softmax_backward(g, ls, axis=axis)):  # 2 - e**0 * 2
        assert type(grad) is np.float64 and grad == 0.0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int32, np.bool_])
def test_zero_d_dtypes_and_python_scalars(dtype):
    assert nbsoftmax.softmax(np.array(5, dtype)).dtype == checks.expected_dtype(dtype)
    assert nbsoftmax.softmax(np.array(5, dtype)) == 1
    assert nbsoftmax.log_softmax(7) == 0.0
    assert nbsoftmax.logsumexp(7) == 7.0


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_zero_d_special_values(value):
    """A scalar is a one-element slice: +inf/NaN/all -inf make it NaN; logsumexp the value."""
    assert np.isnan(nbsoftmax.softmax(value)) and np.isnan(nbsoftmax.log_softmax(value))
    lse = nbsoftmax.logsumexp(value)
    assert (np.isnan(lse) and np.isnan(value)) or lse == value


@pytest.mark.parametrize("axis", [1, -2, (0, 1), (0, 0)])
@pytest.mark.parametrize("func", [nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.logsumexp])
def test_zero_d_rejects_other_axes(func, axis):
    with pytest.raises(np.exceptions.AxisError, match="out of bounds"):
        func(np.float64(1.0), axis=axis)
