"""Every bad argument: the exception type, a message naming what was wrong, and nothing written.

Each case calls a function with fresh arrays and checks afterwards that the inputs and ``out``
are bit-for-bit what they were (errors are raised before anything is written).
"""

import numpy as np
import pytest

import nbsoftmax

AxisError = np.exceptions.AxisError
SHAPE = (3, 4)


def _x(dtype=np.float64):
    return (np.arange(12, dtype=np.float64).reshape(SHAPE) / 7).astype(dtype)


def _readonly(arr):
    arr.flags.writeable = False
    return arr


def _out(shape=SHAPE, dtype=np.float64):
    return np.full(shape, 42.0, dtype)


# (id, function, positional args, keyword args, exception, match)
FORWARD = [nbsoftmax.softmax, nbsoftmax.log_softmax]
CASES = []
for f in FORWARD + [nbsoftmax.logsumexp]:
    name = f.__name__
    CASES += [
        (f"{name}-axis-float", f, (_x(),), dict(axis=1.5), TypeError, r"axis must be an int.*not 1\.5"),
        (f"{name}-axis-str", f, (_x(),), dict(axis="1"), TypeError, r"axis must be an int.*not '1'"),
        (f"{name}-axis-bool", f, (_x(),), dict(axis=True), TypeError, r"axis must be an int.*not True"),
        (f"{name}-axis-tuple-of-float", f, (_x(),), dict(axis=(0, 1.0)), TypeError, r"axis must be an int"),
        (f"{name}-axis-out-of-range", f, (_x(),), dict(axis=2), AxisError, r"axis 2 is out of bounds"),
        (f"{name}-axis-negative-out-of-range", f, (_x(),), dict(axis=-3), AxisError, r"-3 is out of bounds"),
        (f"{name}-axis-tuple-out-of-range", f, (_x(),), dict(axis=(0, 5)), AxisError, r"5 is out of bounds"),
        (f"{name}-axis-repeated", f, (_x(),), dict(axis=(1, 1)), ValueError, r"axis \(1, 1\) repeats"),
        (f"{name}-axis-repeated-negative", f, (_x(),), dict(axis=(0, -2)), ValueError,
         r"axis \(0, -2\) repeats"),
        (f"{name}-0d-axis-1", f, (np.float64(1),), dict(axis=1), AxisError, r"out of bounds for a 0-d"),
        (f"{name}-complex", f, (_x(np.complex128),), {}, TypeError, r"complex128.*expected .*float64"),
        (f"{name}-complex64", f, (_x(np.complex64),), {}, TypeError, r"complex64"),
        (f"{name}-object", f, (_x(object),), {}, TypeError, r"unsupported dtype object"),
        (f"{name}-str", f, (np.array(["a", "b"]),), {}, TypeError, r"unsupported dtype <U1"),
        (f"{name}-bytes", f, (np.array([b"a"]),), {}, TypeError, r"unsupported dtype \|S1"),
        (f"{name}-datetime", f, (np.array(["2024-01-01"], "datetime64[D]"),), {}, TypeError,
         r"datetime64\[D\]"),
        (f"{name}-timedelta", f, (np.array([1], "timedelta64[s]"),), {}, TypeError, r"timedelta64\[s\]"),
        (f"{name}-structured", f, (np.zeros(3, [("a", "f8")]),), {}, TypeError, r"unsupported dtype"),
        (f"{name}-ragged-list", f, ([[1.0, 2.0], [3.0]],), {}, TypeError, r"could not be converted"),
        (f"{name}-device", f, (_x(),), dict(device="gpu"), ValueError, r"device must be.*not 'gpu'"),
        (f"{name}-device-int", f, (_x(),), dict(device=0), ValueError, r"device must be.*not 0"),
    ]
for f in FORWARD:
    name = f.__name__
    CASES += [
        (f"{name}-out-shape", f, (_x(),), dict(out=_out((4, 3))), ValueError,
         r"out has shape \(4, 3\) but the result has shape \(3, 4\)"),
        (f"{name}-out-shape-0d", f, (np.float64(1),), dict(out=_out((1,))), ValueError,
         r"out has shape \(1,\) but the result has shape \(\)"),
        (f"{name}-out-dtype", f, (_x(),), dict(out=_out(dtype=np.float32)), TypeError,
         r"out has dtype float32 but the result has dtype float64"),
        (f"{name}-out-dtype-int-input", f, (_x(np.int32),), dict(out=_out(dtype=np.float32)), TypeError,
         r"out has dtype float32 but the result has dtype float64"),
        (f"{name}-out-dtype-vs-dtype-arg", f, (_x(),), dict(dtype=np.float16, out=_out()), TypeError,
         r"out has dtype float64 but the result has dtype float16"),
        (f"{name}-out-int", f, (_x(),), dict(out=_out(dtype=np.int64)), TypeError, r"out has dtype int64"),
        (f"{name}-out-readonly", f, (_x(),), dict(out=_readonly(_out())), ValueError, r"out is read-only"),
        (f"{name}-out-broadcast", f, (_x(),), dict(out=np.broadcast_to(_out((1, 4)), SHAPE)), ValueError,
         r"out is read-only"),
        (f"{name}-out-list", f, (_x(),), dict(out=[[0.0] * 4] * 3), TypeError,
         r"out must be a numpy.ndarray, not list"),
        (f"{name}-out-memoryview", f, (_x(),), dict(out=memoryview(_out())), TypeError,
         r"out must be a numpy.ndarray, not memoryview"),
        (f"{name}-dtype-int", f, (_x(),), dict(dtype=np.int32), TypeError,
         r"dtype=int32 is not supported; expected float16, float32 or float64"),
        (f"{name}-dtype-complex", f, (_x(),), dict(dtype="complex64"), TypeError, r"dtype=complex64"),
        (f"{name}-dtype-bool", f, (_x(),), dict(dtype=bool), TypeError, r"dtype=bool"),
        (f"{name}-dtype-nonsense", f, (_x(),), dict(dtype="nonsense"), TypeError, r"not a dtype"),
        (f"{name}-dtype-cannot-rescue-complex", f, (_x(np.complex128),), dict(dtype=np.float64),
         TypeError, r"complex128"),
        (f"{name}-bad-axis-with-out", f, (_x(),), dict(axis=7, out=_out()), AxisError, r"7 is out of bounds"),
        (f"{name}-bad-dtype-with-out", f, (_x(np.complex128),), dict(out=_out()), TypeError, r"complex128"),
    ]
for f in [nbsoftmax.softmax_backward, nbsoftmax.log_softmax_backward]:
    name = f.__name__
    CASES += [
        (f"{name}-shape-mismatch", f, (_x(), _out((3, 5))), {}, ValueError,
         r"grad_output has shape \(3, 4\) but output has shape \(3, 5\)"),
        (f"{name}-shape-broadcastable", f, (_x(), _out((1, 4))), {}, ValueError, r"must match"),
        (f"{name}-grad-complex", f, (_x(np.complex128), _x()), {}, TypeError,
         r"grad_output has unsupported dtype complex128"),
        (f"{name}-output-object", f, (_x(), _x(object)), {}, TypeError,
         r"output has unsupported dtype object"),
        (f"{name}-output-datetime", f, (_x(), np.zeros(SHAPE, "datetime64[s]")), {}, TypeError,
         r"output has unsupported dtype datetime64\[s\]"),
        (f"{name}-out-shape", f, (_x(), _x()), dict(out=_out((4, 3))), ValueError, r"out has shape \(4, 3\)"),
        (f"{name}-out-dtype", f, (_x(np.float32), _x()), dict(out=_out(dtype=np.float32)), TypeError,
         r"out has dtype float32 but the result has dtype float64"),
        (f"{name}-out-readonly", f, (_x(), _x()), dict(out=_readonly(_out())), ValueError, r"read-only"),
        (f"{name}-out-tuple", f, (_x(), _x()), dict(out=(1, 2)), TypeError, r"not tuple"),
        (f"{name}-axis-out-of-range", f, (_x(), _x()), dict(axis=-3), AxisError, r"out of bounds"),
        (f"{name}-axis-repeated", f, (_x(), _x()), dict(axis=(1, -1)), ValueError, r"repeats"),
        (f"{name}-axis-float", f, (_x(), _x()), dict(axis=0.0), TypeError, r"axis must be an int"),
        (f"{name}-device", f, (_x(), _x()), dict(device="cuda:0"), ValueError, r"device must be"),
    ]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_argument(case):
    _, func, args, kwargs, exc, match = case
    arrays = [a for a in (*args, kwargs.get("out")) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)
    for arr, copy in zip(arrays, before):
        assert arr.tobytes() == copy.tobytes(), "an array was written before the error"


@pytest.mark.parametrize("func", FORWARD)
def test_in_place_read_only_input_is_refused(func):
    x = _readonly(_x())
    with pytest.raises(ValueError, match="read-only"):
        func(x, out=x)


@pytest.mark.parametrize("func", FORWARD)
def test_options_are_keyword_only(func):
    with pytest.raises(TypeError):
        func(_x(), -1, None, _out())
    with pytest.raises(TypeError):
        nbsoftmax.logsumexp(_x(), -1, True)
    with pytest.raises(TypeError):
        nbsoftmax.softmax_backward(_x(), _x(), -1, _out())
