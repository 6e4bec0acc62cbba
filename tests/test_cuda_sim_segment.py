"""The segment functions on CUDA device arrays (nbsoftmax.cuda._segment_api) under numba's
CUDA simulator: CSR offsets, unsorted segment_ids=, where=, temperature= and the backward
passes, against tests/reference.py applied per segment (no CPU kernel compiles here), with
the shift law (x + c, c = 1e6 float32, 2**45 float64) for each option, and logsumexp's
log1p form. Segments of 37 entries cross the 32-thread blocks of ``_cudasim.small_blocks``;
2-column inputs run a block per (segment, column). Few, small launches: the simulator runs
each block as Python threads meeting at barriers.
"""

import numpy as np
import pytest

from ._cudasim import small_blocks, simulated_cuda

cuda = simulated_cuda(__file__)

from nbsoftmax import segment  # noqa: E402

from . import reference  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning"),
              pytest.mark.usefixtures("small_blocks")]
__all__ = ["small_blocks"]  # the fixture, imported for pytest

OFFSETS = np.array([0, 3, 3, 40, 60])  # an empty segment, one of 37 entries
IDS = np.repeat(np.arange(4), np.diff(OFFSETS))
TOL = {np.float32: dict(rtol=5e-6, atol=1e-9), np.float64: dict(rtol=1e-13, atol=1e-16)}
SHIFT = {np.float32: np.float32(1e6), np.float64: 2.0**45}


def _per_segment(func, *arrays, **kw):
    """func (a tests.reference function along axis 0) on each non-empty segment."""
    out = np.zeros(arrays[0].shape)
    for b0, b1 in zip(OFFSETS[:-1], OFFSETS[1:]):
        if b1 > b0:
            out[b0:b1] = func(*(a[b0:b1] for a in arrays), 0,
                              **{k: v[b0:b1] if isinstance(v, np.ndarray) else v
                                 for k, v in kw.items()})
    return out


def _lse_per_segment(x, where=None):
    full = np.ones(x.shape, bool) if where is None else where
    return np.array([reference.logsumexp_where(x[b0:b1], 0, where=full[b0:b1])
                     if b1 > b0 else np.full(x.shape[1:], -np.inf)
                     for b0, b1 in zip(OFFSETS[:-1], OFFSETS[1:])])


def _values(shape, dtype, seed):
    """Values on a grid of 1/4: x + SHIFT[dtype] is exact (the shift law compares exactly
    the same differences)."""
    return (np.round(np.random.default_rng(seed).standard_normal(shape) * 12) / 4).astype(dtype)


def _host(func, *arrays, **kw):
    return func(*(cuda.to_device(a) for a in arrays), **kw).copy_to_host()


def test_offsets_against_reference():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 2))
    x[50, 1] = np.inf  # the last segment of column 1 is NaN
    dx = cuda.to_device(x)
    got = segment.segment_softmax(dx, cuda.to_device(OFFSETS))
    assert getattr(got, "__cuda_ndarray__", False)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(got.copy_to_host(), _per_segment(reference.softmax, x),
                                   **TOL[np.float64])
        np.testing.assert_allclose(segment.segment_logsumexp(dx, OFFSETS).copy_to_host(),
                                   _lse_per_segment(x), rtol=1e-14)
    x1 = x[:, 0].copy()
    got = _host(segment.segment_log_softmax, x1, offsets=OFFSETS)
    np.testing.assert_allclose(got, _per_segment(reference.log_softmax, x1), rtol=1e-14)
    g = rng.standard_normal(60)
    y = _per_segment(reference.softmax, x1)
    for func, ref in ((segment.segment_softmax_backward, reference.softmax_backward),
                      (segment.segment_log_softmax_backward, reference.log_softmax_backward)):
        got = _host(func, g, y, offsets=OFFSETS)
        np.testing.assert_allclose(got, _per_segment(ref, g, y), **TOL[np.float64])


def test_logsumexp_log1p_form():
    """[0, -40] keeps 4.2e-18 (m + log(c + r) gives 0.0); float32 [0, -10] within 1 ulp of
    the float64 value; ties at the max counted, not summed as exp(0)."""
    got = _host(segment.segment_logsumexp, np.array([0.0, -40.0, 3.0, 3.0, 3.0 - 1e-9]),
                offsets=np.array([0, 2, 5]))
    assert got[0] == np.logaddexp(0.0, -40.0) == 4.248354255291589e-18
    expected = np.logaddexp.reduce(np.array([3.0, 3.0, 3.0 - 1e-9], np.longdouble))
    assert abs(got[1] - expected) <= 2 * np.spacing(got[1])  # log1p, then + m: two roundings
    got32 = _host(segment.segment_logsumexp, np.array([0.0, -10.0], np.float32),
                  offsets=np.array([0, 2]))
    exact = np.float32(np.logaddexp(np.longdouble(0), np.longdouble(-10)))
    assert got32.dtype == np.float32
    assert abs(got32[0] - exact) <= np.spacing(exact)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_ids_unsorted(dtype):
    x = _values(60, dtype, seed=2)
    perm = np.random.default_rng(3).permutation(60)
    ids = IDS[perm]
    with np.errstate(invalid="ignore"):
        for func, ref in ((segment.segment_softmax, reference.softmax),
                          (segment.segment_log_softmax, reference.log_softmax)):
            got = _host(func, x[perm], segment_ids=cuda.to_device(ids))
            assert got.dtype == dtype
            np.testing.assert_allclose(got, _per_segment(ref, x)[perm], **TOL[dtype])
            shifted = _host(func, x[perm] + SHIFT[dtype], segment_ids=ids)
            np.testing.assert_allclose(shifted, got, **TOL[dtype])
        lse = _host(segment.segment_logsumexp, x[perm], segment_ids=ids, num_segments=5)
        np.testing.assert_allclose(lse[:4], _lse_per_segment(x), rtol=TOL[dtype]["rtol"])
        assert lse[4] == -np.inf and lse[1] == -np.inf  # empty segments
    g = _values(60, dtype, seed=4)
    y = _per_segment(reference.softmax, x).astype(dtype)
    got = _host(segment.segment_softmax_backward, g[perm], y[perm], segment_ids=ids)
    np.testing.assert_allclose(got, _per_segment(reference.softmax_backward, g, y)[perm],
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where(dtype):
    x = _values((60, 2), dtype, seed=5)
    mask = np.random.default_rng(6).random((60, 2)) < 0.6
    mask[3:40, 1] = False  # segment 2 fully masked in column 1: 0 (log: -inf)
    mask[0, 0] = True
    x[~mask & (np.arange(60)[:, None] % 3 == 0)] = np.nan  # masked NaN takes no part
    for func, ref in ((segment.segment_softmax, reference.softmax_where),
                      (segment.segment_log_softmax, reference.log_softmax_where)):
        got = _host(func, x, offsets=OFFSETS, where=cuda.to_device(mask))
        np.testing.assert_allclose(got, _per_segment(ref, x, where=mask), **TOL[dtype])
        shifted = _host(func, x + SHIFT[dtype], offsets=OFFSETS, where=mask)  # a host mask
        np.testing.assert_allclose(shifted, got, **TOL[dtype])
    lse = _host(segment.segment_logsumexp, x, offsets=OFFSETS, where=mask)
    np.testing.assert_allclose(lse, _lse_per_segment(x, mask), rtol=TOL[dtype]["rtol"])
    assert lse[2, 1] == -np.inf
    g = _values((60, 2), dtype, seed=7)
    y = _per_segment(reference.log_softmax_where, x, where=mask).astype(dtype)
    got = _host(segment.segment_log_softmax_backward, g, y, offsets=OFFSETS, where=mask)
    np.testing.assert_allclose(
        got, _per_segment(reference.log_softmax_backward_where, g, y, where=mask),
        **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_temperature(dtype):
    x = _values(60, dtype, seed=8)
    for func, ref in ((segment.segment_softmax, reference.softmax_where),
                      (segment.segment_log_softmax, reference.log_softmax_where)):
        got = _host(func, x, offsets=OFFSETS, temperature=0.7)
        np.testing.assert_allclose(got, _per_segment(ref, x, temperature=0.7), **TOL[dtype])
        shifted = _host(func, x + SHIFT[dtype], offsets=OFFSETS, temperature=0.7)
        np.testing.assert_allclose(shifted, got, **TOL[dtype])
    g = _values(60, dtype, seed=9)
    y = _per_segment(reference.softmax_where, x, temperature=2.0).astype(dtype)
    got = _host(segment.segment_softmax_backward, g, y, offsets=OFFSETS, temperature=2.0)
    np.testing.assert_allclose(
        got, _per_segment(reference.softmax_backward_where, g, y, temperature=2.0),
        **TOL[dtype])


def test_bad_arguments_on_device():
    dx = cuda.to_device(np.zeros(4))
    with pytest.raises(ValueError, match="non-decreasing"):
        segment.segment_softmax(dx, [0, 3, 2, 4])
    with pytest.raises(ValueError, match=r"\[0, num_segments\) = \[0, 2\)"):
        segment.segment_softmax(dx, segment_ids=cuda.to_device(np.array([0, 1, 2, 0])),
                                num_segments=2)
    with pytest.raises(ValueError, match="device mask must have x's shape"):
        segment.segment_softmax(dx, [0, 4], where=cuda.to_device(np.ones((1, 4), bool)))
    with pytest.raises(TypeError, match="where has dtype int64"):
        segment.segment_softmax(dx, [0, 4], where=cuda.to_device(np.ones(4, np.int64)))
    with pytest.raises(ValueError, match="temperature must be positive"):
        segment.segment_softmax(dx, [0, 4], temperature=-1.0)
