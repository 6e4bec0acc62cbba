"""Allocations of a call on a large contiguous float32 array, traced with tracemalloc.

The dispatch layer may allocate the result and nothing else full-size; with ``out=`` (the
input itself included) nothing at all. tracemalloc sees NumPy's allocations (the result,
any staging copy); the kernels' per-thread work arrays come from Numba's allocator and are
covered by the peak-RSS figures of benchmarks/memory.py.
"""

import tracemalloc

import numpy as np
import pytest

import nbsoftmax

# 32 MB inputs: rows (parallel rows kernel), one long row (split kernel), non-last axis
# (columns kernel).
CASES = {
    "rows": ((512, 16384), -1),
    "one_row": ((8 << 20,), -1),
    "axis0": ((2048, 4096), 0),
}
SMALL = 64 << 10  # bytes: bookkeeping (views, shape tuples), nothing array-sized


def traced_peak(fn):
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - before


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(5)
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, (shape, _) in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("mode", ["new result", "out", "in place"])
def test_no_full_size_allocation_besides_the_result(arrays, case, op, mode):
    fn = getattr(nbsoftmax, op)
    axis = CASES[case][1]
    x = arrays[case].copy() if mode == "in place" else arrays[case]
    out = x if mode == "in place" else np.empty_like(x) if mode == "out" else None
    # compile or load the kernel of this mode (in place runs its own), start the threads
    warm = x.copy()
    fn(warm, axis=axis, out=warm if mode == "in place" else np.empty_like(x))
    result, peak = traced_peak(lambda: fn(x, axis=axis, out=out))
    allowed = SMALL + (x.nbytes if out is None else 0)
    assert peak <= allowed, f"{op} {case} {mode}: {peak / 2**20:.1f} MiB traced"
    if out is not None:
        assert result is out
    assert np.isfinite(result).all()
