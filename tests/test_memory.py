"""Memory: no full-size allocation besides the result, so no transposed copy for non-last axes.

NumPy reports its array buffers to tracemalloc, so the traced peak during a call is what the
call allocated in arrays (the kernels' small per-thread work arrays come from Numba's own
allocator and are not counted; they are a few rows or columns long).
"""

import tracemalloc

import numpy as np
import pytest

import nbsoftmax

SHAPE = (48, 96, 64)  # 2.25 MiB of float64
SMALL = 0.05  # of the input's size: the reduced result of logsumexp, bookkeeping


def _peak_allocation(call):
    call()  # compile or load the kernel first
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def x(rng):
    return rng.standard_normal(SHAPE)


AXES = [-1, 0, 1, (0, 1), (1, 2), None]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("func", [nbsoftmax.softmax, nbsoftmax.log_softmax])
def test_forward_allocates_only_the_result(func, axis, x):
    assert _peak_allocation(lambda: func(x, axis=axis)) <= (1 + SMALL) * x.nbytes
    out = np.empty_like(x)
    assert _peak_allocation(lambda: func(x, axis=axis, out=out)) <= SMALL * x.nbytes
    assert _peak_allocation(lambda: func(x, axis=axis, out=x)) <= SMALL * x.nbytes


@pytest.mark.parametrize("axis", [0, 2])
@pytest.mark.parametrize("func", [nbsoftmax.softmax, nbsoftmax.log_softmax])
def test_fortran_input_allocates_only_the_result(func, axis, x):
    xf = np.asfortranarray(x)
    assert _peak_allocation(lambda: func(xf, axis=axis)) <= (1 + SMALL) * x.nbytes


@pytest.mark.parametrize("axis", AXES)
def test_logsumexp_allocates_only_the_reduced_result(axis, x):
    assert _peak_allocation(lambda: nbsoftmax.logsumexp(x, axis=axis)) <= SMALL * x.nbytes


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("func", [nbsoftmax.softmax_backward, nbsoftmax.log_softmax_backward])
def test_backward_allocates_only_the_result(func, axis, x):
    y = x[::-1].copy()
    assert _peak_allocation(lambda: func(x, y, axis=axis)) <= (1 + SMALL) * x.nbytes
    out = np.empty_like(x)
    assert _peak_allocation(lambda: func(x, y, axis=axis, out=out)) <= SMALL * x.nbytes
