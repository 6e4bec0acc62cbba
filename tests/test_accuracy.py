"""The issue's accuracy bounds, against np.longdouble on the same input values (t = x - max):

* softmax relative error <= 1e-6 + 6e-8*|t| (float32), 4e-15 + 1.2e-16*|t| (float64), where
  the exact value >= 1e-30 (resp. 1e-300);
* log_softmax absolute error <= 5e-7*(1 + |y|) (float32), 9e-16*(1 + |y|) (float64);
* every slice of a softmax sums to 1 within 1e-5 (float32), 1e-13 (float64), at any length.

Inputs cover every kernel path: short rows (serial and parallel), long rows (more than
256 KiB: two passes with an online max), rows split among threads (few rows of >= 1 MiB),
and non-last axes (column kernels, serial and parallel). The issue's 50-million-element row
is in test_big.py.
"""

import numpy as np
import pytest
import scipy.special

import nbsoftmax
from tests import checks


def _normal(scale):
    return lambda rng, shape: rng.standard_normal(shape) * scale


def _uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def _offset(offset):
    """Values near a large offset: their rounding in the dtype is part of the input."""
    return lambda rng, shape: rng.standard_normal(shape) * 4 + offset


def _one_dominant(rng, shape):
    """A max far above the rest: probabilities near 1 and near 1e-20."""
    x = rng.standard_normal(shape)
    x[..., 0] += 45
    return x


def _ascending(rng, shape):
    """Each block's max above the previous ones: the online max is rescaled at every block."""
    return np.broadcast_to(np.linspace(-60, 5, shape[-1]), shape) + rng.standard_normal(shape) * 0.01


def _descending(rng, shape):
    return _ascending(rng, shape)[..., ::-1]


def _equal(rng, shape):
    return np.full(shape, 3.25)


# (id, dtype, shape, axis, input generator)
CASES = []
for _dt in (np.float32, np.float64):
    _tag = np.dtype(_dt).name
    CASES += [
        (f"{_tag}-short-normal1", _dt, (7, 1000), -1, _normal(1)),
        (f"{_tag}-short-normal8", _dt, (7, 1000), -1, _normal(8)),
        (f"{_tag}-short-normal30", _dt, (7, 4097), -1, _normal(30)),
        (f"{_tag}-short-uniform", _dt, (5, 513), -1, _uniform(-80, 0)),
        (f"{_tag}-short-offset", _dt, (5, 300), -1, _offset(1e4)),
        (f"{_tag}-short-dominant", _dt, (5, 300), -1, _one_dominant),
        (f"{_tag}-short-equal", _dt, (3, 777), -1, _equal),
        (f"{_tag}-tiny-rows", _dt, (50, 3), -1, _normal(5)),
        (f"{_tag}-parallel-rows", _dt, (128, 1000), -1, _normal(8)),
        (f"{_tag}-long-rows", _dt, (3, 100_000), -1, _normal(8)),
        (f"{_tag}-long-ascending", _dt, (3, 100_000), -1, _ascending),
        (f"{_tag}-long-descending", _dt, (3, 100_000), -1, _descending),
        (f"{_tag}-split-row", _dt, (1, 600_000), -1, _normal(8)),
        (f"{_tag}-split-ascending", _dt, (2, 600_000), -1, _ascending),
        (f"{_tag}-columns", _dt, (1000, 30), 0, _normal(8)),
        (f"{_tag}-columns-3d", _dt, (6, 700, 20), 1, _uniform(-80, 0)),
        (f"{_tag}-columns-parallel", _dt, (500, 200), 0, _normal(30)),
        (f"{_tag}-columns-long", _dt, (20_000, 16), 0, _normal(8)),
        (f"{_tag}-columns-dominant", _dt, (300, 40), 0, lambda rng, s: _one_dominant(rng, s[::-1]).T),
        (f"{_tag}-two-axes", _dt, (30, 8, 40), (0, 2), _normal(8)),
    ]
CASES.append(("float64-wide-uniform", np.float64, (5, 2000), -1, _uniform(-720, 0)))


def _input(case, rng):
    _, dtype, shape, axis, make = case
    return np.ascontiguousarray(make(rng, shape)).astype(dtype), axis


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_softmax_accuracy(case, rng):
    x, axis = _input(case, rng)
    got = nbsoftmax.softmax(x, axis=axis)
    ratio, rel = checks.softmax_error(got, x, axis)
    assert ratio <= 1, f"softmax error {ratio:.3g}x the bound (max relative error {rel:.3g})"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_log_softmax_accuracy(case, rng):
    x, axis = _input(case, rng)
    got = nbsoftmax.log_softmax(x, axis=axis)
    ratio, err = checks.log_softmax_error(got, x, axis)
    assert ratio <= 1, f"log_softmax error {ratio:.3g}x the bound (max absolute error {err:.3g})"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_logsumexp_accuracy(case, rng):
    x, axis = _input(case, rng)
    got = nbsoftmax.logsumexp(x, axis=axis)
    ratio, err = checks.logsumexp_error(got, x, axis)
    assert ratio <= 1, f"logsumexp error {ratio:.3g}x the bound (max absolute error {err:.3g})"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_row_sums(case, rng):
    x, axis = _input(case, rng)
    ratio, err = checks.row_sum_error(nbsoftmax.softmax(x, axis=axis), axis)
    assert ratio <= 1, f"a slice sums to 1 +- {err:.3g}, {ratio:.3g}x the bound"


# In place (out=x), the kernels read and write the same memory; so do they for every input
# the dispatch first copies into the result (integer, bool, byte-swapped, dtype= casts, ...).
IN_PLACE = [c for c in CASES if c[0].split("-", 1)[1] in
            ("short-normal8", "short-normal30", "short-uniform", "parallel-rows", "long-rows",
             "split-row", "columns", "two-axes")]


@pytest.mark.parametrize("case", IN_PLACE, ids=_ids(IN_PLACE))
def test_softmax_in_place_accuracy(case, rng):
    x, axis = _input(case, rng)
    got = x.copy()
    nbsoftmax.softmax(got, axis=axis, out=got)
    ratio, rel = checks.softmax_error(got, x, axis)
    assert ratio <= 1, f"softmax error {ratio:.3g}x the bound (max relative error {rel:.3g})"


@pytest.mark.parametrize("case", IN_PLACE, ids=_ids(IN_PLACE))
def test_log_softmax_in_place_accuracy(case, rng):
    x, axis = _input(case, rng)
    got = x.copy()
    nbsoftmax.log_softmax(got, axis=axis, out=got)
    ratio, err = checks.log_softmax_error(got, x, axis)
    assert ratio <= 1, f"log_softmax error {ratio:.3g}x the bound (max absolute error {err:.3g})"


REPEATED_VALUES = {
    "float32-arange%7": (np.arange(1000) % 7).astype(np.float32),
    "float64-arange%7": (np.arange(1000) % 7).astype(np.float64),
    "float64-999x-1-and-0": np.r_[np.full(999, -1.0), 0.0],
}


@pytest.mark.parametrize("mode", ["out-of-place", "in-place", "int64-input"])
@pytest.mark.parametrize("name", REPEATED_VALUES)
def test_repeated_values(name, mode):
    """A few distinct values repeated along a 1000-element row: summation errors add up.
    (Integer input is computed in float64 inside the result array, i.e. in place too.)"""
    x = REPEATED_VALUES[name]
    if mode == "int64-input":
        x = x.astype(np.int64)
        got = nbsoftmax.softmax(x)
    elif mode == "in-place":
        got = x.copy()
        nbsoftmax.softmax(got, out=got)
    else:
        got = nbsoftmax.softmax(x)
    ratio, rel = checks.softmax_error(got, x)
    assert ratio <= 1, f"softmax error {ratio:.3g}x the bound (max relative error {rel:.3g})"


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", [np.int16, np.int64, np.uint8])
def test_integer_input_accuracy(dtype, axis, rng):
    """Integer logits (computed in float64): many equal values, so rounding errors of a sum
    do not average out."""
    x = np.clip(np.round(rng.standard_normal((8, 1000)) * 3), 0 if dtype == np.uint8 else -50, 50)
    x = x.astype(dtype)
    ratio, rel = checks.softmax_error(nbsoftmax.softmax(x, axis=axis), x, axis)
    assert ratio <= 1, f"softmax error {ratio:.3g}x the bound (max relative error {rel:.3g})"
    ratio, err = checks.log_softmax_error(nbsoftmax.log_softmax(x, axis=axis), x, axis)
    assert ratio <= 1, f"log_softmax error {ratio:.3g}x the bound (max absolute error {err:.3g})"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1 << 20, 1 << 22])
def test_million_element_rows(n, dtype, rng):
    """One row of 1M and 4M elements: sums and per-element bounds (long-row and split paths)."""
    x = (rng.standard_normal(n) * 6).astype(dtype)
    got = nbsoftmax.softmax(x)
    ratio, err = checks.row_sum_error(got)
    assert ratio <= 1, f"sums to 1 +- {err:.3g}"
    ratio, rel = checks.softmax_error(got, x)
    assert ratio <= 1, f"softmax error {ratio:.3g}x the bound (max relative error {rel:.3g})"
    ratio, err = checks.log_softmax_error(nbsoftmax.log_softmax(x), x)
    assert ratio <= 1, f"log_softmax error {ratio:.3g}x the bound (max absolute error {err:.3g})"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_column_sums(dtype, rng):
    """A 1M-long softmax axis that is not the last one (the column kernels' sums)."""
    x = (rng.standard_normal((1 << 20, 4)) * 6).astype(dtype)
    ratio, err = checks.row_sum_error(nbsoftmax.softmax(x, axis=0), 0)
    assert ratio <= 1, f"sums to 1 +- {err:.3g}"


SHORT_ROWS = [c for c in CASES if "short" in c[0]]


@pytest.mark.parametrize("case", SHORT_ROWS, ids=_ids(SHORT_ROWS))
def test_scipy_meets_the_bounds(case, rng):
    """The yardstick itself: SciPy (same dtype) is within the bounds on these last-axis
    inputs, as the issue says, so the measurement is not stricter than what the bounds were
    set from. (Over a non-last axis NumPy's sums are not pairwise and SciPy exceeds them.)"""
    x, axis = _input(case, rng)
    with np.errstate(under="ignore"):
        assert checks.softmax_error(scipy.special.softmax(x, axis=axis), x, axis)[0] <= 1
        assert checks.log_softmax_error(scipy.special.log_softmax(x, axis=axis), x, axis)[0] <= 1
