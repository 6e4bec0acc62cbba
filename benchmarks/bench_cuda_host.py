"""Host time of one GPU call, measured without a GPU: the CUDA driver replaced by a stub.

``benchmarks/cuda_stub/libcuda_stub.c`` is compiled with gcc into a temporary
``libcuda.so.1`` that a child process loads first (``LD_LIBRARY_PATH``): kernel launches
return at once, device memory is host memory. Everything above the driver is the real
code: nbsoftmax, numba-cuda (kernels compiled by the real NVVM for sm_90, which the stub
reports), cuda.core and cuda.bindings. What a call costs in the child is therefore the
host time a call would cost in front of a GPU, less the driver's own work (~2-5 us per
launch on real hardware, not counted here).

Each op is timed as a whole public call on a 4096 x 1024 float32 numba device array
(``--shape``): the median over ``--rounds`` rounds of ``--calls`` calls of the CPU time the
process used per call (``time.process_time``: on a shared machine other processes'
load inflates wall time but barely this), with the wall time beside it.

Usage::

    python benchmarks/bench_cuda_host.py [--json FILE] [--profile OP] [--calls N]

``--json FILE`` writes microseconds of CPU per call under the keys ``softmax_out``,
``softmax_alloc``, ``log_softmax_out``, ``softmax_backward_out``,
``log_softmax_backward_out`` and ``logsumexp``. ``--profile OP`` prints the cProfile summary
of ``--calls`` calls of one op (the functions with the most own time, and calls per call).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

STUB_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda_stub",
                           "libcuda_stub.c")
STUB_DEVICE_NAME = "nbsoftmax stub (no GPU)"
OPS = ("softmax_out", "softmax_alloc", "log_softmax_out", "softmax_backward_out",
       "log_softmax_backward_out", "logsumexp")


class StubUnavailable(RuntimeError):
    """The stub driver cannot be built here (no C compiler)."""


def build_stub(directory):
    """Compile the stub driver into ``directory/libcuda.so.1``; returns the directory."""
    compiler = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if compiler is None:
        raise StubUnavailable("no C compiler (gcc or cc) on PATH to build the CUDA stub")
    target = os.path.join(directory, "libcuda.so.1")
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", target, STUB_SOURCE],
                   check=True, capture_output=True, text=True)
    return directory


def stub_environment(stub_dir):
    """The environment of a child process that loads the stub as its CUDA driver."""
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (stub_dir, env.get("LD_LIBRARY_PATH")) if p)
    # The kernels compiled for the stub's sm_90 are real PTX, but keep them out of the
    # package's own cache: one directory per user, reused between runs (NVVM takes ~1 s
    # per kernel).
    env["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(),
                                          f"nbsoftmax-cuda-stub-cache-{os.getuid()}")
    return env


def run_child(args, env, timeout=900):
    """Run this file's child mode with args under env; returns its JSON report."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the stubbed child failed (status {proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    report["printed"] = "\n".join(lines[:-1])
    return report


# ------------------------------------------------------------------ child (stub loaded)


def _calls(shape):
    import numpy as np
    from numba import cuda

    import nbsoftmax

    x = cuda.to_device(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    g = cuda.to_device(np.ones(shape, np.float32))
    out = cuda.device_array(shape, np.float32)
    return {
        "softmax_out": lambda: nbsoftmax.softmax(x, out=out),
        "softmax_alloc": lambda: nbsoftmax.softmax(x),
        "log_softmax_out": lambda: nbsoftmax.log_softmax(x, out=out),
        "softmax_backward_out": lambda: nbsoftmax.softmax_backward(g, x, out=out),
        "log_softmax_backward_out": lambda: nbsoftmax.log_softmax_backward(g, x, out=out),
        "logsumexp": lambda: nbsoftmax.logsumexp(x, axis=-1),
    }


def _time(fn, calls, rounds):
    """(median CPU us, median wall us) per call over rounds of calls."""
    for _ in range(3):
        fn()
    cpu, wall = [], []
    for _ in range(rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        cpu.append((time.process_time() - c0) / calls * 1e6)
        wall.append((time.perf_counter() - w0) / calls * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def _profile(fn, calls, top=25):
    import cProfile
    import io
    import pstats

    fn()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    return stats.total_calls / calls, stream.getvalue()


def _packed_bytes(launch):
    """The bytes of each kernel parameter a ``PackedLaunch`` hands to cuLaunchKernel."""
    import ctypes

    return [ctypes.string_at(ctypes.addressof(v), ctypes.sizeof(v)) for v in launch.values]


def _numba_bytes(kernel, args, sizes):
    """The bytes of each parameter numba-cuda's own launch passes for args (cuda.core's
    packing of what ``_Kernel._prepare_args`` makes), cut to the sizes of ours."""
    import ctypes

    from cuda.core._kernel_arg_handler import ParamHolder

    (compiled,) = kernel.overloads.values()
    values = []
    for ty, value in zip(compiled.argument_types, args):
        compiled._prepare_args(ty, value, 0, [], values)
    holder = ParamHolder(values)
    pointers = (ctypes.c_void_p * len(values)).from_address(holder.ptr)
    return [ctypes.string_at(pointers[i], sizes[i]) for i in range(len(values))]


def self_check(shape):
    """What the test suite checks in a stubbed child (no timing): every op runs; each
    prepacked launch passes the bytes numba-cuda's launcher would pass, with the grid and
    block the plain path picks; pooled results are reused; the fast path hands back out."""
    import numpy as np
    from numba import cuda

    import nbsoftmax
    from nbsoftmax.cuda import _arrays, _launch

    calls = _calls(shape)
    for fn in calls.values():
        fn()
    x = cuda.to_device(np.zeros(shape, np.float32))
    y, out = cuda.device_array(shape, np.float32), cuda.device_array(shape, np.float32)
    stream = cuda.stream()
    checked = []
    for op, inputs in (("softmax", (x,)), ("log_softmax", (x,)),
                       ("softmax_backward", (x, y)), ("log_softmax_backward", (x, y))):
        for rows, n in ((shape[0], shape[1]), (4, 3000), (3, 5)):  # warp, block, warp
            size = rows * n
            views = [v.reshape(-1)[:size] for v in (*inputs, out)]
            recorded = []

            def record(kernel, grid, block, _stream, recorded=recorded):
                return lambda *args: recorded.append((kernel, grid, block, args))

            _launch._enqueue(op, views[:-1], views[-1], rows, n, 1, stream, record)
            pointers = [v.device_ctypes_pointer.value for v in views]
            launches = _launch._plan_launches(op, np.dtype(np.float32), pointers, rows, n, 1,
                                              stream)
            assert len(launches) == len(recorded), (op, rows, n)
            for (packed, _), (kernel, grid, block, args) in zip(launches, recorded):
                ours = _packed_bytes(packed)
                theirs = _numba_bytes(kernel, args, [len(b) for b in ours])
                assert ours == theirs, (op, rows, n)
                assert packed.grid[:len(np.atleast_1d(grid))] == tuple(np.atleast_1d(grid))
                assert packed.block[:len(np.atleast_1d(block))] == tuple(np.atleast_1d(block))
                checked.append(f"{op} {rows}x{n}")
    # logsumexp's prepacked launches (plain; weighted with the sign; masked)
    from nbsoftmax.cuda import _launcher, _lse_api

    mask = cuda.device_array(shape[0] * shape[1], np.uint8)
    for rows, n, weighted, masked, signed in ((shape[0], shape[1], False, False, False),
                                              (4, 3000, True, False, True),
                                              (3, 5, False, True, False)):
        size = rows * n
        views = [x.reshape(-1)[:size], y.reshape(-1)[:size] if weighted else None,
                 mask[:size] if masked else None, out.reshape(-1)[:rows],
                 out.reshape(-1)[rows:2 * rows] if signed else None]
        recorded = []

        def record(kernel, grid, block, _stream, recorded=recorded):
            return lambda *args: recorded.append((kernel, grid, block, args))

        _lse_api._enqueue_lse(views, rows, n, 1, stream, record)
        launches = _launcher.record(
            lambda configure: _lse_api._enqueue_lse(views, rows, n, 1, stream, configure),
            [v for v in views if v is not None], _arrays.stream_handle(stream))
        assert len(launches) == len(recorded) == 1, (rows, n)
        for (packed, _), (kernel, grid, block, args) in zip(launches, recorded):
            ours = _packed_bytes(packed)
            assert ours == _numba_bytes(kernel, args, [len(b) for b in ours]), (rows, n)
            assert packed.grid[0] == grid and packed.block[0] == block
            checked.append(f"logsumexp {rows}x{n}")
    # launches packed per call (_launcher.launch_once): the strided copy that stages a
    # strided input, and logsumexp under a capture of _configure, must pass numba-cuda's
    # bytes too

    seen = []

    def capture(kernel, grid, block, stream):
        return lambda *args: seen.append((kernel, args))

    plain = _launch._configure
    _launch._configure = capture
    try:
        nbsoftmax.logsumexp(x, axis=-1)
        nbsoftmax.softmax(x[:, ::2])  # a strided view: staged by the copy kernel
    finally:
        _launch._configure = plain
    for kernel, args in seen:
        ours = [bytes(v) for v in _launcher.pack_now(kernel, args)[1]]
        assert ours == _numba_bytes(kernel, args, [len(b) for b in ours]), kernel
    checked.append(f"{len(seen)} launches packed per call")
    # the pool: a dropped result's block serves the next call on the same stream
    first = nbsoftmax.softmax(x)
    pointer = first.device_ctypes_pointer.value
    del first
    again = nbsoftmax.softmax(x)
    reused = again.device_ctypes_pointer.value == pointer
    results = {
        "softmax_out_is_out": nbsoftmax.softmax(x, out=out) is out,
        "alloc_shape": list(again.shape), "alloc_dtype": str(again.dtype),
        "alloc_strides": list(again.strides), "pool_reused": reused,
        "alloc_is_numba": type(again) is _arrays.DeviceNDArray,
    }
    print(json.dumps({"checked": checked, **results}))


def child(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="4096x1024")
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--profile", choices=OPS)
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    from numba import cuda

    name = cuda.get_current_device().name
    name = name.decode() if isinstance(name, bytes) else str(name)
    if name != STUB_DEVICE_NAME:  # a real driver was loaded: these figures would mislead
        raise SystemExit(f"the CUDA driver in use is not the stub (device {name!r})")
    shape = tuple(int(v) for v in args.shape.split("x"))
    if args.check:
        return self_check(shape)
    calls = _calls(shape)
    report = {"shape": shape, "cpu_us": {}, "wall_us": {}}
    if args.profile:
        per_call, text = _profile(calls[args.profile], args.calls)
        print(text)
        report["calls_per_call"] = per_call
    for op in args.ops.split(","):
        report["cpu_us"][op], report["wall_us"][op] = _time(calls[op], args.calls, args.rounds)
    print(json.dumps(report))


# ------------------------------------------------------------------ parent


def measure(calls=300, rounds=7, shape="4096x1024", profile=None, ops=OPS):
    """Build the stub, run the child, return its report (``cpu_us``, ``wall_us`` per op)."""
    with tempfile.TemporaryDirectory(prefix="nbsoftmax-cuda-stub-") as tmp:
        env = stub_environment(build_stub(tmp))
        args = ["--calls", str(calls), "--rounds", str(rounds), "--shape", shape,
                "--ops", ",".join(ops)]
        if profile:
            args += ["--profile", profile]
        return run_child(args, env)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        return child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="FILE", help="write CPU us per call per op")
    p.add_argument("--profile", choices=OPS, help="print the cProfile summary of one op")
    p.add_argument("--calls", type=int, default=300, help="calls per round (300)")
    p.add_argument("--rounds", type=int, default=7, help="rounds; the median is kept (7)")
    p.add_argument("--shape", default="4096x1024", help="ROWSxCOLS of the float32 input")
    args = p.parse_args(argv)
    report = measure(args.calls, args.rounds, args.shape, args.profile)
    if report["printed"]:
        print(report["printed"])
        print(f"function calls per call: {report['calls_per_call']:.0f}")
    print(f"host time per call, CUDA driver stubbed, {args.shape} float32 "
          "(CPU us; wall us in brackets)")
    for op in OPS:
        print(f"  {op:26s} {report['cpu_us'][op]:8.1f}   [{report['wall_us'][op]:8.1f}]")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({op: round(report["cpu_us"][op], 2) for op in OPS}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
