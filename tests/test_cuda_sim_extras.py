"""The GPU kernels of temperature= / where= / softmin (nbsoftmax.cuda._kernels_scaled) and of
cross_entropy (nbsoftmax.cuda._kernels_xent) and softmax_topk (nbsoftmax.cuda._kernels_topk) under
numba's CUDA simulator, with the shrunk launch limits of test_cuda_sim.py (64-thread blocks,
so rows of 150 elements stride over a block more than twice)."""

import os
import sys

import numpy as np
import pytest

if "numba.cuda" not in sys.modules:  # as in test_cuda_sim.py
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    import numba.core.config

    numba.core.config.reload_config()
cuda = pytest.importorskip(
    "numba.cuda", reason="numba-cuda is not installed (pip install -e '.[test]' brings it)")
if not getattr(cuda, "FakeCUDAKernel", None):
    pytest.skip("numba-cuda was already imported for a real GPU in this process (by an "
                "earlier test file), and the simulator can only be turned on before that: "
                "run NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda_sim_extras.py",
                allow_module_level=True)

import nbsoftmax  # noqa: E402
from nbsoftmax.cuda import _launch  # noqa: E402

from . import reference  # noqa: E402
from .test_cuda_sim import SMALL, host  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


@pytest.fixture(autouse=True, scope="module")
def small_limits():
    previous = _launch.set_limits(**SMALL)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)
    yield
    sys.setswitchinterval(interval)
    _launch.set_limits(**{f: getattr(previous, f) for f in previous.__dataclass_fields__})


RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}
# (shape, axis, mask shape): short rows, rows over two 64-thread strides, a non-last axis
CASES = [((3, 5), -1, (3, 5)), ((2, 150), -1, (2, 150)), ((2, 9, 5), 1, (9, 1))]


def _mask(rng, shape):
    mask = rng.random(shape) < 0.6
    mask[0] = False  # a fully masked slice (rows) / masked positions (columns)
    return mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape,axis,mshape", CASES)
def test_forward(rng, dtype, shape, axis, mshape):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    mask = _mask(rng, mshape)
    rt = RTOL[dtype]
    d, dm = cuda.to_device(x), cuda.to_device(mask)
    got = nbsoftmax.softmax(d, axis, where=dm, temperature=0.5)
    assert type(got) is type(d)
    np.testing.assert_allclose(host(got), reference.softmax_where(x, axis, mask, 0.5), rtol=rt,
                               atol=rt * 1e-3)
    got = host(nbsoftmax.log_softmax(d, axis, where=dm))
    np.testing.assert_allclose(got, reference.log_softmax_where(x, axis, mask), rtol=rt,
                               atol=rt * 10)
    got = host(nbsoftmax.logsumexp(d, axis, where=dm, keepdims=True))
    np.testing.assert_allclose(got, reference.logsumexp_where(x, axis, mask, keepdims=True),
                               rtol=rt)
    got = host(nbsoftmax.softmin(d, axis, temperature=2.0))
    np.testing.assert_allclose(got, reference.softmin(x, axis, temperature=2.0), rtol=rt,
                               atol=rt * 1e-3)


@pytest.mark.parametrize("shape,axis,mshape", CASES)
def test_backward(rng, shape, axis, mshape):
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    mask = _mask(rng, mshape)
    y = np.ascontiguousarray(reference.softmax_where(x, axis, mask, 2.0))
    got = nbsoftmax.softmax_backward(cuda.to_device(g), cuda.to_device(y), axis,
                                     where=cuda.to_device(mask), temperature=2.0)
    np.testing.assert_allclose(host(got), reference.softmax_backward_where(g, y, axis, mask, 2.0),
                               rtol=1e-12, atol=1e-15)
    ly = np.ascontiguousarray(reference.log_softmax_where(x, axis, mask))
    got = host(nbsoftmax.log_softmax_backward(cuda.to_device(g), cuda.to_device(ly), axis,
                                              where=cuda.to_device(mask)))
    np.testing.assert_allclose(got, reference.log_softmax_backward_where(g, ly, axis, mask),
                               rtol=1e-12, atol=1e-15)
    assert np.all(got[~np.broadcast_to(mask, shape)] == 0)


def test_host_arrays_with_device_cuda(rng):
    x = rng.standard_normal((4, 7))
    mask = rng.random(7) < 0.5  # broadcast over rows
    got = nbsoftmax.softmax(x, where=mask, temperature=3.0, device="cuda")
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, reference.softmax_where(x, -1, mask, 3.0), rtol=1e-13)
    got = nbsoftmax.logsumexp(x, 0, where=mask, device="cuda")
    np.testing.assert_allclose(got, reference.logsumexp_where(x, 0, mask), rtol=1e-13)
    g = rng.standard_normal((4, 7))
    y = reference.log_softmax_where(x, -1, mask)
    got = nbsoftmax.log_softmax_backward(g, y, where=mask, temperature=3.0, device="cuda")
    np.testing.assert_allclose(got, reference.log_softmax_backward_where(g, y, -1, mask, 3.0),
                               rtol=1e-12, atol=1e-15)


def test_issue_example_on_the_gpu():
    x = cuda.to_device(np.array([36.0, 10000.0]))
    m = cuda.to_device(np.array([True, False]))
    y = nbsoftmax.softmax(x, where=m)
    np.testing.assert_array_equal(host(y), [1.0, 0.0])
    grad = host(nbsoftmax.softmax_backward(cuda.to_device(np.array([1.0, np.inf])), y, where=m))
    assert grad[1] == 0.0 and np.isfinite(grad[0])


def test_bad_device_mask(rng):
    d = cuda.to_device(np.ones((2, 3)))
    with pytest.raises(TypeError, match="where has dtype"):
        nbsoftmax.softmax(d, where=cuda.to_device(np.ones(3, np.int8)))
    with pytest.raises(ValueError, match="does not broadcast"):
        nbsoftmax.softmax(d, where=cuda.to_device(np.ones(2, bool)))
    with pytest.raises(TypeError, match="where is a host"):
        nbsoftmax.softmax(d, where=np.ones(3, bool))


# ------------------------------------------------------------------ cross_entropy


@pytest.mark.parametrize("shape,axis", [((4, 70), -1), ((3, 5, 2), 1)])
@pytest.mark.parametrize("probs", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(rng, shape, axis, probs, reduction):
    x = rng.standard_normal(shape)
    n = shape[axis]
    rest = tuple(s for a, s in enumerate(shape) if a != axis % len(shape))
    if probs:
        t = rng.random(shape)
        t /= t.sum(axis, keepdims=True)
    else:
        t = rng.integers(0, n, rest)
        t.flat[0] = -100
    w = rng.random(n) + 0.5
    kw = dict(label_smoothing=0.1, temperature=2.0)
    want_loss, want_grad = reference.cross_entropy(x, t, axis, reduction, weight=w, **kw)
    loss, grad = nbsoftmax.cross_entropy(cuda.to_device(x), cuda.to_device(t), axis,
                                         reduction=reduction, weight=cuda.to_device(w),
                                         return_grad=True, **kw)
    np.testing.assert_allclose(host(loss), want_loss, rtol=1e-12)
    np.testing.assert_allclose(host(grad), want_grad, rtol=1e-11, atol=1e-16)
    loss = nbsoftmax.cross_entropy(x, t, axis, reduction=reduction, device="cuda")
    np.testing.assert_allclose(loss, reference.cross_entropy(x, t, axis, reduction)[0],
                               rtol=1e-12)


def test_cross_entropy_float32_and_edge_cases(rng):
    x = rng.standard_normal((3, 9)).astype(np.float32)
    t = rng.integers(0, 9, 3)
    loss, grad = nbsoftmax.cross_entropy(cuda.to_device(x), cuda.to_device(t), return_grad=True)
    assert host(loss).dtype == np.float32
    want_loss, want_grad = reference.cross_entropy(x, t)
    np.testing.assert_allclose(host(loss), want_loss, rtol=1e-5)
    np.testing.assert_allclose(host(grad), want_grad, rtol=1e-4, atol=1e-7)
    # everything ignored: mean is 0 / 0 = NaN, gradient 0; a bad index on the device: NaN
    loss, grad = nbsoftmax.cross_entropy(cuda.to_device(x), cuda.to_device(np.full(3, -100)),
                                         return_grad=True)
    assert np.isnan(host(loss)) and np.all(host(grad) == 0)
    assert np.isnan(host(nbsoftmax.cross_entropy(cuda.to_device(x),
                                                 cuda.to_device(np.array([0, 9, 1])))))
    with pytest.raises(ValueError, match="outside"):
        nbsoftmax.cross_entropy(x, np.array([0, 9, 1]), device="cuda")
    with pytest.raises(ValueError, match="target has shape"):
        nbsoftmax.cross_entropy(cuda.to_device(x), cuda.to_device(np.zeros(2, np.int64)))


# ------------------------------------------------------------------ softmax_topk


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape,axis,k", [((3, 5), -1, 2), ((2, 150), -1, 4), ((2, 9, 5), 1, 3)])
def test_softmax_topk(rng, dtype, shape, axis, k):
    x = rng.integers(-4, 4, shape).astype(dtype)  # many ties
    probs, idx = nbsoftmax.softmax_topk(cuda.to_device(x), k, axis)
    want_p, want_i = reference.softmax_topk(x, k, axis)
    np.testing.assert_array_equal(host(idx), want_i)
    np.testing.assert_allclose(host(probs), want_p, rtol=RTOL[dtype], atol=1e-7)
    probs, idx = nbsoftmax.softmax_topk(x, k, axis, device="cuda")
    assert isinstance(probs, np.ndarray)
    np.testing.assert_array_equal(idx, want_i)


def test_softmax_topk_special_values():
    x = np.array([[1.0, -np.inf, 2.0, -np.inf], [np.nan, 1.0, 2.0, 3.0],
                  [-np.inf, 5.0, -np.inf, -np.inf]])
    probs, idx = nbsoftmax.softmax_topk(cuda.to_device(x), 3)
    want_p, want_i = reference.softmax_topk(x, 3)
    np.testing.assert_array_equal(host(idx), want_i)
    np.testing.assert_allclose(host(probs), want_p, rtol=1e-13)
    with pytest.raises(ValueError, match="k=5"):
        nbsoftmax.softmax_topk(cuda.to_device(x), 5)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmax_backward"])
def test_mask_inside_out(rng, name):
    """A device mask whose bytes lie inside out (a bool view of out's memory) gives the results
    of the same mask held apart (issue 10 item 5 on the GPU): the mask is read before writing."""
    shape = (4, 150)
    x = rng.standard_normal(shape).astype(np.float32)
    values = rng.random(shape) < 0.6
    values[2] = False  # a fully masked row
    out = cuda.to_device(np.zeros(shape, np.float32))
    # out's first bytes, seen as a bool mask: writing out's first rows would destroy it
    mask = out.reshape(out.size).view(np.uint8)[:out.size].view(np.bool_).reshape(shape)
    mask.copy_to_device(values)
    apart = cuda.to_device(values.copy())
    func = getattr(nbsoftmax, name)
    if name == "softmax_backward":
        y = np.ascontiguousarray(reference.softmax_where(x, -1, values), dtype=np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        want = host(func(cuda.to_device(g), cuda.to_device(y), where=apart))
        got = func(cuda.to_device(g), cuda.to_device(y), where=mask, out=out)
    else:
        want = host(func(cuda.to_device(x), where=apart))
        got = func(cuda.to_device(x), where=mask, out=out)
    assert got is out
    np.testing.assert_array_equal(host(out), want)
