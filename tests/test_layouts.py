"""Every function on every layout of the shared table gives the values of a contiguous copy."""

import numpy as np
import pytest

import nbsoftmax
from tests import checks
from tests.reference import LAYOUTS

BASE_SHAPE = (3, 4, 5)
AXES = [-1, 0, 1, (0, 2), None]
DTYPES = [np.float32, np.float64]


def _base(dtype, rng):
    return (rng.standard_normal(BASE_SHAPE) * 3).astype(dtype)


def _axis_for(arr, axis):
    """0-d arrays take the axes a scalar accepts; the others are checked in test_axes.py."""
    return axis if arr.ndim or axis in (-1, None) else -1


def _contiguous_copy(arr):
    copy = np.array(arr, order="C")
    assert copy.flags.c_contiguous and copy.flags.writeable
    return copy


FORWARD = {
    "softmax": (nbsoftmax.softmax, checks.assert_softmax),
    "log_softmax": (nbsoftmax.log_softmax, checks.assert_log_softmax),
    "logsumexp": (nbsoftmax.logsumexp, checks.assert_logsumexp),
}


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", FORWARD)
def test_forward_layouts(op, layout, dtype, axis, rng):
    func, check = FORWARD[op]
    x = LAYOUTS[layout](_base(dtype, rng))
    axis = _axis_for(x, axis)
    before = x.copy()
    got = func(x, axis=axis)
    check(got, _contiguous_copy(x), axis)
    assert checks.same_bits(x, before), "the input was modified"
    if op != "logsumexp":
        assert not np.shares_memory(got, x)


BACKWARD = {
    "softmax_backward": (nbsoftmax.softmax_backward, checks.assert_softmax_backward,
                         checks.reference.softmax),
    "log_softmax_backward": (nbsoftmax.log_softmax_backward, checks.assert_log_softmax_backward,
                             checks.reference.log_softmax),
}


@pytest.mark.parametrize("axis", [-1, 0, (0, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("which", ["grad_output", "output"])
@pytest.mark.parametrize("op", BACKWARD)
def test_backward_layouts(op, which, layout, dtype, axis, rng):
    """One input in the layout, the other C-contiguous (of the layout's shape)."""
    func, check, forward_ref = BACKWARD[op]
    make = LAYOUTS[layout]
    g_base = _base(dtype, rng)
    y_base = forward_ref(_base(np.float64, rng), axis).astype(dtype)
    if which == "grad_output":
        g = make(g_base)
        y = _contiguous_copy(make(y_base))
    else:
        g = _contiguous_copy(make(g_base))
        y = make(y_base)
    axis = _axis_for(g, axis)
    g_before, y_before = g.copy(), y.copy()
    got = func(g, y, axis=axis)
    check(got, _contiguous_copy(g), _contiguous_copy(y), axis)
    assert checks.same_bits(g, g_before) and checks.same_bits(y, y_before), "an input was modified"


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("layout", ["fortran", "negative_strides", "transposed", "sliced", "byteswapped"])
@pytest.mark.parametrize("op", BACKWARD)
def test_backward_both_inputs_in_layout(op, layout, axis, rng):
    func, check, forward_ref = BACKWARD[op]
    make = LAYOUTS[layout]
    g = make(_base(np.float64, rng))
    y = make(forward_ref(_base(np.float64, rng), axis))
    check(func(g, y, axis=axis), _contiguous_copy(g), _contiguous_copy(y), axis)


@pytest.mark.parametrize("layout", ["contiguous", "fortran", "transposed", "negative_strides", "sliced"])
@pytest.mark.parametrize("op", FORWARD)
def test_layouts_with_float16_and_int(op, layout, rng):
    func, check = FORWARD[op]
    for x in (LAYOUTS[layout](_base(np.float16, rng)),
              LAYOUTS[layout]((_base(np.float64, rng) * 5).astype(np.int16))):
        check(func(x, axis=1), _contiguous_copy(x), 1)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, (0, 1), (1, 2), (0, 2), (0, 3), (1, 3), None])
@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1), (1, 3, 0, 2)])
def test_4d_memory_orders(order, axis, rng):
    """Every memory order of a 4-D array against every kind of axis set."""
    base = rng.standard_normal((3, 4, 5, 6))
    x = np.array(base.transpose(order), order="C").transpose(np.argsort(order))
    np.testing.assert_array_equal(x, base)
    checks.assert_softmax(nbsoftmax.softmax(x, axis=axis), base, axis)
    checks.assert_log_softmax(nbsoftmax.log_softmax(x, axis=axis), base, axis)
    checks.assert_logsumexp(nbsoftmax.logsumexp(x, axis=axis), base, axis)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_parallel_sizes_in_layouts(axis, rng):
    """Large enough for the parallel drivers (rows and columns) in odd layouts too."""
    base = rng.standard_normal((64, 48, 40)).astype(np.float32)
    for layout in ("contiguous", "fortran", "negative_strides", "transposed", "sliced_rows"):
        x = LAYOUTS[layout](base)
        checks.assert_softmax(nbsoftmax.softmax(x, axis=axis), base, axis)
        checks.assert_log_softmax(nbsoftmax.log_softmax(x, axis=axis), base, axis)
        checks.assert_logsumexp(nbsoftmax.logsumexp(x, axis=axis), base, axis)
        y = checks.reference.softmax(base, axis).astype(np.float32)
        checks.assert_softmax_backward(nbsoftmax.softmax_backward(x, LAYOUTS[layout](y), axis=axis),
                                       base, y, axis)
        ly = checks.reference.log_softmax(base, axis).astype(np.float32)
        checks.assert_log_softmax_backward(
            nbsoftmax.log_softmax_backward(x, LAYOUTS[layout](ly), axis=axis), base, ly, axis)


def test_result_keeps_the_input_memory_order(rng):
    """A new result mirrors a non-C input's order (as empty_like(order='K')), not transposed copies."""
    x = np.asfortranarray(rng.standard_normal((30, 40)))
    assert nbsoftmax.softmax(x, axis=0).flags.f_contiguous
    assert nbsoftmax.log_softmax(x, axis=1).flags.f_contiguous
