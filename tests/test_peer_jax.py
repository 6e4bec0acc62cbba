"""JAX's where= test cases (jax tests/nn_test.py, and logsumexp's b=/where=/return_sign= of
tests/lax_scipy_test.py), written for nbsoftmax; the cases are data in
tests/_peer_jax_cases.py.

Each case is checked against the float64 where= references of tests/reference.py (always;
tests/test_oracles.py pins them to JAX), and against JAX itself computing in float64 where
JAX is installed (in a fresh interpreter, so that JAX never loads into the test process).
One stated difference: nbsoftmax's backward passes give exactly 0 at masked entries whatever
the masked logits hold; JAX's autograd can give NaN there (a masked NaN or +inf times a zero
cotangent), so gradients are compared at unmasked entries.
"""

import importlib.util

import numpy as np
import pytest

import nbsoftmax
from tests import checks, reference
from tests._peer_jax_cases import NN_MASK, NN_X, logsumexp_b_cases, where_cases
from tests.subproc import run_python

CASES = where_cases()
B_CASES = logsumexp_b_cases()
REFERENCES = {"softmax": reference.softmax_where, "log_softmax": reference.log_softmax_where,
              "logsumexp": reference.logsumexp_where}
BACKWARD_REFERENCES = {"softmax": reference.softmax_backward_where,
                       "log_softmax": reference.log_softmax_backward_where}


@pytest.fixture(scope="module")
def jax_values(tmp_path_factory):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    path = tmp_path_factory.mktemp("jax") / "jax_values.npz"
    run_python(f"from tests import _peer_jax_cases\n_peer_jax_cases.jax_results({str(path)!r})\n",
               env={"JAX_PLATFORMS": "cpu"}, timeout=600)
    with np.load(path) as z:
        return {key: z[key] for key in z.files}


def _tolerance(op, want, dtype=np.dtype(np.float64)):
    want = np.asarray(want, np.float64)
    if op == "softmax":  # twice the relative bound for |t| up to 40 (N(0, 5) logits)
        return checks._relative_tolerance(dtype, 40.0) * np.abs(want) + 1e-300
    return checks._log_tolerance(dtype) * (1 + np.abs(want))


def _nbsoftmax(op, x, mask, axis, grad):
    if op == "logsumexp":
        return nbsoftmax.logsumexp(x, axis, where=mask), None
    y = getattr(nbsoftmax, op)(x, axis, where=mask)
    return y, getattr(nbsoftmax, op + "_backward")(grad, y, axis, where=mask)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_where_against_reference(case):
    name, op, x, mask, axis, grad = case
    value, g = _nbsoftmax(op, x, mask, axis, grad)
    want = REFERENCES[op](x, axis, mask)
    checks.assert_within(np.asarray(value), want, _tolerance(op, want), op)
    if g is not None:
        full_mask = np.broadcast_to(mask, x.shape)
        assert np.all(g[~full_mask] == 0), "masked entries must get a gradient of exactly 0"
        want_g = BACKWARD_REFERENCES[op](grad, value, axis, mask)
        scale = np.abs(grad) + np.abs(want_g) + 1
        checks.assert_within(g, want_g, 1e-14 * scale, f"{op} gradient")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_where_against_jax(case, jax_values):
    name, op, x, mask, axis, grad = case
    value, g = _nbsoftmax(op, x, mask, axis, grad)
    want = jax_values[f"{name}/value"]
    checks.assert_within(np.asarray(value), want, _tolerance(op, want), op)
    if g is not None:
        full_mask = np.broadcast_to(mask, x.shape)
        want_g = jax_values[f"{name}/grad"]
        scale = np.abs(grad) + np.abs(want_g) + 1
        checks.assert_within(g[full_mask], want_g[full_mask], 1e-14 * scale[full_mask],
                             f"{op} gradient")


def _lse_b(x, b, mask, axis, return_sign):
    return nbsoftmax.logsumexp(x, axis, b=b, where=mask, return_sign=return_sign)


def _lse_b_reference(x, b, mask, axis, return_sign):
    """sum(b * exp(x)) over the unmasked entries, in longdouble, max-shifted."""
    x = np.asarray(x, np.longdouble)
    bb = np.broadcast_to(np.asarray(b, np.longdouble), x.shape)
    m = np.ones(x.shape, bool) if mask is None else np.broadcast_to(mask, x.shape)
    axes = reference.reduced_axes(axis, x.ndim)
    filled = np.where(m, x, -np.inf)
    top = np.max(filled, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    s = np.sum(np.where(m, bb * np.exp(filled - top), 0), axis=axes)
    top = np.squeeze(top, axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.log(np.abs(s)) + top
        if not return_sign:
            value = np.where(s < 0, np.nan, value)
    return (value.astype(np.float64), np.sign(s).astype(np.float64)) if return_sign \
        else value.astype(np.float64)


@pytest.mark.parametrize("case", B_CASES, ids=[c[0] for c in B_CASES])
def test_logsumexp_b_where_sign(case):
    """logsumexp with b= (weights of both signs and zero), where= and return_sign= (issue 10
    item 11), against a longdouble reference."""
    name, x, b, mask, axis, return_sign = case
    got = _lse_b(x, b, mask, axis, return_sign)
    want = _lse_b_reference(x, b, mask, axis, return_sign)
    if return_sign:
        (got, sign), (want, want_sign) = got, want
        np.testing.assert_array_equal(sign, want_sign)
    checks.assert_within(np.asarray(got), want, _tolerance("logsumexp", want) + 1e-13,
                         "logsumexp(b=)")


@pytest.mark.parametrize("case", B_CASES, ids=[c[0] for c in B_CASES])
def test_logsumexp_b_where_sign_against_jax(case, jax_values):
    name, x, b, mask, axis, return_sign = case
    got = _lse_b(x, b, mask, axis, return_sign)
    want = jax_values[f"{name}/value"]
    if return_sign:
        got, sign = got
        np.testing.assert_array_equal(sign, jax_values[f"{name}/sign"])
    checks.assert_within(np.asarray(got), want, _tolerance("logsumexp", want) + 1e-13,
                         "logsumexp(b=)")


# ------------------------------------------------------------------ nn_test.py, as written there


@pytest.mark.parametrize("func", [nbsoftmax.softmax, nbsoftmax.log_softmax])
def test_softmax_empty_array(func):
    x = np.array([], dtype=float)
    got = func(x)
    assert got.shape == (0,) and got.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("func", [nbsoftmax.softmax, nbsoftmax.log_softmax])
def test_softmax_empty_mask(func, dtype):
    x = NN_X.astype(dtype)
    expected = np.full_like(x, 0.0 if func is nbsoftmax.softmax else -np.inf)
    np.testing.assert_array_equal(func(x, where=np.zeros_like(x, dtype=bool)), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("func", [nbsoftmax.softmax, nbsoftmax.log_softmax])
def test_softmax_where_mask(func, dtype):
    x = NN_X.astype(dtype)
    out = func(x, where=NN_MASK)
    rtol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(out[NN_MASK], func(x[NN_MASK]), rtol=rtol)
    probs = out if func is nbsoftmax.softmax else np.exp(out.astype(np.float64))
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=rtol)


def _jacobian_by_differences(f, x, h=1e-6):
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("func,backward", [(nbsoftmax.softmax, nbsoftmax.softmax_backward),
                                           (nbsoftmax.log_softmax,
                                            nbsoftmax.log_softmax_backward)])
def test_softmax_where_mask_gradient(func, backward):
    """nn_test.py checks the gradient of take(softmax(x, where=m), [0, 2, 3]) numerically:
    here every row of the Jacobian from the backward pass against central differences."""
    x = NN_X.copy()
    keep = np.flatnonzero(NN_MASK)
    jac = _jacobian_by_differences(lambda v: func(v, where=NN_MASK)[keep], x)
    y = func(x, where=NN_MASK)
    for row, i in enumerate(keep):
        g = np.zeros(4)
        g[i] = 1.0
        np.testing.assert_allclose(backward(g, y, where=NN_MASK), jac[row], atol=1e-8)


@pytest.mark.parametrize("func,backward", [(nbsoftmax.softmax, nbsoftmax.softmax_backward),
                                           (nbsoftmax.log_softmax,
                                            nbsoftmax.log_softmax_backward)])
def test_softmax_where_grad_regression_19490(func, backward):
    """jax issue 19490: d fn(x, where=x < 1000)[0] / dx is 0, with a masked 10000."""
    x = np.array([36.0, 10000.0])
    mask = x < 1000
    y = func(x, where=mask)
    grad = backward(np.array([1.0, 0.0]), y, where=mask)
    np.testing.assert_array_equal(grad, [0.0, 0.0])


def test_softmax_gradient_by_differences():
    """testSoftmaxGrad: the full Jacobian of softmax at nn_test's vector."""
    jac = _jacobian_by_differences(nbsoftmax.softmax, NN_X.copy())
    y = nbsoftmax.softmax(NN_X)
    for i in range(4):
        np.testing.assert_allclose(nbsoftmax.softmax_backward(np.eye(4)[i], y), jac[i],
                                   atol=1e-8)


@pytest.mark.parametrize("case", [c for c in CASES if c[0].startswith("logsumexp-logmeanexp")],
                         ids=lambda c: c[0])
def test_logmeanexp(case):
    """testLogMeanExp: log(mean(exp(x), where)) = logsumexp(x, where) - log(count)."""
    name, op, x, mask, axis, grad = case
    count = np.sum(mask, axis=axis)
    got = np.asarray(nbsoftmax.logsumexp(x, axis, where=mask))
    kept = count > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.log(np.sum(np.where(mask, np.exp(x), 0.0), axis=axis) / count)
        got_mean = got - np.log(count)
    np.testing.assert_allclose(got_mean[kept], want[kept], rtol=1e-13, atol=1e-13)
    assert np.all(got[~kept] == -np.inf)
