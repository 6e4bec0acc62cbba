"""The shift-invariance law of tests/test_shift_law.py for the GPU kernels, under numba's CUDA
simulator with the shrunk launch limits of tests/test_cuda_sim.py (64-thread blocks: rows of
40 take the warp path, rows of 150 the block path).

Like the other simulator files, this one turns the simulator on itself when numba-cuda has
not been imported yet in this process, and skips when numba-cuda was imported without it.
Inputs stay small: every simulated thread is a Python thread.
"""

import os
import sys

import numpy as np
import pytest

if "numba.cuda" not in sys.modules:  # as in test_cuda_sim.py
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    import numba.core.config

    numba.core.config.reload_config()
cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
if not getattr(cuda, "FakeCUDAKernel", None):
    pytest.skip("numba-cuda was imported without the simulator in this process "
                "(run NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_shift_law_cuda_sim.py)",
                allow_module_level=True)

import nbsoftmax  # noqa: E402
from nbsoftmax.cuda import _launch  # noqa: E402

from . import checks, reference  # noqa: E402
from ._shift_law import F32, F64, Shift, logits, t_abs  # noqa: E402
from .test_cuda_sim import SMALL, host  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

# the largest shifts the issue asks for, one sign each
CASES = [(F32, 1e6), (F64, -(2.0**45))]
IDS = ["float32-1e6", "float64--2**45"]


@pytest.fixture(autouse=True, scope="module")
def small_limits():
    previous = _launch.set_limits(**SMALL)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)
    yield
    sys.setswitchinterval(interval)
    _launch.set_limits(**{f: getattr(previous, f) for f in previous.__dataclass_fields__})


def on_gpu(func, x, *args, **kwargs):
    """func on device copies of x (and of array keyword arguments), back on the host."""
    kwargs = {k: cuda.to_device(v) if isinstance(v, np.ndarray) else v
              for k, v in kwargs.items()}
    result = func(cuda.to_device(np.ascontiguousarray(x)), *args, **kwargs)
    if isinstance(result, tuple):
        return tuple(host(r) for r in result)
    return host(result)


FORWARD = {
    "softmax": (nbsoftmax.softmax, {}, 1.0, False),
    "log_softmax": (nbsoftmax.log_softmax, {}, 1.0, True),
    "softmin temperature": (nbsoftmax.softmin, {"temperature": 0.7}, -1.0, False),
    "softmax where": (nbsoftmax.softmax, {"where": True}, 1.0, False),
    "log_softmax where temperature": (nbsoftmax.log_softmax,
                                      {"where": True, "temperature": 3.0}, 1.0, True),
}


@pytest.mark.parametrize("dtype,c", CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(3, 40), (2, 150)])
@pytest.mark.parametrize("name", FORWARD)
def test_forward(name, shape, dtype, c, rng):
    func, options, sign, is_log = FORWARD[name]
    x = logits(rng, shape, dtype)
    kwargs = dict(options)
    if kwargs.get("where"):
        kwargs["where"] = rng.random(shape) < 0.7
    temperature, where = kwargs.get("temperature"), kwargs.get("where")
    s = Shift(x, c, temperature)
    got0, got1 = on_gpu(func, x, **kwargs), on_gpu(func, s.xs, **kwargs)
    assert got1.dtype == dtype
    if is_log:
        s.assert_logs(got1, got0, f"GPU {name}")
    else:
        s.assert_probs(got1, got0, t_abs(sign * x, -1, temperature, where), f"GPU {name}")
    rows = None if where is None else where.any(-1)
    s.assert_row_sums(np.exp(got1.astype(np.float64)) if is_log else got1, -1, f"GPU {name}",
                      rows)
    if temperature is None and where is None:  # law C
        (checks.assert_log_softmax if is_log else checks.assert_softmax)(got1, s.back, -1,
                                                                        dtype)


@pytest.mark.parametrize("dtype,c", CASES, ids=IDS)
@pytest.mark.parametrize("masked", [False, True])
def test_logsumexp(masked, dtype, c, rng):
    x = logits(rng, (3, 40), dtype)
    kwargs = {"where": rng.random(x.shape) < 0.7} if masked else {}
    s = Shift(x, c)
    got0 = on_gpu(nbsoftmax.logsumexp, x, **kwargs).astype(np.longdouble)
    got1 = on_gpu(nbsoftmax.logsumexp, s.xs, **kwargs)
    err = np.abs(got1.astype(np.longdouble) - s.c - got0)
    assert np.all(err <= s.lse_abs(got1)), f"GPU logsumexp moved by {float(err.max()):.3g}"


@pytest.mark.parametrize("dtype,c", CASES, ids=IDS)
@pytest.mark.parametrize("name,temperature", [("softmax_backward", None),
                                              ("log_softmax_backward", 0.7)])
def test_backward(name, temperature, dtype, c, rng):
    backward = getattr(nbsoftmax, name)
    forward = nbsoftmax.log_softmax if name.startswith("log") else nbsoftmax.softmax
    is_log = forward is nbsoftmax.log_softmax
    x = logits(rng, (3, 40), dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    where = rng.random(x.shape) < 0.8
    s = Shift(x, c, temperature)
    grads = []
    for values in (x, s.xs):
        y = forward(cuda.to_device(values), where=cuda.to_device(where), temperature=temperature)
        grads.append(host(backward(cuda.to_device(g), y, where=cuda.to_device(where),
                                   temperature=temperature)))
    r0, r1 = grads
    assert np.all(r1[~where] == 0)
    p = reference.softmax_where(x, -1, where, s.T)
    g64 = np.where(where, np.abs(g.astype(np.float64)), 0.0)
    scale = g64 + p * g64.sum(-1, keepdims=True) if is_log \
        else p * (g64 + np.sum(g64 * p, -1, keepdims=True))
    rho = s.prob_rel(t_abs(x, -1, temperature, where))
    allowed = (3 * rho + 32 * np.finfo(dtype).eps) * scale / s.T + 1e-300
    checks.assert_within(r1, r0, allowed, f"GPU {name}: x + {c} vs x")


XENT = {
    "indices": dict(),
    "smoothing weights ignore_index": dict(label_smoothing=0.2, weight=True, ignore_index=2),
    "probabilities temperature": dict(probs=True, temperature=0.7, reduction="sum"),
}


@pytest.mark.parametrize("dtype,c", CASES, ids=IDS)
@pytest.mark.parametrize("option", XENT)
def test_cross_entropy(option, dtype, c, rng):
    from ._xent_bounds import coefficients

    kwargs = dict(XENT[option])
    probs = kwargs.pop("probs", False)
    x = logits(rng, (4, 40), dtype)
    if kwargs.get("weight"):
        kwargs["weight"] = rng.uniform(0.2, 2.0, 40)
    if probs:
        q = rng.random(x.shape)
        target = q / q.sum(-1, keepdims=True)
    else:
        target = rng.integers(0, 40, 4)
        target[1] = 2
    temperature = kwargs.get("temperature")
    s = Shift(x, c, temperature)
    loss0, grad0 = on_gpu(nbsoftmax.cross_entropy, x, target=target, return_grad=True, **kwargs)
    loss1, grad1 = on_gpu(nbsoftmax.cross_entropy, s.xs, target=target, return_grad=True,
                          **kwargs)
    coef, den = coefficients(target, 40, **kwargs)
    den = abs(den)
    lp = np.abs(reference.log_softmax_where(x, -1, temperature=s.T))
    p = reference.softmax_where(x, -1, temperature=s.T)
    acoef, sum_coef = np.abs(coef), np.abs(coef.sum(-1, keepdims=True))
    allowed = np.sum(acoef * (2 * s.e + 2 * s.bound["c"] * (1 + lp))) / den
    checks.assert_within(loss1, loss0, allowed, f"GPU cross_entropy({option}) loss")
    rho = s.prob_rel(t_abs(x, -1, temperature))
    scale = (p * sum_coef + acoef) / s.T / den
    allowed = rho * p * sum_coef / s.T / den + 32 * np.finfo(dtype).eps * scale * (1 + rho)
    checks.assert_within(grad1, grad0, allowed + 1e-300, f"GPU cross_entropy({option}) gradient")
    rowsum = np.abs(np.sum(grad1.astype(np.longdouble), -1))
    limit = sum_coef[:, 0] * s.bound["row_sum"] / s.T / den + 16 * np.finfo(dtype).eps \
        * scale.sum(-1)
    assert np.all(rowsum <= limit), f"GPU cross_entropy({option}): gradient rows sum to {rowsum}"


@pytest.mark.parametrize("dtype,c", CASES, ids=IDS)
def test_softmax_topk(dtype, c, rng):
    x = logits(rng, (3, 150), dtype)
    s = Shift(x, c)
    p0, i0 = on_gpu(nbsoftmax.softmax_topk, x, 4)
    p1, i1 = on_gpu(nbsoftmax.softmax_topk, s.xs, 4)
    s.assert_probs(p1, p0, np.take_along_axis(t_abs(x, -1), i0, -1), "GPU softmax_topk")
    np.testing.assert_array_equal(i1, reference.softmax_topk(s.back, 4, -1)[1])
