"""The shift-invariance law for every public function and option (issue 10).

Adding a constant ``c`` to the logits (up to 1e6 in float32, 2**45 in float64, on N(0, 5)
logits) changes nothing beyond the bound derived from ``ulp(c)`` (law A, see
tests/_shift_law.py), probabilities still sum to 1 within the issue's row-sum bound (law B),
and without a temperature the result equals the float64 reference on the exactly
shifted-back values (law C). Functions: softmax, log_softmax, softmin, logsumexp (with where=,
b=, return_sign=), both backward passes, temperature=, where=, cross_entropy (loss and
gradient, every option), softmax_topk, the Softmax/LogSoftmax layers and ``nbsoftmax score``.
The GPU kernels obey the same law in tests/test_shift_law_cuda_sim.py.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nbsoftmax
from nbsoftmax.cli import main as cli_main
from tests import checks, reference
from tests._shift_law import CMAX, F32, F64, SHIFTS, Shift, logits, t_abs

CASES = [(dtype, c) for dtype in (F32, F64) for c in SHIFTS[dtype]]
CASE_IDS = [f"{dtype}-{c:g}" for dtype, c in CASES]
SHAPE = (6, 40)


def _mask(rng, shape):
    mask = rng.random(shape) < 0.7
    mask[1] = False  # a fully masked slice
    mask[2, :3] = True
    return mask


# ------------------------------------------------------------------ forward functions
# (name, keyword options, axis); the mask is drawn per test

FORWARD_OPTIONS = {
    "plain": ({}, -1),
    "axis 0": ({}, 0),
    "axes (0, 1)": ({}, (0, 1)),
    "temperature 0.7": ({"temperature": 0.7}, -1),
    "temperature 3": ({"temperature": 3.0}, 0),
    "where": ({"where": True}, -1),
    "where temperature 0.7": ({"where": True, "temperature": 0.7}, -1),
    "dtype float64": ({"dtype": "float64"}, -1),
    "out": ({"out": True}, 1),
}
FORWARD = {
    "softmax": (nbsoftmax.softmax, reference.softmax_where, 1.0, False),
    "softmin": (nbsoftmax.softmin, reference.softmin, -1.0, False),
    "log_softmax": (nbsoftmax.log_softmax, reference.log_softmax_where, 1.0, True),
}


def _options(rng, options, shape):
    kwargs = dict(options)
    if kwargs.get("where") is True:
        kwargs["where"] = _mask(rng, shape)
    return kwargs


def _call(func, x, axis, kwargs):
    """func(x, axis, **kwargs), with a fresh output array for out=True."""
    if kwargs.get("out") is True:
        dtype = np.dtype(kwargs.get("dtype") or x.dtype)
        out = np.full(x.shape[::-1], np.nan, dtype).T  # another memory order than x
        assert func(x, axis, **dict(kwargs, out=out)) is out
        return out
    return func(x, axis, **kwargs)


@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("option", FORWARD_OPTIONS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward(name, option, dtype, c, rng):
    func, ref, sign, is_log = FORWARD[name]
    options, axis = FORWARD_OPTIONS[option]
    x = logits(rng, SHAPE, dtype)
    kwargs = _options(rng, options, SHAPE)
    temperature, where = kwargs.get("temperature"), kwargs.get("where")
    s = Shift(x, c, temperature)
    got0, got1 = _call(func, x, axis, kwargs), _call(func, s.xs, axis, kwargs)
    assert got1.dtype == np.dtype(kwargs.get("dtype") or dtype)
    what = f"{name}({option})"
    if where is not None:  # masked entries exactly 0 (log: -inf) at every shift
        fill = -np.inf if is_log else 0.0
        assert np.all(got1[~where] == fill), f"{what}: masked entries changed"
    if is_log:
        s.assert_logs(got1, got0, what)
    else:
        s.assert_probs(got1, got0, t_abs(sign * x, axis, temperature, where), what)
    # law B: the probabilities sum to 1 (slices with an unmasked entry)
    p1 = np.exp(got1.astype(np.float64)) if is_log else got1
    axes = reference.reduced_axes(axis, x.ndim)
    rows = None if where is None else np.any(where, axis=axes)
    s.assert_row_sums(p1, axis, what, rows)
    # law C: without a temperature, the reference on the shifted-back values
    if temperature is None:
        want = ref(s.back, axis, where) if where is not None else ref(s.back, axis)
        t = t_abs(sign * s.back, axis, None, where)
        dtype = got1.dtype
        if is_log:
            allowed = checks._log_tolerance(dtype) * (1 + np.abs(want))
        else:
            allowed = checks._relative_tolerance(dtype, t) * np.abs(want) + 1e-37
        checks.assert_within(got1, want, allowed, f"{what} at shift {c} vs reference")


@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
def test_softmax_rows_of_one_value(dtype, c):
    """Equal logits at any offset: exactly uniform (the issue's 1e9 row gave 2.7e24)."""
    for temperature in (None, 0.7, 1e-3):
        x = np.full((2, 3), c, dtype)
        np.testing.assert_allclose(nbsoftmax.softmax(x, temperature=temperature), 1 / 3,
                                   rtol=4 * np.finfo(dtype).eps)
        np.testing.assert_allclose(nbsoftmax.log_softmax(x, temperature=temperature),
                                   -np.log(3), rtol=4 * np.finfo(dtype).eps)


# ------------------------------------------------------------------ logsumexp

LSE_OPTIONS = {
    "plain": {},
    "axis None": {"axis": None},
    "axis 0 keepdims": {"axis": 0, "keepdims": True},
    "where": {"where": True},
    "b": {"b": "positive"},
    "b return_sign": {"b": "signed", "return_sign": True},
    "where b": {"where": True, "b": "positive"},
}


@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("option", LSE_OPTIONS)
def test_logsumexp(option, dtype, c, rng):
    x = logits(rng, SHAPE, dtype)
    kwargs = _options(rng, LSE_OPTIONS[option], SHAPE)
    # weights in x's dtype (SciPy's rule: the result has the common dtype of x and b)
    if kwargs.get("b") == "positive":
        kwargs["b"] = rng.uniform(0.1, 3.0, SHAPE[-1]).astype(dtype)
    elif kwargs.get("b") == "signed":
        kwargs["b"] = rng.uniform(-1.0, 1.0, SHAPE[-1]).astype(dtype)
    s = Shift(x, c)
    got0 = nbsoftmax.logsumexp(x, **kwargs)
    got1 = nbsoftmax.logsumexp(s.xs, **kwargs)
    if kwargs.get("return_sign"):
        (got0, sign0), (got1, sign1) = got0, got1
        np.testing.assert_array_equal(sign1, sign0)
    got1, got0 = np.asarray(got1), np.asarray(got0)
    assert got1.dtype == dtype
    back = got1.astype(np.longdouble) - s.c
    finite = np.isfinite(got0)
    np.testing.assert_array_equal(np.isfinite(got1), finite)
    err = np.abs(back[finite] - got0[finite].astype(np.longdouble))
    allowed = s.lse_abs(got1[finite])
    if kwargs.get("b") is not None:
        # |log|sum b e^x|| loses what cancellation in the weighted sum leaves: the
        # relative change of sum b_i e^x_i is at most expm1(2 e) * sum|b e^x| / |sum b e^x|
        xs64 = x.astype(np.float64)
        w = np.broadcast_to(kwargs["b"], x.shape) * np.exp(xs64 - xs64.max(-1, keepdims=True))
        where = kwargs.get("where")
        if where is not None:
            w = np.where(where, w, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):  # (fully masked rows: 0 / 0)
            amp = (np.abs(w).sum(-1) / np.abs(w.sum(-1)))[finite.reshape(-1)]
        allowed = allowed + np.expm1(2 * s.e) * amp
    assert np.all(err <= allowed), (f"logsumexp({option}) at shift {c}: moved by "
                                    f"{float(err.max()):.3g}, allowed {float(allowed.min()):.3g}")


@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("axis,keepdims", [(-1, False), (0, True), (None, False)])
def test_logsumexp_backward(axis, keepdims, dtype, c, rng):
    """g * exp(x - logsumexp(x)) is a function of differences of x (issue 10 item 10)."""
    x = logits(rng, SHAPE, dtype)
    s = Shift(x, c)
    g = rng.uniform(0.5, 2.0, np.shape(nbsoftmax.logsumexp(x, axis, keepdims=keepdims)))
    g = g.astype(dtype)
    r0 = nbsoftmax.logsumexp_backward(g, x, axis, keepdims=keepdims)
    r1 = nbsoftmax.logsumexp_backward(g, s.xs, axis, keepdims=keepdims)
    assert r1.dtype == dtype and r1.shape == x.shape
    gb = g if keepdims or axis is None else np.expand_dims(g, axis)
    # r / g is the softmax of x: the probabilities' law, rows summing to 1
    s.assert_probs(r1 / gb, r0 / gb, t_abs(x, axis), "logsumexp_backward")
    s.assert_row_sums(r1 / gb, axis, "logsumexp_backward")


# ------------------------------------------------------------------ backward passes

BACKWARD = {
    "softmax_backward": (nbsoftmax.softmax_backward, nbsoftmax.softmax, False),
    "log_softmax_backward": (nbsoftmax.log_softmax_backward, nbsoftmax.log_softmax, True),
}
BACKWARD_OPTIONS = {
    "plain": {},
    "temperature 0.7": {"temperature": 0.7},
    "where": {"where": True},
    "where temperature 3": {"where": True, "temperature": 3.0},
}


@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("option", BACKWARD_OPTIONS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward(name, option, dtype, c, rng):
    """The gradient from the forward output of x + c against that of x: the output moves as
    the forward law allows, and the gradient with it."""
    backward, forward, is_log = BACKWARD[name]
    x = logits(rng, SHAPE, dtype)
    g = rng.standard_normal(SHAPE).astype(dtype)
    kwargs = _options(rng, BACKWARD_OPTIONS[option], SHAPE)
    temperature, where = kwargs.get("temperature"), kwargs.get("where")
    s = Shift(x, c, temperature)
    y0, y1 = forward(x, **kwargs), forward(s.xs, **kwargs)
    r0, r1 = backward(g, y0, **kwargs), backward(g, y1, **kwargs)
    assert r1.dtype == dtype
    if where is not None:
        assert np.all(r1[~where] == 0), f"{name}({option}): masked gradient not 0"
    p0 = np.exp(y0.astype(np.float64)) if is_log else y0.astype(np.float64)
    p1 = np.exp(y1.astype(np.float64)) if is_log else y1.astype(np.float64)
    pmax = np.maximum(p0, p1)
    rho = s.prob_rel(t_abs(x, -1, temperature, where))
    g64 = np.abs(g.astype(np.float64))
    if where is not None:
        g64 = np.where(where, g64, 0.0)
    scale = pmax * (g64 + np.sum(g64 * pmax, -1, keepdims=True)) if not is_log \
        else g64 + pmax * np.sum(g64, -1, keepdims=True)
    # the probabilities move by rho relative (twice: in y and in sum(g * y)); each
    # gradient also carries the backward bound of tests/checks (16 ulps of its scale)
    allowed = (3 * rho * scale + 2 * 16 * np.finfo(dtype).eps * scale) / s.T + 1e-300
    checks.assert_within(r1, r0, allowed, f"{name}({option}): x + {c} vs x")


@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
def test_softmax_backward_grad_output_shift(dtype, c, rng):
    """softmax's vector-Jacobian product ignores a constant added to grad_output (the rows of
    y sum to 1): the result moves by what rounding g + c and the sum at |c| allow."""
    x = logits(rng, SHAPE, dtype)
    g = rng.standard_normal(SHAPE).astype(dtype)
    y = nbsoftmax.softmax(x)
    s = Shift(g, c)
    r0, r1 = nbsoftmax.softmax_backward(g, y), nbsoftmax.softmax_backward(s.xs, y)
    y64 = y.astype(np.float64)
    # g + c is off by u per entry; sum(g * y) at magnitude |c| rounds by a few ulps of c
    # (plus |c| times the row sum's distance from 1, within the row-sum bound)
    row = abs(c) * np.abs(np.sum(y64.astype(np.longdouble), -1, keepdims=True) - 1)
    allowed = y64 * (2 * s.u + 16 * np.finfo(dtype).eps * (abs(c) + 1) + row) + 1e-300
    checks.assert_within(r1, r0, allowed, f"softmax_backward(g + {c})")


# ------------------------------------------------------------------ cross_entropy

XENT_OPTIONS = {
    "indices mean": dict(),
    "indices sum": dict(reduction="sum"),
    "indices none": dict(reduction="none"),
    "label smoothing": dict(label_smoothing=0.2),
    "weights": dict(weight="positive"),
    "negative and zero weights": dict(weight="signed", reduction="sum"),
    "ignore_index": dict(ignore_index=2, label_smoothing=0.1, weight="positive"),
    "temperature 0.7": dict(temperature=0.7),
    "temperature 3 smoothing": dict(temperature=3.0, label_smoothing=0.3, reduction="none"),
    "probabilities mean": dict(probs=True),
    "probabilities none weights": dict(probs=True, reduction="none", weight="positive"),
    "class axis 0": dict(axis=0),
}


def _xent_args(rng, dtype, option):
    """(logits, target, kwargs, coef, den): coef = each sample's per-class target weight
    (class axis last), for the bounds: the loss is -sum(coef * log_softmax) / den and its
    gradient (p * sum(coef) - coef) / T / den, den the "mean" denominator (else 1)."""
    options = dict(XENT_OPTIONS[option])
    probs, axis = options.pop("probs", False), options.get("axis", -1)
    n_samples, n_classes = 5, 12
    x = logits(rng, (n_samples, n_classes) if axis == -1 else (n_classes, n_samples), dtype)
    if options.get("weight") == "positive":
        options["weight"] = rng.uniform(0.2, 2.0, n_classes)
    elif options.get("weight") == "signed":
        options["weight"] = np.round(rng.uniform(-2.0, 2.0, n_classes), 1)
        options["weight"][:3] = [0.0, -1.5, 0.0]
    eps = options.get("label_smoothing", 0.0)
    w = np.ones(n_classes) if options.get("weight") is None else options["weight"]
    if probs:
        q = rng.random((n_samples, n_classes))
        target = q / q.sum(-1, keepdims=True)
        coef = ((1 - eps) * target + eps / n_classes) * w
        den = float(n_samples)
    else:
        target = rng.integers(0, n_classes, n_samples)
        target[1] = 2  # a sample that ignore_index=2 drops
        target[3] = 1  # class 1: weight -1.5 with signed weights
        kept = target != options.get("ignore_index", -100)
        coef = ((1 - eps) * np.eye(n_classes)[target] + eps / n_classes) * w
        coef[~kept] = 0
        den = float(w[target[kept]].sum())
    if options.get("reduction", "mean") != "mean":
        den = 1.0
    return x, target, options, coef, abs(den)


@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("option", XENT_OPTIONS)
def test_cross_entropy(option, dtype, c, rng):
    x, target, kwargs, coef, den = _xent_args(rng, dtype, option)
    axis = kwargs.get("axis", -1)
    temperature = kwargs.get("temperature")
    reduction = kwargs.get("reduction", "mean")
    s = Shift(x, c, temperature)
    loss0, grad0 = nbsoftmax.cross_entropy(x, target, return_grad=True, **kwargs)
    loss1, grad1 = nbsoftmax.cross_entropy(s.xs, target, return_grad=True, **kwargs)
    assert np.asarray(loss1).dtype == dtype and grad1.dtype == dtype
    what = f"cross_entropy({option})"
    xl = np.moveaxis(x, axis, -1)
    acoef = np.abs(coef)
    lp = np.abs(reference.log_softmax_where(xl, -1, temperature=s.T))
    p = reference.softmax_where(xl, -1, temperature=s.T)
    sum_coef = np.abs(coef.sum(-1, keepdims=True))

    def total(per_sample):
        return per_sample if reduction == "none" else per_sample.sum()

    # law A, the loss: each log-probability moves by <= 2e (+ its bound), per unit of coef
    loss_allowed = total(np.sum(acoef * (2 * s.e + 2 * s.bound["c"] * (1 + lp)), -1)) / den
    checks.assert_within(loss1, loss0, loss_allowed, f"{what} loss: x + {c} vs x")
    # law A, the gradient (p * sum(coef) - coef) / T / den, with p moving by prob_rel
    g0 = np.moveaxis(grad0.astype(np.float64), axis, -1)
    g1 = np.moveaxis(grad1.astype(np.float64), axis, -1)
    rho = s.prob_rel(t_abs(xl, -1, temperature))
    scale = (p * sum_coef + acoef) / s.T / den  # what each gradient entry is made of
    allowed = rho * p * sum_coef / s.T / den + 2 * 16 * np.finfo(dtype).eps * scale * (1 + rho)
    checks.assert_within(g1, g0, allowed + 1e-300, f"{what} gradient: x + {c} vs x")
    # law B: a sample's gradient sums over the classes to sum(coef) * (sum(p) - 1) / T ~ 0
    rowsum = np.abs(np.sum(g1.astype(np.longdouble), -1))
    limit = sum_coef[..., 0] * s.bound["row_sum"] / s.T / den \
        + 16 * np.finfo(dtype).eps * scale.sum(-1)
    with np.errstate(all="ignore"):  # (ignored samples: 0 of a bound 0)
        ratio = np.where(limit > 0, rowsum / limit, np.where(rowsum > 0, np.inf, 0.0))
    assert np.all(rowsum <= limit), (f"{what} at shift {c}: a sample's gradient sums to "
                                     f"{float(ratio.max()):.3g} x the bound, not 0")
    # law C: without a temperature, the float64 reference on the shifted-back values
    if temperature is None:
        want_loss, want_grad = reference.cross_entropy(s.back, target, **kwargs)
        tol = 2 * s.bound["c"]
        checks.assert_within(loss1, want_loss,
                             total(np.sum(acoef * tol * (1 + lp), -1)) / den + tol,
                             f"{what} loss at shift {c} vs reference")
        t = t_abs(xl, -1)
        allowed = (2 * (s.bound["a"] + s.bound["b"] * t) * p * sum_coef / den
                   + 2 * 16 * np.finfo(dtype).eps * scale)
        checks.assert_within(grad1, want_grad, np.moveaxis(allowed, -1, axis) + 1e-37,
                             f"{what} gradient at shift {c} vs reference")


def test_cross_entropy_issue_reproducers():
    """Issue 10 item 2's numbers: float32 logits at 1e7 and at +-3e38."""
    base = np.array([[0.0, -1.0, -2.0, -3.0]])
    loss, grad = nbsoftmax.cross_entropy((base + 1e7).astype(np.float32), [0], return_grad=True)
    want_loss, want_grad = reference.cross_entropy((base + 1e7).astype(np.float32), np.array([0]))
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-6)  # torch: -0.356, ...
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    x = np.array([[3e38, -3e38, 3e38, 0.0]], np.float32)
    loss, grad = nbsoftmax.cross_entropy(x, [0], return_grad=True)
    np.testing.assert_allclose(loss, np.log(2), rtol=1e-6)
    np.testing.assert_allclose(grad, [[-0.5, 0.0, 0.5, 0.0]], atol=1e-6)


# ------------------------------------------------------------------ softmax_topk

@pytest.mark.parametrize("dtype,c", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("axis,k", [(-1, 5), (0, 3), (-1, 40)])
def test_softmax_topk(axis, k, dtype, c, rng):
    x = logits(rng, SHAPE, dtype)
    s = Shift(x, c)
    p0, i0 = nbsoftmax.softmax_topk(x, k, axis)
    p1, i1 = nbsoftmax.softmax_topk(s.xs, k, axis)
    # the k-th largest probability is a Lipschitz function of the logits: compare the sorted
    # values even where rounding x + c reorders close logits
    t = np.take_along_axis(t_abs(x, axis), i0, axis)
    s.assert_probs(p1, p0, t, f"softmax_topk(k={k}, axis={axis}) probabilities")
    # law C: the ranking is that of the values x + c holds (ties to the lower index)
    want_p, want_i = reference.softmax_topk(s.back, k, axis)
    np.testing.assert_array_equal(i1, want_i)
    tt = np.take_along_axis(t_abs(s.back, axis), want_i, axis)
    checks.assert_within(p1, want_p, checks._relative_tolerance(dtype, tt) * want_p + 1e-37,
                         f"softmax_topk at shift {c} vs reference")


# ------------------------------------------------------------------ layers


@pytest.mark.parametrize("dtype,c", [(F32, 1e6), (F32, -1e3), (F64, 2.0**45)],
                         ids=["float32-1e6", "float32--1e3", "float64-2**45"])
@pytest.mark.parametrize("temperature", [None, 0.7])
@pytest.mark.parametrize("layer_type", [nbsoftmax.Softmax, nbsoftmax.LogSoftmax])
def test_layers(layer_type, temperature, dtype, c, rng):
    x = logits(rng, SHAPE, dtype)
    g = rng.standard_normal(SHAPE).astype(dtype)
    s = Shift(x, c, temperature)
    a, b = layer_type(temperature=temperature), layer_type(temperature=temperature)
    y0, y1 = a.forward(x), b.forward(s.xs)
    is_log = layer_type is nbsoftmax.LogSoftmax
    if is_log:
        s.assert_logs(y1, y0, "LogSoftmax.forward")
    else:
        s.assert_probs(y1, y0, t_abs(x, -1, temperature), "Softmax.forward")
    s.assert_row_sums(np.exp(y1.astype(np.float64)) if is_log else y1, -1, layer_type.__name__)
    r0, r1 = a.backward(g), b.backward(g)
    p = np.maximum(np.exp(y0.astype(np.float64)), np.exp(y1.astype(np.float64))) if is_log \
        else np.maximum(y0, y1).astype(np.float64)
    g64 = np.abs(g.astype(np.float64))
    scale = g64 + p * g64.sum(-1, keepdims=True) if is_log \
        else p * (g64 + np.sum(g64 * p, -1, keepdims=True))
    rho = s.prob_rel(t_abs(x, -1, temperature))
    allowed = (3 * rho + 32 * np.finfo(dtype).eps) * scale / s.T + 1e-300
    checks.assert_within(r1, r0, allowed, f"{layer_type.__name__}.backward: x + {c} vs x")


# ------------------------------------------------------------------ nbsoftmax score


@pytest.mark.parametrize("dtype,c", [(F32, 1e6), (F32, -1e6), (F64, 2.0**45)],
                         ids=["float32-1e6", "float32--1e6", "float64-2**45"])
@pytest.mark.parametrize("mode", ["softmax", "log", "top-k"])
def test_score_cli(mode, dtype, c, tmp_path, rng):
    x = logits(rng, (30, 17), dtype)
    s = Shift(x, c)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "xs.npy", s.xs)
    suffix = ".npz" if mode == "top-k" else ".npy"
    extra = {"softmax": [], "log": ["--log"], "top-k": ["--top-k", "4"]}[mode]
    # in-process runs count the test process's memory (over 1 GB late in a full run) against
    # the limit: a generous one keeps these few kB from failing for that
    extra += ["--memory-limit", "16GB"]
    for name in ("x", "xs"):
        source, output = tmp_path / f"{name}.npy", tmp_path / f"{name}_out{suffix}"
        assert cli_main(["score", str(source), "-o", str(output), *extra]) == 0
    if mode == "top-k":
        with np.load(tmp_path / "x_out.npz") as z0, np.load(tmp_path / "xs_out.npz") as z1:
            p0, i0 = z0["probabilities"], z0["indices"]
            p1, i1 = z1["probabilities"], z1["indices"]
        s.assert_probs(p1, p0, np.take_along_axis(t_abs(x, -1), i0, -1), "score --top-k")
        _, want_i = reference.softmax_topk(s.back, 4, -1)  # ranked by the logits x + c holds
        np.testing.assert_array_equal(i1, want_i)
        return
    y0, y1 = np.load(tmp_path / f"x_out{suffix}"), np.load(tmp_path / f"xs_out{suffix}")
    if mode == "log":
        s.assert_logs(y1, y0, "score --log")
        checks.assert_log_softmax(y1, s.back, dtype=dtype)
    else:
        s.assert_probs(y1, y0, t_abs(x, -1), "score")
        s.assert_row_sums(y1, -1, "score")
        checks.assert_softmax(y1, s.back, dtype=dtype)


# ------------------------------------------------------------------ any shift (hypothesis)


@settings(max_examples=25)
@given(data=st.data())
def test_any_shift_any_option(data):
    """c anywhere in [-cmax, cmax] (not only the fixed values above), for softmax,
    log_softmax and cross_entropy with a random option."""
    dtype = data.draw(st.sampled_from([F32, F64]), label="dtype")
    c = data.draw(st.floats(-CMAX[dtype], CMAX[dtype], width=32 if dtype == F32 else 64),
                  label="c")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    temperature = data.draw(st.sampled_from([None, 0.5, 0.7, 2.0]), label="temperature")
    use_mask = data.draw(st.booleans(), label="where")
    rng = np.random.default_rng(seed)
    x = logits(rng, (4, 33), dtype)
    s = Shift(x, c, temperature)
    where = _mask(rng, x.shape) if use_mask else None
    p0 = nbsoftmax.softmax(x, temperature=temperature, where=where)
    p1 = nbsoftmax.softmax(s.xs, temperature=temperature, where=where)
    s.assert_probs(p1, p0, t_abs(x, -1, temperature, where), "softmax")
    s.assert_row_sums(p1, -1, "softmax", None if where is None else where.any(-1))
    l0 = nbsoftmax.log_softmax(x, temperature=temperature, where=where)
    l1 = nbsoftmax.log_softmax(s.xs, temperature=temperature, where=where)
    s.assert_logs(l1, l0, "log_softmax")
    target = rng.integers(0, 33, 4)
    e0, g0 = nbsoftmax.cross_entropy(x, target, temperature=temperature, return_grad=True,
                                     reduction="sum")
    e1, g1 = nbsoftmax.cross_entropy(s.xs, target, temperature=temperature, return_grad=True,
                                     reduction="sum")
    s.assert_logs(e1, e0, "cross_entropy", weight=4)
    assert np.all(np.abs(np.sum(g1.astype(np.longdouble), -1))
                  <= (s.bound["row_sum"] + 64 * np.finfo(dtype).eps) / s.T)
