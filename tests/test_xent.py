"""cross_entropy (CPU kernels of nbsoftmax.cpu._xent) against tests/reference.cross_entropy,
whose torch semantics tests/test_oracles.py pins where torch is installed."""

import numpy as np
import pytest

import nbsoftmax

from . import checks, reference

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
OPTIONS = [dict(), dict(label_smoothing=0.1), dict(weight=True), dict(ignore_index=2),
           dict(weight=True, label_smoothing=0.25, ignore_index=1), dict(temperature=0.5)]


def _case(rng, shape, axis, dtype, probs):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    n = shape[axis]
    rest = tuple(s for a, s in enumerate(shape) if a != axis % len(shape))
    if probs:
        t = rng.random(shape)
        t = (t / t.sum(axis=axis, keepdims=True)).astype(dtype)
    else:
        t = rng.integers(0, n, rest)
    return x, t, rng.random(n) + 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((6, 11), -1), ((3, 700), 1), ((2, 5, 4), 1),
                                        ((4, 3, 6), -1), ((7,), 0)])
@pytest.mark.parametrize("probs", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_against_reference(rng, dtype, shape, axis, probs, reduction, options):
    x, t, w = _case(rng, shape, axis, dtype, probs)
    kwargs = dict(options)
    if kwargs.get("weight"):
        kwargs["weight"] = w
    if probs:
        kwargs.pop("ignore_index", None)
    loss, grad = nbsoftmax.cross_entropy(x, t, axis, reduction=reduction, return_grad=True,
                                         **kwargs)
    want_loss, want_grad = reference.cross_entropy(x, t, axis, reduction, **kwargs)
    rt = RTOL[dtype]
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype and grad.shape == x.shape
    np.testing.assert_allclose(loss, want_loss, rtol=rt, atol=rt * 1e-3)
    np.testing.assert_allclose(grad, want_grad, rtol=rt * 10, atol=rt * 1e-2)
    alone = nbsoftmax.cross_entropy(x, t, axis, reduction=reduction, **kwargs)
    np.testing.assert_array_equal(alone, loss)


def test_float16(rng):
    x, t, _ = _case(rng, (5, 40), -1, np.float16, False)
    loss, grad = nbsoftmax.cross_entropy(x, t, return_grad=True)
    want, want_grad = reference.cross_entropy(x, t)
    assert loss.dtype == np.float16 and grad.dtype == np.float16
    np.testing.assert_allclose(loss, want, rtol=2e-3)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-2, atol=1e-4)


def test_gradient_by_finite_differences(rng):
    x, t, w = _case(rng, (3, 6), -1, np.float64, False)
    kwargs = dict(weight=w, label_smoothing=0.2, temperature=1.5)
    _, grad = nbsoftmax.cross_entropy(x, t, return_grad=True, **kwargs)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd = (nbsoftmax.cross_entropy(x + e, t, **kwargs)
              - nbsoftmax.cross_entropy(x - e, t, **kwargs)) / (2 * h)
        assert abs(fd - grad[idx]) < 1e-8


def test_large_vocabulary_rows(rng):
    x = rng.standard_normal((3, 300_001)).astype(np.float32) * 4
    t = rng.integers(0, 300_001, 3)
    loss, grad = nbsoftmax.cross_entropy(x, t, return_grad=True)
    want, want_grad = reference.cross_entropy(x, t)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-9)


def test_ignored_everything_and_empty():
    x = np.ones((2, 3))
    loss, grad = nbsoftmax.cross_entropy(x, [-100, -100], return_grad=True)
    assert np.isnan(loss) and np.all(grad == 0)
    assert nbsoftmax.cross_entropy(x, [-100, -100], reduction="sum") == 0
    assert np.isnan(nbsoftmax.cross_entropy(np.ones((0, 3)), np.zeros(0, int)))
    assert nbsoftmax.cross_entropy(np.ones((0, 3)), np.zeros(0, int), reduction="none").shape == (0,)


def test_layouts_and_inputs_untouched(rng):
    x = np.asfortranarray(rng.standard_normal((5, 7)))
    t = rng.integers(0, 7, 5)
    keep = x.copy()
    loss, grad = nbsoftmax.cross_entropy(x, t, return_grad=True)
    want, want_grad = reference.cross_entropy(x, t)
    np.testing.assert_allclose(loss, want, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-11, atol=1e-16)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_allclose(nbsoftmax.cross_entropy(x[:, ::-1], t), 
                               reference.cross_entropy(x[:, ::-1], t)[0], rtol=1e-12)
    np.testing.assert_allclose(nbsoftmax.cross_entropy(x.T, t, axis=0),
                               reference.cross_entropy(x.T, t, axis=0)[0], rtol=1e-12)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(target=[0, 3]), ValueError, "outside"),
    (dict(target=[0, 1, 2]), ValueError, "target has shape"),
    (dict(target=np.ones((2, 2))), ValueError, "class probabilities"),
    (dict(target=["a", "b"]), TypeError, "target has unsupported dtype"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
    (dict(weight=[1.0, 2.0]), ValueError, "weight has shape"),
    (dict(axis=(0, 1)), ValueError, "axis"),
    (dict(temperature=0), ValueError, "temperature"),
    (dict(ignore_index=0.5), TypeError, "ignore_index must be an int"),
    (dict(ignore_index=1.9), TypeError, "ignore_index must be an int"),
    (dict(ignore_index=True), TypeError, "ignore_index must be an int"),
    (dict(ignore_index=np.float64(1.0)), TypeError, "ignore_index must be an int"),
    (dict(ignore_index=2**70), ValueError, "int64"),
    (dict(target=np.array([2**64 - 100, 0], np.uint64)), ValueError, "outside"),
    (dict(target=np.full((2, 3), 1 / 3), ignore_index=0), ValueError, "class-index targets"),
])
def test_errors(kwargs, exc, match):
    args = dict(logits=np.zeros((2, 3)), target=[0, 1])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        nbsoftmax.cross_entropy(**args)


# ------------------------------------------------------------------ issue 10 items 2-4, 12

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
BASE = np.array([[0.0, -1.0, -2.0, -3.0]])


def test_item2_reproducers():
    """Loss and gradient at an offset: were (gradient) [0, 0.368, 0.135, 0.050] at 1e7
    (torch: [-0.356, 0.237, 0.087, 0.032]), (0.0, [0, 0, 1, 0]) for [[3e38, -3e38, 3e38, 0]]
    (torch: (0.693, [-0.5, 0, 0.5, 0])), and a float64 loss off by 2.7e-3 at 2**45."""
    want_loss, want_grad = reference.cross_entropy(BASE, [0])
    loss, grad = nbsoftmax.cross_entropy((BASE + 1e7).astype(np.float32), [0], return_grad=True)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(grad, [[-0.356, 0.237, 0.087, 0.032]], atol=6e-4)  # torch
    for dtype in (np.float64, np.float32):
        loss, grad = nbsoftmax.cross_entropy(np.array([[3e38, -3e38, 3e38, 0.0]], dtype), [0],
                                             return_grad=True)
        np.testing.assert_allclose(loss, np.log(2), rtol=2e-7)
        np.testing.assert_array_equal(grad, dtype([[-0.5, 0, 0.5, 0]]))
    loss, grad = nbsoftmax.cross_entropy(BASE + 2.0**45, [0], return_grad=True)
    np.testing.assert_allclose(loss, want_loss, rtol=2e-16)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-15, atol=1e-17)


def _coefficient_sums(t, n, eps, w, probs):
    """Per row: the sum of the loss's (nonnegative) coefficients of log-probabilities."""
    w = np.ones(n) if w is None else w
    if probs:
        return (((1 - eps) * t + eps / n) * w).sum(-1)
    return (1 - eps) * w[t] + eps / n * w.sum()


@pytest.mark.parametrize("dtype,c", [(F32, 1e3), (F32, 1e6), (F32, -1e7), (F64, 1e6),
                                     (F64, 2.0**45), (F64, -(2.0**45))])
@pytest.mark.parametrize("options", [dict(), dict(label_smoothing=0.2), dict(weight=True),
                                     dict(temperature=0.3), dict(probs=True),
                                     dict(probs=True, temperature=2.5, label_smoothing=0.1)],
                         ids=lambda o: "-".join(o) or "plain")
def test_shift_invariance_within_log_softmax_bounds(rng, dtype, c, options):
    """Losses (reduction none) and gradients of x + c against the float64 reference on the
    exactly shifted-back values: loss within twice log_softmax's bound per unit of target
    weight, gradient within twice the softmax bound plus 16 ulps of its terms."""
    kw = dict(options)
    probs = kw.pop("probs", False)
    x = (rng.standard_normal((8, 30)) * 5).astype(dtype)
    n = x.shape[1]
    if probs:
        t = rng.random(x.shape)
        t = (t / t.sum(-1, keepdims=True)).astype(dtype)
    else:
        t = rng.integers(0, n, 8)
    w = rng.random(n) + 0.5
    if kw.get("weight"):
        kw["weight"] = w
    xs = (x + dtype.type(c)).astype(dtype)
    back = xs.astype(np.float64) - c  # exact
    loss, grad = nbsoftmax.cross_entropy(xs, t, reduction="none", return_grad=True, **kw)
    want_loss, want_grad = reference.cross_entropy(back, t.astype(np.float64) if probs else t,
                                                   reduction="none", **kw)
    bound = checks.BOUNDS[dtype]
    eps = kw.get("label_smoothing", 0.0)
    total = _coefficient_sums(t.astype(np.float64) if probs else t, n, eps, kw.get("weight"),
                              probs)
    assert np.all(np.abs(loss - want_loss) <= 2 * bound["c"] * (total + np.abs(want_loss)))
    temp = kw.get("temperature", 1.0)
    t_max = np.ptp(back, axis=-1, keepdims=True) / temp
    scale = np.abs(want_grad) + 2 * total[:, None] / temp  # bounds p * A + B per entry
    allowed = (2 * (bound["a"] + bound["b"] * t_max) + 16 * np.finfo(dtype).eps) * scale
    assert np.all(np.abs(grad - want_grad) <= allowed + 1e-30)


@pytest.mark.parametrize("k,j", [(7, 0), (-123457, 20), (2**20, 25)])
@pytest.mark.parametrize("options", [dict(), dict(label_smoothing=0.3, temperature=0.7),
                                     dict(probs=True, temperature=3.0)],
                         ids=lambda o: "-".join(o) or "plain")
def test_exact_shift_is_bit_identical(rng, k, j, options):
    kw = dict(options)
    probs = kw.pop("probs", False)
    x = np.round(rng.standard_normal((5, 9)) * 40) / 4
    t = rng.random(x.shape) if probs else rng.integers(0, 9, 5)
    if probs:
        t /= t.sum(-1, keepdims=True)
    c = float(k) * 2.0**j
    assert np.all((x + c) - c == x)
    a = nbsoftmax.cross_entropy(x + c, t, reduction="none", return_grad=True, **kw)
    b = nbsoftmax.cross_entropy(x, t, reduction="none", return_grad=True, **kw)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("probs", [False, True])
def test_item3_non_finite_rows_are_nan(dtype, probs):
    """+inf or NaN logits, or a row of -inf: NaN loss and an all-NaN gradient row, as torch
    and nbsoftmax.log_softmax; other rows untouched, ignored rows 0. Was (inf, [nan, -1, 0, 0])."""
    x = np.array([[np.inf, 0, 1, 2], [np.nan, 0, 1, 2], [-np.inf] * 4, [0, 1, 2, 3],
                  [np.inf, 0, 0, 0]], dtype)
    if probs:
        t = np.full(x.shape, 0.25, dtype)
    else:
        t = np.array([1, 1, 1, 2, -100])
    loss, grad = nbsoftmax.cross_entropy(x, t, reduction="none", return_grad=True)
    assert np.isnan(loss[:3]).all() and np.isnan(grad[:3]).all()
    want_loss, want_grad = reference.cross_entropy(x[3:4].astype(np.float64), t[3:4],
                                                   reduction="none")
    rt = 2e-3 if dtype == np.float16 else 1e-6
    np.testing.assert_allclose(loss[3:4], want_loss, rtol=rt)
    np.testing.assert_allclose(grad[3:4], want_grad, rtol=rt * 10, atol=rt * 1e-2)
    if probs:
        assert np.isnan(loss[4]) and np.isnan(grad[4]).all()
    else:
        assert loss[4] == 0 and np.all(grad[4] == 0)
    loss, grad = nbsoftmax.cross_entropy(np.array([[np.inf, 0, 1, 2]], dtype),
                                         [[0.25] * 4] if probs else [1], return_grad=True)
    assert np.isnan(loss) and np.isnan(grad).all()


@pytest.mark.parametrize("tdtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                    np.int64, np.uint64])
def test_item4_targets_of_any_integer_dtype(rng, tdtype):
    x = rng.standard_normal((3, 5))
    t = np.array([0, 4, 2], tdtype)
    want = reference.cross_entropy(x, t.astype(np.int64))[0]
    np.testing.assert_allclose(nbsoftmax.cross_entropy(x, t), want, rtol=1e-14)
    info = np.iinfo(tdtype)
    for bad in (5, info.max) + ((-1, info.min) if info.min < 0 else ()):
        with pytest.raises(ValueError, match="outside"):
            nbsoftmax.cross_entropy(x, np.array([0, bad, 2], tdtype))
    # an ignore_index in the dtype's range is matched in that dtype
    got = nbsoftmax.cross_entropy(x, np.array([0, 4, 2], tdtype), ignore_index=4,
                                  reduction="none")
    assert got[1] == 0 and got[0] != 0
    if info.min >= 0:  # the default -100 matches no unsigned value: nothing is ignored
        assert np.all(nbsoftmax.cross_entropy(x, t, reduction="none") > 0)


def test_item4_issue_reproducers():
    x = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0]])
    for bad in (0.5, 1.9):  # were: nothing ignored but class 0 zeroed / class 1 ignored
        with pytest.raises(TypeError, match="ignore_index must be an int"):
            nbsoftmax.cross_entropy(x, [0, 1], ignore_index=bad)
    with pytest.raises(ValueError, match="18446744073709551516"):  # was: wrapped to -100
        nbsoftmax.cross_entropy(x[:1], np.array([2**64 - 100], np.uint64))
    got = nbsoftmax.cross_entropy(x, [0, 1], ignore_index=np.int32(1))
    np.testing.assert_allclose(got, reference.cross_entropy(x[:1], [0])[0], rtol=1e-15)


def test_item12_probability_targets():
    """An ignore_index >= 0 with class probabilities raises, as torch ("ignore_index is not
    supported for floating point target"); a negative one matches no class (torch accepts
    it). No classes: the mean is NaN, as torch's; sum 0, none zeros."""
    x = np.zeros((2, 3))
    t = np.full((2, 3), 1 / 3)
    for ii in (0, 2, 7):
        with pytest.raises(ValueError, match="ignore_index"):
            nbsoftmax.cross_entropy(x, t, ignore_index=ii)
    np.testing.assert_allclose(nbsoftmax.cross_entropy(x, t, ignore_index=-5), np.log(3),
                               rtol=1e-15)
    empty = np.zeros((3, 0))
    assert np.isnan(nbsoftmax.cross_entropy(empty, empty))
    assert nbsoftmax.cross_entropy(empty, empty, reduction="sum") == 0
    np.testing.assert_array_equal(nbsoftmax.cross_entropy(empty, empty, reduction="none"),
                                  np.zeros(3))
    loss, grad = nbsoftmax.cross_entropy(empty, empty, return_grad=True)
    assert np.isnan(loss) and grad.shape == (3, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_temperatures(dtype):
    """T = 1e-300: the loss is (max - x_t) / T, the gradient (p - onehot) / T with p one-hot
    at the max (no overflow of 1 / T in float32 or of 1e300 * ... in the gradient);
    T = 1e300: uniform p, loss log(C)."""
    x = np.array([[0.5, -1.2, 1.7, 0.3]], dtype)
    loss, grad = nbsoftmax.cross_entropy(x, [2], return_grad=True, temperature=1e-300)
    assert loss == 0 and np.all(grad == 0)
    want = np.float64(x[0, 2]) - np.float64(x[0, 0])
    loss, grad = nbsoftmax.cross_entropy(x.astype(np.float64), [0], return_grad=True,
                                         temperature=1e-300)
    np.testing.assert_allclose(loss, want / 1e-300, rtol=1e-15)
    np.testing.assert_allclose(grad, [[-1e300, 0, 1e300, 0]], rtol=1e-15)
    loss, grad = nbsoftmax.cross_entropy(x, [0], return_grad=True, temperature=1e-30)
    np.testing.assert_allclose(loss, want / 1e-30, rtol=1e-6)
    np.testing.assert_allclose(grad, np.array([[-1e30, 0, 1e30, 0]], dtype), rtol=1e-6)
    loss, grad = nbsoftmax.cross_entropy(x, [0], return_grad=True, temperature=1e300)
    np.testing.assert_allclose(loss, np.log(4), rtol=1e-6)
    want = (np.array([[-0.75, 0.25, 0.25, 0.25]]) / 1e300).astype(dtype)  # float32: 0
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=0)
