"""Segment softmax (nbsoftmax.segment): against a float64 per-segment reference, the dense
path (a segment equals the dense row of its entries), torch (where installed, in a fresh
process) and the laws (shift invariance, sums to 1). Few compiled specialisations: float64
serial kernels for most cases, float32 parallel ones in test_skewed_lengths_parallel.
"""

import importlib.util

import numpy as np
import pytest

import nbsoftmax
from nbsoftmax import segment

from . import reference
from .subproc import run_python

OFFSETS = np.array([0, 3, 3, 4, 9, 9, 17, 20])  # empty segments (1, 4), a lone entry (2)


def _ref(func, x, off, **kw):
    """func (a tests.reference dense function) applied to each segment along axis 0."""
    out = np.empty(x.shape) if func is not reference.logsumexp else \
        np.empty((len(off) - 1,) + x.shape[1:])
    for k in range(len(off) - 1):
        part = x[off[k]:off[k + 1]]
        if func is reference.logsumexp:
            out[k] = func(part, 0) if part.size else -np.inf
        elif part.size:
            out[off[k]:off[k + 1]] = func(part, 0, **kw)
    return out


def _values(shape=(20,), seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(dtype)


@pytest.mark.parametrize("shape", [(20,), (20, 3)])
def test_against_float64_reference(shape):
    x = _values(shape)
    x[3] = -np.inf  # the lone entry of segment 2: all -inf, NaN by convention
    x[10] = np.nan if x.ndim == 1 else x[10]  # segment 5 NaN
    x[5] = -np.inf  # one -inf among finite values: probability 0
    with np.errstate(all="ignore"):
        for func, ref in ((segment.segment_softmax, reference.softmax),
                          (segment.segment_log_softmax, reference.log_softmax)):
            got = func(x, OFFSETS)
            np.testing.assert_allclose(got, _ref(ref, x, OFFSETS), rtol=1e-14, atol=1e-15)
        lse = segment.segment_logsumexp(x, OFFSETS)
        np.testing.assert_allclose(lse, _ref(reference.logsumexp, x, OFFSETS), rtol=1e-14)
    assert np.all(lse[[1, 4]] == -np.inf)  # empty segments


def test_segment_equals_dense_row():
    x = _values((20, 3), seed=1)
    p = segment.segment_softmax(x, OFFSETS)
    lp = segment.segment_log_softmax(x[:, 0], OFFSETS)
    for k in range(len(OFFSETS) - 1):
        b0, b1 = OFFSETS[k], OFFSETS[k + 1]
        if b1 > b0:
            np.testing.assert_array_equal(p[b0:b1], nbsoftmax.softmax(x[b0:b1], axis=0))
            np.testing.assert_array_equal(lp[b0:b1], nbsoftmax.log_softmax(x[b0:b1, 0]))


def test_logsumexp_log1p_form():
    """The dense logsumexp's form m + log1p((c - 1) + r): [0, -40] keeps 4.2e-18 (m +
    log(c + r) gives 0.0), ties at the max are counted; 1-D and column kernels alike."""
    x = np.array([0.0, -40.0, 3.0, 3.0, 3.0 - 1e-9, -np.inf, 5.0])
    off = np.array([0, 2, 6, 7])
    exact = [np.logaddexp.reduce(x[b0:b1].astype(np.longdouble)) for b0, b1 in
             zip(off[:-1], off[1:])]
    for got in (segment.segment_logsumexp(x, off),
                segment.segment_logsumexp(np.stack([x, x], axis=1), off)[:, 1]):
        assert got[0] == np.logaddexp(0.0, -40.0) == 4.248354255291589e-18
        # log1p, then + m: two roundings
        assert np.all(np.abs(got - exact) <= 2 * np.spacing(got)), (got, exact)


def test_segment_ids_any_order_match_offsets():
    x = _values()
    ids = np.repeat(np.arange(len(OFFSETS) - 1), np.diff(OFFSETS))
    perm = np.random.default_rng(2).permutation(x.size)
    expected = segment.segment_softmax(x, OFFSETS)
    got = segment.segment_softmax(x[perm], segment_ids=ids[perm])
    np.testing.assert_array_equal(got, expected[perm])
    np.testing.assert_array_equal(segment.segment_softmax(x, segment_ids=ids), expected)
    lse = segment.segment_logsumexp(x[perm], segment_ids=ids[perm], num_segments=9)
    np.testing.assert_array_equal(lse[:7], segment.segment_logsumexp(x, OFFSETS))
    assert np.all(lse[7:] == -np.inf)


def test_backward_against_reference():
    x = _values((20, 2), seed=3)
    g = _values((20, 2), seed=4)
    y = segment.segment_softmax(x, OFFSETS)
    np.testing.assert_allclose(segment.segment_softmax_backward(g, y, OFFSETS),
                               _backward_ref(g, y, OFFSETS, log=False), rtol=1e-13, atol=1e-15)
    ly = segment.segment_log_softmax(x, OFFSETS)
    np.testing.assert_allclose(segment.segment_log_softmax_backward(g, ly, OFFSETS),
                               _backward_ref(g, ly, OFFSETS, log=True), rtol=1e-13, atol=1e-15)


def _backward_ref(g, y, off, log):
    out = np.empty(g.shape)
    for k in range(len(off) - 1):
        s = slice(off[k], off[k + 1])
        if off[k + 1] > off[k]:
            ref = reference.log_softmax_backward if log else reference.softmax_backward
            out[s] = ref(g[s], y[s], 0)
    return out


def test_where_and_temperature():
    x = _values(seed=5)
    mask = np.random.default_rng(6).random(20) < 0.6
    mask[9:17] = False  # segment 5 fully masked: 0 (log: -inf)
    for func, ref in ((segment.segment_softmax, reference.softmax_where),
                      (segment.segment_log_softmax, reference.log_softmax_where)):
        got = func(x, OFFSETS, where=mask, temperature=0.7)
        expected = np.empty(20)
        for k in range(len(OFFSETS) - 1):
            s = slice(OFFSETS[k], OFFSETS[k + 1])
            if s.stop > s.start:
                expected[s] = ref(x[s], 0, where=mask[s], temperature=0.7)
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)
    lse = segment.segment_logsumexp(x, OFFSETS, where=mask)
    assert lse[5] == -np.inf
    g = _values(seed=7)
    y = segment.segment_softmax(x, OFFSETS, where=mask, temperature=2.0)
    grad = segment.segment_softmax_backward(g, y, OFFSETS, where=mask, temperature=2.0)
    expected = np.zeros(20)
    for k in range(len(OFFSETS) - 1):
        s = slice(OFFSETS[k], OFFSETS[k + 1])
        if s.stop > s.start:
            expected[s] = reference.softmax_backward_where(g[s], y[s], 0, where=mask[s],
                                                           temperature=2.0)
    np.testing.assert_allclose(grad, expected, rtol=1e-13, atol=1e-15)


def test_shift_invariance_float64():
    xi = np.round(_values(seed=8) * 8) / 8  # x + c exactly representable
    for c in (2.0**45, -1e6):
        for kw in ({}, dict(temperature=3.0)):
            np.testing.assert_allclose(segment.segment_softmax(xi + c, OFFSETS, **kw),
                                       segment.segment_softmax(xi, OFFSETS, **kw),
                                       rtol=1e-14, atol=1e-16)
            np.testing.assert_allclose(segment.segment_log_softmax(xi + c, OFFSETS, **kw),
                                       segment.segment_log_softmax(xi, OFFSETS, **kw),
                                       rtol=1e-14, atol=1e-14)


def test_out_and_dtypes():
    x = _values(seed=9)
    out = np.full(20, 5.0)
    assert segment.segment_softmax(x, OFFSETS, out=out) is out
    np.testing.assert_array_equal(out, segment.segment_softmax(x, OFFSETS))
    ints = segment.segment_softmax(np.arange(20), OFFSETS)
    assert ints.dtype == np.float64
    with pytest.raises(ValueError, match="out has shape"):
        segment.segment_softmax(x, OFFSETS, out=np.empty(19))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(offsets=[0, 5, 3, 20]), ValueError, "non-decreasing; offsets\\[2\\] = 3"),
    (dict(offsets=[1, 20]), ValueError, "start at 0 and end at len\\(x\\) = 20"),
    (dict(offsets=[0, 19]), ValueError, "end at len\\(x\\) = 20; they start at 0 and end at 19"),
    (dict(offsets=np.array([0.0, 20.0])), TypeError, "offsets has dtype float64"),
    (dict(), TypeError, "exactly one"),
    (dict(offsets=[0, 20], segment_ids=np.zeros(20, int)), TypeError, "exactly one"),
    (dict(segment_ids=np.full(20, 3), num_segments=2), ValueError, "\\[0, 2\\)"),
    (dict(segment_ids=np.full(20, -1)), ValueError, "range over \\[-1, -1\\]"),
    (dict(segment_ids=np.zeros(19, int)), ValueError, "segment_ids has 19 entries"),
    (dict(offsets=[0, 20], num_segments=1), TypeError, "num_segments= goes with"),
    (dict(offsets=[0, 20], temperature=0.0), ValueError, "temperature must be positive"),
])
def test_bad_segments_raise_before_writing(kwargs, error, message):
    x = _values(seed=10)
    out = np.zeros(20)
    with pytest.raises(error, match=message):
        segment.segment_softmax(x, out=out, **kwargs)
    assert not out.any()


def test_bad_values_shape():
    with pytest.raises(ValueError, match="3 dimensions"):
        segment.segment_softmax(np.zeros((2, 2, 2)), [0, 2])


def test_skewed_lengths_parallel_float32():
    """Zipf lengths with one segment longer than a thread's share (computed as a dense row,
    split among threads) and many tiny ones; shift invariance at 1e6 in float32."""
    rng = np.random.default_rng(11)
    lengths = np.minimum(rng.zipf(1.6, 6000), 400)
    lengths[100] = 150_000  # > SPLIT_MIN_BYTES and over half the elements
    lengths[5] = 2
    off = np.concatenate([[0], np.cumsum(lengths)])
    x = (rng.standard_normal(off[-1]) * 4).astype(np.float32)
    x[off[5]:off[6]] = [0.0, -10.0]  # logsumexp within 1 ulp (the log1p form)
    p = segment.segment_softmax(x, off)
    np.testing.assert_allclose(p, _ref(reference.softmax, x, off), rtol=2e-6, atol=1e-9)
    np.testing.assert_array_equal(p[off[100]:off[101]], nbsoftmax.softmax(x[off[100]:off[101]]))
    sums = np.add.reduceat(p.astype(np.float64), off[:-1])
    np.testing.assert_allclose(sums, 1.0, rtol=3e-6)
    xi = np.round(x * 4) / 4
    np.testing.assert_allclose(segment.segment_softmax(xi + np.float32(1e6), off),
                               segment.segment_softmax(xi, off), rtol=2e-6, atol=1e-9)
    lse = segment.segment_logsumexp(x, off)
    np.testing.assert_allclose(lse, _ref(reference.logsumexp, x, off), rtol=2e-6, atol=2e-6)
    exact = np.float32(np.logaddexp(np.longdouble(0), np.longdouble(-10)))
    assert abs(lse[5] - exact) <= np.spacing(exact)


_TORCH_SCRIPT = """
import numpy as np, torch
d = np.load({path!r})
crow, col, val = (torch.from_numpy(d[k]) for k in ("offsets", "cols", "values"))
a = torch.sparse_csr_tensor(crow, col, val, size=tuple(d["shape"]))
soft = torch.sparse.softmax(a.to_sparse_coo(), dim=1).coalesce()
logsoft = torch.sparse.log_softmax(a.to_sparse_coo(), dim=1).coalesce()
# a manual scatter reference (PyG's softmax(src, index)), on unsorted ids
ids = torch.from_numpy(d["ids"])
src = torch.from_numpy(d["unsorted"])
m = torch.full((int(d["shape"][0]),), -float("inf"), dtype=src.dtype).scatter_reduce(
    0, ids, src, "amax")
e = torch.exp(src - m[ids])
s = torch.zeros_like(m).index_add(0, ids, e)
np.savez({out!r}, soft=soft.values().numpy(), logsoft=logsoft.values().numpy(),
         scatter=(e / s[ids]).numpy())
print("ok")
"""


def test_against_torch_sparse_softmax(tmp_path):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    rng = np.random.default_rng(12)
    lengths = rng.integers(1, 9, 30)
    off = np.concatenate([[0], np.cumsum(lengths)])
    values = rng.standard_normal(off[-1]) * 5
    cols = np.concatenate([np.sort(rng.choice(10, n, replace=False)) for n in lengths])
    ids = np.repeat(np.arange(30), lengths)
    perm = rng.permutation(off[-1])
    np.savez(tmp_path / "in.npz", offsets=off, cols=cols, values=values, shape=[30, 10],
             ids=ids[perm], unsorted=values[perm])
    run_python(_TORCH_SCRIPT.format(path=str(tmp_path / "in.npz"),
                                    out=str(tmp_path / "out.npz")))
    t = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(segment.segment_softmax(values, off), t["soft"], rtol=1e-13)
    np.testing.assert_allclose(segment.segment_log_softmax(values, off), t["logsoft"],
                               rtol=1e-13, atol=2e-15)
    np.testing.assert_allclose(segment.segment_softmax(values[perm], segment_ids=ids[perm]),
                               t["scatter"], rtol=1e-13)
