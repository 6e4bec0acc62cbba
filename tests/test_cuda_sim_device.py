"""nbsoftmax.cuda.device inside user-style kernels under numba's CUDA simulator (its own
file: the simulator must be chosen before numba-cuda is first imported in the process; see
test_cuda_sim.py; the segment functions on device arrays: test_cuda_sim_segment.py). Rows
of 100 entries cross the warp (32) and block (64 threads) boundaries. Expected values come
from tests/reference.py, so that no CPU kernel compiles here (the simulator is slow enough
on its own). A last test compiles the same user kernels and the segment kernels for a real
sm_90 GPU in a fresh process (no GPU needed).
"""

import numpy as np
import pytest

from ._cudasim import simulated_cuda, small_blocks

cuda = simulated_cuda(__file__)

import numba  # noqa: E402

from nbsoftmax.cuda import device  # noqa: E402
from nbsoftmax.cuda.device import SCRATCH_SIZE  # noqa: E402

from . import reference  # noqa: E402
from .subproc import run_python  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning"),
              pytest.mark.usefixtures("small_blocks")]
__all__ = ["small_blocks"]  # the fixture, imported for pytest


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


def test_logsumexp_log1p_form():
    """The dense kernels' log1p form: [0, -40] gives 4.2e-18 (m + log(c + r) gives 0.0),
    float32 [0, -10] is within 1 ulp of the exact value, ties at the max are counted."""
    rows = {np.float64: np.array([[0.0, -40.0, -np.inf], [2.0, 2.0, 2.0 - 1e-9]]),
            np.float32: np.array([[0.0, -10.0, -np.inf], [1.0, 1.0, -3.0]], np.float32)}
    for dtype, x in rows.items():
        exact = np.logaddexp.reduce(x.astype(np.longdouble), axis=1)
        for kernel, grid in ((warp_rows, (1, 64)), (block_rows, (2, 32))):
            lse = np.zeros(2)
            kernel[grid](x, np.zeros_like(x), lse, False)
            got = lse.astype(dtype)
            assert np.all(np.abs(got - exact) <= np.spacing(got.astype(dtype))), (got, exact)
            if dtype is np.float64:
                assert lse[0] == np.logaddexp(0.0, -40.0) == 4.248354255291589e-18


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
    cuda.compile_ptx(K.stage_segments.py_func, (t[:, :], int64[::1], boolean[:, :], int64[::1],
                                                float64, boolean, boolean, boolean, float64,
                                                t[:, ::1]), cc=(9, 0))
    cuda.compile_ptx(K.finish_segments.py_func, (t[:, ::1], int64[::1], boolean[:, :], float64,
                                                 boolean, boolean, float64, t[:, :]), cc=(9, 0))
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
