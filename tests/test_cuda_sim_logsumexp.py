"""The GPU logsumexp (nbsoftmax.cuda._kernels_lse: plain, where=, b=, return_sign=) and
logsumexp_backward under numba's CUDA simulator, with the shrunk launch limits of
test_cuda_sim.py (64-thread blocks: rows of 150 stride over a block more than twice).
Device arrays in, device arrays out; host arrays with device="cuda" give NumPy results."""

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
                "(run NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda_sim_logsumexp.py)",
                allow_module_level=True)

import nbsoftmax  # noqa: E402
from nbsoftmax.cuda import _launch  # noqa: E402

from .test_cuda_sim import SMALL, host  # noqa: E402
from .test_logsumexp import (  # noqa: E402
    TORCH_G, TORCH_GRAD, TORCH_X, _lse_backward_ref, _lse_exact)

EPS = {np.float32: 1.2e-7, np.float64: 2.3e-16, np.float16: 1e-3}


@pytest.fixture(autouse=True, scope="module")
def small_limits():
    previous = _launch.set_limits(**SMALL)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)
    yield
    sys.setswitchinterval(interval)
    _launch.set_limits(**{f: getattr(previous, f) for f in previous.__dataclass_fields__})


def test_near_zero_log1p_form():
    d = cuda.to_device(np.array([[0.0, -40.0], [-40.0, 0.0]]))
    np.testing.assert_array_equal(host(nbsoftmax.logsumexp(d)), [4.248354255291589e-18] * 2)
    got = host(nbsoftmax.logsumexp(cuda.to_device(np.array([0.0, -10.0], np.float32))))
    assert got.shape == () and abs(float(got) - np.logaddexp(0.0, -10.0)) <= 2.4e-7 * 4.54e-5
    # columns (axis 0), a long row over several block strides, where=, b=
    x = np.full((150, 3), -30.0)
    x[7] = 0.0
    want = np.logaddexp(0.0, np.log(149) - 30.0)
    for got in (nbsoftmax.logsumexp(cuda.to_device(x), axis=0),
                nbsoftmax.logsumexp(cuda.to_device(np.ascontiguousarray(x.T))),
                nbsoftmax.logsumexp(cuda.to_device(x.T.copy()), where=cuda.to_device(x.T > -50)),
                nbsoftmax.logsumexp(cuda.to_device(x.T.copy()), b=cuda.to_device(np.ones(150)))):
        np.testing.assert_allclose(host(got), [want] * 3, rtol=4 * EPS[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape,axis", [((3, 5), -1), ((2, 150), -1), ((2, 9, 5), 1),
                                        ((4, 6), None)])
def test_weights_sign_where(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    b = rng.uniform(-1.0, 2.0, shape).astype(dtype)
    keep = rng.random(shape) < 0.7
    keep.reshape(-1)[0] = True
    value, sign = nbsoftmax.logsumexp(cuda.to_device(x), axis, b=cuda.to_device(b),
                                      where=cuda.to_device(keep), return_sign=True)
    assert type(value) is type(cuda.to_device(x))
    want_v, want_s = _lse_exact(x, axis, b, keep)
    np.testing.assert_array_equal(host(sign), want_s)
    size = _lse_exact(x, axis, np.abs(b), keep)[0]
    with np.errstate(all="ignore"):
        allowed = 8 * EPS[dtype] * (np.abs(want_v) + np.exp(size - want_v) + 1)
    ok = np.isfinite(want_v)
    got = host(value).astype(np.float64)
    assert (np.abs(got[ok] - want_v[ok]) <= allowed[ok]).all()
    plain = host(nbsoftmax.logsumexp(cuda.to_device(x), axis, b=cuda.to_device(b)))
    want_plain = np.where(_lse_exact(x, axis, b)[1] < 0, np.nan, _lse_exact(x, axis, b)[0])
    np.testing.assert_array_equal(np.isnan(plain), np.isnan(want_plain))
    # host arrays with device="cuda": NumPy results, the same values
    hv, hs = nbsoftmax.logsumexp(x, axis, b=b, where=keep, return_sign=True, device="cuda")
    np.testing.assert_array_equal(hv, got.astype(dtype) if np.ndim(hv) else hv)
    np.testing.assert_array_equal(hs, host(sign))


def test_special_values_and_broadcast_b():
    x = cuda.to_device(np.array([[np.nan, 1.0], [np.inf, 1.0], [np.inf, np.inf],
                                 [-np.inf, -np.inf], [1.0, 1.0]]))
    b = cuda.to_device(np.array([[0.0, 1.0], [-2.0, 1.0], [1.0, -1.0], [1.0, 2.0], [1.0, -1.0]]))
    value, sign = nbsoftmax.logsumexp(x, b=b, return_sign=True)
    np.testing.assert_array_equal(host(value), [1.0, np.inf, np.nan, -np.inf, -np.inf])
    np.testing.assert_array_equal(host(sign), [1.0, -1.0, np.nan, 0.0, 0.0])
    # b broadcast against x (SciPy's test_logsumexp_b_shape), keepdims, empty slices
    got = nbsoftmax.logsumexp(cuda.to_device(np.zeros((4, 1, 2, 1))), axis=None,
                              b=cuda.to_device(np.ones((3, 1, 5))))
    np.testing.assert_allclose(host(got), np.log(120), rtol=1e-15)
    value, sign = nbsoftmax.logsumexp(cuda.to_device(np.zeros((2, 0))), return_sign=True,
                                      keepdims=True)
    np.testing.assert_array_equal(host(value), [[-np.inf]] * 2)
    np.testing.assert_array_equal(host(sign), [[0.0]] * 2)


def test_backward_torch_values_and_layouts(rng):
    got = host(nbsoftmax.logsumexp_backward(cuda.to_device(TORCH_G), cuda.to_device(TORCH_X)))
    np.testing.assert_allclose(got, TORCH_GRAD, rtol=4 * EPS[np.float64], atol=0)
    for shape, axis, keepdims in (((3, 150), -1, False), ((2, 9, 5), 1, True),
                                  ((4, 6), None, False)):
        x = rng.standard_normal(shape) * 3
        gshape = np.shape(nbsoftmax.logsumexp(x, axis, keepdims=keepdims))
        g = rng.standard_normal(gshape)
        keep = rng.random(shape) < 0.7
        want = _lse_backward_ref(g, x, axis, keepdims, keep)
        dx = cuda.to_device(x)
        got = nbsoftmax.logsumexp_backward(cuda.to_device(np.asarray(g)), dx, axis,
                                           keepdims=keepdims, where=cuda.to_device(keep))
        assert type(got) is type(dx)
        np.testing.assert_allclose(host(got), want, rtol=32 * EPS[np.float64], atol=1e-300)
        out = cuda.to_device(np.empty(shape))
        got = nbsoftmax.logsumexp_backward(cuda.to_device(np.asarray(g)), dx, axis,
                                           keepdims=keepdims, out=out, where=cuda.to_device(keep))
        assert got is out
        np.testing.assert_allclose(host(out), want, rtol=32 * EPS[np.float64], atol=1e-300)
        hg = nbsoftmax.logsumexp_backward(g, x, axis, keepdims=keepdims, where=keep,
                                          device="cuda")
        np.testing.assert_allclose(hg, want, rtol=32 * EPS[np.float64], atol=1e-300)


def test_shift_invariance(rng):
    x = (np.round(rng.standard_normal((3, 150)) * 8) / 8).astype(np.float32)  # x + c exact
    b = rng.uniform(0.5, 1.5, 150).astype(np.float32)
    keep = rng.random((3, 150)) < 0.7
    base = host(nbsoftmax.logsumexp(cuda.to_device(x), b=cuda.to_device(b),
                                    where=cuda.to_device(keep)))
    g = np.ones(3, np.float32)
    grad = host(nbsoftmax.logsumexp_backward(cuda.to_device(g), cuda.to_device(x)))
    for c in (1e3, 1e6):
        xc = cuda.to_device(x + np.float32(c))
        shifted = host(nbsoftmax.logsumexp(xc, b=cuda.to_device(b), where=cuda.to_device(keep)))
        np.testing.assert_allclose(shifted - np.float64(c), base, atol=4 * EPS[np.float32] * c)
        np.testing.assert_allclose(host(nbsoftmax.logsumexp_backward(cuda.to_device(g), xc)),
                                   grad, rtol=64 * EPS[np.float32], atol=1e-37)


def test_device_results_and_host_scalars():
    d = cuda.to_device(np.arange(6.0))
    full = nbsoftmax.logsumexp(d, axis=None)
    assert type(full) is type(d) and full.shape == ()
    got = nbsoftmax.logsumexp(np.arange(6.0), axis=None, device="cuda")
    assert type(got) is np.float64 and got == nbsoftmax.logsumexp(np.arange(6.0), axis=None)
    got = nbsoftmax.softmax(1000.0, device="cuda")
    assert type(got) is np.float64 and got == 1.0
