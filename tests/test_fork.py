"""Worker pools after the parent has used nbsoftmax: fork, spawn and forkserver.

Measured with Numba's defaults (GNU OpenMP layer): after one parallel call, a fork-context
Pool hangs forever, each child killing itself with "fork() called from a process already
using GNU OpenMP, this is unsafe". nbsoftmax's policy (nbsoftmax/_threading.py): the default
install finds TBB, which is fork-safe; under GNU OpenMP, forked children run serial kernels.
"""

import json

import pytest

from tests.subproc import run_python
from tests.test_threads import needs_omp, needs_tbb

SCRIPT = """
import json, multiprocessing as mp, os, sys
import numpy as np
import numba
import nbsoftmax
from nbsoftmax import _threading
from tests import reference

X = np.random.default_rng(1).standard_normal((64, 1024)).astype(np.float32)  # parallel size

def work(i):
    x = X + np.float32(i)
    got = nbsoftmax.softmax(x)
    lse = nbsoftmax.logsumexp(x)
    ok = (np.allclose(got, reference.softmax(x), rtol=2e-5, atol=1e-7)
          and np.allclose(lse, reference.logsumexp(x), rtol=1e-5))
    return ok, _threading.parallel_mode(), os.getpid()

if __name__ == "__main__":
    method = sys.argv[1]
    assert np.allclose(nbsoftmax.softmax(X), reference.softmax(X), rtol=2e-5, atol=1e-7)
    layer = numba.threading_layer()  # started by the parent's parallel call
    with mp.get_context(method).Pool(2) as pool:
        # a hang becomes an error here (and run_python's timeout kills the whole group)
        results = pool.map_async(work, range(6)).get(timeout=120)
    assert all(ok for ok, _, _ in results), results
    assert os.getpid() not in {pid for _, _, pid in results}
    print(json.dumps({"layer": layer, "child_modes": sorted({m for _, m, _ in results})}))
"""


def pool_run(method, layer=None):
    env = {"NUMBA_THREADING_LAYER": layer} if layer else {}
    out = run_python(SCRIPT, env=env, args=[method], timeout=300)
    return json.loads(out.strip().splitlines()[-1])


@needs_tbb
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_after_parent_call_default_install(method):
    result = pool_run(method)
    assert result == {"layer": "tbb", "child_modes": ["free"]}


@needs_omp
def test_fork_pool_after_gnu_openmp_runs_serial_in_children():
    result = pool_run("fork", "omp")
    assert result == {"layer": "omp", "child_modes": ["serial"]}


def test_fork_pool_under_workqueue():
    result = pool_run("fork", "workqueue")
    assert result == {"layer": "workqueue", "child_modes": ["exclusive"]}


_FORK_WHILE_COMPILING = """
import os, sys, threading, time
import numba
import numpy as np
import nbsoftmax
from nbsoftmax import cpu
from tests import checks

x = np.linspace(-3, 3, 40).reshape(4, 10)  # float64: one serial kernel, compiled (empty cache)
worker = threading.Thread(target=nbsoftmax.softmax, args=(x,))
worker.start()
deadline = time.monotonic() + 60
while not cpu._compile_lock.locked():  # the worker is compiling now
    assert worker.is_alive() and time.monotonic() < deadline, "the compile was not seen"
    time.sleep(0.001)
pid = os.fork()
if pid == 0:  # the child: the same kernel, and a (small) compile of its own
    try:
        checks.assert_softmax(nbsoftmax.softmax(x), x)
        assert numba.njit(lambda a: a + 1)(1) == 2  # Numba's compiler lock is free
    except BaseException as exc:
        print("child failed:", repr(exc), flush=True)
        os._exit(1)
    os._exit(0)
worker.join()
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


def test_fork_while_another_thread_compiles(tmp_path):
    """The child of a fork taken while a thread holds the compile locks (nbsoftmax's and
    Numba's) must not wait forever for locks that no thread of it will release."""
    out = run_python(_FORK_WHILE_COMPILING, env={"NUMBA_CACHE_DIR": tmp_path / "cache"},
                     timeout=120)
    assert out.strip().splitlines()[-1] == "child 0"


def test_every_lock_of_the_package_is_fork_safe():
    """Issue 11 item 1: a lock held by a thread that does not exist in a forked child blocks
    the child forever, so every lock the package keeps beyond one call is a
    _threading.ForkSafeLock. Read from the source (importing the CUDA modules here would turn
    numba-cuda on for a real GPU in this test process)."""
    import ast
    import pathlib

    import nbsoftmax

    root = pathlib.Path(nbsoftmax.__file__).parent
    plain = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "_threading.py":
            continue  # ForkSafeLock itself wraps threading's locks
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Attribute)
                    and node.value.func.attr in ("Lock", "RLock")
                    and isinstance(node.value.func.value, ast.Name)
                    and node.value.func.value.id == "threading"):
                targets = [ast.unparse(t) for t in node.targets]
                # a lock in a local variable of one call lives and dies with that call
                if any("." in t or t.isupper() or t.startswith("_") for t in targets):
                    plain.append(f"{path.relative_to(root)}:{node.lineno} {targets}")
    assert not plain, plain
