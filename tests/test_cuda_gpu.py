"""The CUDA backend on a real GPU, at its default launch limits and every strategy boundary.

Run on a GPU machine (numba-cuda with its toolkit, CuPy and PyTorch installed)::

    NBSOFTMAX_REQUIRE_GPU=1 python -m pytest tests/test_cuda_gpu.py -q   # benchmarks/gpu_check.sh

Every test needs the ``cuda`` fixture, a preflight that skips with the reason when this
process cannot run kernels: no numba-cuda, the CUDA simulator on in this process
(``test_cuda_sim.py`` turns it on when collected first, as in ``python -m pytest tests``),
no GPU, no libNVVM/libdevice, or a driver too old for the PTX that NVVM emits. With
``NBSOFTMAX_REQUIRE_GPU=1`` every such skip (and a missing CuPy or PyTorch) is a failure
instead, so a GPU run cannot pass by skipping. numba.cuda is imported only when a test
runs, never at collection. Results are compared with the float64 references
(``tests/reference.py``) under the same tolerances as the CPU path, and with torch / CuPy.
Warnings are errors (the project's pytest settings): a NumbaPerformanceWarning or
DeprecationWarning from a call fails its test.
"""

import importlib.util
import os
import re
import threading

import numpy as np
import pytest

import nbsoftmax

from . import checks, reference

pytestmark = pytest.mark.gpu

REQUIRE_GPU = os.environ.get("NBSOFTMAX_REQUIRE_GPU", "") not in ("", "0")


def gpu_skip(reason):
    """Skip, or fail under NBSOFTMAX_REQUIRE_GPU=1 (a GPU run must not pass by skipping)."""
    if REQUIRE_GPU:
        pytest.fail(f"NBSOFTMAX_REQUIRE_GPU=1 but {reason}", pytrace=False)
    pytest.skip(reason)


# PTX ISA version -> the CUDA version (driver) that introduced it
_PTX_ISA_CUDA = {(7, 8): (11, 8), (8, 0): (12, 0), (8, 1): (12, 1), (8, 2): (12, 2),
                 (8, 3): (12, 3), (8, 4): (12, 4), (8, 5): (12, 5), (8, 6): (12, 7),
                 (8, 7): (12, 8), (8, 8): (12, 9)}


def _cuda_for_isa(isa):
    if isa in _PTX_ISA_CUDA:
        return _PTX_ISA_CUDA[isa]
    return (isa[0] + 4, isa[1]) if isa[0] >= 9 else None  # ISA 9.x came with CUDA 13.x


def _preflight():
    """numba.cuda when this process can compile and launch kernels, else the reason why not."""
    try:
        from numba import cuda
        from numba.cuda.core import config
    except ImportError:
        return None, ("numba-cuda is not installed: these real-GPU tests need it and a GPU "
                      "(pip install -e '.[cuda12]' on a GPU machine)")
    if config.ENABLE_CUDASIM:
        return None, ("real-GPU test, but this process runs numba's CUDA simulator (turned "
                      "on by tests/test_cuda_sim.py in a whole-suite run, or by "
                      "NUMBA_ENABLE_CUDASIM=1): on a GPU machine run "
                      "`python -m pytest tests/test_cuda_gpu.py -m gpu` in a process of its own")
    if not cuda.is_available():
        found = " ".join(str(cuda.cuda_error() or "none found").split())
        return None, (f"no CUDA GPU on this machine ({found}): these tests run on a GPU machine; "
                      "the kernels are checked here under the simulator (tests/test_cuda_sim.py)")
    from nbsoftmax.cuda import _runtime

    problem = _runtime.toolchain_problem()
    if problem is not None:
        return None, problem
    from numba.cuda.cudadrv.driver import driver

    driver_version = driver.get_version()

    def probe(a):
        a[0] = 42

    ptx, _ = cuda.compile_ptx_for_current_device(probe, "void(int32[:])")
    found = re.search(r"^\.version (\d+)\.(\d+)", ptx, re.M)
    isa = (int(found.group(1)), int(found.group(2))) if found else None
    needs = _cuda_for_isa(isa) if isa else None
    try:
        a = cuda.to_device(np.zeros(1, np.int32))
        cuda.jit(probe)[1, 1](a)
        ok = a.copy_to_host()[0] == 42
    except Exception as exc:  # noqa: BLE001 - any failure here is the reason to report
        what = f"a probe kernel does not run ({' '.join(str(exc).split())[:300]})"
        if needs and needs > driver_version:
            what = (f"the driver (CUDA {driver_version[0]}.{driver_version[1]}) is older than "
                    f"the PTX ISA {isa[0]}.{isa[1]} that NVVM emits (CUDA {needs[0]}.{needs[1]});"
                    f" update the driver or install the toolkit wheels of the driver's CUDA "
                    f"version ({what})")
        return None, what
    if not ok:
        return None, "a probe kernel ran but wrote a wrong value"
    return cuda, None


@pytest.fixture(scope="module")
def cuda():
    module, reason = _preflight()
    if module is None:
        gpu_skip(reason)
    return module


def need(name):
    if importlib.util.find_spec(name) is None:
        gpu_skip(f"{name} is not installed")
    return importlib.import_module(name)


def _torch():
    torch = need("torch")
    if not torch.cuda.is_available():
        gpu_skip("torch has no CUDA")
    return torch


def test_gpu_preflight(cuda):
    """Fails (does not skip) under NBSOFTMAX_REQUIRE_GPU=1 on a machine without a usable GPU."""
    assert cuda.is_available()


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


# The GPU benchmark's shapes (nbsoftmax.cuda._bench.cases, full sweep): together they run
# every strategy, the fused block kernels at 4, 8 and 16 items per thread and the split path.
BENCH_SHAPES = [((4096, n), -1) for n in (256, 512, 1000, 1024, 2048, 3000, 4096, 5000, 8192,
                                           12000, 16384, 32768)]
BENCH_SHAPES += [((16, 4_000_000), -1), ((1_000_000, 128), -1), ((64, 1024, 1024), 1)]


def _sample(a, axis, count=48):
    """count slices spread over a (the reference on every row of 4096 x 32768 is slow)."""
    a = np.moveaxis(a, axis, -1)
    a = a.reshape(-1, a.shape[-1])
    return a[np.linspace(0, a.shape[0] - 1, min(count, a.shape[0])).astype(np.int64)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_every_strategy_at_the_benchmark_shapes(cuda, rng, dtype):
    from nbsoftmax.dispatch import layout as _layout
    from nbsoftmax.cuda import _launch

    plans = set()
    for shape, axis in BENCH_SHAPES:
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        d = cuda.to_device(x)
        layout = _layout.Layout(x.shape, x.strides, (axis % x.ndim,))
        for op in ("softmax", "softmax_backward"):
            plan = _launch._plan(op, np.dtype(dtype), layout.outer, layout.n, layout.inner)
            plans.add(plan[:2] if plan[0] == "block" else plan[0])
        xs = _sample(x, axis)
        y = nbsoftmax.softmax(d, axis=axis).copy_to_host()
        checks.assert_softmax(_sample(y, axis), xs)
        ly = nbsoftmax.log_softmax(d, axis=axis).copy_to_host()
        checks.assert_log_softmax(_sample(ly, axis), xs)
        lse = nbsoftmax.logsumexp(d, axis=axis, keepdims=True).copy_to_host()
        checks.assert_logsumexp(_sample(lse, axis, 48)[:, 0], xs)
        dx = nbsoftmax.softmax_backward(cuda.to_device(g), cuda.to_device(y), axis=axis)
        checks.assert_softmax_backward(_sample(dx.copy_to_host(), axis), _sample(g, axis),
                                       _sample(y, axis))
        del d
    assert {"warp", "columns", "split", ("block", 4), ("block", 8), ("block", 16)} <= plans


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


# ------------------------------------------------------------------ the other operations

RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape,k", [((64, 50), 5), ((8, 1000), 10), ((4, 5000), 3)])
def test_softmax_topk(cuda, rng, dtype, shape, k):
    """Rows longer than the old 800-thread register limit of the top-k kernel included."""
    x = rng.integers(-50, 50, shape).astype(dtype)  # ties
    probs, idx = nbsoftmax.softmax_topk(cuda.to_device(x), k)
    want_p, want_i = reference.softmax_topk(x, k)
    np.testing.assert_array_equal(idx.copy_to_host(), want_i)
    np.testing.assert_allclose(probs.copy_to_host(), want_p, rtol=RTOL[dtype], atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [70, 700, 1000, 5000])
@pytest.mark.parametrize("probs", [False, True])
def test_cross_entropy(cuda, rng, dtype, n, probs):
    """float64 rows above 672 classes failed to launch before the launch bounds."""
    x = rng.standard_normal((33, n)).astype(dtype)
    if probs:
        t = rng.random((33, n)).astype(dtype)
        t /= t.sum(-1, keepdims=True)
    else:
        t = rng.integers(0, n, 33)
        t[0] = -100
    w = rng.random(n) + 0.5
    kw = dict(label_smoothing=0.1, temperature=2.0, weight=w)
    for reduction in ("mean", "none"):
        want_loss, want_grad = reference.cross_entropy(x, t, -1, reduction, **kw)
        loss, grad = nbsoftmax.cross_entropy(
            cuda.to_device(x), cuda.to_device(t), reduction=reduction, return_grad=True,
            label_smoothing=0.1, temperature=2.0, weight=cuda.to_device(w))
        rtol = 1e-11 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(loss.copy_to_host(), want_loss, rtol=rtol)
        np.testing.assert_allclose(grad.copy_to_host(), want_grad, rtol=rtol * 10,
                                   atol=rtol * 1e-3)


def _mask(rng, shape):
    mask = rng.random(shape) < 0.6
    mask[0] = False  # a fully masked slice
    return mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape,axis", [((16, 100), -1), ((8, 1000), -1), ((4, 3000), -1),
                                        ((6, 500, 7), 1)])
def test_where_and_temperature(cuda, rng, dtype, shape, axis):
    """where= and temperature= kernels, float64 rows above the old 800-thread limit included."""
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    mask = _mask(rng, shape)
    rt = RTOL[dtype]
    d, dm = cuda.to_device(x), cuda.to_device(mask)
    got = nbsoftmax.softmax(d, axis, where=dm, temperature=0.5).copy_to_host()
    np.testing.assert_allclose(got, reference.softmax_where(x, axis, mask, 0.5), rtol=rt,
                               atol=rt * 1e-3)
    got = nbsoftmax.softmax(d, axis, temperature=2.0).copy_to_host()
    np.testing.assert_allclose(got, reference.softmax_where(x, axis, None, 2.0), rtol=rt,
                               atol=rt * 1e-3)
    got = nbsoftmax.log_softmax(d, axis, where=dm).copy_to_host()
    np.testing.assert_allclose(got, reference.log_softmax_where(x, axis, mask), rtol=rt,
                               atol=rt * 10)
    got = nbsoftmax.logsumexp(d, axis, where=dm).copy_to_host()
    np.testing.assert_allclose(got, reference.logsumexp_where(x, axis, mask), rtol=rt)
    if dtype != np.float16:
        g = rng.standard_normal(shape).astype(dtype)
        y = np.ascontiguousarray(reference.softmax_where(x, axis, mask, 2.0)).astype(dtype)
        got = nbsoftmax.softmax_backward(cuda.to_device(g), cuda.to_device(y), axis, where=dm,
                                         temperature=2.0).copy_to_host()
        np.testing.assert_allclose(got, reference.softmax_backward_where(g, y, axis, mask, 2.0),
                                   rtol=rt * 10, atol=rt * 1e-2)


# ------------------------------------------------------------------ streams and threads


def test_numba_streams(cuda, rng):
    """stream= a numba stream, a raw handle, the default and per-thread default streams; no
    DeprecationWarning from the stream handles (warnings are errors here)."""
    x = rng.standard_normal((64, 40_000)).astype(np.float32)  # the split path
    d = cuda.to_device(x)
    for stream in (cuda.stream(), cuda.default_stream(), cuda.per_thread_default_stream(),
                   cuda.legacy_default_stream()):
        got = nbsoftmax.softmax(d, stream=stream)
        stream.synchronize()
        checks.assert_softmax(got.copy_to_host(), x)
    s = cuda.stream()
    handle = s.handle.value if hasattr(s.handle, "value") else int(s.handle)
    got = nbsoftmax.log_softmax(d, stream=handle)
    s.synchronize()
    checks.assert_log_softmax(got.copy_to_host(), x)
    got = nbsoftmax.softmax(x, device="cuda", stream=cuda.stream())  # host round trip
    checks.assert_softmax(got, x)


def _threads_on_own_streams(cuda, rng, make_stream):
    """Two host threads, each on its own stream, calling split-path ops many times."""
    xs = [rng.standard_normal((16, 70_000)).astype(np.float32) + k for k in range(2)]
    errors = []

    def work(x):
        try:
            stream = make_stream()
            d = cuda.to_device(x, stream=stream)
            results = [nbsoftmax.softmax(d, stream=stream) for _ in range(20)]
            lse = [nbsoftmax.logsumexp(d, stream=stream) for _ in range(20)]
            stream.synchronize()
            for r in results:
                checks.assert_softmax(r.copy_to_host(), x)
            for r in lse:
                checks.assert_logsumexp(r.copy_to_host(), x)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(x,)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_two_threads_on_their_own_streams(cuda, rng):
    _threads_on_own_streams(cuda, rng, cuda.stream)


def test_two_threads_on_the_per_thread_default_stream(cuda, rng):
    """One handle (2), two real streams: the split path's scratch must be per thread."""
    _threads_on_own_streams(cuda, rng, cuda.per_thread_default_stream)


def test_launch_limits_on_this_device(cuda):
    """The driver's limit of the heaviest compiled variants is at least what the launcher
    asks (their launch bounds), on the device at hand."""
    from nbsoftmax.cuda import _launch, _variants

    f8, f4 = np.dtype(np.float64), np.dtype(np.float32)
    keys = [("topk", f4), ("topk", f8), ("scaled", "softmax", f8, False),
            ("scaled", "softmax_backward", f8, True), ("xent", "rows", f8, True, True, True),
            ("xent", "rows", f8, False, True, True), ("block", "softmax", 16, f4),
            ("block", "softmax", 8, f8), ("warp", "softmax", 32, f8), ("columns", "softmax", f8)]
    for key in keys:
        limit = _launch.get(key).get_max_threads_per_block()
        assert limit >= _variants.BOUNDS[key[0]][0], (key, limit)


def test_cupy_kind_and_stream(cuda, rng):
    cupy = need("cupy")
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
    # stream= another CuPy stream: ordered after the producer, result allocated on it
    other = cupy.cuda.Stream(non_blocking=True)
    with cupy.cuda.Stream(non_blocking=True):
        cx = cupy.asarray(x) * 2
        got = nbsoftmax.softmax(cx, stream=other)
    other.synchronize()
    checks.assert_softmax(cupy.asnumpy(got), x * 2)


def test_torch_kind_stream_and_peer(cuda, rng):
    torch = _torch()
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


def test_torch_input_on_another_stream(cuda, rng):
    """stream= other than torch's current stream: the kernels wait for the producer (torch
    exports no stream), and the tensors are protected from torch's caching allocator."""
    torch = _torch()
    x = rng.standard_normal((256, 20_000)).astype(np.float32)
    producer = torch.cuda.Stream()
    consumer = torch.cuda.Stream()
    host = torch.from_numpy(x).pin_memory()
    for _ in range(5):
        with torch.cuda.stream(producer):
            t = host.cuda(non_blocking=True) * 3  # still being written when softmax is called
            got = nbsoftmax.softmax(t, stream=consumer)
            del t  # freed on the producer stream while the consumer may still read it
            scratch = torch.empty(256 * 20_000, device="cuda").fill_(np.nan)  # reuse attempt
        consumer.synchronize()
        producer.synchronize()
        checks.assert_softmax(got.cpu().numpy(), x * 3)
        del scratch
