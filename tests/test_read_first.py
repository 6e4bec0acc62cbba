"""Issue 10 items 5 and 7: every input is read before anything is written.

* A ``where=`` mask whose bytes lie inside ``out`` (a bool view of out's memory) must give the
  results of the same mask held apart, as the README promises for any overlap; before the fix
  the kernels read mask bytes they had already overwritten (row sums of 1.185).
* ``np.matrix`` input is read as its 2-d ndarray and gives an ndarray (as
  ``scipy.special.softmax``); ``out=np.matrix(...)`` raises TypeError before anything is
  written (it raised IndexError, after writing, for integer input).
"""

import numpy as np
import pytest
import scipy.special

import nbsoftmax
from tests import checks, reference

SHAPE = (6, 9)

# NumPy warns whenever a np.matrix is constructed (the subclass is pending deprecation); these
# tests construct them on purpose.
pytestmark = pytest.mark.filterwarnings(
    "ignore:the matrix subclass is not the recommended way:PendingDeprecationWarning")


def _mask_inside(out, rng, offset_rows=0):
    """A bool mask of out's shape whose bytes are the first bytes of out's row offset_rows:
    writing out's first rows destroys the mask of every later row."""
    raw = out.reshape(-1).view(np.uint8)
    start = offset_rows * out.shape[-1] * out.itemsize
    mask = raw[start:start + out.size].view(np.bool_).reshape(out.shape)
    values = rng.random(out.shape) < 0.6
    values[2] = False  # a fully masked row
    values[3] = True
    mask[...] = values
    return mask


FORWARD = [("softmax", nbsoftmax.softmax, reference.softmax_where),
           ("log_softmax", nbsoftmax.log_softmax, reference.log_softmax_where),
           ("softmin", nbsoftmax.softmin, reference.softmin)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [None, 0.7])
@pytest.mark.parametrize("name,func,ref", FORWARD, ids=[f[0] for f in FORWARD])
def test_forward_mask_inside_out(name, func, ref, temperature, dtype, rng):
    x = (rng.standard_normal(SHAPE) * 3).astype(dtype)
    x_before = x.copy()
    out = np.zeros(SHAPE, dtype)
    mask = _mask_inside(out, rng)
    apart = mask.copy()
    want = func(x, where=apart, temperature=temperature)
    assert func(x, where=mask, temperature=temperature, out=out) is out
    np.testing.assert_array_equal(out, want)
    t = 1.0 if temperature is None else temperature
    expected = ref(x, -1, apart, temperature=t)
    # the float64 reference's comparison tolerance (tests/checks.py: twice log_softmax's bound;
    # probabilities are within 1, where it is looser than softmax's relative bound)
    checks.assert_within(out, expected, checks._log_tolerance(np.dtype(dtype))
                         * (1 + np.abs(expected)))
    assert checks.same_bits(x, x_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_mask_inside_out_staged_input(dtype, rng):
    """Integer input is cast into out before the kernels run: that write must not touch the
    mask either."""
    x = rng.integers(-5, 5, SHAPE)
    out = np.zeros(SHAPE, np.float64)
    mask = _mask_inside(out, rng)
    apart = mask.copy()
    want = nbsoftmax.softmax(x, where=apart)
    nbsoftmax.softmax(x, where=mask, out=out)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_allclose(np.where(apart.any(-1), out.sum(-1), 1.0), 1.0, rtol=1e-13)


BACKWARD = [("softmax_backward", nbsoftmax.softmax_backward, nbsoftmax.softmax,
             reference.softmax_backward_where),
            ("log_softmax_backward", nbsoftmax.log_softmax_backward, nbsoftmax.log_softmax,
             reference.log_softmax_backward_where)]


@pytest.mark.parametrize("temperature", [None, 2.0])
@pytest.mark.parametrize("name,func,forward,ref", BACKWARD, ids=[b[0] for b in BACKWARD])
def test_backward_mask_inside_out(name, func, forward, ref, temperature, rng):
    x = rng.standard_normal(SHAPE) * 3
    g = rng.standard_normal(SHAPE)
    out = np.zeros(SHAPE)
    mask = _mask_inside(out, rng)
    apart = mask.copy()
    y = forward(x, where=apart, temperature=temperature)
    want = func(g, y, where=apart, temperature=temperature)
    assert func(g, y, where=mask, temperature=temperature, out=out) is out
    np.testing.assert_array_equal(out, want)
    t = 1.0 if temperature is None else temperature
    np.testing.assert_allclose(out, ref(g, y, -1, apart, temperature=t), rtol=1e-12, atol=1e-15)


def test_backward_mask_inside_out_that_is_an_input(rng):
    """out is grad_output itself and the mask lives in its bytes."""
    x = rng.standard_normal(SHAPE)
    g = np.zeros(SHAPE)
    mask = _mask_inside(g, rng, offset_rows=0)
    apart = mask.copy()
    g_values = g.copy()  # the mask's bytes are g's values: keep them as they are
    y = nbsoftmax.softmax(x, where=apart)
    want = nbsoftmax.softmax_backward(g_values, y, where=apart)
    nbsoftmax.softmax_backward(g, y, where=mask, out=g)
    np.testing.assert_array_equal(g, want)


def test_logsumexp_mask_inside_input(rng):
    """logsumexp has no out=; a mask inside x's bytes is only read."""
    x = np.zeros(SHAPE)
    mask = _mask_inside(x, rng)
    apart, x_before = mask.copy(), x.copy()
    np.testing.assert_array_equal(nbsoftmax.logsumexp(x, where=mask),
                                  nbsoftmax.logsumexp(x_before, where=apart))


# ------------------------------------------------------------------ np.matrix (item 7)

M = np.asarray([[1.0, 2.0, 3.0], [4.0, 6.0, 5.0]]).view(np.matrix)  # (no warning at import)


@pytest.mark.parametrize("axis", [-1, 0, None])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_matrix_input_gives_an_ndarray_as_scipy(name, axis):
    want = getattr(scipy.special, name)(M, axis=axis)
    assert type(want) is np.ndarray  # what SciPy does, which this follows
    got = getattr(nbsoftmax, name)(M, axis=axis)
    assert type(got) is np.ndarray and got.shape == (2, 3)
    np.testing.assert_allclose(got, want, rtol=1e-15)


def test_matrix_input_every_function():
    a = np.asarray(M)
    for func in (nbsoftmax.softmin, lambda v: nbsoftmax.softmax(v, temperature=2.0),
                 lambda v: nbsoftmax.softmax(v, where=np.matrix([[True, False, True]]))):
        got = func(M)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, func(a))
    got = nbsoftmax.logsumexp(M, axis=0)
    assert type(got) is np.ndarray and got.shape == (3,)
    np.testing.assert_allclose(got, scipy.special.logsumexp(a, axis=0), rtol=1e-15)
    y = nbsoftmax.softmax(a)
    g = np.matrix([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    got = nbsoftmax.softmax_backward(g, np.matrix(y))
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, nbsoftmax.softmax_backward(np.asarray(g), y))
    loss, grad = nbsoftmax.cross_entropy(M, np.array([0, 1]), return_grad=True)
    want_loss, want_grad = reference.cross_entropy(a, np.array([0, 1]))
    np.testing.assert_allclose(loss, want_loss, rtol=1e-14)
    assert type(grad) is np.ndarray
    p, i = nbsoftmax.softmax_topk(M, 2)
    assert type(p) is np.ndarray and type(i) is np.ndarray
    np.testing.assert_array_equal(i, [[2, 1], [1, 2]])
    layer = nbsoftmax.Softmax()
    assert type(layer.forward(M)) is np.ndarray
    assert type(layer.backward(g)) is np.ndarray


CALLS = [
    ("softmax", lambda x, out: nbsoftmax.softmax(x, out=out)),
    ("softmax axis 0", lambda x, out: nbsoftmax.softmax(x, axis=0, out=out)),
    ("log_softmax axis None", lambda x, out: nbsoftmax.log_softmax(x, axis=None, out=out)),
    ("softmin", lambda x, out: nbsoftmax.softmin(x, out=out)),
    ("softmax temperature", lambda x, out: nbsoftmax.softmax(x, temperature=2.0, out=out)),
    ("log_softmax where", lambda x, out: nbsoftmax.log_softmax(
        x, where=np.ones(x.shape, bool), out=out)),
    ("softmax_backward", lambda x, out: nbsoftmax.softmax_backward(x, x, out=out)),
    ("log_softmax_backward where", lambda x, out: nbsoftmax.log_softmax_backward(
        x, x, where=np.ones(x.shape, bool), out=out)),
]


@pytest.mark.parametrize("x_dtype", [np.int64, np.float64, np.float32])
@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_matrix_out_raises_before_writing(name, call, x_dtype):
    x = np.array([[1, 2, 3], [4, 5, 6]], x_dtype)
    dtype = np.float32 if x_dtype == np.float32 else np.float64
    out = np.matrix(np.full((2, 3), 7.0, dtype))
    with pytest.raises(TypeError, match="out is a numpy.matrix; expected a plain numpy.ndarray"):
        call(x, out)
    np.testing.assert_array_equal(out, 7.0)
    # the documented way: a plain view of the matrix's memory
    view = np.asarray(out)
    assert call(x, view) is view
    assert not np.any(np.asarray(out) == 7.0)
