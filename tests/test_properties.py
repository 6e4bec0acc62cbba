"""Laws, checked with hypothesis: sums to one, shift invariance, log_softmax == log(softmax)
where finite, and both backward passes equal to the analytic vector-Jacobian product and to
central finite differences of the forward functions."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nbsoftmax
from tests import checks, reference

FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def arrays_and_axis(draw, dtype=FLOAT_DTYPES, lo=-1e4, hi=1e4, max_dims=3, max_side=9):
    """A finite float array of 1-3 dimensions and an axis (int, negative, tuple or None)."""
    dtype = np.dtype(draw(dtype))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=max_side))
    elements = st.floats(lo, hi, width=8 * dtype.itemsize, allow_nan=False, allow_infinity=False)
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.integers(-ndim, ndim - 1),
        st.none(),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))
    return x, axis


@given(arrays_and_axis())
def test_sums_to_one(case):
    x, axis = case
    got = nbsoftmax.softmax(x, axis=axis)
    assert ((got >= 0) & (got <= 1)).all()
    ratio, err = checks.row_sum_error(got, axis)
    assert ratio <= 1, f"a slice sums to 1 +- {err:.3g}"


@given(
    arrays_and_axis(dtype=st.just(np.float64), lo=-400, hi=400),
    st.integers(-(2**20), 2**20),
    st.integers(0, 24),
)
def test_shift_invariance_is_exact_for_exact_shifts(case, k, j):
    """x a multiple of 1/4 and c = k * 2**j: x + c and (x + c) - max(x + c) are exact, so the
    shifted input must give bit-identical probabilities and log-probabilities."""
    x, axis = case
    x = np.round(x * 4) / 4
    c = float(k) * 2.0**j
    shifted = x + c
    assert (shifted - c == x).all()
    np.testing.assert_array_equal(nbsoftmax.softmax(shifted, axis=axis), nbsoftmax.softmax(x, axis=axis))
    np.testing.assert_array_equal(nbsoftmax.log_softmax(shifted, axis=axis),
                                  nbsoftmax.log_softmax(x, axis=axis))
    lse = nbsoftmax.logsumexp(x, axis=axis)
    np.testing.assert_allclose(nbsoftmax.logsumexp(shifted, axis=axis) - c, lse,
                               rtol=0, atol=4e-16 * (abs(c) + np.abs(lse).max() + 1))


@given(arrays_and_axis(lo=-80, hi=80), st.floats(-1e3, 1e3))
def test_shift_invariance_within_the_bounds(case, c):
    """Any shift: the result on x + c is within the bounds of the exact result on x + c."""
    x, axis = case
    shifted = (x + x.dtype.type(c)).astype(x.dtype)
    assert checks.softmax_error(nbsoftmax.softmax(shifted, axis=axis), shifted, axis)[0] <= 1
    assert checks.log_softmax_error(nbsoftmax.log_softmax(shifted, axis=axis), shifted, axis)[0] <= 1


@given(arrays_and_axis(lo=-300, hi=300))
def test_log_softmax_is_log_of_softmax_where_finite(case):
    x, axis = case
    dtype = x.dtype
    sm = nbsoftmax.softmax(x, axis=axis)
    ls = nbsoftmax.log_softmax(x, axis=axis)
    bound = checks.BOUNDS[dtype]
    # Where softmax neither underflowed nor went subnormal its log is finite and accurate:
    # both results' errors (in the bounds' terms) plus a rounding of np.log.
    finite = sm >= np.finfo(dtype).tiny
    assert finite.any()
    log_sm = np.log(sm[finite].astype(np.float64))
    t = np.asarray(reference.shifted_exact(x, axis), np.float64)[finite]
    y = ls[finite].astype(np.float64)
    allowed = (bound["a"] + bound["b"] * np.abs(t) + bound["c"] * (1 + np.abs(y))
               + np.finfo(dtype).eps * np.abs(y))
    checks.assert_within(y, log_sm, 2 * allowed, "log_softmax vs log(softmax)")
    # Only probabilities below the normal range may flush to 0 (the bounds stop at 1e-30).
    assert (ls[sm == 0] < np.log(np.finfo(dtype).tiny)).all()


# ------------------------------------------------------------------ backward passes


@st.composite
def backward_case(draw):
    """float64 x (logits) and g (upstream gradient) of one shape, and an axis."""
    x, axis = draw(arrays_and_axis(dtype=st.just(np.float64), lo=-10, hi=10, max_side=6))
    elements = st.floats(-5, 5, allow_nan=False, allow_infinity=False)
    g = draw(hnp.arrays(np.float64, x.shape, elements=elements))
    return x, g, axis


def _slices_last(a, axis):
    """a with the softmax axes moved last and flattened: (slices, n)."""
    axes = reference.reduced_axes(axis, a.ndim)
    rest = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, rest + list(axes))
    return moved.reshape(-1, int(np.prod([a.shape[i] for i in axes], dtype=int)))


def _jacobians(p_rows, log):
    """Per slice, d out_i / d x_j: diag(p) - p p^T for softmax, I - 1 p^T for log_softmax.

    In longdouble: the products g^T J cancel where p is near 1, which float64 einsum would
    get wrong by more than the O(n) formulas under test."""
    p_rows = p_rows.astype(np.longdouble)
    n = p_rows.shape[1]
    if log:
        return np.eye(n)[None] - p_rows[:, None, :]
    return np.einsum("ri,ij->rij", p_rows, np.eye(n)) - p_rows[:, :, None] * p_rows[:, None, :]


def _vjp_tolerance(g, p, log):
    """16 ulps of the magnitudes the O(n) formulas round (the Jacobian products cancel
    where p is near 1, the formulas cannot): |p| (|g| + sum|g p|), resp. |g| + p sum|g|."""
    eps = np.finfo(np.float64).eps
    if log:
        return 16 * eps * (np.abs(g) + p * np.abs(g).sum(axis=1, keepdims=True)) + 1e-300
    return 16 * eps * p * (np.abs(g) + np.abs(g * p).sum(axis=1, keepdims=True)) + 1e-300


@given(backward_case())
def test_softmax_backward_is_the_vector_jacobian_product(case):
    x, g, axis = case
    y = reference.softmax(x, axis)
    got = nbsoftmax.softmax_backward(g, y, axis=axis)
    g_rows, p_rows = _slices_last(g, axis), _slices_last(y, axis)
    want = np.einsum("ri,rij->rj", g_rows.astype(np.longdouble), _jacobians(p_rows, log=False))
    checks.assert_within(_slices_last(got, axis), want, _vjp_tolerance(g_rows, p_rows, log=False),
                         "softmax_backward vs g^T J")


@given(backward_case())
def test_log_softmax_backward_is_the_vector_jacobian_product(case):
    x, g, axis = case
    y = reference.log_softmax(x, axis)
    got = nbsoftmax.log_softmax_backward(g, y, axis=axis)
    g_rows, p_rows = _slices_last(g, axis), np.exp(_slices_last(y, axis))
    want = np.einsum("ri,rij->rj", g_rows.astype(np.longdouble), _jacobians(p_rows, log=True))
    checks.assert_within(_slices_last(got, axis), want, _vjp_tolerance(g_rows, p_rows, log=True),
                         "log_softmax_backward vs g^T J")


def _central_differences(forward, x, g, axis, h=1e-5):
    """d/dx sum(g * forward(x)) by central differences, one element at a time."""
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        f_up = np.sum(g * forward(up, axis=axis))
        f_down = np.sum(g * forward(down, axis=axis))
        grad[i] = (f_up - f_down) / (2 * h)
    return grad


# Central differences with h = 1e-5 on |x| <= 10: truncation h**2/6 * |f'''| stays below
# 1e-10 * sum|g|, rounding eps * |f| / h below 1e-10 * sum|g|; 1e-7 * (sum|g| + 1) leaves room.
_FD_ATOL = 1e-7


@given(backward_case())
def test_softmax_backward_matches_finite_differences(case):
    x, g, axis = case
    got = nbsoftmax.softmax_backward(g, nbsoftmax.softmax(x, axis=axis), axis=axis)
    want = _central_differences(nbsoftmax.softmax, x, g, axis)
    checks.assert_within(got, want, _FD_ATOL * (np.abs(g).sum() + 1), "softmax_backward vs differences")


@given(backward_case())
def test_log_softmax_backward_matches_finite_differences(case):
    x, g, axis = case
    got = nbsoftmax.log_softmax_backward(g, nbsoftmax.log_softmax(x, axis=axis), axis=axis)
    want = _central_differences(nbsoftmax.log_softmax, x, g, axis)
    checks.assert_within(got, want, _FD_ATOL * (np.abs(g).sum() + 1),
                         "log_softmax_backward vs differences")
