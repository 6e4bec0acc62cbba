"""Python threads under every threading layer, and the user's threading settings.

Each layer runs in its own process (Numba picks it once per process). Measured here with
Numba's defaults: under workqueue, two threads launching parallel kernels at once abort the
process ("Terminating: Nested parallel kernel launch detected").
"""

import json
import os

import pytest

import nbsoftmax
from tests.subproc import run_python

# 8 threads released together (concurrent first calls: compilation under the registry's
# lock), each cycling through every function x case x (out= or not) for DURATION seconds
# and at least once through all combinations. Expected values come from the float64
# reference, computed before the threads start.
THREADS_SCRIPT = """
import os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import numba
import nbsoftmax
from tests import reference

DURATION = float(sys.argv[1])
rng = np.random.default_rng(0)
CASES = [  # (x, axis): small serial ones, and every parallel driver (rows, split, columns)
    (rng.standard_normal((3, 7)).astype(np.float32), -1),
    (rng.standard_normal((5, 6)), 0),
    (rng.standard_normal((64, 1024)).astype(np.float32), -1),
    (rng.standard_normal((2, 300_000)).astype(np.float32), -1),
    (rng.standard_normal((512, 128)), 0),
]
OPS = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward"]
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}

def expected(op, x, axis, g, y):
    if op in ("softmax_backward", "log_softmax_backward"):
        return getattr(reference, op)(g, y, axis)
    return getattr(reference, op)(x, axis)

COMBOS = []
for x, axis in CASES:
    g = rng.standard_normal(x.shape).astype(x.dtype)
    y = {"softmax_backward": reference.softmax(x, axis).astype(x.dtype),
         "log_softmax_backward": reference.log_softmax(x, axis).astype(x.dtype)}
    for op in OPS:
        want = expected(op, x, axis, g, y.get(op))
        for use_out in (False, True) if op != "logsumexp" else (False,):
            COMBOS.append((op, x, axis, g, y.get(op), want, use_out))

def call(op, x, axis, g, y, use_out):
    fn = getattr(nbsoftmax, op)
    out = np.empty(x.shape, x.dtype) if use_out else None
    if op == "logsumexp":
        return fn(x, axis)
    if y is not None:
        return fn(g, y, axis, out=out)
    return fn(x, axis, out=out)

barrier = threading.Barrier(8)

def worker(tid):
    barrier.wait()
    deadline = time.monotonic() + DURATION
    done = 0
    while done < len(COMBOS) or time.monotonic() < deadline:
        op, x, axis, g, y, want, use_out = COMBOS[(tid * 7 + done) % len(COMBOS)]
        got = call(op, x, axis, g, y, use_out)
        rtol = RTOL[x.dtype]
        if not np.allclose(got, want, rtol=rtol, atol=rtol):
            raise AssertionError(f"thread {tid}: {op} {x.shape} axis={axis} out={use_out}: "
                                 f"max error {np.max(np.abs(got - want))}")
        done += 1
    return done

with ThreadPoolExecutor(8) as pool:
    counts = list(pool.map(worker, range(8)))
print(numba.threading_layer(), sum(counts))
"""


def _has_tbb():
    from nbsoftmax import _threading

    return _threading.tbb_preloaded is not None or any(
        os.path.exists(path) for path in _threading._tbb_candidates())


def _has_omp():
    try:
        from numba.np.ufunc import omppool  # noqa: F401
    except ImportError:
        return False
    return True


needs_tbb = pytest.mark.skipif(
    not _has_tbb(), reason="no libtbb.so.12 in this environment (the tbb wheel, a dependency "
                           "on Linux x86-64 only)")
needs_omp = pytest.mark.skipif(not _has_omp(), reason="this Numba build has no OpenMP layer")

LAYERS = [
    pytest.param("tbb", marks=needs_tbb),
    pytest.param("omp", marks=needs_omp),
    "workqueue",
]


@pytest.mark.parametrize("layer", LAYERS)
def test_eight_threads_every_function(layer):
    out = run_python(THREADS_SCRIPT, env={"NUMBA_THREADING_LAYER": layer}, args=["2.5"])
    active, calls = out.split()
    assert active == layer
    assert int(calls) >= 8 * 45  # every thread did every combination


@needs_tbb
def test_default_layer_is_tbb():
    """With nothing configured, Numba's own order finds the libtbb nbsoftmax loaded."""
    out = run_python("""
        import numpy as np, numba, nbsoftmax
        nbsoftmax.softmax(np.ones((64, 1024), np.float32))
        print(numba.threading_layer())
    """)
    assert out.split() == ["tbb"]


# ------------------------------------------------------------------ the user's settings


SETTINGS_SCRIPT = """
import json, os
import numba
from numba.core import config
before = {k: repr(getattr(config, k)) for k in dir(config) if k.isupper()}
environ_before = dict(os.environ)
import numpy as np
import nbsoftmax
from nbsoftmax import cpu, _threading
x = np.ones((64, 1024), np.float32)
for fn in (nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.logsumexp):
    fn(x)
nbsoftmax.softmax_backward(x, x)
after = {k: repr(getattr(config, k)) for k in dir(config) if k.isupper()}
print(json.dumps({
    "layer": numba.threading_layer(),
    "threads": numba.get_num_threads(),
    "parallel_kernels": sorted(k[0] for k in cpu._compiled if k[3]),
    "config_changed": sorted(k for k in before if before[k] != after.get(k)),
    "environ_changed": dict(os.environ) != environ_before,
    "tbb_preloaded": _threading.tbb_preloaded,
}))
"""


def settings_run(env):
    return json.loads(run_python(SETTINGS_SCRIPT, env=env).strip().splitlines()[-1])


@pytest.mark.parametrize("layer", [pytest.param("omp", marks=needs_omp), "workqueue"])
def test_numba_threading_layer_is_respected(layer):
    result = settings_run({"NUMBA_THREADING_LAYER": layer})
    assert result["layer"] == layer
    assert result["tbb_preloaded"] is None  # nothing loaded for a layer that cannot use it
    assert result["config_changed"] == [] and not result["environ_changed"]


@needs_omp
def test_numba_layer_priority_is_respected():
    result = settings_run({"NUMBA_THREADING_LAYER_PRIORITY": "omp tbb workqueue"})
    assert result["layer"] == "omp"
    assert result["config_changed"] == [] and not result["environ_changed"]


def test_default_configuration_is_not_changed():
    result = settings_run({})
    assert result["config_changed"] == [] and not result["environ_changed"]
    assert result["parallel_kernels"]  # (2 threads or more: the large calls ran in parallel)


def test_numba_num_threads_is_respected():
    result = settings_run({"NUMBA_NUM_THREADS": "1"})
    assert result["threads"] == 1
    assert result["parallel_kernels"] == []
    assert result["config_changed"] == []


def test_set_num_threads_is_respected():
    out = run_python("""
        import numba, numpy as np, nbsoftmax
        from nbsoftmax import cpu
        x = np.ones((64, 1024), np.float32)
        numba.set_num_threads(1)
        nbsoftmax.softmax(x)
        serial_only = not any(k[3] for k in cpu._compiled)
        numba.set_num_threads(2)
        nbsoftmax.softmax(x)
        print(serial_only, any(k[3] for k in cpu._compiled), numba.get_num_threads())
    """, env={"NUMBA_NUM_THREADS": "2"})
    assert out.split() == ["True", "True", "2"]


# ------------------------------------------------------------------ nbsoftmax info


@pytest.mark.parametrize("layer, thread_safe, fork_safe", [
    pytest.param("tbb", True, True, marks=needs_tbb),
    pytest.param("omp", True, False, marks=needs_omp),  # GNU OpenMP (Linux wheels)
    ("workqueue", False, True),
])
def test_info_reports_layer_and_safety(layer, thread_safe, fork_safe):
    out = run_python("import sys; from nbsoftmax.cli import main; sys.exit(main(sys.argv[1:]))",
                     env={"NUMBA_THREADING_LAYER": layer, "NUMBA_NUM_THREADS": "2"},
                     args=["info", "--json"])
    info = json.loads(out)
    assert info["threading_layer"] == layer
    assert info["num_threads"] == 2
    assert info["layer_thread_safe"] is thread_safe
    assert info["layer_fork_safe"] is fork_safe
    assert info["nbsoftmax"] == nbsoftmax.__version__


def test_info_text(capsys):
    from nbsoftmax.cli import main

    assert main(["info"]) == 0
    text = capsys.readouterr().out
    for label in ("threading layer", "threads", "thread-safe", "fork-safe", "kernel cache"):
        assert f"\n{label}" in text
