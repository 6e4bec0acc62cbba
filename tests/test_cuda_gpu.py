"""The CUDA backend on a real GPU, at its default launch limits and every strategy boundary.

Run on a GPU machine (numba-cuda, optionally CuPy and PyTorch installed)::

    python -m pytest tests/test_cuda_gpu.py -m gpu -q

Every test skips cleanly without numba-cuda, without a GPU, or when this process runs the
CUDA simulator (``test_cuda_sim.py`` turns it on when it is collected first, as in
``python -m pytest tests``). numba.cuda is imported only when a test runs, never at
collection, so that collecting this file does not stop the simulator suite from enabling it.
Results are compared with the float64 references (``tests/reference.py``) under the same
tolerances as the CPU path, and with torch / CuPy where importable.
"""

import importlib.util

import numpy as np
import pytest

import nbsoftmax

from . import checks, reference

pytestmark = [pytest.mark.gpu,
              pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPerformanceWarning")]

HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_CUPY = importlib.util.find_spec("cupy") is not None


@pytest.fixture(scope="module")
def cuda():
    try:
        from numba import cuda
        from numba.cuda.core import config
    except ImportError:
        pytest.skip("numba-cuda is not installed")
    if config.ENABLE_CUDASIM:
        pytest.skip("the CUDA simulator is on in this process; run this file on its own")
    if not cuda.is_available():
        pytest.skip("no CUDA GPU")
    return cuda


OPS_FORWARD = [("softmax", checks.assert_softmax), ("log_softmax", checks.assert_log_softmax)]

# Row lengths on both sides of every strategy boundary at the default limits: lanes per row
# (1..32), warp items (up to 1024), block threads and items (f64/backward 4,096 and 8,192,
# f32 16,384), split chunks (512 x items).
LENGTHS = [1, 2, 3, 16, 17, 32, 33, 100, 1024, 1025, 4096, 4097, 8192, 8193, 16384, 16385,
           100_000, 262_144]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("n", LENGTHS)
def test_rows_every_boundary(cuda, rng, n, dtype):
    rows = 3 if n > 8192 else 37
    x = (rng.standard_normal((rows, n)) * 4).astype(dtype)
    d = cuda.to_device(x)
    for op, check in OPS_FORWARD:
        got = getattr(nbsoftmax, op)(d)
        check(got.copy_to_host(), x)
    checks.assert_logsumexp(nbsoftmax.logsumexp(d).copy_to_host(), x)
    g = rng.standard_normal((rows, n)).astype(dtype)
    y = reference.softmax(x).astype(dtype)
    got = nbsoftmax.softmax_backward(cuda.to_device(g), cuda.to_device(y)).copy_to_host()
    checks.assert_softmax_backward(got, g, y)
    ly = reference.log_softmax(x).astype(dtype)
    got = nbsoftmax.log_softmax_backward(cuda.to_device(g), cuda.to_device(ly)).copy_to_host()
    checks.assert_log_softmax_backward(got, g, ly)


@pytest.mark.parametrize("shape,axis", [((4, 1000, 33), 1), ((3, 5, 7), 0), ((2, 70000, 3), 1),
                                        ((16, 64, 64), (1, 2)), ((5, 6, 7), None)])
def test_other_axes(cuda, rng, shape, axis):
    x = rng.standard_normal(shape).astype(np.float32)
    d = cuda.to_device(x)
    checks.assert_softmax(nbsoftmax.softmax(d, axis=axis).copy_to_host(), x, axis)
    checks.assert_log_softmax(nbsoftmax.log_softmax(d, axis=axis).copy_to_host(), x, axis)
    checks.assert_logsumexp(nbsoftmax.logsumexp(d, axis=axis).copy_to_host(), x, axis)
    g = rng.standard_normal(shape).astype(np.float32)
    y = reference.softmax(x, axis).astype(np.float32)
    got = nbsoftmax.softmax_backward(cuda.to_device(g), cuda.to_device(y), axis=axis)
    checks.assert_softmax_backward(got.copy_to_host(), g, y, axis)


def test_long_rows_and_values(cuda, rng):
    x = rng.standard_normal((1, 4_000_000)).astype(np.float32)
    got = nbsoftmax.softmax(cuda.to_device(x)).copy_to_host()
    assert abs(got.astype(np.float64).sum() - 1) < 1e-5
    checks.assert_softmax(got, x)
    x = np.linspace(-3, 3, 6 * 20_000).reshape(6, 20_000)
    x[1, ::3] = -np.inf
    x[2] = -np.inf
    x[3, 7] = np.nan
    x[4, -1] = np.inf
    x[5] += 1e7
    for n in (20, 2000, 20_000):
        part = np.ascontiguousarray(x[:, :n])
        d = cuda.to_device(part)
        checks.assert_softmax(nbsoftmax.softmax(d).copy_to_host(), part)
        checks.assert_logsumexp(nbsoftmax.logsumexp(d).copy_to_host(), part)


def test_layouts_and_out(cuda, rng):
    base = rng.standard_normal((30, 40)).astype(np.float32)
    f = cuda.to_device(np.asfortranarray(base))
    got = nbsoftmax.softmax(f)
    checks.assert_softmax(got.copy_to_host(), base)
    out = cuda.device_array((30, 40), np.float32)
    assert nbsoftmax.softmax(f, out=out) is out
    checks.assert_softmax(out.copy_to_host(), base)
    whole = cuda.to_device(np.zeros((30, 80), np.float32))
    gappy = whole[:, ::2]
    assert nbsoftmax.log_softmax(cuda.to_device(base), out=gappy) is gappy
    checks.assert_log_softmax(gappy.copy_to_host(), base)
    assert nbsoftmax.softmax(base, device="cuda").__class__ is np.ndarray


@pytest.mark.skipif(not HAVE_CUPY, reason="CuPy is not installed")
def test_cupy_kind_and_stream(cuda, rng):
    import cupy
    import cupyx.scipy.special

    x = rng.standard_normal((64, 3000)).astype(np.float32)
    with cupy.cuda.Stream(non_blocking=True) as stream:
        cx = cupy.asarray(x)
        got = nbsoftmax.softmax(cx)  # enqueued on the stream CuPy exports
        assert isinstance(got, cupy.ndarray)
        peer = cupyx.scipy.special.softmax(cx, axis=-1)
    stream.synchronize()
    checks.assert_softmax(cupy.asnumpy(got), x)
    np.testing.assert_allclose(cupy.asnumpy(got), cupy.asnumpy(peer), rtol=1e-5, atol=1e-7)
    cx = cupy.asarray(x)[:, ::3]
    checks.assert_softmax(cupy.asnumpy(nbsoftmax.softmax(cx, axis=0)), x[:, ::3], 0)


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")
def test_torch_kind_stream_and_peer(cuda, rng):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    x = rng.standard_normal((128, 5000)).astype(np.float32)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        t = torch.from_numpy(x).cuda()
        got = nbsoftmax.softmax(t)  # torch's current stream
        assert isinstance(got, torch.Tensor) and got.device == t.device
        peer = torch.softmax(t, -1)
        g = torch.randn_like(t)
        grad = nbsoftmax.softmax_backward(g, got)
        want_grad = torch._softmax_backward_data(g, peer, -1, torch.float32)
    side.synchronize()
    checks.assert_softmax(got.cpu().numpy(), x)
    torch.testing.assert_close(got, peer, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad, want_grad, rtol=1e-4, atol=1e-6)
    th = torch.from_numpy(x.astype(np.float16)).cuda()
    torch.testing.assert_close(nbsoftmax.log_softmax(th).float(), torch.log_softmax(th.float(), -1),
                               rtol=2e-3, atol=2e-3)
    with pytest.raises(TypeError, match="device array but output is a host"):
        nbsoftmax.softmax_backward(g, x)
