"""PyTorch's own test cases for softmax, log_softmax, logsumexp and cross_entropy, written for
nbsoftmax (the cases are data in tests/_peer_torch_cases.py: OpInfo sample inputs, the
CrossEntropyLoss ModuleInfo inputs and test_nn.py's cross-entropy tests).

Every case is checked twice: against the float64 reference of tests/reference.py (always),
and against torch computing the same values in float64 (where torch is installed: torch runs
in a fresh interpreter, so it never loads into the test process). Values and gradients
(softmax/log_softmax: the backward passes from a random grad_output; logsumexp: its
backward; cross_entropy: ``return_grad``), with the project's tolerances.

Conventions that differ from torch and are stated here rather than hidden: nbsoftmax's class
axis is an argument (the cases pass torch's, 1); out-of-range class indices raise
ValueError (torch: IndexError or a device assert); a bad ``ignore_index`` TypeError.
"""

import importlib.util

import numpy as np
import pytest

import nbsoftmax
from tests import _xent_bounds, checks, reference
from tests._peer_torch_cases import all_cases
from tests.subproc import run_python

CASES = all_cases()
IDS = [case[0] for case in CASES]


@pytest.fixture(scope="module")
def torch_values(tmp_path_factory):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    path = tmp_path_factory.mktemp("torch") / "torch_values.npz"
    run_python(f"from tests import _peer_torch_cases\n"
               f"_peer_torch_cases.torch_results({str(path)!r})\n", timeout=600)
    with np.load(path) as z:
        return {key: z[key] for key in z.files}


def _nbsoftmax(op, arrays, kwargs):
    """(value, gradient) from nbsoftmax for a case."""
    x = arrays["x"]
    if op in ("softmax", "log_softmax"):
        y = getattr(nbsoftmax, op)(x, **kwargs)
        return y, getattr(nbsoftmax, op + "_backward")(arrays["grad"], y, kwargs["axis"])
    if op == "logsumexp":
        return nbsoftmax.logsumexp(x, **kwargs), None
    return nbsoftmax.cross_entropy(x, arrays["target"], return_grad=True, **kwargs)


def _dtype(op, arrays, kwargs):
    return np.dtype(kwargs.get("dtype") or arrays["x"].dtype)


def _check_value(op, arrays, kwargs, got, want):
    """got (nbsoftmax) against want (float64: the reference or torch)."""
    x, dtype = arrays["x"], _dtype(op, arrays, kwargs)
    got = np.asarray(got)  # (a NumPy scalar for full reductions)
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {dtype}"
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    if want.size == 0:
        return
    if op == "softmax":
        t = np.nan_to_num(np.abs(reference.shifted_exact(x.astype(dtype), kwargs["axis"])
                                 .astype(np.float64)))
        allowed = checks._relative_tolerance(dtype, t) * np.abs(want) + 1e-37
    elif op in ("log_softmax", "logsumexp"):
        allowed = checks._log_tolerance(dtype) * (1 + np.abs(want))
    else:
        allowed, _ = _xent_bounds.allowed(x, arrays["target"], dtype, **kwargs)
    checks.assert_within(got, want, allowed, op)


def _check_grad(op, arrays, kwargs, got, want):
    x, dtype = arrays["x"], _dtype(op, arrays, kwargs)
    assert got.dtype == dtype and got.shape == x.shape
    want = np.asarray(want, np.float64)
    eps = np.finfo(dtype).eps
    if op == "cross_entropy":
        _, allowed = _xent_bounds.allowed(x, arrays["target"], dtype, **kwargs)
    else:
        g = np.abs(np.asarray(arrays["grad"], np.float64))
        axes = reference.reduced_axes(kwargs["axis"], x.ndim)
        p = reference.softmax(x.astype(dtype), kwargs["axis"])
        if op == "softmax":
            scale = p * (g + np.sum(g * p, axis=axes, keepdims=True))
        else:
            scale = g + p * np.sum(g, axis=axes, keepdims=True)
        # the output carries the forward bound (relative, a + b|t| < 1e-4 here), and the
        # backward pass 16 ulps of its scale
        allowed = (1e-4 if dtype == np.float32 else 1e-12) * scale + 32 * eps * scale + 1e-37
    checks.assert_within(got, want, allowed, f"{op} gradient")


def _reference(op, arrays, kwargs):
    x = arrays["x"]
    dtype = _dtype(op, arrays, kwargs)
    xd = x.astype(dtype)
    if op in ("softmax", "log_softmax"):
        y = getattr(reference, op)(xd, kwargs["axis"])
        bw = getattr(reference, op + "_backward")
        return y, bw(arrays["grad"], getattr(nbsoftmax, op)(x, **kwargs), kwargs["axis"])
    if op == "logsumexp":
        return reference.logsumexp(xd, kwargs["axis"], kwargs["keepdims"]), None
    loss, grad = reference.cross_entropy(xd, arrays["target"], **kwargs)
    coef, den = _xent_bounds.coefficients(arrays["target"], x.shape[kwargs["axis"]], **kwargs)
    if not np.any(coef) and den == 0:
        # every target ignored under "mean": the loss is 0 / 0 = NaN, the gradient 0 (torch
        # autograd; the reference's 0 / 0 would make it NaN)
        grad = np.zeros_like(grad)
    return loss, grad


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_reference(case):
    name, op, arrays, kwargs = case
    got, got_grad = _nbsoftmax(op, arrays, kwargs)
    want, want_grad = _reference(op, arrays, kwargs)
    _check_value(op, arrays, kwargs, got, want)
    if got_grad is not None:
        _check_grad(op, arrays, kwargs, got_grad, want_grad)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_torch(case, torch_values):
    name, op, arrays, kwargs = case
    got, got_grad = _nbsoftmax(op, arrays, kwargs)
    _check_value(op, arrays, kwargs, got, torch_values[f"{name}/value"])
    if got_grad is not None:
        _check_grad(op, arrays, kwargs, got_grad, torch_values[f"{name}/grad"])


LSE_CASES = [case for case in CASES if case[1] == "logsumexp"]


@pytest.mark.parametrize("case", LSE_CASES, ids=[c[0] for c in LSE_CASES])
def test_logsumexp_backward_against_torch(case, torch_values):
    """The OpInfo logsumexp samples through logsumexp_backward (issue 10 item 10), against
    torch autograd of logsumexp(x).sum()."""
    name, op, arrays, kwargs = case
    x = arrays["x"]
    value = nbsoftmax.logsumexp(x, **kwargs)
    got = nbsoftmax.logsumexp_backward(np.ones(np.shape(value), x.dtype), x, kwargs["axis"],
                                       keepdims=kwargs["keepdims"])
    want = torch_values[f"{name}/grad"]
    assert got.shape == x.shape and got.dtype == x.dtype
    checks.assert_within(got, want, 4 * (checks.BOUNDS[np.dtype(x.dtype)]["a"] + 1e-37)
                         + 2e-6 * np.abs(want) if x.dtype == np.float32
                         else 1e-13 * np.abs(want) + 1e-300, "logsumexp_backward")


# ------------------------------------------------------------------ test_nn.py's laws


def _loss(name):
    case = next(c for c in CASES if c[0] == name)
    return nbsoftmax.cross_entropy(case[2]["x"], case[2]["target"], **case[3])


def _loss_with_grad(name):
    case = next(c for c in CASES if c[0] == name)
    return nbsoftmax.cross_entropy(case[2]["x"], case[2]["target"], return_grad=True, **case[3])


IGNORE_PAIRS = sorted({c[0].rsplit("-", 1)[0] for c in CASES if c[0].startswith("xent-nn-ignore")})


@pytest.mark.parametrize("base", IGNORE_PAIRS)
def test_ignored_sample_does_not_matter(base):
    """test_cross_entropy_label_smoothing_weight_ignore_indices: the logits of an ignored
    sample change nothing, for ignore_index -100, -2 and 2 (outside the 2 classes)."""
    l1, l2 = _loss(base + "-inp1"), _loss(base + "-inp2")
    np.testing.assert_array_equal(l1, l2)
    if "-none-" not in base:  # "mean" counts only the kept sample
        case = next(c for c in CASES if c[0] == base + "-inp2")
        kwargs = case[3]
        alone = nbsoftmax.cross_entropy(case[2]["x"][1:], case[2]["target"][1:], **kwargs)
        np.testing.assert_allclose(l1, alone, rtol=1e-15)


CONSISTENT = sorted({c[0].rsplit("-", 1)[0] for c in CASES
                     if c[0].startswith("xent-nn-consistent")})


@pytest.mark.parametrize("base", CONSISTENT)
def test_label_smoothing_index_and_one_hot_targets_agree(base):
    """test_cross_entropy_label_smoothing_consistent_index_target_and_probs."""
    li, gi = _loss_with_grad(base + "-index")
    lp, gp = _loss_with_grad(base + "-onehot")
    np.testing.assert_allclose(li, lp, rtol=1e-13)
    np.testing.assert_allclose(gi, gp, rtol=1e-12, atol=1e-15)


SMOOTHED = sorted({c[0].rsplit("-", 1)[0] for c in CASES
                   if c[0].startswith("xent-nn-smoothed-probs")})


@pytest.mark.parametrize("base", SMOOTHED)
def test_label_smoothing_of_probability_targets(base):
    """test_cross_entropy_label_smoothing_with_probs."""
    l1, g1 = _loss_with_grad(base + "-option")
    l2, g2 = _loss_with_grad(base + "-byhand")
    np.testing.assert_allclose(l1, l2, rtol=1e-13)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_and_all_ignored_batches(reduction):
    """mean over no kept sample is 0 / 0 = NaN (torch); sum is 0; none is empty or 0."""
    for weighted in (False, True):
        for kind in ("all-ignored", "empty"):
            loss, grad = _loss_with_grad(f"xent-nn-{kind}-{reduction}-w{weighted}")
            if reduction == "mean":
                assert np.isnan(loss)
            elif reduction == "sum":
                assert loss == 0
            else:
                assert np.all(np.asarray(loss) == 0)
            assert np.all(grad == 0) or (reduction == "mean" and np.all(np.isnan(grad))) \
                or grad.size == 0


def test_out_of_range_targets_raise_and_write_nothing():
    x = np.zeros((3, 4))
    for target in ([0, 4, 1], [0, -1, 1], [0, -101, 1]):
        with pytest.raises(ValueError, match="target"):
            nbsoftmax.cross_entropy(x, np.array(target))
    # a target equal to an out-of-range ignore_index is ignored, not an error
    loss = nbsoftmax.cross_entropy(x, np.array([0, 7, 1]), ignore_index=7, reduction="sum")
    np.testing.assert_allclose(loss, 2 * np.log(4))
    # unsigned targets beyond int64 must not wrap to ignore_index (issue 10 item 4)
    with pytest.raises(ValueError, match="target"):
        nbsoftmax.cross_entropy(x, np.array([0, 2**64 - 100, 1], np.uint64))


@pytest.mark.parametrize("ignore_index", [0.5, 1.9, "1", None, np.float64(1.0)])
def test_ignore_index_must_be_an_integer(ignore_index):
    """torch raises TypeError for a non-integer ignore_index (issue 10 item 4)."""
    with pytest.raises(TypeError, match="ignore_index"):
        nbsoftmax.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), ignore_index=ignore_index)


def test_probability_targets_with_ignore_index_raise():
    """torch: ignore_index is only for class-index targets (issue 10 item 12)."""
    q = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="ignore_index"):
        nbsoftmax.cross_entropy(np.zeros((2, 3)), q, ignore_index=1)


def test_opinfo_probability_targets_need_not_sum_to_one():
    """sample_inputs_cross_entropy draws probability targets in [0, 1) without normalising:
    the loss is still -sum(q * log_softmax), as torch computes it."""
    case = next(c for c in CASES if c[0].startswith("xent-opinfo-float64-0-") and
                c[0].endswith("probsTrue"))
    x, q = case[2]["x"], case[2]["target"]
    got = nbsoftmax.cross_entropy(x, q, axis=1)
    want = -np.mean(np.sum(q * reference.log_softmax(x, 1), axis=1))
    np.testing.assert_allclose(got, want, rtol=1e-14)
