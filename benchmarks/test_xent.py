"""cross_entropy forward + backward (pytest-benchmark) against the peers of
``nbsoftmax.cli.bench_peers.xent_peer_calls`` (NumPy; torch when importable) and the copy roofline.

Run: ``python -m pytest benchmarks/test_xent.py`` (the 4096 x 128,256 case holds two 2 GB
float32 arrays, plus the peers' own: ``-k 8x256000`` for the small one). Bytes moved: the
logits read once and the gradient written once, the least any fused kernel can move.
"""

import importlib.util

import pytest

from nbsoftmax.cli import bench_peers as B

CASES = [(8, 256_000), (4096, 128_256)]
IMPLS = ["nbsoftmax", "numpy"] + (["torch"] if importlib.util.find_spec("torch") else []) \
    + ["np.copyto", "copy (threads)"]
_current = {}


def _calls(rows, classes, dtype):
    key = (rows, classes, dtype)
    if _current.get("key") != key:
        _current.clear()
        logits, target = B.xent_inputs(rows, classes, dtype)
        calls = B.xent_peer_calls(logits, target)
        calls.update(B.roofline_calls(logits.nbytes))
        _current.update(key=key, calls=calls, nbytes=logits.nbytes)
    return _current["calls"], _current["nbytes"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("rows,classes", CASES, ids=[f"{r}x{c}" for r, c in CASES])
def test_cross_entropy(benchmark, rows, classes, impl):
    calls, nbytes = _calls(rows, classes, "float32")
    benchmark.group = f"cross_entropy+grad float32 {rows}x{classes}"
    benchmark.extra_info.update(bytes_moved=2 * nbytes, impl=impl)
    benchmark.pedantic(calls[impl], rounds=5, warmup_rounds=1, iterations=1)
