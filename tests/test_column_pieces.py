"""A non-last softmax axis with too few column tasks for the threads: the parallel drivers
cut the softmax axis into pieces whose column statistics are merged per column
(``cpu._drivers_columns._row_pieces``). Pieces that are all -inf, NaN columns and all -inf
columns must come out as the whole-column kernels give them (as scipy and torch do)."""

import numpy as np
import pytest

import nbsoftmax
from nbsoftmax.cpu import _drivers_columns
from tests import checks

# 60000 x 3 over axis 0: one task of 3 columns, above the parallel threshold, so cut into
# pieces (at least 2 whatever the thread count: pieces are sized, not counted per thread).
SHAPE = (60000, 3)


def _input(dtype, rng):
    x = (rng.standard_normal(SHAPE) * 4).astype(dtype)
    x[:40000, 0] = -np.inf  # whole pieces of -inf, the column max elsewhere
    x[::7, 1] = -np.inf
    return x


def test_the_case_is_cut_in_pieces():
    assert _drivers_columns._row_pieces(1, SHAPE[0], SHAPE[1]) > 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_pieces_match_the_reference(op, dtype, rng):
    x = _input(dtype, rng)
    got = getattr(nbsoftmax, op)(x, axis=0)
    getattr(checks, f"assert_{op}")(got, x, 0)
    assert np.all(got[:40000, 0] == (0 if op == "softmax" else -np.inf))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_nan_and_all_minus_inf_columns(op, rng):
    x = _input(np.float32, rng)
    x[12345, 1] = np.nan
    x[:, 2] = -np.inf
    got = getattr(nbsoftmax, op)(x, axis=0)
    assert np.isnan(got[:, 1:]).all()
    assert not np.isnan(got[:, 0]).any()
    out = np.empty_like(x)  # out= takes the same path
    getattr(nbsoftmax, op)(x, axis=0, out=out)
    np.testing.assert_array_equal(out, got)
