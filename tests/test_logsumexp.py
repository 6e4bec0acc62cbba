"""logsumexp (issue 10 items 8, 9, 10, 11): the log1p form near 0, NumPy scalars for 0-d
results, ``logsumexp_backward``, and ``b=``/``return_sign=`` with SciPy's semantics and
``where=``.

References: SciPy's ``logsumexp`` where its semantics are ours, a long-double evaluation
(``_lse_exact``) for the accuracy bounds, and fixed expectations taken from torch autograd
and JAX (``test_fixed_expectations_against_torch_and_jax`` checks them against those
libraries in a fresh interpreter, skipped where they are not installed). Cases written from
SciPy's ``special/tests/test_logsumexp.py`` and JAX's ``tests/lax_scipy_test.py`` carry
their names.
"""

import importlib.util
import itertools

import numpy as np
import pytest
import scipy.special

import nbsoftmax

from .subproc import run_python

inf, nan = np.inf, np.nan
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
EPS = {F32: float(np.finfo(np.float32).eps), F64: float(np.finfo(np.float64).eps)}


def _lse_exact(x, axis=-1, b=None, where=None, keepdims=False):
    """(log|sum(b * exp(x))|, sign) over the entries where ``where`` and b != 0, as float64.

    Long double, and SciPy's form: one max entry (weight w) taken out of the sum,
    log|w| + log1p(rest / w) (long double alone would lose 1e-19 absolute near 0)."""
    x = np.asarray(x, np.longdouble)
    b = np.ones_like(x) if b is None else np.asarray(b, np.longdouble)
    x, b = np.broadcast_arrays(x, b)
    keep = b != 0
    if where is not None:
        keep = keep & np.broadcast_to(where, x.shape)
    axes = _axes(axis, x.ndim)
    rest = [a for a in range(x.ndim) if a not in axes]
    shape = [x.shape[a] for a in rest]

    def rows(arr):
        return np.transpose(arr, rest + list(axes)).reshape(int(np.prod(shape)), -1)

    value, sign = [], []
    for xr, br, kr in zip(rows(x), rows(b), rows(keep)):
        xr, br = xr[kr], br[kr]
        with np.errstate(all="ignore"):
            v, s = _lse_row_exact(xr, br)
        value.append(v)
        sign.append(s)
    value = np.array(value, np.float64).reshape(shape)
    sign = np.array(sign, np.float64).reshape(shape)
    if keepdims:
        value, sign = np.expand_dims(value, axes), np.expand_dims(sign, axes)
    return value, sign


def _lse_row_exact(x, b):
    if x.size == 0:
        return -np.inf, 0.0
    m = np.max(x)
    if np.isnan(m):
        return np.nan, np.nan
    if not np.isfinite(m):  # +inf: b * inf over the +inf entries, b * 0 elsewhere; all -inf
        total = np.sum(np.where(x == m, b * np.exp(m), b * 0.0))
        return (np.log(abs(total)), np.sign(total)) if not np.isnan(total) else (np.nan,) * 2
    i = int(np.argmax(x))
    w = b[i]
    q = np.sum(np.delete(b * np.exp(x - m), i)) / w
    if np.isnan(q):
        return np.nan, np.nan
    if q == -1:
        return -np.inf, 0.0
    if q > -1:
        return m + np.log(abs(w)) + np.log1p(q), float(np.sign(w))
    return m + np.log(abs(w)) + np.log1p(-2 - q), -float(np.sign(w))


def _axes(axis, ndim):
    if axis is None or ndim == 0:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in items))


def _assert_close_rel(got, want, ulps, dtype, scale=None):
    """|got - want| <= ulps * eps * max(|want|, scale) elementwise; equal non-finite."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    ref = np.abs(want) if scale is None else np.maximum(np.abs(want), scale)
    err = np.abs(got - want)
    bound = ulps * EPS[np.dtype(dtype)] * ref
    bad = finite & ~(err <= bound)
    assert not bad.any(), (f"{bad.sum()} out of bound: got {got[bad][:5]}, want {want[bad][:5]}, "
                           f"error {err[bad][:5]} > {bound[bad][:5]}")


# ------------------------------------------------------------------ item 8: near 0


def test_issue_reproducers_near_zero():
    assert nbsoftmax.logsumexp([0.0, -40.0]) == 4.248354255291589e-18 == np.logaddexp(0, -40)
    got = nbsoftmax.logsumexp(np.array([0.0, -10.0], np.float32))
    want = np.logaddexp(0.0, -10.0)  # 4.5398899216870535e-05
    assert got.dtype == F32 and abs(float(got) - want) <= 2 * EPS[F32] * want


def _near_zero_rows(rng, dtype, rows, n):
    """Rows with one max entry of exactly 0 and the others far below: logsumexp ~ 1e-18..0.3."""
    low = 2.0 + np.log(n)  # the others sum to at most exp(-2)
    x = -rng.uniform(low, low + (45.0 if dtype == F64 else 18.0), (rows, n))
    x[np.arange(rows), rng.integers(0, n, rows)] = 0.0
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("n", [2, 7, 300, 5000])
def test_relative_error_near_zero_every_path(dtype, n, rng):
    """The rows, column (axis 0), where= and b= kernels all keep relative precision near 0."""
    x = _near_zero_rows(rng, dtype, 6, n)
    want = _lse_exact(x)[0]
    assert (want < 0.15).all() and (want > 0).all()
    ulps = 4
    _assert_close_rel(nbsoftmax.logsumexp(x), want, ulps, dtype)
    _assert_close_rel(nbsoftmax.logsumexp(np.asfortranarray(x.T), axis=0), want, ulps, dtype)
    _assert_close_rel(nbsoftmax.logsumexp(x, where=np.ones(x.shape, bool)), want, ulps, dtype)
    _assert_close_rel(nbsoftmax.logsumexp(x, b=np.ones(n, dtype)), want, ulps, dtype)
    value, sign = nbsoftmax.logsumexp(x, return_sign=True)
    _assert_close_rel(value, want, ulps, dtype)
    np.testing.assert_array_equal(sign, 1.0)


def test_near_zero_long_row_split_path():
    """One long row (a parallel split over pieces when there are threads to share)."""
    x = np.full((1, 400_000), -np.inf)
    x[0, 399_999] = 0.0
    x[0, 3] = -40.0
    x[0, 200_000] = -45.0
    want = np.logaddexp(np.logaddexp(0.0, -40.0), -45.0)
    got = nbsoftmax.logsumexp(x)
    assert abs(got[0] - want) <= 2 * EPS[F64] * want
    assert abs(nbsoftmax.logsumexp(x.T, axis=0)[0] - want) <= 2 * EPS[F64] * want


def test_several_max_entries_and_max_growing_across_blocks(rng):
    """The count of max entries and the rescaling when a later block holds a larger max."""
    x = np.full(20_000, -3.0)
    x[[5, 17_000]] = 2.0  # two max entries, far apart
    x[100:200] = -60.0
    got = nbsoftmax.logsumexp(x)
    want = _lse_exact(x)[0]
    assert abs(got - want) <= 4 * EPS[F64] * abs(want)
    ramp = np.linspace(-30.0, 0.0, 50_000)  # max in the last block
    _assert_close_rel(nbsoftmax.logsumexp(ramp), _lse_exact(ramp)[0], 4, F64)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_shift_invariance_with_b_and_where(dtype, rng):
    """logsumexp(x + c) == logsumexp(x) + c within the bound (c up to 1e6 float32, 2**45
    float64), plain, with b= (signed weights) and with where=."""
    # multiples of 1/8 within +-16: x + c is exact for every c below
    x = np.round(np.clip(rng.standard_normal((5, 40)) * 3, -15, 15) * 8).astype(dtype) / 8
    b = rng.uniform(-1.0, 2.0, (5, 40)).astype(dtype)
    keep = rng.random((5, 40)) < 0.7
    keep[:, 0] = True
    for c in ((1e3, 1e6) if dtype == F32 else (1e3, 2.0**20, 2.0**45)):
        xc = (x + dtype.type(c)).astype(dtype)
        exact_shift = (xc.astype(np.float64) - x.astype(np.float64))  # c as represented
        assert np.all(exact_shift == exact_shift[0, 0])
        c_eff = exact_shift[0, 0]
        for kwargs in ({}, {"b": b}, {"where": keep}, {"b": b, "where": keep}):
            base, s0 = nbsoftmax.logsumexp(x, return_sign=True, **kwargs)
            shifted, s1 = nbsoftmax.logsumexp(xc, return_sign=True, **kwargs)
            np.testing.assert_array_equal(s0, s1)
            ok = np.isfinite(base)
            err = np.abs(shifted[ok].astype(np.float64) - (base[ok].astype(np.float64) + c_eff))
            # the result's own rounding at |c|, and the bound at the unshifted magnitude
            bound = 2 * EPS[dtype] * (np.abs(c_eff) + np.abs(base[ok]) + 4)
            assert (err <= bound).all(), (kwargs, c, err.max(), bound.min())


# ------------------------------------------------------------------ item 9: NumPy scalars


def test_issue_reproducers_scalars():
    got = nbsoftmax.logsumexp([])
    assert type(got) is np.float64 and got == -np.inf
    got = nbsoftmax.softmax(1000.0)
    assert type(got) is np.float64 and got == 1.0


_SCALAR_CALLS = {
    "softmax": lambda x: nbsoftmax.softmax(x),
    "log_softmax": lambda x: nbsoftmax.log_softmax(x),
    "softmin": lambda x: nbsoftmax.softmin(x),
    "softmax where": lambda x: nbsoftmax.softmax(x, where=True),
    "log_softmax temperature": lambda x: nbsoftmax.log_softmax(x, temperature=2.0),
    "softmax_backward": lambda x: nbsoftmax.softmax_backward(x, x),
    "log_softmax_backward": lambda x: nbsoftmax.log_softmax_backward(x, x),
    "softmax_backward where": lambda x: nbsoftmax.softmax_backward(x, x, where=True),
    "logsumexp": lambda x: nbsoftmax.logsumexp(x),
    "logsumexp keepdims": lambda x: nbsoftmax.logsumexp(x, keepdims=True),
    "logsumexp where": lambda x: nbsoftmax.logsumexp(x, where=True),
    "logsumexp b": lambda x: nbsoftmax.logsumexp(x, b=2.0),
    "logsumexp_backward": lambda x: nbsoftmax.logsumexp_backward(x, x),
}


@pytest.mark.parametrize("name", list(_SCALAR_CALLS))
@pytest.mark.parametrize("dtype", [F32, F64])
def test_zero_d_input_gives_numpy_scalar(name, dtype):
    got = _SCALAR_CALLS[name](dtype.type(0.5))
    assert type(got) is dtype.type, type(got)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_full_reductions_give_numpy_scalars(dtype):
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    for got in (nbsoftmax.logsumexp(x, axis=None), nbsoftmax.logsumexp(x, axis=(0, 1)),
                nbsoftmax.logsumexp(x[0]), nbsoftmax.logsumexp(x, axis=None, where=x > 1),
                nbsoftmax.logsumexp(x, axis=None, b=x)):
        assert type(got) is dtype.type
    value, sign = nbsoftmax.logsumexp(x, axis=None, b=-x, return_sign=True)
    assert type(value) is dtype.type and type(sign) is dtype.type and sign == -1
    assert type(nbsoftmax.logsumexp(x, axis=None, keepdims=True)) is np.ndarray
    assert type(nbsoftmax.logsumexp(x, axis=0)) is np.ndarray
    loss = nbsoftmax.cross_entropy(x, [0, 2])
    assert type(loss) is dtype.type
    loss, grad = nbsoftmax.cross_entropy(x[0], 1, reduction="none", return_grad=True)
    assert type(loss) is dtype.type and type(grad) is np.ndarray


def test_out_given_returns_out_not_a_scalar():
    out = np.empty(())
    assert nbsoftmax.softmax(3.0, out=out) is out and out == 1.0
    assert nbsoftmax.logsumexp_backward(2.0, 3.0, out=out) is out and out == 2.0


# ------------------------------------------------------------------ item 10: the gradient

# Slices with +-inf and NaN, and the gradients torch autograd gives for
# torch.logsumexp(x, -1).backward(g) (checked against torch in
# test_fixed_expectations_against_torch_and_jax).
TORCH_X = np.array([[1.0, 2.0, 3.0, 0.5], [inf, 1.0, 0.0, inf], [inf, -inf, 0.0, 3.0],
                    [-inf, -inf, -inf, -inf], [nan, 1.0, 2.0, 0.0], [-inf, -inf, 2.0, 1.0],
                    [1e300, -1e300, 0.0, -inf]])
TORCH_G = np.array([1.0, 2.0, -1.0, 3.0, 1.0, 0.5, 2.0])
TORCH_GRAD = np.array([
    [0.08536889350978889, 0.23205671194331448, 0.6307955432474669, 0.05177885129942981],
    [nan, 0.0, 0.0, nan],
    [nan, -0.0, -0.0, -0.0],
    [nan, nan, nan, nan],
    [nan, nan, nan, nan],
    [0.0, 0.0, 0.3655292893150024, 0.13447071068499752],
    [2.0, 0.0, 0.0, 0.0]])
# torch with a non-finite grad_output: inf * exp(1 - inf) = inf * 0 is NaN, and so on.
TORCH_SPECIAL = [([inf], [[inf, 1.0]], [[nan, nan]]), ([nan], [[0.0, 1.0]], [[nan, nan]]),
                 ([inf], [[0.0, -inf]], [[inf, nan]])]


def _lse_backward_ref(g, x, axis=-1, keepdims=False, where=None):
    """g * exp(x - logsumexp(x)) in float64 (finite slices), 0 where masked."""
    x = np.asarray(x, np.float64)
    axes = _axes(axis, x.ndim)
    gk = np.asarray(g, np.float64) if keepdims else np.expand_dims(g, axes)
    mask = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    lse = _lse_exact(x, axis, where=mask, keepdims=True)[0]
    with np.errstate(all="ignore"):
        y = np.exp((x.astype(np.longdouble) - lse)).astype(np.float64)
    return np.where(mask, gk * y, 0.0)


def test_backward_torch_values_on_special_slices():
    got = nbsoftmax.logsumexp_backward(TORCH_G, TORCH_X)
    np.testing.assert_allclose(got, TORCH_GRAD, rtol=4 * EPS[F64], atol=0)
    finite = np.isfinite(TORCH_GRAD)
    np.testing.assert_array_equal(np.signbit(got[finite]), np.signbit(TORCH_GRAD[finite]))
    for g, x, want in TORCH_SPECIAL:
        np.testing.assert_array_equal(nbsoftmax.logsumexp_backward(g, x), want)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape,axis,keepdims", [
    ((5, 7), -1, False), ((5, 7), 0, True), ((3, 4, 6), (0, 2), False),
    ((3, 4, 6), None, True), ((2, 3000), -1, False), ((40,), 0, False)])
def test_backward_values_and_layouts(dtype, shape, axis, keepdims, rng):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    gshape = np.shape(nbsoftmax.logsumexp(x, axis=axis, keepdims=keepdims))
    g = rng.standard_normal(gshape).astype(dtype)
    want = _lse_backward_ref(g, x, axis, keepdims)
    got = nbsoftmax.logsumexp_backward(g, x, axis, keepdims=keepdims)
    assert got.dtype == dtype and got.shape == x.shape
    scale = np.abs(want) + 1e-30
    np.testing.assert_array_less(np.abs(got - want), 16 * EPS[dtype] * scale + 1e-37)
    # Fortran order, reversed strides, out= given, out=x in place: the same values
    for xv in (np.asfortranarray(x), x[..., ::-1][..., ::-1]):
        np.testing.assert_array_equal(
            nbsoftmax.logsumexp_backward(g, xv, axis, keepdims=keepdims), got)
    out = np.empty_like(x, order="F")
    assert nbsoftmax.logsumexp_backward(g, x, axis, keepdims=keepdims, out=out) is out
    np.testing.assert_array_equal(out, got)
    xc = x.copy()
    assert nbsoftmax.logsumexp_backward(g, xc, axis, keepdims=keepdims, out=xc) is xc
    np.testing.assert_array_equal(xc, got)


def test_backward_equals_finite_differences(rng):
    x = rng.standard_normal(6)
    h = 1e-6
    fd = [(nbsoftmax.logsumexp(x + h * e) - nbsoftmax.logsumexp(x - h * e)) / (2 * h)
          for e in np.eye(6)]
    np.testing.assert_allclose(nbsoftmax.logsumexp_backward(1.0, x), fd, rtol=1e-8)


def test_backward_where_and_shift_invariance(rng):
    # JAX's testLogSumExpWhereGrad: grad of logsumexp(x, where=arange(5) < 4)
    x = np.array([0.0, 0.0, 0.0, 0.0, 100.0])
    got = nbsoftmax.logsumexp_backward(1.0, x, where=np.arange(5) < 4)
    np.testing.assert_array_equal(got, [0.25, 0.25, 0.25, 0.25, 0.0])
    x = (np.round(rng.standard_normal((4, 30)) * 8) / 8).astype(np.float32)  # x + 1e6 exact
    keep = rng.random((4, 30)) < 0.6
    keep[3] = False  # a fully masked slice: zeros
    g = rng.standard_normal(4).astype(np.float32)
    base = nbsoftmax.logsumexp_backward(g, x, where=keep)
    want = _lse_backward_ref(g, x, where=keep)
    np.testing.assert_allclose(base, want, rtol=32 * EPS[F32], atol=1e-37)
    assert (base[~keep] == 0).all()
    for c in (1e3, 1e6):
        shifted = nbsoftmax.logsumexp_backward(g, x + np.float32(c), where=keep)
        np.testing.assert_allclose(shifted, want, rtol=64 * EPS[F32], atol=1e-37)


@pytest.mark.parametrize("dtypes,expected", [((F16, F16), F16), ((F32, F64), F64),
                                             ((np.int32, F32), F64), ((F32, np.bool_), F64)])
def test_backward_dtypes(dtypes, expected):
    g = np.array([1.0, 2.0]).astype(dtypes[0])
    x = np.array([[0.0, 1.0], [2.0, 2.0]]).astype(dtypes[1])
    got = nbsoftmax.logsumexp_backward(g, x)
    assert got.dtype == expected
    np.testing.assert_allclose(got.astype(np.float64), _lse_backward_ref(g.astype(float), x),
                               rtol=2e-3 if expected == F16 else 1e-6)


def test_backward_errors_and_inputs_untouched():
    x = np.arange(6.0).reshape(2, 3)
    g = np.ones(2)
    x0, g0 = x.copy(), g.copy()
    with pytest.raises(ValueError, match=r"grad_output has shape \(3,\)"):
        nbsoftmax.logsumexp_backward(np.ones(3), x)
    with pytest.raises(ValueError, match=r"grad_output has shape \(2,\).*keepdims=True"):
        nbsoftmax.logsumexp_backward(g, x, keepdims=True)
    out = np.full((3, 2), 7.0)
    with pytest.raises(ValueError, match="out has shape"):
        nbsoftmax.logsumexp_backward(g, x, out=out)
    with pytest.raises(TypeError, match="out has dtype float32"):
        nbsoftmax.logsumexp_backward(g, x, out=np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="where has shape"):
        nbsoftmax.logsumexp_backward(g, x, where=np.ones(4, bool))
    with pytest.raises(TypeError, match="complex"):
        nbsoftmax.logsumexp_backward(g, x + 0j)
    with pytest.raises(TypeError, match="keepdim"):
        nbsoftmax.logsumexp_backward(g, x, keepdim=True)
    assert (out == 7.0).all()
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)
    assert nbsoftmax.logsumexp_backward(np.ones((2, 0)), np.ones((2, 0, 3)), axis=2).shape == \
        (2, 0, 3)


# ------------------------------------------------------------------ item 11: b= and return_sign


def test_scipy_logsumexp_b():  # SciPy TestLogSumExp.test_logsumexp_b
    a = np.arange(200.0)
    b = np.arange(200.0, 0.0, -1.0)
    np.testing.assert_allclose(nbsoftmax.logsumexp(a, b=b), np.log(np.sum(b * np.exp(a))),
                               rtol=1e-13)
    np.testing.assert_allclose(nbsoftmax.logsumexp([1000, 1000], b=[1.2, 1.2]),
                               1000 + np.log(2 * 1.2), rtol=1e-15)
    x = np.full(100_000, 1e-40)
    b = np.linspace(1, 1000, 100_000)
    log_x = np.stack([np.log(x)] * 2)
    bb = np.stack([b, b])
    x2 = np.stack([x, x])
    np.testing.assert_allclose(np.exp(nbsoftmax.logsumexp(log_x, axis=None, b=bb)),
                               np.sum(bb * x2), rtol=1e-12)
    np.testing.assert_allclose(np.exp(nbsoftmax.logsumexp(log_x, b=bb, axis=0)),
                               np.sum(bb * x2, axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.exp(nbsoftmax.logsumexp(log_x, b=bb, axis=1)),
                               np.sum(bb * x2, axis=1), rtol=1e-12)


def test_scipy_sign_cases():
    # test_logsumexp_sign, test_logsumexp_sign_zero
    r, s = nbsoftmax.logsumexp([1, 1, 1], b=[1, -1, -1], return_sign=True)
    assert abs(r - 1.0) < 1e-15 and s == -1.0
    r, s = nbsoftmax.logsumexp([1, 1], b=[1, -1], return_sign=True)
    assert r == -np.inf and s == 0
    # the docstring example: log(e - e**2) is the log of a negative number
    r, s = nbsoftmax.logsumexp([1, 2], b=[1, -1], return_sign=True)
    np.testing.assert_allclose((r, s), (1.5413248546129181, -1.0), rtol=1e-15)
    assert np.isnan(nbsoftmax.logsumexp([1, 2], b=[1, -1]))


def test_scipy_shapes():  # test_logsumexp_sign_shape, test_logsumexp_shape, test_logsumexp_b_shape
    a = np.ones((1, 2, 3, 4))
    for axis, shape in ((2, (1, 2, 4)), ((1, 3), (1, 3))):
        r, s = nbsoftmax.logsumexp(a, axis=axis, b=np.ones_like(a), return_sign=True)
        assert r.shape == s.shape == shape
        assert nbsoftmax.logsumexp(a, axis=axis, b=np.ones_like(a)).shape == shape
    a, b = np.zeros((4, 1, 2, 1)), np.ones((3, 1, 5))
    got = nbsoftmax.logsumexp(a, axis=None, b=b)  # broadcast to (4, 3, 2, 5)
    assert got == scipy.special.logsumexp(a, b=b) == np.log(120)


def test_scipy_b_zero_and_gh22903_gh23548():
    np.testing.assert_allclose(nbsoftmax.logsumexp([1, 10000], b=[1, 0]), 1.0, rtol=1e-15)
    a = np.array([3.06409428, 0.37251854, 3.87471931])
    b = np.array([1.88190708, 2.84174795, -0.85016884])
    np.testing.assert_allclose(nbsoftmax.logsumexp(a, b=b),
                               scipy.special.logsumexp(a, b=b), rtol=1e-14)
    np.testing.assert_allclose(nbsoftmax.logsumexp(a, b=b),
                               nbsoftmax.logsumexp(a, b=b, return_sign=True)[0], rtol=0)
    assert np.isnan(nbsoftmax.logsumexp(a, b=[1.88190708, 2.84174795, -3.85016884]))
    for b, sign in ((None, 1.0), ([-1.0], -1.0)):
        value, s = nbsoftmax.logsumexp([np.inf], b=b, return_sign=True)
        assert value == np.inf and s == sign


@pytest.mark.parametrize("dtype_a", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("dtype_b", ["float32", "float64", "int32", "int64"])
def test_scipy_dtypes_ab(dtype_a, dtype_b):
    got = nbsoftmax.logsumexp(np.array([2, 1], dtype_a), b=np.array([1, -1], dtype_b))
    want_dtype = np.result_type(dtype_a, dtype_b)
    want_dtype = F64 if want_dtype.kind in "iu" else want_dtype
    assert got.dtype == want_dtype
    np.testing.assert_allclose(got, np.log(np.exp(2) - np.exp(1)),
                               rtol=4 * EPS[np.dtype(want_dtype)])


def test_scipy_gh22601_infinite_real_elements():
    for x, y in itertools.product([-np.inf, np.inf], repeat=2):
        with np.errstate(all="ignore"):
            want = np.log(np.sum(np.exp([x, y])))
        np.testing.assert_array_equal(nbsoftmax.logsumexp([x, y]), want)


def test_no_writeback_and_complex_refused():  # SciPy test_no_writeback
    a, b = np.array([5.0, 4.0]), np.array([3.0, 2.0])
    nbsoftmax.logsumexp(a, b=b, return_sign=True)
    np.testing.assert_array_equal(a, [5.0, 4.0])
    np.testing.assert_array_equal(b, [3.0, 2.0])
    with pytest.raises(TypeError, match="b has complex dtype complex128"):
        nbsoftmax.logsumexp(a, b=b + 1j)
    with pytest.raises(TypeError, match="x has complex dtype"):
        nbsoftmax.logsumexp(a + 1j, return_sign=True)
    with pytest.raises(ValueError, match=r"b has shape \(3,\), which does not broadcast"):
        nbsoftmax.logsumexp(a, b=np.ones(3))
    with pytest.raises(TypeError, match="return_sign"):
        nbsoftmax.logsumexp(a, return_sign="yes")


def test_jax_zeros_ones_nans():  # JAX testLogSumExpZeros, testLogSumExpOnes, testLogSumExpNans
    assert nbsoftmax.logsumexp([-1000, -2], b=[1, 0]) == scipy.special.logsumexp(
        [-1000, -2], b=[1, 0]) == -1000.0
    ones = np.ones(4, np.float32)
    np.testing.assert_allclose(nbsoftmax.logsumexp(ones), scipy.special.logsumexp(ones),
                               rtol=2 * EPS[F32])
    assert nbsoftmax.logsumexp(1.0) == 1.0 and nbsoftmax.logsumexp(1.0, b=1.0) == 1.0


# JAX testLogSumExp: shapes (with b: pairs that broadcast), every axis, keepdims, return_sign,
# float and int dtypes, data from jtu.rand_default (normal * 3), against SciPy.
_JAX_SHAPES = [[(), ()], [(4,), (3, 4)], [(3, 1), (1, 4)], [(2, 3, 4), (2, 1, 4)]]


def _jax_cases():
    for group in _JAX_SHAPES:
        for use_b in (False, True):
            for shapes in itertools.product(*((group, group) if use_b else (group,))):
                ndim = max(len(s) for s in shapes)
                for axis in range(-ndim, ndim) if ndim else (0,):
                    yield shapes, axis, use_b


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("return_sign", [False, True])
def test_jax_logsumexp_cases(dtype, keepdims, return_sign, rng):
    """Values against long double (signed weights cancel: the bound grows with
    sum|terms| / |sum|, for SciPy's float32 results as for ours), signs, dtypes and shapes
    against SciPy (except that a 0-d input with keepdims stays 0-d, as NumPy's reductions)."""
    count = 0
    rdtype = F32 if dtype == "float32" else F64
    for shapes, axis, use_b in _jax_cases():
        arrays = [(rng.standard_normal(s) * 3).astype(dtype) for s in shapes]
        a, b = arrays[0], (arrays[1] if use_b else None)
        want = scipy.special.logsumexp(a, axis, b=b, keepdims=keepdims, return_sign=return_sign)
        got = nbsoftmax.logsumexp(a, axis, b=b, keepdims=keepdims, return_sign=return_sign)
        value, sign = got if return_sign else (got, None)
        want_value = want[0] if return_sign else want
        where = (shapes, axis, use_b)
        if not (keepdims and len(np.broadcast_shapes(*shapes)) == 0):
            assert np.shape(value) == np.shape(want_value), where
            assert type(value) is type(want_value), where
        exact, exact_sign = _lse_exact(a, axis, b, keepdims=keepdims)
        size = _lse_exact(a, axis, None if b is None else np.abs(b), keepdims=keepdims)[0]
        exact = np.reshape(exact, np.shape(value))
        size = np.reshape(size, np.shape(value))
        if not return_sign:
            exact = np.where(np.reshape(exact_sign, np.shape(value)) < 0, np.nan, exact)
        else:
            np.testing.assert_array_equal(sign, np.reshape(want[1], np.shape(sign)), str(where))
        with np.errstate(all="ignore"):
            allowed = 8 * EPS[rdtype] * (np.abs(exact) + np.exp(size - exact) + 1)
        np.testing.assert_array_equal(np.isnan(value), np.isnan(exact), str(where))
        ok = np.isfinite(exact)
        np.testing.assert_array_equal(np.asarray(value)[~ok], exact[~ok], str(where))
        with np.errstate(invalid="ignore"):
            err = np.abs(np.asarray(value, np.float64) - exact)
        assert (err[ok] <= allowed[ok]).all(), where
        count += 1
    assert count == 86


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_jax_logsumexp_where(n, rng):  # JAX testLogSumExpWhere, with and without b
    for dtype in (F32, F64):
        x = (rng.standard_normal(n) * 3).astype(dtype)
        mask = rng.random(n) < 0.5
        want = scipy.special.logsumexp(x[mask]) if mask.any() else -np.inf
        np.testing.assert_allclose(nbsoftmax.logsumexp(x, where=mask), want,
                                   rtol=4 * EPS[dtype])
        b = rng.uniform(0.5, 2.0, n).astype(dtype)
        want = scipy.special.logsumexp(x[mask], b=b[mask]) if mask.any() else -np.inf
        np.testing.assert_allclose(nbsoftmax.logsumexp(x, b=b, where=mask), want,
                                   rtol=4 * EPS[dtype])


# Special values with weights: (x, b, where) -> (value, sign); SciPy's conventions, and the
# -inf/0 sign convention for an empty or all-masked slice (SciPy: sign -1 for empty input).
_SPECIAL = [
    ([nan, 1.0], [0.0, 1.0], None, (1.0, 1.0)),        # a weight of 0 drops even NaN
    ([inf, 1.0], [0.0, 2.0], None, (1.0 + np.log(2), 1.0)),
    ([inf, 1.0], [-2.0, 1.0], None, (inf, -1.0)),
    ([inf, inf], [1.0, -1.0], None, (nan, nan)),        # inf - inf
    ([inf, inf], [1.0, 2.0], None, (inf, 1.0)),
    ([-inf, -inf], [1.0, 2.0], None, (-inf, 0.0)),
    ([-inf, 0.0], [inf, 1.0], None, (nan, nan)),        # inf * exp(-inf), as b * exp(a)
    ([0.0, 0.0], [inf, 1.0], None, (inf, 1.0)),
    ([0.0, 1.0], [nan, 1.0], None, (nan, nan)),
    ([], [], None, (-inf, 0.0)),
    ([1.0, 2.0], [1.0, 1.0], [False, False], (-inf, 0.0)),
    ([1.0, nan], [1.0, -1.0], [True, False], (1.0, 1.0)),
    ([3.0, 3.0, 1.0], [1.0, -1.0, -1.0], None, (1.0, -1.0)),  # max weights cancel
    ([3.0, 3.0, 1.0], [1.0, -1.0, 0.0], None, (-inf, 0.0)),
    ([0.0, -40.0], [1.0, -1.0], None, (np.log1p(-np.exp(-40.0)), 1.0)),
]


@pytest.mark.parametrize("x,b,where,want", _SPECIAL)
def test_special_values_with_weights(x, b, where, want):
    kwargs = {} if where is None else {"where": np.array(where)}
    value, sign = nbsoftmax.logsumexp(np.array(x), b=np.array(b), return_sign=True, **kwargs)
    np.testing.assert_allclose([value, sign], want, rtol=4 * EPS[F64])
    plain = nbsoftmax.logsumexp(np.array(x), b=np.array(b), **kwargs)
    np.testing.assert_array_equal(plain, np.nan if sign < 0 else value)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_random_signed_weights_against_long_double(dtype, rng):
    x = (rng.standard_normal((6, 3, 50)) * 5).astype(dtype)
    b = rng.uniform(-1.0, 1.0, (3, 1)).astype(dtype) * rng.uniform(0, 2, 50).astype(dtype)
    keep = rng.random(x.shape) < 0.8
    for axis in (-1, 1, (0, 2), None):
        value, sign = nbsoftmax.logsumexp(x, axis, b=b, where=keep, return_sign=True)
        want_v, want_s = _lse_exact(x, axis, b, keep)
        np.testing.assert_array_equal(sign, want_s)
        # cancellation between signed terms: the bound scales with the largest term's size
        terms = _lse_exact(x, axis, np.abs(b), keep)[0]
        ok = np.isfinite(want_v)
        np.testing.assert_array_equal(value[~ok], want_v[~ok])
        err = np.abs(value[ok].astype(np.float64) - want_v[ok])
        allowed = 8 * EPS[dtype] * (np.abs(want_v[ok]) + np.exp(terms[ok] - want_v[ok]) + 1)
        assert (err <= allowed).all(), (axis, err.max())


# ------------------------------------------------------------------ the peers themselves


def _importable(module):
    return importlib.util.find_spec(module) is not None


def test_fixed_expectations_against_torch_and_jax():
    """The fixed values above are torch's and JAX's own (fresh interpreter: see
    tests/test_oracles.py for why)."""
    if not (_importable("torch") or _importable("jax")):
        pytest.skip("neither torch nor JAX is installed")
    code = f"""
import importlib.util
import numpy as np
from numpy import inf, nan
X = np.array({TORCH_X.tolist()!r})
G = np.array({TORCH_G.tolist()!r})
WANT = np.array({TORCH_GRAD.tolist()!r})
SPECIAL = {TORCH_SPECIAL!r}
if importlib.util.find_spec("torch"):
    import torch
    t = torch.tensor(X, requires_grad=True)
    torch.logsumexp(t, -1).backward(torch.tensor(G))
    np.testing.assert_array_equal(t.grad.numpy(), WANT)
    for g, x, want in SPECIAL:
        t = torch.tensor(np.array(x), requires_grad=True)
        torch.logsumexp(t, -1).backward(torch.tensor(np.array(g)))
        np.testing.assert_array_equal(t.grad.numpy(), want)
if importlib.util.find_spec("jax"):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp
    g = jax.grad(lambda x: logsumexp(x, where=jnp.arange(5) < 4))(jnp.array([0., 0, 0, 0, 100]))
    np.testing.assert_array_equal(np.asarray(g), [0.25, 0.25, 0.25, 0.25, 0.0])
    for x, b, where, want in {_SPECIAL!r}:
        if not x or where is not None:
            continue
        v, s = logsumexp(jnp.array(x), b=jnp.array(b), return_sign=True)
        if not np.isnan(want[0]) and np.isfinite(v):
            # (atol: JAX's log(sum) has no log1p form: [0, -40] with b [1, -1] gives 0.0)
            np.testing.assert_allclose([float(v), float(s)], want, rtol=1e-14, atol=1e-15)
print("ok")
"""
    assert "ok" in run_python(code, env={"JAX_PLATFORMS": "cpu"}, timeout=600)


def test_gpu_kernels_compile_for_sm90():
    """The simulator interprets the GPU kernels as Python; this compiles them (a few variants,
    NVVM only, no GPU needed) so that code only Python accepts cannot pass unnoticed."""
    if not _importable("numba.cuda"):
        pytest.skip("numba-cuda is not installed")
    code = """
import numpy as np
from numba import cuda
from numba.cuda import types
try:
    cuda.compile_ptx(lambda a: None, (types.float32[::1],), cc=(9, 0))
except Exception as exc:  # no NVVM here
    print("skip", type(exc).__name__)
    raise SystemExit(0)
from nbsoftmax.cuda.verify import _stub_device
from nbsoftmax.cuda import _kernels_lse as K, _variants
_stub_device((9, 0))
i8 = types.int64
for dtype, flags in ((np.float32, (False, False, False)), (np.float32, (True, True, True)),
                     (np.float16, (True, False, True))):
    arr, mask = _variants.array_type(dtype), _variants.array_type(np.uint8)
    compute = _variants.compute_dtype(np.dtype(dtype))
    cuda.compile_ptx(K.lse_forward(compute, *flags), (arr, arr, mask, arr, arr, i8, i8, i8),
                     cc=(9, 0), launch_bounds=K.BOUNDS)
    cuda.compile_ptx(K.lse_backward(compute, flags[1]), (arr, arr, mask, arr, i8, i8, i8),
                     cc=(9, 0), launch_bounds=K.BOUNDS)
print("ok")
"""
    out = run_python(code, env={"NUMBA_ENABLE_CUDASIM": None}, timeout=600)
    if out.startswith("skip"):
        pytest.skip(f"numba-cuda cannot compile here ({out.strip()})")
    assert "ok" in out
