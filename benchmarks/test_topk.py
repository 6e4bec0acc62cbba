"""softmax_topk (pytest-benchmark) against the peers of
``nbsoftmax.cli.bench_peers.topk_peer_calls`` (NumPy softmax + np.argpartition; torch.topk of
torch.softmax when importable) and the copy roofline. Bytes moved: the input read once.

Run: ``python -m pytest benchmarks/test_topk.py``.
"""

import importlib.util

import numpy as np
import pytest

from nbsoftmax.cli import bench_peers as B

CASES = [(1024, 32_000, 5), (64, 128_256, 50)]
IMPLS = ["nbsoftmax", "numpy"] + (["torch"] if importlib.util.find_spec("torch") else []) \
    + ["np.copyto", "copy (threads)"]
_current = {}


def _calls(rows, n, k):
    key = (rows, n, k)
    if _current.get("key") != key:
        _current.clear()
        x = (np.random.default_rng(0).standard_normal((rows, n), np.float32) * 3)
        calls = B.topk_peer_calls(x, k)
        calls.update(B.roofline_calls(x.nbytes))
        _current.update(key=key, calls=calls, nbytes=x.nbytes)
    return _current["calls"], _current["nbytes"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("rows,n,k", CASES, ids=[f"{r}x{n}-k{k}" for r, n, k in CASES])
def test_softmax_topk(benchmark, rows, n, k, impl):
    calls, nbytes = _calls(rows, n, k)
    benchmark.group = f"softmax_topk float32 {rows}x{n} k={k}"
    # the roofline copies read and write: count both for it, one read for the others
    moved = 2 * nbytes if impl in ("np.copyto", "copy (threads)") else nbytes
    benchmark.extra_info.update(bytes_moved=moved, impl=impl)
    benchmark.pedantic(calls[impl], rounds=5, warmup_rounds=1, iterations=1)
