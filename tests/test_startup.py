"""Start-up: a first call that loads its kernel from the cache does not start Numba's compiler.

Numba's own cache refreshes the target context before loading, which imports all of Numba's
lowering registries (numba.np.arraymath probing BLAS through scipy.linalg among them): 0.7 s
of a 1.0 s warm first call on the project's 2-core machine. nbsoftmax's cache loads machine
code without it (``cpu._cache.KernelCache.load_overload``). Timings are in
``benchmarks/latency.py``; this checks the mechanism, which does not depend on the machine.
"""

import json

from tests.subproc import copy_package, run_python

PROBE = """
import json, sys
import numpy as np
import nbsoftmax
from nbsoftmax import cpu

for shape in ((4, 10), (64, 1000)):  # a serial and a parallel kernel
    x = np.linspace(-3, 3, shape[0] * shape[1], dtype=np.float32).reshape(shape)
    y = nbsoftmax.softmax(x)
    assert np.allclose(y.sum(axis=-1), 1, atol=1e-5)
stats = [k.stats for k in cpu._compiled.values()]
print(json.dumps({
    "hits": sum(sum(s.cache_hits.values()) for s in stats),
    "misses": sum(sum(s.cache_misses.values()) for s in stats),
    "registries": [m for m in ("numba.np.arraymath", "numba.np.linalg", "scipy.linalg",
                               "numba.np.npyimpl") if m in sys.modules],
}))
"""


def test_warm_first_call_loads_without_numbas_registries(tmp_path):
    site = copy_package(tmp_path / "site")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    cold = json.loads(run_python(PROBE, env=env, path_first=site).splitlines()[-1])
    assert cold["misses"] == 2 and "numba.np.arraymath" in cold["registries"]
    warm = json.loads(run_python(PROBE, env=env, path_first=site).splitlines()[-1])
    assert (warm["hits"], warm["misses"]) == (2, 0)
    assert warm["registries"] == []
