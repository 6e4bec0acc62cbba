"""segment_softmax (pytest-benchmark) against a NumPy ``maximum.reduceat``/``add.reduceat``
implementation, ``torch.sparse.softmax`` (when importable) and the copy roofline.

Cases (float32):

* ``zipf``: ragged rows with Zipf-distributed lengths (a = 1.5, capped at 1/20 of the values,
  rescaled to the total, at least 1), the issue's case of a CSR matrix of 1M rows and 50M stored values.
  The default here is 100k rows / 5M values (the machine this suite runs on in CI has 2
  cores, and the peers allocate several full-size temporaries: NumPy 5, torch more);
  ``NBSOFTMAX_BENCH_SEGMENT_FULL=1`` runs the issue's size.
* ``long``: 16 segments of 500k values: the bandwidth case (of copy).

Bytes moved: the values read once and the result written once (offsets: 8 bytes a
segment). torch.sparse.softmax has no CSR kernel on the CPU (torch 2.13: "Could not run
'aten::_sparse_softmax' ... 'SparseCsrCPU'"), so it runs on the COO form of the same matrix,
converted and coalesced outside the timing; its output allocation is inside, as is
nbsoftmax's in the "nbsoftmax" row ("nbsoftmax out=": into a preallocated array).

Run: ``python -m pytest benchmarks/test_segment.py``.
"""

import importlib.util
import os
import warnings

import numpy as np
import pytest

from nbsoftmax import segment
from nbsoftmax.cli import bench_peers as B

FULL = os.environ.get("NBSOFTMAX_BENCH_SEGMENT_FULL") == "1"
CASES = {
    "zipf": (1_000_000, 50_000_000) if FULL else (100_000, 5_000_000),
    "long": (16, 8_000_000),
}
IMPLS = ["nbsoftmax", "nbsoftmax out=", "numpy reduceat"] + \
    (["torch.sparse.softmax"] if importlib.util.find_spec("torch") else []) + \
    ["np.copyto", "copy (threads)"]
_current = {}


def zipf_offsets(rows, values, seed=0):
    """CSR offsets of `rows` rows with Zipf (a = 1.5) lengths summing to `values`."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.zipf(1.5, rows), values // 20).astype(np.float64)
    lengths = 1 + np.floor(lengths * ((values - rows) / lengths.sum())).astype(np.int64)
    lengths[np.argmax(lengths)] += values - lengths.sum()  # every row holds at least 1
    return np.concatenate([[0], np.cumsum(lengths)])


def numpy_segment_softmax(x, offsets):
    """The NumPy peer: ufunc.reduceat over the non-empty segments (reduceat gives x[start]
    for an empty one), maxima and sums repeated back to the entries."""
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    starts = offsets[:-1][nonempty]
    counts = lengths[nonempty]
    m = np.maximum.reduceat(x, starts)
    e = np.exp(x - np.repeat(m, counts))
    return e / np.repeat(np.add.reduceat(e, starts), counts)


def _torch_call(x, offsets):
    import torch

    rows = offsets.size - 1
    cols = int(np.diff(offsets).max())
    col = np.arange(x.size) - np.repeat(offsets[:-1], np.diff(offsets))  # packed columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's beta-state and invariant-check notices
        csr = torch.sparse_csr_tensor(torch.from_numpy(offsets), torch.from_numpy(col),
                                      torch.from_numpy(x), size=(rows, cols))
        coo = csr.to_sparse_coo().coalesce()
    return lambda: torch.sparse.softmax(coo, dim=1)


def _calls(case):
    if _current.get("case") != case:
        _current.clear()
        rows, values = CASES[case]
        off = zipf_offsets(rows, values) if case == "zipf" else \
            np.arange(0, values + 1, values // rows, dtype=np.int64)
        x = (np.random.default_rng(1).standard_normal(values) * 3).astype(np.float32)
        out = np.empty_like(x)
        calls = {
            "nbsoftmax": lambda: segment.segment_softmax(x, off),
            "nbsoftmax out=": lambda: segment.segment_softmax(x, off, out=out),
            "numpy reduceat": lambda: numpy_segment_softmax(x, off),
        }
        if "torch.sparse.softmax" in IMPLS:
            calls["torch.sparse.softmax"] = _torch_call(x, off)
        calls.update(B.roofline_calls(x.nbytes))
        segment.segment_softmax(x, off, out=out)  # compile outside the timing
        _current.update(case=case, calls=calls, moved=2 * x.nbytes + 8 * off.size)
    return _current["calls"], _current["moved"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_segment_softmax(benchmark, case, impl):
    calls, moved = _calls(case)
    rows, values = CASES[case]
    benchmark.group = f"segment_softmax float32 {case} {rows} segments {values} values"
    benchmark.extra_info.update(bytes_moved=moved, impl=impl)
    rounds = 3 if impl in ("numpy reduceat", "torch.sparse.softmax") else 7
    benchmark.pedantic(calls[impl], rounds=rounds, warmup_rounds=1, iterations=1)
