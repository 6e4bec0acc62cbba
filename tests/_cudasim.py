"""The preamble of the simulator test files that use it: numba-cuda under its simulator, and
a fixture that shrinks the segment blocks to one warp and speeds up simulated threads.

The simulator must be chosen before numba-cuda is first imported in the process (see
test_cuda_sim.py): ``simulated_cuda`` turns it on when numba.cuda is not imported yet, and
skips the calling module when numba-cuda is missing or was imported for a real GPU.
"""

import os
import sys

import pytest


def simulated_cuda(test_file):
    """numba.cuda running under the simulator, or a module-level skip naming test_file."""
    if "numba.cuda" not in sys.modules:
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
        import numba.core.config

        numba.core.config.reload_config()
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
    if not getattr(cuda, "FakeCUDAKernel", None):
        pytest.skip("numba-cuda was imported without the simulator in this process (run "
                    f"NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/{os.path.basename(test_file)})",
                    allow_module_level=True)
    return cuda


@pytest.fixture(scope="module")
def small_blocks():
    """Segment kernels on 32-thread blocks (a segment of 37 loops within its block), and
    simulated threads switching often (they poll for barriers: ~4x faster)."""
    from nbsoftmax.cuda import _segment_api

    previous = _segment_api.THREADS_PER_BLOCK
    _segment_api.THREADS_PER_BLOCK = 32
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)
    yield
    sys.setswitchinterval(interval)
    _segment_api.THREADS_PER_BLOCK = previous
