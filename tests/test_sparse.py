"""softmax / log_softmax of scipy.sparse arrays and matrices over their stored entries
(nbsoftmax/dispatch/sparse.py): same format and structure, implicit entries take no part, against
a dense float64 reference with the implicit entries at -inf, and torch.sparse (where
installed) through the segment tests' oracle.
"""

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

import nbsoftmax  # noqa: E402

from . import reference  # noqa: E402


def _matrix(fmt, dtype=np.float64, seed=0, container=sp.csr_array):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((7, 9)) * 3
    dense[rng.random((7, 9)) < 0.55] = 0.0
    dense[4] = 0.0  # an empty row
    a = container(dense.astype(dtype))
    a = a.asformat(fmt)
    if fmt != "coo":
        a.data[:2] = 0.0  # explicitly stored zeros take part like any entry
    return a


def _expected(a, axis, log):
    """Dense reference: stored entries only (implicit ones at -inf, then back to 0)."""
    stored = a.copy()
    stored.data = np.ones_like(stored.data)
    mask = stored.toarray() != 0
    x = np.where(mask, a.toarray().astype(np.float64), -np.inf)
    ax = -1 if axis is None else axis
    xx = x.reshape(1, -1) if axis is None else x
    with np.errstate(invalid="ignore"):
        ref = (reference.log_softmax if log else reference.softmax)(xx, ax).reshape(x.shape)
    return np.where(mask, ref, 0.0), mask


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("axis", [1, 0, -1, None])
@pytest.mark.parametrize("log", [False, True])
def test_stored_entries_same_structure(fmt, axis, log):
    a = _matrix(fmt)
    func = nbsoftmax.log_softmax if log else nbsoftmax.softmax
    r = func(a, axis=axis)
    assert type(r) is type(a) and r.format == fmt and r.shape == a.shape
    assert r.nnz == a.nnz
    if fmt != "coo":
        np.testing.assert_array_equal(r.indptr, a.indptr)
        np.testing.assert_array_equal(r.indices, a.indices)
    else:
        np.testing.assert_array_equal(r.row, a.row)
        np.testing.assert_array_equal(r.col, a.col)
    expected, mask = _expected(a, axis, log)
    got = r.toarray()
    np.testing.assert_allclose(got[mask], expected[mask], rtol=1e-14, atol=1e-15)
    assert not got[~mask].any()


def test_matrices_float32_and_input_unchanged():
    a = _matrix("csr", np.float32, seed=1, container=sp.csr_matrix)
    before = a.copy()
    r = nbsoftmax.softmax(a)
    assert isinstance(r, sp.csr_matrix) and r.dtype == np.float32
    sums = np.asarray(r.sum(axis=1)).ravel()
    nonempty = np.diff(a.indptr) > 0
    np.testing.assert_allclose(sums[nonempty], 1.0, rtol=2e-6)
    np.testing.assert_array_equal(a.data, before.data)


def test_duplicates_are_summed_first():
    a = sp.coo_array((np.array([1.0, 2.0, 3.0]), (np.array([0, 0, 0]), np.array([1, 1, 2]))),
                     shape=(1, 4))
    r = nbsoftmax.softmax(a)
    np.testing.assert_allclose(r.toarray(), [[0.0, 0.5, 0.5, 0.0]], rtol=1e-15)
    assert a.nnz == 3  # the input keeps its duplicates


def test_temperature_and_unsupported_options():
    a = _matrix("csr")
    np.testing.assert_allclose(nbsoftmax.softmax(a, temperature=2.0).data,
                               nbsoftmax.softmax(a / 2.0).data, rtol=1e-14)
    with pytest.raises(TypeError, match="where= is not supported for scipy.sparse"):
        nbsoftmax.softmax(a, where=np.ones((7, 9), bool))
    with pytest.raises(TypeError, match="BSR format is not supported"):
        nbsoftmax.softmax(a.tobsr())
    with pytest.raises(np.exceptions.AxisError):
        nbsoftmax.log_softmax(a, axis=2)
