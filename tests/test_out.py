"""out=: any writable layout, in place (out is the input), out is the other backward input, overlaps."""

import numpy as np
import pytest

import nbsoftmax
from tests import checks
from tests.reference import LAYOUTS, WRITABLE_LAYOUTS

SHAPE = (3, 4, 5)
AXES = [-1, 0, 1, (0, 2), None]
DTYPES = [np.float32, np.float64]

FORWARD = {
    "softmax": (nbsoftmax.softmax, checks.assert_softmax),
    "log_softmax": (nbsoftmax.log_softmax, checks.assert_log_softmax),
}
BACKWARD = {
    "softmax_backward": (nbsoftmax.softmax_backward, checks.assert_softmax_backward,
                         checks.reference.softmax),
    "log_softmax_backward": (nbsoftmax.log_softmax_backward, checks.assert_log_softmax_backward,
                             checks.reference.log_softmax),
}


def _values(dtype, rng, shape=SHAPE):
    return (rng.standard_normal(shape) * 3).astype(dtype)


def _garbage_out(layout, dtype, shape=SHAPE):
    """An out array in the layout, pre-filled with NaN so unwritten elements show."""
    return WRITABLE_LAYOUTS[layout](np.full(shape, np.nan, dtype))


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_layout", WRITABLE_LAYOUTS)
@pytest.mark.parametrize("x_layout", ["contiguous", "fortran", "byteswapped"])
@pytest.mark.parametrize("op", FORWARD)
def test_forward_out_layouts(op, x_layout, out_layout, dtype, axis, rng):
    func, check = FORWARD[op]
    x = LAYOUTS[x_layout](_values(dtype, rng))
    x_before = x.copy()
    out = _garbage_out(out_layout, dtype)
    assert func(x, axis=axis, out=out) is out
    check(out, np.array(x), axis)
    assert checks.same_bits(x, x_before)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES + [np.float16])
@pytest.mark.parametrize("layout", WRITABLE_LAYOUTS)
@pytest.mark.parametrize("op", FORWARD)
def test_forward_in_place(op, layout, dtype, axis, rng):
    func, check = FORWARD[op]
    x = WRITABLE_LAYOUTS[layout](_values(dtype, rng))
    original = np.array(x)
    assert func(x, axis=axis, out=x) is x
    check(x, original, axis)


@pytest.mark.parametrize("axis", [-1, 0, (0, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_layout", WRITABLE_LAYOUTS)
@pytest.mark.parametrize("op", BACKWARD)
def test_backward_out_layouts(op, out_layout, dtype, axis, rng):
    func, check, forward_ref = BACKWARD[op]
    g = _values(dtype, rng)
    y = forward_ref(_values(np.float64, rng), axis).astype(dtype)
    g_before, y_before = g.copy(), y.copy()
    out = _garbage_out(out_layout, dtype)
    assert func(g, y, axis=axis, out=out) is out
    check(out, g, y, axis)
    assert checks.same_bits(g, g_before) and checks.same_bits(y, y_before)


@pytest.mark.parametrize("axis", [-1, 0, (0, 2)])
@pytest.mark.parametrize("dtype", DTYPES + [np.float16])
@pytest.mark.parametrize("layout", WRITABLE_LAYOUTS)
@pytest.mark.parametrize("target", ["grad_output", "output"])
@pytest.mark.parametrize("op", BACKWARD)
def test_backward_in_place(op, target, layout, dtype, axis, rng):
    """out is one of the inputs (both in the layout); the other input stays untouched."""
    func, check, forward_ref = BACKWARD[op]
    make = WRITABLE_LAYOUTS[layout]
    g = make(_values(dtype, rng))
    y = make(forward_ref(_values(np.float64, rng), axis).astype(dtype))
    g0, y0 = np.array(g), np.array(y)
    out = g if target == "grad_output" else y
    other, other_before = (y, y0) if target == "grad_output" else (g, g0)
    assert func(g, y, axis=axis, out=out) is out
    check(out, g0, y0, axis)
    assert checks.same_bits(other, other_before)


@pytest.mark.parametrize("target", ["grad_output", "output"])
@pytest.mark.parametrize("op", BACKWARD)
def test_backward_in_place_mixed_layouts(op, target, rng):
    """out is one input, the other input has a different memory order."""
    func, check, forward_ref = BACKWARD[op]
    g = _values(np.float64, rng)
    y = np.asfortranarray(forward_ref(_values(np.float64, rng), 1))
    g0, y0 = g.copy(), y.copy()
    out = g if target == "grad_output" else y
    func(g, y, axis=1, out=out)
    check(out, g0, y0, 1)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("op", FORWARD)
def test_out_overlapping_the_input(op, axis, rng):
    """out a reversed view of the input's memory: the result is of the input as it was."""
    func, check = FORWARD[op]
    buf = _values(np.float64, rng, (6, 7))
    original = buf.copy()
    out = buf[::-1, ::-1]
    func(buf, axis=axis, out=out)
    check(out, original, axis)


@pytest.mark.parametrize("op", BACKWARD)
def test_backward_out_overlapping_an_input(op, rng):
    func, check, forward_ref = BACKWARD[op]
    g = _values(np.float64, rng, (6, 7))
    y = forward_ref(_values(np.float64, rng, (6, 7)))
    g0 = g.copy()
    out = g[::-1]
    func(g, y, out=out)
    check(out, g0, y)


@pytest.mark.parametrize("op", FORWARD)
def test_out_with_integer_input(op, rng):
    func, check = FORWARD[op]
    x = rng.integers(-20, 20, SHAPE)
    out = np.empty(SHAPE, np.float64)
    assert func(x, out=out) is out
    check(out, x)


@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (1,)])
@pytest.mark.parametrize("op", FORWARD)
def test_out_for_0d_and_empty(op, shape):
    func, check = FORWARD[op]
    x = np.full(shape, 2.0)
    out = np.full(shape, np.nan)
    assert func(x, out=out) is out
    check(out, x)
    g = np.ones(shape)
    y = np.full(shape, 1.0 if op == "softmax" else 0.0)
    out = np.full(shape, np.nan)
    backward, check_backward, _ = BACKWARD[op + "_backward"]
    assert backward(g, y, out=out) is out
    check_backward(out, g, y)


@pytest.mark.parametrize("op", FORWARD)
def test_out_on_parallel_sizes(op, rng):
    func, check = FORWARD[op]
    x = _values(np.float32, rng, (256, 300))
    strided = np.empty((256, 600), np.float32)[:, ::2]
    for out in (np.empty_like(x), np.asfortranarray(np.empty_like(x)), strided):
        func(x, axis=1, out=out)
        check(out, x, 1)
    x0 = x.copy()
    func(x, axis=0, out=x)
    check(x, x0, 0)
