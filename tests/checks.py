"""Tolerances per dtype, and the comparisons with the references that every test file uses.

Two kinds of tolerance:

* ``BOUNDS``: the issue's accuracy bounds, checked in ``test_accuracy.py`` against the
  ``np.longdouble`` reference on the same input values (t = x - max over the slice):
  softmax relative error <= a + b*|t| where the exact value >= tiny; log_softmax absolute
  error <= c * (1 + |y|); row sums within ``row_sum`` of 1.
* Comparisons with the float64 SciPy reference (every other file): that reference is itself
  only within 0.9 of the bounds, so two conforming results may differ by up to twice a bound.
  float16 results are float32 arithmetic rounded once to float16 (2**-11 relative), so they
  get one float16 ulp (2**-10) on top of twice the float32 bound.

Special values must match exactly: NaN where the reference has NaN, the same infinity.
"""

import numpy as np

from . import reference

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)

BOUNDS = {
    F32: dict(a=1e-6, b=6e-8, tiny=1e-30, c=5e-7, row_sum=1e-5),
    F64: dict(a=4e-15, b=1.2e-16, tiny=1e-300, c=9e-16, row_sum=1e-13),
}
F16_ULP = 2.0**-10

# Absolute slack for results far below the bounds' range (subnormal float16 probabilities,
# float32/float64 values under the 1e-30 / 1e-300 floors).
_ATOL = {F16: 2.0**-24, F32: 1e-37, F64: 1e-300}

# Backward passes: a multiply, a subtract and a compensated sum, each a few roundings of
# terms bounded by ``scale`` (see _softmax_backward_scale); 16 ulps of the compute type.
_GRAD_ULPS = 16


def expected_dtype(*input_dtypes):
    """The issue's dtype rule: floats keep their width, bool and integers become float64;
    two inputs (backward passes) give their common float dtype."""
    results = []
    for dt in input_dtypes:
        dt = np.dtype(dt)
        if dt.kind == "f":
            results.append(dt.newbyteorder("="))
        elif dt.kind in "biu":
            results.append(F64)
        else:
            raise AssertionError(f"no result dtype for {dt}")
    return np.result_type(*results)


def assert_within(got, want, allowed, what="result"):
    """|got - want| <= allowed elementwise; NaN/inf positions must match exactly."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    g = got.astype(np.longdouble)
    w = want.astype(np.longdouble)
    with np.errstate(all="ignore"):
        err = np.abs(g - w)
        ok = (np.isnan(g) & np.isnan(w)) | (g == w) | (np.isfinite(g) & np.isfinite(w) & (err <= allowed))
        ok |= got == want.astype(got.dtype)  # correctly rounded, overflow to +-inf included
    if not ok.all():
        bad = np.flatnonzero(~ok.ravel())
        allowed_b = np.broadcast_to(allowed, ok.shape).ravel()
        with np.errstate(all="ignore"):
            ratio = np.where(np.isfinite(err.ravel()), err.ravel() / allowed_b, np.inf)
        worst = bad[np.argmax(ratio[bad])]
        idx = np.unravel_index(worst, ok.shape) if ok.ndim else ()
        raise AssertionError(
            f"{what}: {bad.size} of {ok.size} elements out of tolerance; worst at {idx}: "
            f"got {g.ravel()[worst]!r}, expected {w.ravel()[worst]!r}, "
            f"error {err.ravel()[worst]:.3g} > allowed {allowed_b[worst]:.3g}"
        )


def _check_result(got, shape, dtype):
    if tuple(shape) == () and isinstance(got, np.generic):
        got = np.asarray(got)  # 0-d results come as NumPy scalars, as NumPy's and SciPy's
    assert isinstance(got, np.ndarray), f"expected a numpy.ndarray, got {type(got).__name__}"
    assert got.shape == tuple(shape), f"shape {got.shape}, expected {tuple(shape)}"
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {dtype}"


def _relative_tolerance(dtype, t):
    """Twice the softmax bound in terms of t, one float16 ulp more for float16."""
    bound = BOUNDS[F64 if dtype == F64 else F32]
    rel = 2 * (bound["a"] + bound["b"] * np.abs(t))
    return rel + F16_ULP if dtype == F16 else rel


def _log_tolerance(dtype):
    return F16_ULP if dtype == F16 else 2 * BOUNDS[dtype]["c"]


def _eps(dtype):
    return np.finfo(F64 if dtype == F64 else F32).eps + (F16_ULP if dtype == F16 else 0.0)


def _shifted(x, axis):
    with np.errstate(all="ignore"):
        return np.nan_to_num(np.asarray(reference.shifted_exact(x, axis), np.float64))


def assert_softmax(got, x, axis=-1, dtype=None):
    x = np.asarray(x)
    dtype = np.dtype(dtype) if dtype is not None else expected_dtype(x.dtype)
    _check_result(got, x.shape, dtype)
    x = x.astype(dtype)  # the values the computation sees (dtype= casts first)
    want = reference.softmax(x, axis)
    if x.size:
        allowed = _relative_tolerance(dtype, _shifted(x, axis)) * np.abs(want) + _ATOL[dtype]
        assert_within(got, want, allowed, "softmax")


def assert_log_softmax(got, x, axis=-1, dtype=None):
    x = np.asarray(x)
    dtype = np.dtype(dtype) if dtype is not None else expected_dtype(x.dtype)
    _check_result(got, x.shape, dtype)
    x = x.astype(dtype)
    want = reference.log_softmax(x, axis)
    assert_within(got, want, _log_tolerance(dtype) * (1 + np.abs(want)), "log_softmax")


def assert_logsumexp(got, x, axis=-1, keepdims=False):
    x = np.asarray(x)
    dtype = expected_dtype(x.dtype)
    want = reference.logsumexp(x, axis, keepdims)
    _check_result(got, want.shape, dtype)
    assert_within(got, want, _log_tolerance(dtype) * (1 + np.abs(want)), "logsumexp")


def assert_softmax_backward(got, g, y, axis=-1):
    g, y = np.asarray(g), np.asarray(y)
    dtype = expected_dtype(g.dtype, y.dtype)
    _check_result(got, g.shape, dtype)
    want = reference.softmax_backward(g, y, axis)
    g64, y64 = g.astype(F64), y.astype(F64)
    axes = reference.reduced_axes(axis, g.ndim)
    scale = np.abs(y64) * (np.abs(g64) + np.sum(np.abs(g64 * y64), axis=axes, keepdims=True))
    assert_within(got, want, _GRAD_ULPS * _eps(dtype) * scale + _ATOL[dtype], "softmax_backward")


def assert_log_softmax_backward(got, g, y, axis=-1):
    g, y = np.asarray(g), np.asarray(y)
    dtype = expected_dtype(g.dtype, y.dtype)
    _check_result(got, g.shape, dtype)
    want = reference.log_softmax_backward(g, y, axis)
    g64, y64 = g.astype(F64), y.astype(F64)
    axes = reference.reduced_axes(axis, g.ndim)
    with np.errstate(all="ignore"):
        scale = np.abs(g64) + np.exp(y64) * np.sum(np.abs(g64), axis=axes, keepdims=True)
    assert_within(got, want, _GRAD_ULPS * _eps(dtype) * scale + _ATOL[dtype],
                  "log_softmax_backward")


def same_bits(a, b):
    """Bit-exact equality (NaN payloads and signed zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ the bounds


def softmax_error(got, x, axis=-1):
    """(largest error / the issue's bound, largest relative error) of a softmax result,
    against np.longdouble on the same values, over elements whose exact value >= tiny."""
    bound = BOUNDS[np.dtype(got.dtype)]
    exact = reference.softmax_exact(x, axis)
    t = reference.shifted_exact(x, axis)
    counted = exact >= bound["tiny"]
    rel = np.abs(got.astype(np.longdouble) - exact)[counted] / exact[counted]
    ratio = rel / (bound["a"] + bound["b"] * np.abs(t[counted]))
    return (float(ratio.max()), float(rel.max())) if ratio.size else (0.0, 0.0)


def log_softmax_error(got, x, axis=-1):
    """(largest error / the issue's bound, largest absolute error) of a log_softmax result."""
    c = BOUNDS[np.dtype(got.dtype)]["c"]
    exact = reference.log_softmax_exact(x, axis)
    err = np.abs(got.astype(np.longdouble) - exact)
    return float((err / (c * (1 + np.abs(exact)))).max()), float(err.max())


def logsumexp_error(got, x, axis=-1):
    """As log_softmax_error: the issue gives logsumexp no bound of its own; it gets
    log_softmax's, c * (1 + |v|), which a correctly rounded result meets with room."""
    c = BOUNDS[np.dtype(got.dtype)]["c"]
    exact = reference.logsumexp_exact(x, axis)
    err = np.abs(got.astype(np.longdouble) - exact)
    return float((err / (c * (1 + np.abs(exact)))).max()), float(err.max())


def row_sum_error(got, axis=-1):
    """(largest |sum - 1| / the issue's bound, largest |sum - 1|) over the slices of a softmax result."""
    axes = reference.reduced_axes(axis, got.ndim)
    err = np.abs(np.sum(got.astype(np.longdouble), axis=axes) - 1)
    return float(err.max() / BOUNDS[np.dtype(got.dtype)]["row_sum"]), float(err.max())
