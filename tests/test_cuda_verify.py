"""The GPU path's correctness where no GPU is needed: the static check and the launch logic.

- ``nbsoftmax.cuda.verify`` compiles every kernel variant for sm_80 and sm_90 (libNVVM and
  ptxas from the ``[test]`` extra's toolkit wheels) and must find no variant that could not
  launch at the thread counts the launcher asks.
- The launch and stream logic (thread caps, launches without warning filters, split-path
  scratch per real stream, stream ordering, device selection, the toolchain check) runs
  here against stand-ins for the driver objects, since its results only show on hardware.

Nothing here imports numba.cuda at collection: ``test_cuda_sim.py`` must be able to turn
the simulator on first. The compile-for-hardware steps run in fresh interpreters without it.
"""

import json
import sys
import threading
import warnings

import pytest

from .subproc import run_python

NO_SIMULATOR = {"NUMBA_ENABLE_CUDASIM": "0"}
needs_linux = pytest.mark.skipif(
    sys.platform != "linux", reason="the CUDA toolkit wheels of the [test] extra are Linux-only")


# ------------------------------------------------------------------ the static check


@pytest.fixture(scope="module")
def static_check(tmp_path_factory):
    """One run of the static check for the whole module (compiling ~400 variants for two
    architectures is the slow part): (report, rows, printed output, number of keys)."""
    if sys.platform != "linux":
        pytest.skip("the CUDA toolkit wheels of the [test] extra are Linux-only")
    tmp = tmp_path_factory.mktemp("verify")
    report = tmp / "verify.json"
    out = run_python(
        # the guard: verify's worker processes start by importing this script
        "import sys\nfrom nbsoftmax.cuda import verify, _variants\n"
        "if __name__ == '__main__':\n"
        "    print('KEYS', len(_variants.all_keys()))\n"
        "    sys.exit(verify.main(sys.argv[1:]))\n",
        env=NO_SIMULATOR, timeout=1800,  # a few minutes on 2 idle cores; a hang guard
        # global accesses counted from the PTX: nvdisasm on every variant would add minutes
        args=("--cc", "8.0", "9.0", "--no-sass", "--json", str(report),
              "--rows-json", str(tmp / "rows.json")))
    keys = int(next(line.split()[1] for line in out.splitlines() if line.startswith("KEYS")))
    return (json.loads(report.read_text()), json.loads((tmp / "rows.json").read_text()), out,
            keys)


def test_every_variant_compiles_launchable_for_sm80_and_sm90(static_check):
    """The CI gate: every variant the launcher can select, compiled for sm_80 and sm_90,
    fits the register file and shared memory at the most threads the launcher asks."""
    data, rows, out, keys = static_check
    assert {r["arch"] for r in rows} == {"sm_80", "sm_90"}
    assert all(r["requested_threads"] <= r["max_threads"] for r in rows)
    assert set(data) == {"variants", "unlaunchable", "spilling", "low_occupancy",
                         "extra_accesses"}
    assert data["variants"] == keys > 200
    assert data["unlaunchable"] == [], data["unlaunchable"]
    assert "0 unlaunchable" in out


def test_kernel_metrics_gates(static_check):
    """Issue 14's gates: no forward/backward/logsumexp kernel spills; block and split
    kernels reach 50% theoretical occupancy at their thread count; each warp and block
    (fused) kernel loads each element it holds once and stores it once (backward: g and y
    once each), so a row up to 1024 x items is read once from global memory."""
    data, rows, out, keys = static_check
    assert data["spilling"] == [], data["spilling"]
    assert data["low_occupancy"] == [], data["low_occupancy"]
    assert data["extra_accesses"] == [], data["extra_accesses"]
    fused = [r for r in rows if r["family"] in ("warp", "block")]
    assert fused and all(r["reads_per_element"] in (1.0, 2.0) and r["writes_per_element"] == 1.0
                         for r in fused)
    # the split path: STATS reads its chunk and stores two float64 per block; APPLY reads
    # the chunk once more and writes it (plus the row's merged statistics)
    for r in rows:
        if r["family"] == "split" and r["key"][1] == "softmax":
            stores = r["memory"].get("store.32", 0) if r["key"][-1] == "float32" else None
            if r["key"][2] == "stats":
                assert r["memory"].get("store.64", 0) + r["memory"].get("store.32", 0) <= 2
            elif stores is not None:
                assert stores == int(r["key"][3]), r
    # every logsumexp kernel is checked (the lse family: _lse_api launches them)
    assert {r["family"] for r in rows} >= {"lse", "split", "merge", "warp", "block", "columns"}
    assert not any(r["key"][1] == "logsumexp" for r in rows
                   if r["family"] in ("warp", "block", "split", "columns"))


def test_register_file_arithmetic():
    from nbsoftmax.cuda._sass import max_launchable_threads

    # 64 registers: 32 warps x 2,048 = the 64K file exactly
    assert max_launchable_threads(64) == 1024
    # top-k before its launch bounds: 74 -> 80 per thread = 2,560 per warp; warps are
    # allocated to the 4 sub-partitions at once, so 24 warps (768 threads), not 1024
    assert max_launchable_threads(74) == 768
    assert max_launchable_threads(72) == 896  # 2,304 per warp: 28 warps
    assert max_launchable_threads(255) == 256  # the copy kernels' bound fits any count
    assert max_launchable_threads(256) == 0  # more than a thread may have
    assert max_launchable_threads(32, maxntid=128) == 128


def test_ptxas_and_sass_parsing():
    from nbsoftmax.cuda._sass import parse_ptxas, sass_profile

    text = ("ptxas info    : Function properties for k\n"
            "    0 bytes stack frame, 104 bytes spill stores, 96 bytes spill loads\n"
            "ptxas info    : Used 64 registers, used 1 barriers, 256 bytes smem\n")
    assert parse_ptxas(text) == {"registers": 64, "shared": 256, "spill_stores": 104,
                                 "spill_loads": 96, "stack": 0}
    with pytest.raises(RuntimeError, match="no register count"):
        parse_ptxas("nothing")
    sass = """
        /*0000*/                   LDC R1, c[0x0][0x28] ;
.L_x_1:
        /*0010*/                   LDG.E R2, desc[UR4][R4.64] ;
        /*0020*/                   FADD R3, R3, R2 ;
        /*0030*/              @P0 BRA `(.L_x_1) ;
.L_x_2:
        /*0040*/                   LDS R2, [R0] ;
        /*0050*/              @P1 BRA `(.L_x_2) ;
        /*0060*/                   EXIT ;
.L_x_3:
        /*0070*/                   BRA `(.L_x_3);
        /*0080*/                   NOP;
"""
    # 7 instructions (padding dropped); one loop loads from global memory: 3 instructions
    profile = sass_profile(sass)
    assert (profile["total"], profile["loops"]) == (7, 3)
    assert profile["memory"] == profile["loop_memory"] == {"load.32": 1}
    widths = sass.replace("LDG.E R2", "LDG.E.128.CONSTANT R2").replace(
        "LDS R2, [R0]", "STG.E.U16 desc[UR4][R6.64], R2")
    assert sass_profile(widths)["memory"] == {"load.128.nc": 1, "store.16": 1}


def test_occupancy_and_access_counts():
    from nbsoftmax.cuda._sass import access_bits, occupancy, ptx_memory, widths

    # 1024 threads at 64 registers: the whole register file, one block, half the threads
    assert occupancy(64, 1024, 256) == (1, 0.5)
    assert occupancy(65, 512, 0) == (1, 0.25)  # 72 per thread after rounding: 1 x 512
    assert occupancy(32, 256, 0) == (8, 1.0)
    # shared memory: 48 KB + 1 KB reserved per block, 228 KB per SM on sm_90, 164 on sm_80
    assert occupancy(16, 64, 48 * 1024) == (4, 0.125)
    assert occupancy(16, 64, 48 * 1024, "sm_80") == (3, 0.094)
    assert occupancy(16, 32, 0) == (32, 0.5)  # the 32-block limit
    ptx = ("ld.global.f32 %f1, [%rd1];\n\tld.global.nc.v4.f32 {%f1,%f2,%f3,%f4}, [%rd2];\n"
           "\tld.global.u8 %rs1, [%rd3];\n\tst.global.v2.f64 [%rd4], {%fd1, %fd2};\n"
           "\tld.shared.f32 %f9, [%r1];")
    counts = ptx_memory(ptx)
    assert counts == {"load.32": 1, "load.128.nc": 1, "load.8": 1, "store.128": 1}
    assert access_bits(counts, "load") == 168 and access_bits(counts, "store") == 128
    assert widths(counts) == "ld 1x128nc 1x32 1x8 / st 1x128"


def test_per_element_metrics_and_gates():
    """The per-element columns and the gates, on made-up rows (no compiler needed)."""
    import numpy as np

    from nbsoftmax.cuda import verify

    f32 = np.dtype(np.float32)

    def row(key, total, memory, registers=32):
        return {"variant": ":".join(map(str, key)), "key": [str(k) for k in key],
                "family": key[0], "arch": "sm_90", "registers": registers, "shared": 256,
                "spill_stores": 0, "spill_loads": 0, "maxntid": 1024, "items": key[2],
                "itemsize": 4, "memory": memory, "memory_from": "sass", "sass_total": total,
                "sass_loops": 0}

    rows = [row(("block", "softmax", 4, f32), 300, {"load.32": 4, "store.32": 4}),
            row(("block", "softmax", 8, f32), 400, {"load.32": 8, "store.32": 16}, 72)]
    verify._per_element(rows)
    assert [r["sass_per_element"] for r in rows] == [25.0, 25.0]
    assert [(r["reads_per_element"], r["writes_per_element"]) for r in rows] == [
        (1.0, 1.0), (1.0, 2.0)]
    found = verify.check(rows)
    assert found["unlaunchable"][0]["variant"] == "block:softmax:8:float32"
    assert found["low_occupancy"] == [{"variant": "block:softmax:8:float32", "arch": "sm_90",
                                       "occupancy": 0.0}]
    assert found["extra_accesses"][0]["reads_writes_per_element"] == [1.0, 2.0]
    assert "ld 4x32 / st 4x32 (sass)" in verify._table(rows)


# ------------------------------------------------------------------ launch limits (defect 1)


@pytest.fixture
def launch(monkeypatch):
    """_launch with the kernels' limits at their bounds (the driver's limit on a GPU) and an
    H100's 132 SMs, whether or not the simulator is on."""
    from nbsoftmax.cuda import _launch, _variants

    monkeypatch.setattr(_launch, "_plans", {})
    monkeypatch.setattr(_launch, "max_threads", lambda key: _variants.BOUNDS[key[0]][0])
    monkeypatch.setattr(_launch, "multiprocessor_count", lambda: 132)
    return _launch


def test_launcher_never_exceeds_the_launch_bounds(launch):
    import numpy as np

    from nbsoftmax.cuda import _variants

    for dtype in _variants.DTYPES:
        for op in _variants.OPS:
            for n in (1, 33, 1024, 1025, 4097, 8193, 16385, 10**6):
                for outer, inner in ((1, 1), (4096, 1), (3, 5)):
                    kind, items, grid, block, extra = launch._plan(op, dtype, outer, n, inner)
                    family = "block" if kind == "split" else kind
                    threads = np.prod(block)
                    assert threads <= _variants.BOUNDS[family][0], (op, dtype, n, kind)
                    assert threads % 32 == 0 or kind == "columns"
    for key in (("scaled", "softmax", np.dtype(np.float64), False), ("topk", np.dtype("f4")),
                ("xent", "rows", np.dtype("f8"), False, False, True)):
        assert launch._threads_for(key, 10**6) == _variants.BOUNDS[key[0]][0] == 512
        assert launch._threads_for(key, 40) == 64


def test_launcher_follows_the_compiled_kernels_limit(launch, monkeypatch):
    """A device where the driver reports fewer threads (registers) than the bound: block
    rows move to more items per thread or to the split path; loops use fewer threads."""
    import numpy as np

    caps = {"block": 256, "split": 256, "merge": 256, "warp": 64, "columns": 128, "scaled": 96,
            "topk": 200}
    monkeypatch.setattr(launch, "max_threads", lambda key: caps[key[0]])
    f32 = np.dtype(np.float32)
    for n in (1025, 2000, 4096, 8192, 16384, 100_000):
        kind, items, grid, block, extra = launch._plan("softmax", f32, 4096, n, 1)
        assert block <= 256, (n, kind, block)
        assert kind in ("block", "split")
    assert launch._plan("softmax", f32, 4096, 4096, 1)[:2] == ("block", 16)
    assert launch._plan("softmax", f32, 4096, 8192, 1)[0] == "split"
    assert launch._plan("softmax", f32, 10, 100, 1)[3] == 64
    width, height = launch._plan("softmax", f32, 4, 1000, 33)[3]
    assert width * height <= 128
    assert launch._threads_for(("scaled", "softmax", f32, True), 10**6) == 96
    assert launch._threads_for(("topk", f32), 10**6) == 192


def test_set_limits_refuses_block_sizes_above_the_bounds(launch):
    with pytest.raises(ValueError, match="max_threads=2048 is above the launch bound"):
        launch.set_limits(max_threads=2048)
    with pytest.raises(ValueError, match="warp_threads=256"):
        launch.set_limits(warp_threads=256)


# ------------------------------------------------------------------ launching (defect 7)


def test_launch_goes_to_the_compiled_kernel_without_touching_warning_filters(launch,
                                                                           monkeypatch):
    """Launches are packed and enqueued by _launcher.launch_once (cuLaunchKernel on the
    compiled kernel): never kernel[...], never warnings.catch_warnings."""
    calls = []

    class Dispatcher:
        def __getitem__(self, config):  # the path that warns below 128 blocks
            raise AssertionError("kernel[...] was used")

    def no_catch(*args, **kwargs):
        raise AssertionError("warnings.catch_warnings is not thread-safe")

    monkeypatch.setattr(launch, "SIMULATOR", False)
    monkeypatch.setattr(launch._launcher, "launch_once", lambda *args: calls.append(args))
    monkeypatch.setattr(warnings, "catch_warnings", no_catch)
    before = list(warnings.filters)
    kernel = Dispatcher()
    launch._configure(kernel, 3, 128, _Stream(7))(1, 2)
    assert calls == [(kernel, 3, 128, (1, 2), 7)]
    assert warnings.filters == before


# ------------------------------------------------------------------ streams (defects 2, 4, 5)


class _Handle:
    def __init__(self, value):
        self.value = value

    def __int__(self):
        return self.value

    def __bool__(self):
        return bool(self.value)


class _Stream:
    """numba's Stream as far as nbsoftmax uses it: ``int()`` of the default stream warns."""

    def __init__(self, handle):
        self.handle = _Handle(handle)

    def __int__(self):
        if not self.handle.value:
            warnings.warn("__int__ returned non-int", DeprecationWarning)
        return self.handle.value


class _Event:
    log = []

    def __init__(self):
        self.done = False

    def record(self, stream):
        self.log.append(("record", stream.handle.value))

    def wait(self, stream):
        self.log.append(("wait", stream.handle.value))

    def query(self):
        return self.done


class _FakeCuda:
    def __init__(self):
        self.allocated = []

    def event(self, timing=False):
        return _Event()

    def external_stream(self, handle):
        return _Stream(handle)

    def default_stream(self):
        return _Stream(0)

    def device_array(self, size, dtype, stream=0):
        import numpy as np

        array = np.empty(size, dtype)
        self.allocated.append(array)
        return array


def test_stream_handle_without_int_of_the_default_stream():
    from nbsoftmax.cuda._arrays import stream_handle

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stream_handle(_Stream(0)) == 0
        assert stream_handle(_Stream(2)) == 2
        assert stream_handle(_Stream(0x7F00AB)) == 0x7F00AB
        assert stream_handle(0) == 0 and stream_handle(None) == 0


@needs_linux
def test_stream_handle_of_real_numba_streams():
    """numba-cuda's own Stream objects (made without a GPU): no DeprecationWarning."""
    run_python(
        "import warnings\nwarnings.simplefilter('error')\n"
        "from cuda.bindings import driver as drv\n"
        "from numba.cuda.cudadrv.driver import Stream\n"
        "from nbsoftmax.cuda._arrays import stream_handle\n"
        "assert stream_handle(Stream(drv.CUstream(0))) == 0\n"
        "assert stream_handle(Stream(drv.CUstream(2))) == 2\n"
        "assert stream_handle(Stream(drv.CUstream(12345))) == 12345\n",
        env=NO_SIMULATOR)


@pytest.fixture
def arrays(monkeypatch):
    from nbsoftmax.cuda import _arrays

    from nbsoftmax.cuda import _runtime

    fake = _FakeCuda()
    monkeypatch.setattr(_runtime, "device_id", lambda: 0)
    monkeypatch.setattr(_arrays, "SIMULATOR", False)
    monkeypatch.setattr(_arrays, "cuda", fake)
    monkeypatch.setattr(_arrays, "_external_streams", {})
    monkeypatch.setattr(_arrays, "_default_streams", {})
    _Event.log = []
    return _arrays


class _Tensor:
    def __init__(self):
        self.device = "cuda:0"
        self.recorded = []

    def record_stream(self, stream):
        self.recorded.append(stream)


def _described(arrays, kind, stream=None, obj=None):
    return arrays.Described(obj, kind, (2, 3), (12, 4), None, 0, False, stream)


def test_numba_results_are_not_bound_to_the_default_stream_object(arrays, monkeypatch):
    """A result bound to numba's default Stream object would warn (int(stream)) each time
    its __cuda_array_interface__ is read; it is allocated with stream=0 instead."""
    import numpy as np

    from types import SimpleNamespace

    from nbsoftmax.cuda import _pool

    calls = []

    def pooled(shape, strides, dtype, handle, stream=0):  # results and staging buffers
        calls.append(("pool", handle, stream))
        return SimpleNamespace(gpu_data=np.empty(4, dtype))

    def view(memory, shape, strides, dtype, stream=0):  # the flat view of a result
        calls.append(("view", stream))

    monkeypatch.setattr(_pool, "device_array", pooled)
    monkeypatch.setattr(_pool, "array_over", view)
    like = _described(arrays, "numba")
    arrays.allocate(like, (2, 3), (12, 4), np.dtype(np.float32), _Stream(0))
    arrays.temporary((5,), np.dtype(np.float64), _Stream(0))
    created = _Stream(9)
    arrays.allocate(like, (2, 3), (12, 4), np.dtype(np.float32), created)
    assert calls[:3] == [("pool", 0, 0), ("view", 0), ("pool", 0, 0)]
    assert calls[3][:2] == ("pool", 9) and calls[3][2] is created
    assert calls[4][0] == "view" and calls[4][1] is created


def test_torch_inputs_are_ordered_and_protected_on_another_stream(arrays, monkeypatch):
    monkeypatch.setattr(arrays, "_torch_current", lambda d: 77)  # torch's current stream
    monkeypatch.setattr(arrays, "_torch_stream", lambda handle, device: ("torch", handle))
    tensor = _Tensor()
    chosen = arrays.call_stream(_Stream(99), (_described(arrays, "torch", obj=tensor),))
    assert chosen.handle.value == 99
    # the kernels wait for torch's stream, and torch's allocator waits for theirs
    assert _Event.log == [("record", 77), ("wait", 99)]
    assert tensor.recorded == [("torch", 99)]
    _Event.log = []
    tensor.recorded = []
    chosen = arrays.call_stream(None, (_described(arrays, "torch", obj=tensor),))
    assert chosen.handle.value == 77 and _Event.log == [] and tensor.recorded == []


def test_every_producer_stream_is_waited_for(arrays):
    a = _described(arrays, "cupy", stream=5)
    b = _described(arrays, "cupy", stream=6)
    chosen = arrays.call_stream(None, (a, b))
    assert chosen.handle.value == 5
    assert _Event.log == [("record", 6), ("wait", 5)]


def test_split_scratch_per_real_stream_and_retired_until_the_stream_passes(monkeypatch):
    from nbsoftmax.cuda import _workspace

    fake = _FakeCuda()
    monkeypatch.setattr(_workspace, "SIMULATOR", False)
    monkeypatch.setattr(_workspace, "cuda", fake)
    monkeypatch.setattr(_workspace, "_shared", {})
    monkeypatch.setattr(_workspace, "device_id", lambda: 0)
    found = {}

    def in_thread(name, handle):
        found[name] = _workspace.workspace(_Stream(handle))

    for name, handle in (("a2", 2), ("b2", 2), ("a0", 0), ("b0", 0), ("a9", 9), ("b9", 9)):
        t = threading.Thread(target=in_thread, args=(name, handle))
        t.start()
        t.join()
    # per-thread default streams are distinct streams: one scratch per thread
    assert found["a2"] is not found["b2"] and found["a0"] is not found["b0"]
    assert found["a9"] is found["b9"]  # a created stream is shared, under its lock
    monkeypatch.setattr(_workspace, "device_id", lambda: 1)
    assert _workspace.workspace(_Stream(9)) is not found["a9"]  # and per device
    space = found["a9"]
    stream = _Stream(9)
    with space.lock:
        small = space.take(100, stream)
        assert space.take(1000, stream) is small  # at least MIN_ELEMENTS
        large = space.take(5000, stream)
    assert large is not small and large.size == 5000
    (event, kept), = space.retired
    assert kept is small  # kept until the stream has passed the launches that use it
    with space.lock:
        space.take(10, stream)
    assert space.retired == [(event, small)]
    event.done = True
    with space.lock:
        space.take(10, stream)
    assert space.retired == []


# ------------------------------------------------------------------ devices (defect 6)


class _Array:
    def __init__(self, ptr):
        self.__cuda_array_interface__ = {"data": (ptr, False), "shape": (1,), "typestr": "<f4",
                                         "version": 3}


def test_arrays_run_on_their_device(monkeypatch):
    from nbsoftmax.cuda import _api, _runtime

    entered = []

    class Gpu:
        def __init__(self, i):
            self.i = i

        def __enter__(self):
            entered.append(self.i)

        def __exit__(self, *exc):
            entered.append(-self.i)

    class FakeCuda:
        gpus = [Gpu(0), Gpu(1)]

    monkeypatch.setattr(_runtime, "SIMULATOR", False)
    monkeypatch.setattr(_runtime, "cuda", FakeCuda())
    monkeypatch.setattr(_runtime, "_device_count", lambda: 2)
    monkeypatch.setattr(_runtime, "device_id", lambda: 0)
    monkeypatch.setattr(_runtime, "pointer_device", lambda ptr: ptr // 1000)

    @_api._on_device
    def op(x, out, stream):
        entered.append("ran")
        return x

    op(_Array(1500), None, None)
    assert entered == [1, "ran", -1]
    entered.clear()
    op(_Array(500), _Array(600), None)
    assert entered == ["ran"]
    with pytest.raises(ValueError, match="x is on CUDA device 1 but out is on device 0"):
        op(_Array(1500), _Array(10), None)


# ------------------------------------------------------------------ toolchain (defect 8)


@needs_linux
def test_missing_nvvm_is_reported_with_what_to_install():
    out = run_python(
        "from numba import cuda\nfrom numba.cuda.cudadrv import nvvm\n"
        "cuda.is_available = lambda: True\nnvvm.is_available = lambda: False\n"
        "from nbsoftmax.cuda import _runtime\n"
        "try:\n    _runtime.require()\nexcept TypeError as e:\n    print('ERR', e)\n",
        env=NO_SIMULATOR)
    assert "libNVVM" in out and 'nbsoftmax[cuda12]' in out, out


@needs_linux
def test_toolchain_of_the_test_extra_is_complete():
    out = run_python(
        "from nbsoftmax.cuda import _runtime, verify\n"
        "print(_runtime.toolchain_problem(), bool(verify.find_tool('ptxas')))\n",
        env=NO_SIMULATOR)
    assert out.split() == ["None", "True"], out


# ------------------------------------------------------------------ the GPU benchmark's report


def test_gpu_benchmark_arguments_and_report(tmp_path, capsys):
    """The benchmark runs only on a GPU; its arguments, rows, table, sweep summary and JSON
    are checked here, and benchmarks/gpu_check.sh parses (bash -n)."""
    import subprocess

    from nbsoftmax.cuda import _bench

    args = _bench.parse_args(["--quick", "--json", str(tmp_path / "b.json")])
    assert args.quick and args.dtypes == ["float32"]
    assert _bench.parse_args([]).dtypes == ["float32", "float16"]
    with pytest.raises(SystemExit) as exc:
        _bench.parse_args(["--dtypes", "int8"])
    assert exc.value.code == 2
    quick = list(_bench.cases(True))
    assert len(quick) == 7 and sum(c[3] for c in quick) == 4
    assert max(c[1][1] for c in _bench.cases(False) if c[3]) == 65_536  # the sweep
    nbytes = 4096 * 4096 * 4
    rows = [_bench.make_row("4096 x 4096", "float32", "softmax", nbytes, 0.05, 0.06, 0.045,
                            0.07, 0.1),
            _bench.make_row("4096 x 4096", "float32", "softmax_bwd", nbytes, 0.08, None,
                            0.045, 0.12),
            _bench.make_row("16 x 4,000,000", "float32", "softmax", 16 * 4_000_000 * 4, 0.2,
                            0.21, 0.19)]
    assert rows[0]["gb_per_s"] == round(2 * nbytes / 0.05 / 1e6, 1)
    assert rows[0]["of_copy"] == 0.9 and rows[0]["x_torch"] == 1.4 and rows[0]["x_cupy"] == 2.0
    assert rows[1]["of_copy"] == round(3 * nbytes / 0.08 / (2 * nbytes / 0.045), 3)
    lines = [_bench.format_row(r) for r in rows]
    assert all(len(line) == len(_bench.header()) for line in lines)
    assert lines[1].split()[6] == "-"  # no end-to-end time measured
    sweep = _bench.sweep_summary(rows, {"4096 x 4096"})
    assert sweep == {"forward": {"geomean_x_torch": 1.4, "min_x_torch": 1.4, "cases": 1},
                     "backward": {"geomean_x_torch": 1.5, "min_x_torch": 1.5, "cases": 1}}
    _bench.write_json(args.json, "test", {"torch": None}, rows, sweep, {"softmax(d)": 9.5})
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["peers"] == ["torch"] and data["rows"][2]["x_torch"] is None
    assert set(_bench.COLUMNS) <= set(data["rows"][0])
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    subprocess.run(["bash", "-n", str(root / "benchmarks" / "gpu_check.sh")], check=True)
    with pytest.raises(SystemExit) as exc:
        _bench.parse_args(["--help"])
    assert exc.value.code == 0
    assert "--json" in capsys.readouterr().out
