"""Big data: one row of 50 million float32, and arrays of more than 2**31 elements.

The > 2**31 test needs about 9 GB of memory and half a minute; it is marked slow and left
out of the default run. Run it with::

    python -m pytest -m slow tests/test_big.py
"""

import math

import numpy as np
import pytest

import nbsoftmax
from tests import reference


def test_one_row_of_50_million_float32_sums_to_one():
    x = np.random.default_rng(50).standard_normal(50_000_000, dtype=np.float32) * np.float32(4)
    y = nbsoftmax.softmax(x)
    assert y.dtype == np.float32
    assert abs(float(np.sum(y, dtype=np.float64)) - 1.0) <= 1e-5
    # Spot values against float64: exp(x - logsumexp(x)).
    m = float(x.max())
    total = sum(float(np.sum(np.exp(x[i : i + (1 << 22)].astype(np.float64) - m)))
                for i in range(0, x.size, 1 << 22))  # in float64, 32 MB at a time
    lse = m + math.log(total)
    picks = np.random.default_rng(1).integers(0, x.size, 1000)
    want = np.exp(x[picks].astype(np.float64) - lse)
    np.testing.assert_allclose(y[picks], want, rtol=2e-5)
    assert abs(float(nbsoftmax.logsumexp(x)) - lse) <= 1e-5 * abs(lse)


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


ROWS, N = (1 << 21) + 1, 1024  # 2**31 + 1024 float32 elements: 8.6 GB


@pytest.mark.slow
def test_more_than_2_31_elements_in_place():
    available = _available_bytes()
    if available is not None and available < 10 * 10**9:
        pytest.skip(f"needs ~10 GB of free memory, {available / 1e9:.1f} GB available")
    x = np.empty((ROWS, N), np.float32)
    assert x.size > 2**31
    pattern = np.linspace(-8, 8, N, dtype=np.float32)
    shifts = (np.arange(ROWS) % 7).astype(np.float32)  # rows differ; softmax is shift-free
    x[...] = pattern
    x[:, 0] += shifts

    # Rows: every row's softmax, written in place; the last rows lie past element 2**31.
    nbsoftmax.softmax(x, out=x)
    classes = np.repeat(pattern[None, :].astype(np.float64), 7, axis=0)
    classes[:, 0] += np.arange(7)
    expected = reference.softmax(classes)
    for start in range(0, ROWS, 1 << 14):
        stop = min(ROWS, start + (1 << 14))
        block = x[start:stop]
        want = expected[np.arange(start, stop) % 7]
        np.testing.assert_allclose(block, want, rtol=2e-5, atol=1e-12, err_msg=f"rows {start}:{stop}")

    # One slice of all 2**31 + 1024 elements: softmax in place and logsumexp.
    flat = x.reshape(-1)
    x[...] = pattern
    m = float(pattern.max())
    per_row = float(np.sum(np.exp(pattern.astype(np.float64) - m)))
    lse = m + math.log(per_row * ROWS)
    assert abs(float(nbsoftmax.logsumexp(flat)) - lse) <= 1e-5 * abs(lse)
    nbsoftmax.softmax(flat, out=flat)
    want_row = np.exp(pattern.astype(np.float64) - lse)
    total = 0.0
    for start in range(0, ROWS, 1 << 14):
        block = x[start : min(ROWS, start + (1 << 14))]
        np.testing.assert_allclose(block, np.broadcast_to(want_row, block.shape), rtol=2e-5)
        total += float(np.sum(block, dtype=np.float64))
    assert abs(total - 1.0) <= 1e-5
