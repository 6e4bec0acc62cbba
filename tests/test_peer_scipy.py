"""SciPy's own test cases for softmax, log_softmax and logsumexp
(scipy/special/tests/test_logsumexp.py: TestLogSumExp, TestSoftmax, TestLogSoftmax), written
for nbsoftmax.

SciPy's inputs and expected values (several computed there with mpmath), with SciPy's
tolerances; each result is also checked against the float64 reference of tests/reference.py
with the project's own tolerances (tests/checks.py). Differences of convention, stated where
they apply: SciPy's default ``axis`` is None (the whole array), nbsoftmax's the last axis, so
the cases pass ``axis=None`` where SciPy relies on its default; complex input, which SciPy
accepts, raises TypeError naming the dtype here (nbsoftmax is for real logits).
"""

import itertools
import math

import numpy as np
import pytest

import nbsoftmax
from tests import checks, reference

# SciPy's xp_assert_close default: rtol = 4 * sqrt(eps) of the result dtype
SCIPY_RTOL = {np.dtype(np.float32): 4 * np.finfo(np.float32).eps ** 0.5,
              np.dtype(np.float64): 4 * np.finfo(np.float64).eps ** 0.5}


def lse(a, axis=None, **kwargs):
    """logsumexp with SciPy's default axis."""
    return nbsoftmax.logsumexp(a, axis=axis, **kwargs)


def close(got, want, rtol=None, atol=0.0):
    got = np.asarray(got)
    want = np.asarray(want)
    if rtol is None:
        rtol = SCIPY_RTOL[got.dtype]
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def equal(got, want):
    got = np.asarray(got)
    assert got.shape == np.shape(want)
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ TestLogSumExp


class TestLogSumExp:
    def test_empty(self):
        got = lse(np.array([]))
        equal(got, -np.inf)
        assert np.asarray(got).dtype == np.float64

    def test_large_inputs(self):
        a = np.arange(200.0)
        close(lse(a), np.log(np.sum(np.exp(a))))
        checks.assert_logsumexp(np.asarray(lse(a)), a, None)
        close(lse(np.array([1000.0, 1000.0])), 1000.0 + math.log(2.0))
        b = np.full((1000,), 10000)  # integers: computed and returned as float64
        got = lse(b)
        assert np.asarray(got).dtype == np.float64
        close(got, 10000.0 + math.log(1000))

    def test_tiny_values_through_logs(self):
        x = np.array([1e-40] * 1_000_000)
        logx = np.log(x)
        X, logX = np.stack([x, x]), np.stack([logx, logx])
        close(np.exp(lse(logX)), np.sum(X))
        close(np.exp(lse(logX, axis=0)), np.sum(X, axis=0))
        close(np.exp(lse(logX, axis=1)), np.sum(X, axis=1))

    def test_special_values(self):
        inf, nan = np.array([np.inf]), np.array([np.nan])
        equal(lse(inf), np.inf)
        equal(lse(-inf), -np.inf)
        equal(lse(nan), np.nan)
        equal(lse(np.array([-np.inf, -np.inf])), -np.inf)

    def test_magnitudes_per_axis_keepdims_and_axes(self):
        a = np.array([[1e10, 1e-10], [-1e10, -np.inf]])
        ref = np.array([1e10, -1e10])
        close(lse(a, axis=-1), ref)
        close(lse(a, axis=-1, keepdims=True), ref[:, None])
        close(lse(a, axis=(-1, -2)), 1e10)

    def test_b(self):
        a = np.arange(200.0)
        b = np.arange(200.0, 0.0, -1.0)
        close(lse(a, b=b), np.log(np.sum(b * np.exp(a))))
        close(lse(np.array([1000, 1000]), b=np.array([1.2, 1.2])), 1000 + math.log(2 * 1.2))
        x = np.array([1e-40] * 100_000)
        b = np.linspace(1, 1000, 100_000)
        logX, X, B = np.stack((np.log(x),) * 2), np.stack((x, x)), np.stack((b, b))
        close(np.exp(lse(logX, b=B)), np.sum(B * X))
        close(np.exp(lse(logX, b=B, axis=0)), np.sum(B * X, axis=0))
        close(np.exp(lse(logX, b=B, axis=1)), np.sum(B * X, axis=1))

    def test_sign(self):
        r, s = lse(np.array([1, 1, 1]), b=np.array([1, -1, -1]), return_sign=True)
        close(r, 1.0)
        equal(s, -1.0)

    def test_sign_zero(self):
        r, s = lse(np.array([1, 1]), b=np.array([1, -1]), return_sign=True)
        assert not np.isfinite(r) and not np.isnan(r) and r < 0
        assert s == 0

    def test_sign_shape(self):
        a = np.ones((1, 2, 3, 4))
        b = np.ones_like(a)
        r, s = lse(a, axis=2, b=b, return_sign=True)
        assert np.shape(r) == np.shape(s) == (1, 2, 4)
        r, s = lse(a, axis=(1, 3), b=b, return_sign=True)
        assert np.shape(r) == np.shape(s) == (1, 3)

    def test_shape(self):
        a = np.ones((1, 2, 3, 4))
        assert lse(a, axis=2).shape == (1, 2, 4)
        assert lse(a, axis=(1, 3)).shape == (1, 3)

    def test_shape_b(self):
        a = np.ones((1, 2, 3, 4))
        assert lse(a, axis=2, b=np.ones_like(a)).shape == (1, 2, 4)
        assert lse(a, axis=(1, 3), b=np.ones_like(a)).shape == (1, 3)

    def test_b_zero(self):
        close(lse(np.array([1, 10000]), b=np.array([1, 0])), 1.0)

    def test_b_shape(self):
        # b broadcasts against a (and a against b): the sum of 4*3*2*5 ones
        got = lse(np.zeros((4, 1, 2, 1)), b=np.ones((3, 1, 5)))
        close(got, math.log(120))

    @pytest.mark.parametrize("arg", (1, [1, 2, 3]))
    def test_python_scalars_and_lists(self, arg):
        assert lse(arg) == lse(np.asarray(np.atleast_1d(arg)))

    def test_array_like(self):
        close(lse([1000, 1000]), 1000.0 + math.log(2.0))

    @pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
    def test_dtypes_a(self, dtype):
        got = lse(np.array([1000.0, 1000.0], dtype=dtype))
        want_dtype = np.float64 if dtype.startswith("int") else np.dtype(dtype)
        assert np.asarray(got).dtype == want_dtype
        close(got, np.asarray(1000.0 + math.log(2.0), want_dtype))

    @pytest.mark.parametrize("dtype_a,dtype_b", list(itertools.product(
        ["float32", "float64", "int32", "int64"], repeat=2)))
    def test_dtypes_ab(self, dtype_a, dtype_b):
        got = lse(np.array([2, 1], dtype=dtype_a), b=np.array([1, -1], dtype=dtype_b))
        want_dtype = np.result_type(dtype_a, dtype_b)
        if want_dtype.kind in "iu":
            want_dtype = np.dtype(np.float64)
        assert np.asarray(got).dtype == want_dtype
        close(got, np.asarray(math.log(math.exp(2) - math.exp(1)), want_dtype))

    @pytest.mark.parametrize("dtype", ["complex64", "complex128"])
    def test_complex_is_rejected(self, dtype):
        # SciPy's complex cases (test_logsumexp_complex_sign, gh-21610, gh-21709 and the
        # complex infinities of gh-22601): nbsoftmax takes real logits only
        with pytest.raises(TypeError, match=dtype):
            lse(np.array([1 + 1j, 2 - 1j, -2 + 3j], dtype))

    @pytest.mark.parametrize("dtype", ["complex64", "complex128"])
    def test_complex_b_is_rejected(self, dtype):
        with pytest.raises(TypeError, match=dtype):
            lse(np.array([1.0, 2.0]), b=np.array([1j, 1.0], dtype))

    def test_gh18295_small_result_keeps_relative_precision(self):
        a = np.array([0.0, -40.0])
        want = np.logaddexp(a[0], a[1])  # 4.248354255291589e-18
        close(lse(a), want)
        assert want == 4.248354255291589e-18

    @pytest.mark.parametrize("x,y", list(itertools.product([-np.inf, np.inf], repeat=2)))
    def test_gh22601_infinite_elements(self, x, y):
        with np.errstate(all="ignore"):
            want = np.log(np.sum(np.exp(np.array([x, y]))))
        equal(lse(np.array([x, y])), want)

    def test_no_writeback(self):
        a, b = np.array([5.0, 4.0]), np.array([3.0, 2.0])
        lse(a)
        lse(a, b=b)
        equal(a, [5.0, 4.0])
        equal(b, [3.0, 2.0])

    def test_gh22903_negative_weight_on_the_largest_term(self):
        a = np.array([3.06409428, 0.37251854, 3.87471931])
        b = np.array([1.88190708, 2.84174795, -0.85016884])
        close(lse(a, b=b), lse(a, b=b, return_sign=True)[0])
        b = np.array([1.88190708, 2.84174795, -3.85016884])  # the sum is negative: NaN
        equal(lse(a, b=b), np.nan)

    @pytest.mark.parametrize("a,b,sign_ref", [([np.inf], None, 1.0), ([np.inf], [-1.0], -1.0)])
    def test_gh23548_sign_of_infinity(self, a, b, sign_ref):
        val, sign = lse(np.asarray(a), b=None if b is None else np.asarray(b), return_sign=True)
        assert np.isinf(val)
        equal(sign, sign_ref)

    def test_full_reductions_return_numpy_scalars(self):
        """SciPy (and NumPy reductions) return NumPy scalars, not 0-d arrays (issue 10
        item 9): 12 of SciPy's cases fail on that alone."""
        for got in (lse(np.array([])), lse(np.array([1000.0, 1000.0])), lse([1, 2, 3]),
                    lse(np.float64(3.0)), lse(np.ones((2, 3)), axis=(0, 1))):
            assert type(got) is np.float64, type(got)
        assert type(lse(np.ones(3, np.float32))) is np.float32


# ------------------------------------------------------------------ TestSoftmax

ARANGE4_SOFTMAX = np.array([0.03205860328008499, 0.08714431874203256,
                            0.23688281808991013, 0.6439142598879722])  # mpmath, 200 digits


class TestSoftmax:
    def test_fixtures(self):
        close(nbsoftmax.softmax(np.array([1000.0, 0.0, 0.0, 0.0])), [1.0, 0.0, 0.0, 0.0],
              rtol=1e-13)
        close(nbsoftmax.softmax(np.array([1.0, 1.0])), [0.5, 0.5], rtol=1e-13)
        close(nbsoftmax.softmax(np.array([0.0, 1.0])), np.array([1.0, np.e]) / (1 + np.e),
              rtol=1e-13)
        x = np.arange(4, dtype=np.float64)
        close(nbsoftmax.softmax(x), ARANGE4_SOFTMAX, rtol=1e-13)
        close(nbsoftmax.softmax(x + 100), ARANGE4_SOFTMAX, rtol=1e-13)  # translation
        # axis=None: over the whole array, keeping its shape
        close(nbsoftmax.softmax(x.reshape(2, 2), axis=None), ARANGE4_SOFTMAX.reshape(2, 2),
              rtol=1e-13)

    def test_multi_axes(self):
        x = np.array([[1000.0, 0.0], [1000.0, 0.0]])
        close(nbsoftmax.softmax(x, axis=0), [[0.5, 0.5], [0.5, 0.5]], rtol=1e-13)
        close(nbsoftmax.softmax(x, axis=1), [[1.0, 0.0], [1.0, 0.0]], rtol=1e-13)
        x = np.array([[-25.0, 0.0, 25.0, 50.0], [1.0, 325.0, 749.0, 750.0]])
        expected = np.array([[2.678636961770877e-33, 1.9287498479371314e-22,
                              1.3887943864771144e-11, 0.999999999986112],
                             [0.0, 1.9444526359919372e-185, 0.2689414213699951,
                              0.7310585786300048]])  # mpmath, 200 digits
        close(nbsoftmax.softmax(x, axis=1), expected, rtol=1e-13)
        close(nbsoftmax.softmax(x.T, axis=0), expected.T, rtol=1e-13)
        close(nbsoftmax.softmax(x.reshape(2, 2, 2), axis=(1, 2)), expected.reshape(2, 2, 2),
              rtol=1e-13)
        checks.assert_softmax(nbsoftmax.softmax(x, axis=1), x, 1)

    def test_int_array(self):
        got = nbsoftmax.softmax(np.array([1000, 0, 0, 0]))
        assert got.dtype == np.float64
        close(got, [1.0, 0.0, 0.0, 0.0], rtol=1e-13)

    def test_scalar(self):
        got = nbsoftmax.softmax(1000)
        close(got, 1.0, rtol=1e-13)
        assert type(got) is np.float64  # a NumPy scalar, as SciPy (issue 10 item 9)

    def test_array_like(self):
        close(nbsoftmax.softmax([1000, 0, 0, 0]), [1.0, 0.0, 0.0, 0.0], rtol=1e-13)

    @pytest.mark.parametrize("dtype", ["complex64", "complex128"])
    def test_complex_is_rejected(self, dtype):
        with pytest.raises(TypeError, match=dtype):
            nbsoftmax.softmax(np.array([1 + 1j, 2.0], dtype))


# ------------------------------------------------------------------ TestLogSoftmax

ARANGE4_LOG_SOFTMAX = np.array([-3.4401896985611953, -2.4401896985611953,
                                -1.4401896985611953, -0.44018969856119533])  # mpmath


class TestLogSoftmax:
    def test_basic(self):
        close(nbsoftmax.log_softmax(np.array([1000.0, 1.0])), [0.0, -999.0], rtol=1e-13)

    def test_int_array(self):
        got = nbsoftmax.log_softmax(np.array([1000, 1]))
        assert got.dtype == np.float64
        close(got, [0.0, -999.0], rtol=1e-13)

    def test_scalar(self):
        got = nbsoftmax.log_softmax(1.0)
        close(got, 0.0, rtol=1e-13)
        assert type(got) is np.float64  # a NumPy scalar, as SciPy (issue 10 item 9)

    def test_array_like(self):
        close(nbsoftmax.log_softmax([1000, 1]), [0.0, -999.0], rtol=1e-13)

    @pytest.mark.parametrize("offset", [0, 100])
    def test_translation(self, offset):
        x = np.arange(4, dtype=np.float64) + offset
        close(nbsoftmax.log_softmax(x), ARANGE4_LOG_SOFTMAX, rtol=1e-13)

    def test_none_axis(self):
        x = np.arange(4, dtype=np.float64).reshape(2, 2)
        close(nbsoftmax.log_softmax(x, axis=None), ARANGE4_LOG_SOFTMAX.reshape(2, 2),
              rtol=1e-13)

    @pytest.mark.parametrize("axis,expected", [(0, np.log(0.5) * np.ones((2, 2))),
                                               (1, [[0.0, -999.0], [0.0, -999.0]])])
    def test_axes(self, axis, expected):
        x = np.array([[1000.0, 1.0], [1000.0, 1.0]])
        close(nbsoftmax.log_softmax(x, axis=axis), np.asarray(expected), rtol=1e-13)

    def test_2d_and_3d(self):
        x = np.arange(8, dtype=np.float64).reshape(2, 4)
        expect = np.stack([ARANGE4_LOG_SOFTMAX] * 2)
        close(nbsoftmax.log_softmax(x, axis=1), expect, rtol=1e-13)
        close(nbsoftmax.log_softmax(x.T, axis=0), expect.T, rtol=1e-13)
        close(nbsoftmax.log_softmax(x.reshape(2, 2, 2), axis=(1, 2)), expect.reshape(2, 2, 2),
              rtol=1e-13)
        checks.assert_log_softmax(nbsoftmax.log_softmax(x, axis=1), x, 1)


# ------------------------------------------------------------------ the same cases in float32
# SciPy runs its classes on every array library and dtype it supports; here the float
# cases again in float32, against the float64 reference with the float32 tolerances.


@pytest.mark.parametrize("x,axis", [
    (np.array([1000.0, 0.0, 0.0, 0.0]), -1), (np.arange(4.0) + 100, -1),
    (np.array([[-25.0, 0.0, 25.0, 50.0], [1.0, 325.0, 749.0, 750.0]]), 1),
    (np.arange(8.0).reshape(2, 2, 2), (1, 2)), (np.array([[1e10, 1e-10], [-1e10, -np.inf]]), -1),
])
def test_float32_versions(x, axis):
    x32 = x.astype(np.float32)
    checks.assert_softmax(nbsoftmax.softmax(x32, axis), x32, axis)
    checks.assert_log_softmax(nbsoftmax.log_softmax(x32, axis), x32, axis)
    checks.assert_logsumexp(np.asarray(nbsoftmax.logsumexp(x32, axis)), x32, axis)
    assert reference.reduced_axes(axis, x.ndim)  # (an axis, not the whole array)
