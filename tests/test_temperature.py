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
    scaled = ("scaled", "masked", "tempered", "tempered_masked")
    before = {k for k in cpu._compiled if k[1] in scaled}
    nbsoftmax.softmax(x)
    nbsoftmax.log_softmax_backward(x, x)
    after = {k for k in cpu._compiled if k[1] in scaled}
    assert before == after


# ------------------------------------------------------------------ issue 10 item 1
# The exponent is (x * sign - max) / T rounded once (nbsoftmax.dispatch.temperature), so the plain
# kernels' bounds (tests/checks.BOUNDS, t the exact scaled difference) hold for any T > 0,
# at any offset, and tiny/huge T give the one-hot/uniform limits instead of 0 or overflow.

LD = np.longdouble
TEMPERATURES = [5e-324, 1e-310, 1e-300, 2.0**-140, 1e-40, 1e-3, 0.7, 1.0, 3.0, 1e5, 1e38,
                2.0**200, 1e300, 1.7e308]


def _exact_scaled(x, temperature, sign=1.0):
    """t = (x * sign - max) / T per row, in longdouble (exact but for one rounding)."""
    xs = np.asarray(x).astype(LD) * LD(sign)
    m = xs.max(axis=-1, keepdims=True)
    with np.errstate(all="ignore"):
        return (xs - m) / LD(temperature)


def _check_scaled(x, temperature, sign=1.0):
    """softmax / log_softmax (softmin for sign -1) of x / T within the plain bounds."""
    x = np.asarray(x)
    dtype = x.dtype
    bound = checks.BOUNDS[dtype]
    t = _exact_scaled(x, temperature, sign)
    with np.errstate(all="ignore"):
        e = np.exp(t)
        s = e.sum(axis=-1, keepdims=True)
        exact_p = e / s
        exact_log = t - np.log(s)
    if sign > 0:
        p = nbsoftmax.softmax(x, temperature=temperature)
    else:
        p = nbsoftmax.softmin(x, temperature=temperature)
    counted = exact_p >= bound["tiny"]
    rel = np.abs(p.astype(LD) - exact_p)[counted] / exact_p[counted]
    assert np.all(rel <= bound["a"] + bound["b"] * np.abs(t[counted])), (temperature, rel.max())
    assert np.all(p[~counted] <= 2 * bound["tiny"])
    assert np.all(np.abs(p.astype(LD).sum(axis=-1) - 1) <= bound["row_sum"])
    if sign > 0:
        got = nbsoftmax.log_softmax(x, temperature=temperature).astype(LD)
        top = LD(np.finfo(dtype).max)
        finite = np.abs(exact_log) <= top
        err = np.abs(got - exact_log)[finite]
        assert np.all(err <= bound["c"] * (1 + np.abs(exact_log[finite]))), temperature
        # beyond the dtype's range: -inf, as the correctly rounded value
        assert np.all(got[~finite] == -np.inf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_bounds_for_any_temperature(rng, dtype, temperature):
    x = (rng.standard_normal((6, 300)) * 5).astype(dtype)
    x[1, :4] = [-1e30, 3e30, 0.0, 1e-30]  # spread over many binades
    x[2, 7] = x[2, 9] = x[2].max() + 1  # a tie at the max
    x[3] = np.round(x[3])
    _check_scaled(x, temperature)
    _check_scaled(x, temperature, sign=-1.0)


@pytest.mark.parametrize("dtype,shift", [(np.float32, 1e3), (np.float32, 1e6), (np.float32, 1e7),
                                         (np.float64, 1e6), (np.float64, 2.0**45),
                                         (np.float64, 1e16)])
@pytest.mark.parametrize("temperature", [0.7, 0.1, 3.3])
def test_bounds_at_any_offset(rng, dtype, shift, temperature):
    """The issue's measurement: T = 0.7, N(0, 5) logits + shift; row sums were off by
    2.2e-5 (float32, 1e3), 5e-2 (float32, 1e6), 0.56 (float64, 1e16)."""
    x = (rng.standard_normal((20, 500)) * 5 + shift).astype(dtype)
    _check_scaled(x, temperature)
    _check_scaled(x, temperature, sign=-1.0)


def test_issue_reproducers_item_1():
    x = np.array([1e6, 1e6 + 1, 1e6 + 2], np.float32)
    got = nbsoftmax.softmax(x, temperature=0.7)  # was [0.04596, 0.18179, 0.81474]
    want = reference.softmax(np.array([-2.0, -1.0, 0.0]) / 0.7)  # SciPy: softmax(x / 0.7)
    np.testing.assert_allclose(got, want, rtol=2e-6)
    np.testing.assert_allclose(got, [0.044278, 0.184761, 0.77096], rtol=1e-5)
    assert abs(float(got.astype(np.float64).sum()) - 1) <= 1e-6
    got = nbsoftmax.softmax(np.full(3, 1e9, np.float32), temperature=0.7)  # was 2.74e24 each
    np.testing.assert_array_equal(got, np.float32(1 / 3))
    x = [0.5, -1.2, 1.7, 0.3]
    # torch and SciPy: one-hot at the max; log_softmax (x - max) / T; softmin one-hot at the min
    np.testing.assert_array_equal(nbsoftmax.softmax(x, temperature=1e-300), [0, 0, 1, 0])
    np.testing.assert_allclose(nbsoftmax.log_softmax(x, temperature=1e-300),
                               (np.array(x) - 1.7) / 1e-300, rtol=1e-15)
    np.testing.assert_array_equal(nbsoftmax.softmin(x, temperature=1e-300), [0, 1, 0, 0])
    np.testing.assert_array_equal(nbsoftmax.softmax(np.float32(x), temperature=1e-300),
                                  [0, 0, 1, 0])
    np.testing.assert_array_equal(nbsoftmax.log_softmax(np.float32(x), temperature=1e-300),
                                  [-np.inf, -np.inf, 0, -np.inf])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("temperature", [5e-324, 1e-300, 1e-30, 1e30, 1e300])
def test_extreme_temperatures_limits(dtype, temperature):
    """Tiny T: one-hot at the max, ties shared; huge T: uniform. Never NaN, 0 or inf."""
    x = np.array([[0.5, -1.2, 1.7, 0.3], [2.0, 2.0, -1.0, 0.0]], dtype)
    p = nbsoftmax.softmax(x, temperature=temperature)
    q = nbsoftmax.softmin(x, temperature=temperature)
    if temperature < 1:
        np.testing.assert_array_equal(p, [[0, 0, 1, 0], [0.5, 0.5, 0, 0]])
        np.testing.assert_array_equal(q, [[0, 1, 0, 0], [0, 0, 1, 0]])
    else:
        np.testing.assert_allclose(p, 0.25, rtol=1e-3 if dtype == np.float16 else 1e-6)
        np.testing.assert_allclose(q, 0.25, rtol=1e-3 if dtype == np.float16 else 1e-6)
    assert p.dtype == dtype


def test_subnormal_differences_overflow_for_tiny_temperature():
    """A nonzero difference is at least the smallest subnormal: divided by T = 1e-300 it is
    beyond float32's range, so log_softmax is -inf there (and never -huge finite)."""
    x = np.array([1e-45, 0.0, 1e-45], np.float32)
    np.testing.assert_array_equal(nbsoftmax.log_softmax(x, temperature=1e-300),
                                  np.float32([np.log(0.5), -np.inf, np.log(0.5)]))
    np.testing.assert_array_equal(nbsoftmax.softmax(x, temperature=1e-300), [0.5, 0, 0.5])


@pytest.mark.parametrize("dtype,temperature,scale_g", [
    (np.float32, 1e-39, 1e-10),   # 1 / T = 1e39 overflows float32; the gradient does not
    (np.float32, 1e-300, 0.0),
    (np.float64, 1e-310, 1e-20),  # 1 / T overflows float64
    (np.float64, 1e300, 1e200),
    (np.float32, 1e38, 1e30),
])
def test_backward_without_spurious_overflow(rng, dtype, temperature, scale_g):
    y = nbsoftmax.softmax(rng.standard_normal((3, 6)).astype(dtype))
    ly = nbsoftmax.log_softmax(rng.standard_normal((3, 6)).astype(dtype))
    g = (rng.standard_normal((3, 6)) * scale_g).astype(dtype)
    for op, out in (("softmax_backward", y), ("log_softmax_backward", ly)):
        got = getattr(nbsoftmax, op)(g, out, temperature=temperature)
        want = getattr(reference, op + "_exact")(g, out) / LD(temperature)
        with np.errstate(over="ignore"):
            want_d = want.astype(dtype)
        assert got.dtype == dtype
        finite = np.isfinite(want_d)
        np.testing.assert_array_equal(np.isfinite(got), finite)
        # 16 ulps of the terms (tests/checks), which are at most 8 max|g| here
        tol = 16 * np.finfo(dtype).eps * 8 * np.abs(g).astype(LD).max() / LD(temperature)
        assert np.all(np.abs(got[finite].astype(LD) - want[finite]) <= tol + LD(1e-300))


# ------------------------------------------------------------------ shift invariance


@pytest.mark.parametrize("temperature", [0.3, 0.7, 2.5])
@pytest.mark.parametrize("k,j", [(3, 0), (-5, 10), (123457, 20), (-(2**20), 24)])
def test_shift_exact_is_bit_identical(rng, temperature, k, j):
    """x on a grid of 1/4 and c = k * 2**j: x + c and its difference from the max are exact,
    so every result with a temperature is bit-identical (softmax, log_softmax, softmin,
    both backward passes on those outputs)."""
    x = np.round(rng.standard_normal((4, 37)) * 40) / 4
    c = float(k) * 2.0**j
    xs = x + c
    assert np.all(xs - c == x)
    for f in (nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.softmin):
        np.testing.assert_array_equal(f(xs, temperature=temperature),
                                      f(x, temperature=temperature))
    g = rng.standard_normal(x.shape)
    y = nbsoftmax.softmax(xs, temperature=temperature)
    np.testing.assert_array_equal(nbsoftmax.softmax_backward(g, y, temperature=temperature),
                                  nbsoftmax.softmax_backward(
                                      g, nbsoftmax.softmax(x, temperature=temperature),
                                      temperature=temperature))


@pytest.mark.parametrize("dtype,c", [(np.float32, 1e6), (np.float32, -1e6), (np.float32, 37.5),
                                     (np.float64, 2.0**45), (np.float64, -(2.0**45))])
@pytest.mark.parametrize("temperature", [0.3, 4.0])
def test_shift_within_the_bounds(rng, dtype, c, temperature):
    """Any shift: softmax / log_softmax / softmin of x + c (rounded to the dtype) within the
    bounds of the exact result on those values; the backward passes on the shifted outputs
    within their 16-ulp bounds of the reference."""
    x = (rng.standard_normal((5, 200)) * 5).astype(dtype)
    xs = (x + dtype(c)).astype(dtype)
    _check_scaled(xs, temperature)
    _check_scaled(xs, temperature, sign=-1.0)
    g = rng.standard_normal(x.shape).astype(dtype)
    y = nbsoftmax.softmax(xs, temperature=temperature)
    got = nbsoftmax.softmax_backward(g, y, temperature=temperature) * dtype(temperature)
    checks.assert_softmax_backward(got, g, y)
    ly = nbsoftmax.log_softmax(xs, temperature=temperature)
    got = nbsoftmax.log_softmax_backward(g, ly, temperature=temperature) * dtype(temperature)
    checks.assert_log_softmax_backward(got, g, ly)


def test_passes_agree_with_contracting_flags(rng):
    """The regression of item 1 at its root: a row of equal logits must give exactly 1/n for
    every T (the exp-sum pass and the write pass computed x * s - m differently)."""
    for dtype in (np.float32, np.float64):
        for value in (1e9, -3.7e5, 1e-30):
            x = np.full((2, 33), value, dtype)
            for t in (0.7, 0.3, 1.1, 1e-20):
                np.testing.assert_array_equal(nbsoftmax.softmax(x, temperature=t),
                                              dtype(1 / 33))
