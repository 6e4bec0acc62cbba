"""The dtype rules: result dtypes per input dtype, ``dtype=``, backward dtype pairs, array-likes."""

import numpy as np
import pytest

import nbsoftmax
from tests import checks

ALL_DTYPES = [np.float16, np.float32, np.float64, np.bool_, np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64]


def _input(dtype, rng, shape=(4, 9)):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -40), min(info.max, 40), shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 4).astype(dtype)


@pytest.mark.parametrize("axis", [-1, 0, None])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_forward_dtypes(dtype, axis, rng):
    x = _input(dtype, rng)
    checks.assert_softmax(nbsoftmax.softmax(x, axis=axis), x, axis)
    checks.assert_log_softmax(nbsoftmax.log_softmax(x, axis=axis), x, axis)
    checks.assert_logsumexp(nbsoftmax.logsumexp(x, axis=axis), x, axis)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_result_dtype_is_input_float_dtype(dtype, rng):
    x = _input(dtype, rng)
    for func in (nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.logsumexp):
        assert func(x).dtype == dtype


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint64])
def test_bool_and_int_give_float64(dtype, rng):
    x = _input(dtype, rng)
    for func in (nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.logsumexp):
        assert func(x).dtype == np.float64


def test_large_integers_are_converted_exactly_as_float64():
    x = np.array([2**62, 2**62 - 1024, 2**62 - 4096], np.int64)  # exact in float64
    checks.assert_softmax(nbsoftmax.softmax(x), x)
    np.testing.assert_array_equal(nbsoftmax.log_softmax(x), nbsoftmax.log_softmax([0.0, -1024.0, -4096.0]))


def test_float16_is_computed_in_float32(rng):
    """float16 input gives the float32 result rounded once to float16 (up to a float32 ulp
    at a float16 rounding boundary), not float16 arithmetic."""
    x = _input(np.float16, rng, (8, 300))
    for func in (nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.logsumexp):
        got = func(x)
        via32 = func(x.astype(np.float32))
        diff = np.abs(got.astype(np.float64) - via32.astype(np.float16).astype(np.float64))
        spacing = np.spacing(np.abs(got)).astype(np.float64)
        assert (diff <= spacing).all(), func.__name__


def test_float16_long_row_sums_to_one(rng):
    """float16 accumulation would stop growing at 2048 * 2**-11; the sums are float32+."""
    x = np.zeros(100_000, np.float16)
    got = nbsoftmax.softmax(x)
    checks.assert_softmax(got, x)
    assert abs(got.astype(np.float64).sum() - 1) < 2e-3
    assert float(nbsoftmax.logsumexp(x)) == pytest.approx(np.log(100_000), rel=1e-3)


# ------------------------------------------------------------------ dtype=


@pytest.mark.parametrize("requested", [np.float16, np.float32, np.float64, "float32", "f8", np.dtype("f2")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.bool_])
def test_dtype_argument_casts_first(dtype, requested, rng):
    x = _input(dtype, rng)
    want_dtype = np.dtype(requested)
    for func, check in ((nbsoftmax.softmax, checks.assert_softmax),
                        (nbsoftmax.log_softmax, checks.assert_log_softmax)):
        check(func(x, dtype=requested), x, -1, dtype=want_dtype)


def test_dtype_argument_with_out(rng):
    x = _input(np.float64, rng)
    out = np.empty(x.shape, np.float32)
    assert nbsoftmax.softmax(x, dtype=np.float32, out=out) is out
    checks.assert_softmax(out, x, -1, dtype=np.float32)


# ------------------------------------------------------------------ backward dtype pairs

PAIRS = [
    (np.float32, np.float32),
    (np.float64, np.float64),
    (np.float16, np.float16),
    (np.float32, np.float64),
    (np.float64, np.float32),
    (np.float16, np.float32),
    (np.float16, np.float64),
    (np.int32, np.float32),
    (np.float32, np.bool_),
    (np.int64, np.int64),
]


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("g_dtype, y_dtype", PAIRS)
def test_backward_common_dtype(g_dtype, y_dtype, axis, rng):
    g = _input(g_dtype, rng)
    y = checks.reference.softmax(_input(np.float64, rng), axis).astype(y_dtype)
    got = nbsoftmax.softmax_backward(g, y, axis=axis)
    assert got.dtype == checks.expected_dtype(g_dtype, y_dtype)
    checks.assert_softmax_backward(got, g, y, axis)

    ly = checks.reference.log_softmax(_input(np.float64, rng), axis).astype(y_dtype)
    got = nbsoftmax.log_softmax_backward(g, ly, axis=axis)
    checks.assert_log_softmax_backward(got, g, ly, axis)


# ------------------------------------------------------------------ array-likes


def test_array_likes():
    nested = [[1.0, 2.0], [3.0, 5.0]]
    got = nbsoftmax.softmax(nested, axis=0)
    assert isinstance(got, np.ndarray)
    checks.assert_softmax(got, np.array(nested), 0)
    checks.assert_log_softmax(nbsoftmax.log_softmax((1, 2, 3)), np.array([1, 2, 3]))
    checks.assert_logsumexp(nbsoftmax.logsumexp(range(5)), np.arange(5))
    g = [1.0, 0.0]
    y = nbsoftmax.softmax([1.0, 2.0])
    checks.assert_softmax_backward(nbsoftmax.softmax_backward(g, list(y)), np.array(g), y)
    assert nbsoftmax.softmax([True, False]).dtype == np.float64


def test_numpy_scalars():
    assert nbsoftmax.softmax(np.float32(3)).dtype == np.float32
    assert nbsoftmax.logsumexp(np.float16(2)).dtype == np.float16
    assert nbsoftmax.softmax(np.int8(3)).dtype == np.float64
