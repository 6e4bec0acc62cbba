"""nbsoftmax's public functions called inside user @njit code (nbsoftmax/_jit.py).

Every jitted call compiles all the kernel variants its op may pick at run time, so this file
keeps to one dtype (float32: the kernels' specialisations are shared by all the user
functions here) and the fresh-process cache test to logsumexp alone.
Values must equal the Python call's bit for bit (same kernels; logsumexp within a few ulps,
see test_forward_matches_python) and the float64 reference within the usual bounds.
"""

import numpy as np
import pytest
from numba import njit, prange
from numba.core.errors import TypingError

import nbsoftmax

from . import reference
from .subproc import run_python


@njit
def _forward(x, axis):
    return (nbsoftmax.softmax(x, axis), nbsoftmax.log_softmax(x, axis=axis),
            nbsoftmax.logsumexp(x, axis))


@njit
def _backward(g, y, axis):
    return nbsoftmax.softmax_backward(g, y, axis), nbsoftmax.log_softmax_backward(g, y, axis=axis)


@njit
def _softmax_out(x, out):
    return nbsoftmax.softmax(x, out=out)


@njit(parallel=True)
def _rows_prange(x, out, lse):
    for i in prange(x.shape[0]):
        nbsoftmax.log_softmax(x[i], out=out[i])
        lse[i] = nbsoftmax.logsumexp(x[i])
    return out, lse


@njit
def _lse_keepdims(x, axis):
    return nbsoftmax.logsumexp(x, axis, keepdims=True)


def _data(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 4).astype(dtype)


@pytest.mark.parametrize("shape", [(7, 10), (3, 130), (2, 700)])  # short, block, row kernels
@pytest.mark.parametrize("axis", [-1, 0])  # runtime axis: rows and column kernels
def test_forward_matches_python(shape, axis):
    x = _data(shape)
    x[0, :3] = -np.inf
    if shape[0] > 2:
        x[2, 1] = np.nan  # a NaN slice (rows) or column
    p, lp, lse = _forward(x, axis)
    np.testing.assert_array_equal(p, nbsoftmax.softmax(x, axis))
    np.testing.assert_array_equal(lp, nbsoftmax.log_softmax(x, axis))
    # logsumexp: the same kernels; a few ulps allowed so that a change of its Python-side
    # finishing (e.g. the rounding to float32) does not need two edits.
    np.testing.assert_allclose(lse, nbsoftmax.logsumexp(x, axis), rtol=4e-7)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(p, reference.softmax(x, axis), rtol=2e-6, atol=1e-7)
        # absolute: float32 rounding of terms of magnitude ~10 (max |x|) near a total of 0
        np.testing.assert_allclose(lse, reference.logsumexp(x, axis), rtol=2e-6, atol=2e-6)


def test_backward_matches_python():
    y = nbsoftmax.softmax(_data((5, 300), seed=1))
    g = _data((5, 300), seed=2)
    for axis in (-1, 0):
        ds, dls = _backward(g, y, axis)
        np.testing.assert_array_equal(ds, nbsoftmax.softmax_backward(g, y, axis))
        np.testing.assert_array_equal(dls, nbsoftmax.log_softmax_backward(g, y, axis))
    ds, _ = _backward(g[:, :20].copy(), y[:, :20].copy(), -1)  # short rows kernel
    np.testing.assert_array_equal(ds, nbsoftmax.softmax_backward(g[:, :20], y[:, :20]))


def test_out_in_place_and_separate():
    x = _data((4, 200))
    expected = nbsoftmax.softmax(x)
    out = np.full_like(x, 7.0)
    assert _softmax_out(x, out) is out
    np.testing.assert_array_equal(out, expected)
    inplace = x.copy()
    _softmax_out(inplace, inplace)
    np.testing.assert_array_equal(inplace, nbsoftmax.softmax(x.copy(), out=x.copy()))
    np.testing.assert_allclose(inplace, expected, rtol=1e-6)


def test_out_overlapping_input_is_read_first():
    base = _data((6, 100))
    x = base[:4]
    out = base[2:]  # partly the same memory: x must be read before out is written
    expected = nbsoftmax.softmax(x.copy())
    _softmax_out(x, out)
    np.testing.assert_array_equal(base[2:], expected)


def test_out_wrong_shape_raises_before_writing():
    x = _data((4, 200))
    out = np.zeros((200, 4), np.float32)
    with pytest.raises(ValueError, match="different shape"):
        _softmax_out(x, out)
    assert not out.any()


def test_prange_rows_match_python():
    x = _data((33, 100))
    out, lse = _rows_prange(x, np.empty_like(x), np.empty(33, np.float32))
    np.testing.assert_array_equal(out, nbsoftmax.log_softmax(x))
    np.testing.assert_allclose(lse, nbsoftmax.logsumexp(x), rtol=4e-7)


def test_3d_keepdims_and_bad_axis():
    x = _data((3, 4, 50), seed=3)
    for axis in (0, 1, 2, -1):
        r = _lse_keepdims(x, axis)
        assert r.shape == nbsoftmax.logsumexp(x, axis, keepdims=True).shape
        np.testing.assert_allclose(r, nbsoftmax.logsumexp(x, axis, keepdims=True), rtol=4e-7)
    with pytest.raises(ValueError, match="axis is out of bounds"):
        _lse_keepdims(x, 3)


@pytest.mark.parametrize("call, message", [
    (lambda x: nbsoftmax.softmax(x, where=x > 0), "where= is not supported"),
    (lambda x: nbsoftmax.log_softmax(x, temperature=2.0), "temperature= is not supported"),
    (lambda x: nbsoftmax.logsumexp(x, (0, 1)), "axis must be one int"),
    (lambda x: nbsoftmax.softmax(x.astype(np.int64)), "float32/float64 arrays"),
    (lambda x: nbsoftmax.softmax_backward(x, x.astype(np.float32)), "same dtype"),
])
def test_unsupported_options_are_typing_errors(call, message):
    jitted = njit(call)
    with pytest.raises(TypingError, match=message):
        jitted(np.ones((2, 3)))


def test_cache_true_user_function_in_fresh_processes(tmp_path):
    """A user module with @njit(cache=True) calling nbsoftmax: compiled in one process,
    loaded from the cache in the next (the overloads register by Numba's entry point)."""
    (tmp_path / "user_mod.py").write_text(
        "import numpy as np\nfrom numba import njit\nimport nbsoftmax\n\n"
        "@njit(cache=True)\n"
        "def scores(x):\n"
        "    return nbsoftmax.logsumexp(x) - 1.0\n")
    code = (
        "import numpy as np, user_mod, nbsoftmax\n"
        "x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])\n"
        "r = user_mod.scores(x)\n"
        "assert np.allclose(r, nbsoftmax.logsumexp(x) - 1.0, rtol=1e-15), r\n"
        "print('hits', sum(user_mod.scores.stats.cache_hits.values()))\n")
    env = {"NUMBA_CACHE_DIR": tmp_path / "cache"}
    first = run_python(code, env=env, path_first=tmp_path)
    second = run_python(code, env=env, path_first=tmp_path)
    assert "hits 0" in first
    assert "hits 1" in second
