"""nbsoftmax.dask: every function on dask arrays of any chunking equals the references (and
the NumPy path's conventions), lazily; the same on a real ``LocalCluster`` of worker
processes, ``nbsoftmax score --scheduler``, and worker processes forked from a parent that
already ran parallel kernels (issue "never crash or hang")."""

import dask
import dask.array as da
import numpy as np
import pytest

import nbsoftmax
import nbsoftmax.dask as nbdask
from nbsoftmax.cli import main
from tests import checks
from tests.subproc import run_python

inf, nan = np.inf, np.nan

# (shape, chunks): one chunk, slices whole along the last axis, every axis split, uneven.
CHUNKINGS = {
    "one_chunk": ((6, 5, 7), -1),
    "rows": ((6, 5, 7), (2, 5, 7)),
    "split": ((6, 5, 7), (4, 2, 3)),
    "single_elements": ((3, 4, 5), 1),
}
AXES = [-1, 0, 1, (0, 2), None]


def _logits(rng, shape, dtype=np.float32, special=True):
    x = rng.standard_normal(shape) * 4
    if special:
        x[0, :, 0] = -inf          # a slice all -inf along axis 1 (and -inf entries elsewhere)
        x[1, 1, :] = nan
        x[2, :, 1] = inf
        x[-1, 0, 0] = -inf
    return x.astype(dtype)


@pytest.fixture(autouse=True)
def _synchronous(request):
    """The single-threaded scheduler unless a test brings its cluster: fast and deterministic."""
    if "cluster" in request.fixturenames:
        yield
        return
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_forward_equals_the_reference(rng, chunking, axis, op):
    shape, chunks = CHUNKINGS[chunking]
    x = _logits(rng, shape)
    got = getattr(nbdask, op)(da.from_array(x, chunks=chunks), axis)
    assert isinstance(got, da.Array) and got.dtype == np.float32
    assert got.chunks == da.from_array(x, chunks=chunks).chunks
    check = checks.assert_softmax if op == "softmax" else checks.assert_log_softmax
    check(got.compute(), x, axis)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_equals_the_reference(rng, chunking, axis, keepdims):
    shape, chunks = CHUNKINGS[chunking]
    x = _logits(rng, shape, np.float64)
    got = nbdask.logsumexp(da.from_array(x, chunks=chunks), axis, keepdims=keepdims)
    want = nbsoftmax.logsumexp(x, axis, keepdims=keepdims)
    assert got.shape == want.shape and got.dtype == want.dtype
    checks.assert_logsumexp(got.compute(), x, axis, keepdims)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("axis", [-1, 0, (0, 2)])
@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
def test_backward_equals_the_reference(rng, chunking, axis, op):
    shape, chunks = CHUNKINGS[chunking]
    x = _logits(rng, shape, np.float64, special=False)
    g = rng.standard_normal(shape).astype(np.float32)
    forward = nbsoftmax.softmax if op == "softmax_backward" else nbsoftmax.log_softmax
    y = forward(x, axis)
    # output chunked differently from grad_output: aligned by the function
    got = getattr(nbdask, op)(da.from_array(g, chunks=chunks), da.from_array(y, chunks=2), axis)
    assert got.dtype == np.float64
    getattr(checks, f"assert_{op}")(got.compute(), g, y, axis)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.bool_, ">f4"])
@pytest.mark.parametrize("chunks", [(2, 7), (4, 3)])
def test_dtype_rules(rng, dtype, chunks):
    x = (rng.standard_normal((4, 7)) * 3).astype(dtype)
    d = da.from_array(x, chunks=chunks)
    got = nbdask.softmax(d).compute()
    checks.assert_softmax(got, x)
    checks.assert_log_softmax(nbdask.log_softmax(d, dtype=np.float32).compute(), x,
                              dtype=np.float32)


@pytest.mark.parametrize("chunks", [(2, 3), -1])
def test_special_values_match_the_numpy_path_exactly_where_special(chunks):
    x = np.array([[-inf, -inf, -inf, -inf, -inf, -inf],
                  [1.0, nan, 2.0, 3.0, 4.0, 5.0],
                  [1.0, inf, 2.0, 3.0, -inf, 5.0],
                  [-inf, 0.0, -inf, 1e4, -inf, 1e4],
                  [1e30, -1e30, 0.0, 1e-30, 3.0, 1e30]])
    d = da.from_array(x, chunks=chunks)
    for op in ("softmax", "log_softmax"):
        got, want = getattr(nbdask, op)(d).compute(), getattr(nbsoftmax, op)(x)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)
    np.testing.assert_array_equal(nbdask.logsumexp(d).compute(), nbsoftmax.logsumexp(x))


def test_empty_and_zero_d():
    for x, chunks in ((np.zeros((0, 4)), 2), (np.zeros((3, 0)), 1), (np.zeros((2, 3)), -1)):
        d = da.from_array(x, chunks=chunks)
        for op in ("softmax", "log_softmax"):
            got = getattr(nbdask, op)(d).compute()
            assert got.shape == x.shape
        np.testing.assert_array_equal(nbdask.logsumexp(d).compute(), nbsoftmax.logsumexp(x))
    scalar = da.from_array(np.float32(2.5))
    assert nbdask.softmax(scalar).compute() == 1.0
    assert nbdask.logsumexp(scalar, None).compute() == np.float32(2.5)


def test_calls_are_lazy():
    calls = []

    def counted(block):
        calls.append(block.shape)
        return block

    x = da.ones((8, 6), chunks=(4, 3)).map_blocks(counted, meta=np.empty((0, 0)))
    results = [nbdask.softmax(x), nbdask.log_softmax(x, 0), nbdask.logsumexp(x),
               nbdask.softmax_backward(x, x), nbdask.log_softmax_backward(x, x, axis=None)]
    assert calls == [] and all(isinstance(r, da.Array) for r in results)
    np.testing.assert_allclose(results[0].compute(), np.full((8, 6), 1 / 6))


def test_one_chunk_per_slice_is_one_pass():
    """Slices inside chunks: one task per chunk from nbsoftmax (no reduction layers)."""
    x = da.ones((8, 6), chunks=(2, 6))
    assert len(nbdask.softmax(x).dask.layers) == 2  # the input and one map_blocks
    assert len(nbdask.softmax(x, axis=0).dask.layers) > 2  # split slices: the reduction


def test_errors_are_raised_at_call_time():
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(np.exceptions.AxisError):
        nbdask.softmax(x, axis=2)
    with pytest.raises(ValueError, match="repeats"):
        nbdask.log_softmax(x, axis=(1, 1))
    with pytest.raises(TypeError, match="unsupported dtype complex128"):
        nbdask.softmax(x.astype(complex))
    with pytest.raises(TypeError, match="dtype"):
        nbdask.softmax(x, dtype=np.int32)
    with pytest.raises(ValueError, match="must match"):
        nbdask.softmax_backward(x, da.ones((4, 3)))


# ------------------------------------------------------------------ a real cluster


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each (the spawn start method, Dask's default)."""
    import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield client


def test_on_worker_processes(cluster, rng):
    x = _logits(rng, (40, 30, 20))
    d = da.from_array(x, chunks=(10, 30, 7))
    for axis in (-1, 1):  # in-chunk slices (kernels in the workers) and split slices
        checks.assert_softmax(cluster.compute(nbdask.softmax(d, axis)).result(), x, axis)
    checks.assert_logsumexp(cluster.compute(nbdask.logsumexp(d, 0)).result(), x, 0)
    workers = cluster.run(lambda: __import__("nbsoftmax")._threading.describe()["parallel"])
    assert len(workers) == 2


def test_score_on_the_cluster(cluster, tmp_path, rng):
    x = (rng.standard_normal((300, 50)) * 3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    address = cluster.scheduler.address
    runs = {
        "y.npy": ["x.npy"],
        "axis0.npy": ["f.npy", "--axis", "0", "--log"],
        "split.npy": ["x.npy", "--memory-limit", "1kB"],  # slices split: the two-pass path
        "columns.npy": ["x.npy", "--axis", "0", "--memory-limit", "8kB"],  # strided chunks
        "top.npz": ["x.npy", "--top-k", "4", "--memory-limit", "16kB"],
    }
    for out, args in runs.items():
        assert main(["score", *[str(tmp_path / args[0])], *args[1:], "-o", str(tmp_path / out),
                     "--scheduler", address]) == 0, out
    checks.assert_softmax(np.load(tmp_path / "y.npy"), x)
    assert np.load(tmp_path / "axis0.npy").flags.f_contiguous
    checks.assert_log_softmax(np.load(tmp_path / "axis0.npy"), x, 0)
    checks.assert_softmax(np.load(tmp_path / "split.npy"), x)
    checks.assert_softmax(np.load(tmp_path / "columns.npy"), x, 0)
    p = nbsoftmax.softmax(x)
    with np.load(tmp_path / "top.npz") as z:
        want = np.argsort(-p, axis=1, kind="stable")[:, :4]
        np.testing.assert_array_equal(z["indices"], want)
        np.testing.assert_allclose(z["probabilities"], np.take_along_axis(p, want, 1),
                                   rtol=3e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.npy", "f.npy", *runs])


def test_score_on_the_cluster_refuses_compressed_members(cluster, tmp_path, capsys):
    np.savez_compressed(tmp_path / "x.npz", x=np.ones((3, 4)))
    assert main(["score", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npy"),
                 "--scheduler", cluster.scheduler.address]) == 1
    assert "is compressed: Dask workers cannot read it in pieces" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("shape", [(7,), (4, 6), (3, 4, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("fortran", [False, True])
def test_workers_write_exactly_their_byte_ranges(tmp_path, rng, shape, fortran):
    """The cluster's output target: random blocks land where NumPy assignment puts them."""
    from nbsoftmax.cli.score_cluster import _OutputBlocks

    path = str(tmp_path / "out.npy")
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape,
                              fortran_order=fortran)
    target = _OutputBlocks(path, shape, np.float32, fortran)
    want = np.zeros(shape, np.float32)
    for _ in range(20):
        index = []
        for n in shape:
            lo = int(rng.integers(0, n))
            index.append(slice(lo, int(rng.integers(lo, n)) + 1) if rng.random() < 0.7
                         else slice(None))
        block = rng.standard_normal(want[tuple(index)].shape).astype(np.float32)
        want[tuple(index)] = block
        target[tuple(index)] = block
    np.testing.assert_array_equal(np.load(path), want)


_FORKED_WORKERS = """
import dask, numpy as np, dask.array as da, distributed, nbsoftmax, nbsoftmax.dask as nbdask
if __name__ == "__main__":
    x = np.random.default_rng(0).standard_normal((2000, 500)).astype(np.float32)
    want = nbsoftmax.softmax(x)  # the parent starts its threading layer first
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            with distributed.Client(cluster) as client:
                d = da.from_array(x, chunks=(500, 500))
                got = client.compute(nbdask.softmax(d)).result()
                info = client.run(lambda: nbsoftmax._threading.describe()["parallel"])
    np.testing.assert_allclose(got, want, rtol=3e-6)
    print(nbsoftmax._threading.describe()["threading_layer"], sorted(info.values()))
"""


@pytest.mark.parametrize("layer", [None, "omp"])
def test_forked_workers_after_parallel_kernels_do_not_hang(layer):
    env = {"NUMBA_THREADING_LAYER": layer} if layer else {}
    if layer == "omp":
        try:
            from numba.np.ufunc import omppool  # noqa: F401
        except ImportError:
            pytest.skip("this numba has no OpenMP threading layer")
    layer_used, *modes = run_python(_FORKED_WORKERS, env=env, timeout=120).split(maxsplit=1)
    # The threading policy of nbsoftmax._threading, as each forked worker reports it:
    # TBB is fork-safe; after GNU OpenMP, forked processes run serial kernels (no hang).
    if layer_used == "tbb":
        assert modes[0].count("unrestricted") == 2, modes
    elif layer_used == "omp":
        assert modes[0].count("serial only") == 2 or modes[0].count("unrestricted") == 2, modes


def test_score_with_an_unreachable_scheduler(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones((2, 3), np.float32))
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["score", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                     "--scheduler", "tcp://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nbsoftmax score: error: --scheduler tcp://127.0.0.1:1: cannot connect")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
