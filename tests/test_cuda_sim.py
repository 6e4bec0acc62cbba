"""The CUDA backend under numba's CUDA simulator: every kernel strategy, on tiny inputs.

The simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the kernel source as Python threads, one
block at a time, so this file is what CI checks of the GPU code. It turns the simulator on
itself when numba-cuda has not been imported yet in this process (as in ``pytest tests``),
and shrinks the launch limits so that inputs of a few hundred elements still cross warp,
block and split boundaries: warps of 32 lanes with 64-thread blocks, a block path from 65
columns, a row split over blocks from 257 columns. The real-GPU twin is ``test_cuda_gpu.py``.
"""

import os
import sys

import numpy as np
import pytest

if "numba.cuda" not in sys.modules:
    # numba-cuda shares numba.core.config, read when numba was imported (by earlier test
    # modules): set the variable, make the config re-read it, then import numba.cuda. It stays
    # set for the process, whose config numba may re-read from the environment at any compile.
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    import numba.core.config

    numba.core.config.reload_config()
cuda = pytest.importorskip(
    "numba.cuda", reason="numba-cuda is not installed (pip install -e '.[test]' brings it)")
if not getattr(cuda, "FakeCUDAKernel", None):
    pytest.skip("numba-cuda was already imported for a real GPU in this process (by an "
                "earlier test file), and the simulator can only be turned on before that: "
                "run NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda_sim.py",
                allow_module_level=True)

import nbsoftmax  # noqa: E402
from nbsoftmax.cuda import _intrinsics, _launch  # noqa: E402

from . import checks, reference  # noqa: E402
from .subproc import run_python  # noqa: E402

FakeCUDAArray = cuda.simulator.cudadrv.devicearray.FakeCUDAArray

# Simulated kernels compute with NumPy scalars, which warn where IEEE arithmetic on a GPU is
# silent (inf - inf in a NaN slice, overflow of exp for inputs that are NaN slices anyway).
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

SMALL = dict(warp_max_cols=64, warp_threads=64, max_threads=64, split_threads=32, max_items=4,
             column_threads=64)


@pytest.fixture(autouse=True, scope="module")
def small_limits():
    previous = _launch.set_limits(**SMALL)
    # Simulated threads poll for barriers; a short switch interval makes them ~4x faster.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)
    yield
    sys.setswitchinterval(interval)
    _launch.set_limits(**{f: getattr(previous, f) for f in previous.__dataclass_fields__})


def host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


# ------------------------------------------------------------------ intrinsics


@cuda.jit
def _shuffle_kernel(out, masks, width):
    tid = cuda.threadIdx.x
    for i in range(masks.size):
        out[i, tid] = _intrinsics.shfl_xor(tid, masks[i])
    v = np.float64(tid % 7)
    if tid == 5:
        v = np.nan
    out[masks.size, tid] = _intrinsics.group_sum(np.float64(tid), width)
    out[masks.size + 1, tid] = _intrinsics.group_max(v, width)


def test_shfl_xor_fallback_is_a_butterfly():
    """The simulator's shfl_xor pairs each thread with thread ^ mask, across 2 warps."""
    masks = np.array([1, 2, 4, 8, 16], np.int64)
    out = np.zeros((len(masks) + 2, 64))
    _shuffle_kernel[1, 64](out, masks, 8)
    tid = np.arange(64)
    for i, mask in enumerate(masks):
        np.testing.assert_array_equal(out[i], tid ^ mask)
    groups = tid // 8
    np.testing.assert_array_equal(out[len(masks)], [tid[groups == g].sum() for g in groups])
    want_max = [np.nan if g == 0 else (tid[groups == g] % 7).max() for g in groups]
    np.testing.assert_array_equal(out[len(masks) + 1], want_max)


# ------------------------------------------------------------------ strategies

# (shape, axis, expected strategy) with the SMALL limits.
STRATEGIES = [
    ((5, 1), -1, "warp"),  # one lane per row, 32 rows per warp
    ((9, 3), -1, "warp"),  # 4-lane groups: 8 rows per warp, rows past the end
    ((3, 40), -1, "warp"),  # full warp, 2 items per lane
    ((2, 150), -1, "block"),  # 2 warps per block
    ((2, 300), -1, "split"),  # 3 chunks of 128 per row
    ((2, 9, 5), 1, "columns"),  # 8 x 8 threads, one tile
    ((3, 70, 40), 1, "columns"),  # 32 x 2 threads, 2 tiles per outer slice
]


@pytest.mark.parametrize("shape,axis,strategy", STRATEGIES, ids=[s[2] + str(s[0]) for s in STRATEGIES])
def test_forward_strategies(rng, shape, axis, strategy):
    x = rng.standard_normal(shape).astype(np.float32) * 4
    layout = nbsoftmax.dispatch.layout.Layout(shape, x.strides, (axis % len(shape),))
    assert _launch._plan("softmax", x.dtype, layout.outer, layout.n, layout.inner)[0] == strategy
    d = cuda.to_device(x)
    got = nbsoftmax.softmax(d, axis=axis)
    assert type(got) is type(d)
    checks.assert_softmax(host(got), x, axis)
    np.testing.assert_allclose(host(got).sum(axis=axis), 1, rtol=1e-5)
    checks.assert_log_softmax(host(nbsoftmax.log_softmax(d, axis=axis)), x, axis)
    checks.assert_logsumexp(host(nbsoftmax.logsumexp(d, axis=axis)), x, axis)


@pytest.mark.parametrize("shape,axis,strategy", STRATEGIES, ids=[s[2] + str(s[0]) for s in STRATEGIES])
def test_backward_strategies(rng, shape, axis, strategy):
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    y = reference.softmax(x, axis).astype(np.float32)
    got = nbsoftmax.softmax_backward(cuda.to_device(g), cuda.to_device(y), axis=axis)
    checks.assert_softmax_backward(host(got), g, y, axis)
    ly = reference.log_softmax(x, axis).astype(np.float32)
    got = nbsoftmax.log_softmax_backward(cuda.to_device(g), cuda.to_device(ly), axis=axis)
    checks.assert_log_softmax_backward(host(got), g, ly, axis)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("shape,axis", [((9, 3), -1), ((2, 300), -1), ((2, 9, 5), 1)])
def test_dtypes(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    got = host(nbsoftmax.softmax(cuda.to_device(x), axis=axis))
    assert got.dtype == dtype
    checks.assert_softmax(got, x, axis)
    g = rng.standard_normal(shape).astype(dtype)
    y = reference.log_softmax(x, axis).astype(dtype)
    got = host(nbsoftmax.log_softmax_backward(cuda.to_device(g), cuda.to_device(y), axis=axis))
    checks.assert_log_softmax_backward(got, g, y, axis)


def _special_rows(n):
    x = np.linspace(-3, 3, 6 * n).reshape(6, n)
    x[1, ::3] = -np.inf  # probability 0
    x[2] = -np.inf  # NaN throughout; logsumexp -inf
    x[3, n // 2] = np.nan
    x[4, n - 1] = np.inf  # NaN; logsumexp +inf
    x[5] += 1e7  # shift invariance
    return x


@pytest.mark.parametrize("n,axis", [(7, -1), (40, -1), (150, -1), (300, -1), (5, 0)])
def test_value_conventions(n, axis):
    x = _special_rows(n)
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    d = cuda.to_device(x)
    checks.assert_softmax(host(nbsoftmax.softmax(d, axis=axis)), x, axis)
    checks.assert_log_softmax(host(nbsoftmax.log_softmax(d, axis=axis)), x, axis)
    checks.assert_logsumexp(host(nbsoftmax.logsumexp(d, axis=axis)), x, axis)


# ------------------------------------------------------------------ layouts and staging

DEVICE_LAYOUTS = ["contiguous", "fortran", "sliced", "sliced_rows", "negative_strides",
                  "transposed", "broadcast_first", "readonly", "empty", "zero_length", "zero_d"]


@pytest.mark.parametrize("name,axis", [(name, axis) for name in DEVICE_LAYOUTS
                                        for axis in ([-1] if name == "zero_d" else [-1, 0, (0, 2)])])
def test_layouts(rng, name, axis):
    base = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x = reference.LAYOUTS[name](base)
    d = FakeCUDAArray(x)  # a device array with the layout's own strides
    got = nbsoftmax.softmax(d, axis=axis)
    assert got.shape == x.shape
    checks.assert_softmax(host(got), np.array(x), axis)
    checks.assert_logsumexp(host(nbsoftmax.logsumexp(d, axis=axis)), np.array(x), axis)


def test_dtype_cast_and_integer_input():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    got = host(nbsoftmax.softmax(cuda.to_device(x)))
    checks.assert_softmax(got, x)
    got = host(nbsoftmax.log_softmax(cuda.to_device(x), dtype=np.float16))
    checks.assert_log_softmax(got, x, dtype=np.float16)
    b = np.array([[True, False, True]])
    got = nbsoftmax.logsumexp(cuda.to_device(b), axis=None, keepdims=True)
    checks.assert_logsumexp(host(got), b, None, keepdims=True)


def test_logsumexp_axes_and_keepdims(rng):
    x = rng.standard_normal((3, 4, 5))
    d = cuda.to_device(x)
    for axis, keepdims in [((0, 2), False), (None, False), (1, True), ((0, 1), True)]:
        checks.assert_logsumexp(host(nbsoftmax.logsumexp(d, axis=axis, keepdims=keepdims)),
                                x, axis, keepdims)


def test_backward_mixed_layouts_and_dtypes(rng):
    g = rng.standard_normal((4, 30)).astype(np.float32)
    y = np.asfortranarray(reference.softmax(rng.standard_normal((4, 30)), -1))  # float64, F
    got = nbsoftmax.softmax_backward(cuda.to_device(g), FakeCUDAArray(y))
    checks.assert_softmax_backward(host(got), g, y)


# ------------------------------------------------------------------ out=


def test_out_variants(rng):
    x = rng.standard_normal((4, 20)).astype(np.float32)
    want = reference.softmax(x, -1)
    d = cuda.to_device(x)
    out = cuda.device_array_like(d)
    assert nbsoftmax.softmax(d, out=out) is out
    checks.assert_softmax(out.copy_to_host(), x)
    fortran = FakeCUDAArray(np.zeros((4, 20), np.float32, "F"))
    assert nbsoftmax.softmax(d, out=fortran) is fortran
    checks.assert_softmax(fortran.copy_to_host(), x)
    gappy = FakeCUDAArray(np.zeros((4, 40), np.float32)[:, ::2])
    assert nbsoftmax.softmax(d, out=gappy) is gappy
    checks.assert_softmax(gappy.copy_to_host(), x)
    inplace = cuda.to_device(x)
    assert nbsoftmax.log_softmax(inplace, out=inplace) is inplace
    checks.assert_log_softmax(inplace.copy_to_host(), x)
    g = cuda.to_device(x)
    y = cuda.to_device(want.astype(np.float32))
    assert nbsoftmax.softmax_backward(g, y, out=y) is y
    checks.assert_softmax_backward(y.copy_to_host(), x, want.astype(np.float32))


@pytest.mark.parametrize("bad,error,match", [
    (np.zeros((4, 21), np.float32), ValueError, r"out has shape \(4, 21\) but the result has shape \(4, 20\)"),
    (np.zeros((4, 20), np.float64), TypeError, "out has dtype float64 but the result has dtype float32"),
])
def test_bad_out_is_untouched(rng, bad, error, match):
    x = cuda.to_device(rng.standard_normal((4, 20)).astype(np.float32))
    out = cuda.to_device(bad)
    with pytest.raises(error, match=match):
        nbsoftmax.softmax(x, out=out)
    assert not out.copy_to_host().any()


# ------------------------------------------------------------------ dispatch


def test_mixing_host_and_device_is_a_type_error(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match="grad_output is a CUDA device array but output is a host"):
        nbsoftmax.softmax_backward(cuda.to_device(x), x)
    with pytest.raises(TypeError, match="out is a CUDA device array but x is a host"):
        nbsoftmax.softmax(x, out=cuda.to_device(x))
    with pytest.raises(TypeError, match='device="cpu" was requested but x is a CUDA device'):
        nbsoftmax.softmax(cuda.to_device(x), device="cpu")
    swapped = FakeCUDAArray(x.astype(">f8"))
    with pytest.raises(TypeError, match="byte-swapped"):
        nbsoftmax.softmax(swapped)


def test_host_input_with_device_cuda(rng):
    x = rng.standard_normal((3, 50)).astype(np.float32)
    got = nbsoftmax.softmax(x, device="cuda", stream=cuda.stream())
    assert isinstance(got, np.ndarray)
    checks.assert_softmax(got, x)
    f = np.asfortranarray(x)
    checks.assert_log_softmax(nbsoftmax.log_softmax(f, axis=0, device="cuda"), f, 0)
    checks.assert_logsumexp(nbsoftmax.logsumexp(x[:, ::2], axis=(0, 1), device="cuda"), x[:, ::2],
                            (0, 1))
    out = np.empty_like(x)
    assert nbsoftmax.softmax(x, out=out, device="cuda") is out
    checks.assert_softmax(out, x)
    y = reference.softmax(x, -1)
    checks.assert_softmax_backward(nbsoftmax.softmax_backward(x, y, device="cuda"), x, y)
    assert float(nbsoftmax.softmax(np.float32(3.0), device="cuda")) == 1.0
    assert nbsoftmax.softmax(np.zeros((2, 0)), device="cuda").shape == (2, 0)
    np.testing.assert_array_equal(nbsoftmax.logsumexp(np.zeros((2, 0)), device="cuda"), [-np.inf] * 2)
    checks.assert_softmax(nbsoftmax.softmax([1.0, 2.0, 3.0], device="cuda"), [1.0, 2.0, 3.0])


def test_without_gpu_or_numba_cuda_a_type_error():
    """No simulator, no GPU: device="cuda" raises TypeError; import nbsoftmax stays CPU-only."""
    code = """
        import sys
        import nbsoftmax
        assert "numba.cuda" not in sys.modules, "import nbsoftmax imported numba.cuda"
        nbsoftmax.softmax([1.0, 2.0])
        assert "numba.cuda" not in sys.modules, "a CPU call imported numba.cuda"
        for blocker in (False, True):
            if blocker:  # numba-cuda absent
                import numba
                for name in [m for m in sys.modules if m.startswith(("numba.cuda", "nbsoftmax.cuda"))]:
                    del sys.modules[name]
                sys.modules["numba.cuda"] = None
                del numba.cuda, nbsoftmax.cuda
                # the dispatch keeps the backend module it imported: forget it as well
                import nbsoftmax.dispatch.backends
                nbsoftmax.dispatch.backends._cuda = None
            try:
                nbsoftmax.softmax([1.0, 2.0], device="cuda")
            except TypeError as exc:
                print("TypeError:", exc)
            else:
                raise AssertionError("no TypeError")
    """
    out = run_python(code, env={"NUMBA_ENABLE_CUDASIM": "0"})
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    assert "none is available" in lines[0] or "numba-cuda is not installed" in lines[0], out
    assert "numba-cuda is not installed" in lines[1], out
