"""nbsoftmax.cuda.device inside user-style kernels, and the segment functions on device
arrays, under numba's CUDA simulator (its own file: the simulator must be chosen before
numba-cuda is first imported in the process; see test_cuda_sim.py). Rows of 100 entries
cross the warp (32) and block (64 threads) boundaries, segments of 37 a 32-thread block's
stride. Expected values come from tests/reference.py, so that no CPU kernel compiles
here (the simulator is slow enough on its own). A last test
compiles the same user kernels for a real sm_90 GPU in a fresh process (no GPU needed).
"""

import os
import sys

import numpy as np
import pytest

if "numba.cuda" not in sys.modules:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    import numba.core.config

    numba.core.config.reload_config()
cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
if not getattr(cuda, "FakeCUDAKernel", None):
    pytest.skip("numba-cuda was imported without the simulator in this process "
                "(run NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda_sim_device.py)",
                allow_module_level=True)

import numba  # noqa: E402

from nbsoftmax import segment  # noqa: E402
from nbsoftmax.cuda import _segment_api, device  # noqa: E402
from nbsoftmax.cuda.device import SCRATCH_SIZE  # noqa: E402

from . import reference  # noqa: E402
from .subproc import run_python  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


@pytest.fixture(autouse=True, scope="module")
def small_blocks():
    previous = _segment_api.THREADS_PER_BLOCK
    _segment_api.THREADS_PER_BLOCK = 32  # one warp: a segment of 37 loops within the block
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)  # simulated threads poll for barriers: ~4x faster
    yield
    sys.setswitchinterval(interval)
    _segment_api.THREADS_PER_BLOCK = previous


# A user's kernels: one warp per row (rows past the end: the whole warp returns together),
# one block per row with the block scratch in shared memory.
@cuda.jit
def warp_rows(x, out, lse, log):
    row = (cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x) // 32
    if row < x.shape[0]:
        if log:
            device.warp_log_softmax(x[row], out[row], x.shape[1])
        else:
            device.warp_softmax(x[row], out[row], x.shape[1])
        v = device.warp_logsumexp(x[row], x.shape[1])
        if cuda.threadIdx.x % 32 == 0:
            lse[row] = v


@cuda.jit
def block_rows(x, out, lse, log):
    scratch = cuda.shared.array(SCRATCH_SIZE, numba.float64)
    row = cuda.blockIdx.x
    if log:
        device.block_log_softmax(x[row], out[row], x.shape[1], scratch)
    else:
        device.block_softmax(x[row], out[row], x.shape[1], scratch)
    v = device.block_logsumexp(x[row], x.shape[1], scratch)
    if cuda.threadIdx.x == 0:
        lse[row] = v


def _rows(dtype, n=100):
    x = (np.random.default_rng(0).standard_normal((4, n)) * 3).astype(dtype)
    x[1, 7] = np.nan
    x[2, :] = -np.inf
    x[3, 5] = -np.inf
    return x


# The simulator runs each block as Python threads meeting at barriers (~10 per reduction):
# slow, so few and small launches.
@pytest.mark.parametrize("dtype, rtol, log", [(np.float32, 2e-6, False), (np.float64, 1e-14, True)])
def test_warp_and_block_device_functions(dtype, rtol, log):
    x = _rows(dtype)
    ref = reference.log_softmax if log else reference.softmax
    for kernel, grid in ((warp_rows, (2, 64)), (block_rows, (4, 64))):
        out = np.zeros_like(x)
        lse = np.zeros(4)
        kernel[grid](x, out, lse, log)
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(out, ref(x), rtol=rtol, atol=rtol / 10)
            np.testing.assert_allclose(lse, reference.logsumexp(x), rtol=rtol)
        assert np.isnan(out[1]).all() and np.isnan(out[2]).all()
        assert lse[2] == -np.inf


def test_device_functions_in_place():
    x = _rows(np.float64)[3:]  # one finite row
    inplace = x.copy()
    warp_rows[1, 32](inplace, inplace, np.zeros(1), False)
    np.testing.assert_allclose(inplace, reference.softmax(x), rtol=1e-14)
    # strided rows (a column of a C array) are covered by the 2-column segments below


OFFSETS = np.array([0, 3, 3, 40, 60])  # an empty segment, one of 37 entries


def _per_segment(func, *arrays):
    """func (a tests.reference function along axis 0) on each non-empty segment; the CPU
    segment kernels are not used here, so that this file compiles no CPU kernels."""
    out = np.zeros(arrays[0].shape)
    for b0, b1 in zip(OFFSETS[:-1], OFFSETS[1:]):
        if b1 > b0:
            out[b0:b1] = func(*(a[b0:b1] for a in arrays), 0)
    return out


def test_segments_on_device_arrays():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 2))
    x[50, 1] = np.inf  # the last segment of column 1 is NaN
    dx = cuda.to_device(x)
    got = segment.segment_softmax(dx, cuda.to_device(OFFSETS))
    assert getattr(got, "__cuda_ndarray__", False)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(got.copy_to_host(), _per_segment(reference.softmax, x),
                                   rtol=1e-14, atol=1e-16)
        lse = segment.segment_logsumexp(dx, OFFSETS).copy_to_host()
        expected = [reference.logsumexp(x[b0:b1], 0) if b1 > b0 else [-np.inf] * 2
                    for b0, b1 in zip(OFFSETS[:-1], OFFSETS[1:])]
        np.testing.assert_allclose(lse, expected, rtol=1e-14)
    x1 = x[:, 0].copy()
    got = segment.segment_log_softmax(cuda.to_device(x1), OFFSETS).copy_to_host()
    np.testing.assert_allclose(got, _per_segment(reference.log_softmax, x1), rtol=1e-14)
    g = rng.standard_normal(60)
    y = _per_segment(reference.softmax, x1)
    for func, ref in ((segment.segment_softmax_backward, reference.softmax_backward),
                      (segment.segment_log_softmax_backward, reference.log_softmax_backward)):
        got = func(cuda.to_device(g), cuda.to_device(y), OFFSETS).copy_to_host()
        np.testing.assert_allclose(got, _per_segment(ref, g, y), rtol=1e-13, atol=1e-16)


def test_segments_on_device_unsupported_options():
    dx = cuda.to_device(np.zeros(4))
    with pytest.raises(TypeError, match="segment_ids= is not supported for CUDA"):
        segment.segment_softmax(dx, segment_ids=np.zeros(4, int))
    with pytest.raises(ValueError, match="non-decreasing"):
        segment.segment_softmax(dx, [0, 3, 2, 4])


_PTX_SCRIPT = """
import types
import numba.cuda.dispatcher as dispatcher
from nbsoftmax.cuda import _runtime
problem = _runtime.toolchain_problem()
if problem:
    print("skip:", problem)
    raise SystemExit(0)
dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
from numba import boolean, cuda, float32, float64, int64
from nbsoftmax.cuda import device, _kernels_segment as K
from nbsoftmax.cuda.device import SCRATCH_SIZE

def warp_kernel(x, out, lse):
    row = (cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x) // 32
    if row < x.shape[0]:
        device.warp_log_softmax(x[row], out[row], x.shape[1])
        lse[row] = device.warp_logsumexp(x[row], x.shape[1])

def block_kernel(x, out):
    scratch = cuda.shared.array(SCRATCH_SIZE, float64)
    device.block_softmax(x[cuda.blockIdx.x], out[cuda.blockIdx.x], x.shape[1], scratch)

for t in (float32, float64):
    ptx, _ = cuda.compile_ptx(warp_kernel, (t[:, ::1], t[:, ::1], t[::1]), cc=(9, 0))
    cuda.compile_ptx(block_kernel, (t[:, ::1], t[:, ::1]), cc=(9, 0))
    cuda.compile_ptx(K.softmax_segments.py_func, (t[:, :], int64[::1], t[:, :], boolean),
                     cc=(9, 0))
    cuda.compile_ptx(K.logsumexp_segments.py_func, (t[:, :], int64[::1], t[:, :]), cc=(9, 0))
    cuda.compile_ptx(K.backward_segments.py_func, (t[:, :], t[:, :], int64[::1], t[:, :],
                                                   boolean), cc=(9, 0))
    if t is float32:  # float32 rows: exp in float32 (ex2.approx.f32), no float64 exp call
        assert "ex2.approx" in ptx and "__nv_exp(" not in ptx, ptx[-3000:]
print("ok")
"""


def test_device_functions_compile_for_sm90():
    """The same user kernels and the segment kernels compiled for a real GPU (PTX for sm_90,
    no device needed; skipped without the CUDA compiler library)."""
    output = run_python(_PTX_SCRIPT, env={"NUMBA_ENABLE_CUDASIM": None})
    if output.startswith("skip:"):
        pytest.skip(output.strip())
    assert "ok" in output
