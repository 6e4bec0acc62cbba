"""The host-overhead benchmark's machinery (benchmarks/bench_cuda_host.py), run once.

A child process loads the stub CUDA driver (benchmarks/cuda_stub/libcuda_stub.c, built
with gcc here) under the real numba-cuda, cuda.core and cuda.bindings, so that the GPU
host path runs without a GPU: every op's public call, the prepacked launches checked
byte for byte against numba-cuda's own argument packing (with the grid and block the
plain path picks), the result pool's reuse, and one tiny timing run with ``--json``. No
timing is asserted (the machine is shared). Skips when gcc or numba-cuda's
cuda.bindings are missing.
"""

import importlib.util
import json
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                       reason="no C compiler to build the CUDA driver stub"),
    pytest.mark.skipif(importlib.util.find_spec("numba.cuda") is None
                       or importlib.util.find_spec("cuda.bindings") is None,
                       reason="numba-cuda with cuda.bindings is not installed"),
]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "bench_cuda_host", os.path.join(ROOT, "benchmarks", "bench_cuda_host.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stub_env(bench, tmp_path_factory):
    env = bench.stub_environment(bench.build_stub(str(tmp_path_factory.mktemp("stub"))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return env


def test_prepacked_launches_match_numba_cuda(bench, stub_env):
    report = bench.run_child(["--check", "--shape", "64x256"], stub_env)
    ops = ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward")
    # warp (64 x 256, 3 x 5) and block (4 x 3000) strategies of every plain op
    packed_per_call = [c for c in report["checked"] if "packed per call" in c]
    assert sorted(set(report["checked"]) - set(packed_per_call)) == sorted(
        [f"{op} {shape}" for op in ops for shape in ("64x256", "4x3000", "3x5")]
        + [f"logsumexp {shape}" for shape in ("64x256", "4x3000", "3x5")])
    # the strided copy of a sliced input (logsumexp's launches are prepacked, checked above)
    assert len(packed_per_call) == 1 and int(packed_per_call[0].split()[0]) >= 1
    assert report["softmax_out_is_out"]
    assert report["alloc_shape"] == [64, 256] and report["alloc_dtype"] == "float32"
    assert report["alloc_strides"] == [1024, 4]
    assert report["alloc_is_numba"]
    assert report["pool_reused"]


def test_benchmark_json(bench, stub_env, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "stub_environment", lambda _dir: stub_env)
    target = tmp_path / "host.json"
    assert bench.main(["--calls", "2", "--rounds", "1", "--shape", "8x64",
                       "--json", str(target)]) == 0
    figures = json.loads(target.read_text())
    assert sorted(figures) == sorted(bench.OPS)
    assert all(value > 0 for value in figures.values())
