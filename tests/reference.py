"""Reference implementations of every nbsoftmax operation, and the shared table of layouts.

Two references per operation, both written independently of nbsoftmax:

* ``softmax``, ``log_softmax``, ``logsumexp``, ``softmax_backward``, ``log_softmax_backward``:
  float64 results from ``scipy.special`` / NumPy, with the issue's value conventions made
  explicit (a slice holding NaN or +inf, or made only of -inf, is NaN throughout; logsumexp
  of it is NaN, +inf or -inf; empty slices give empty results, logsumexp -inf).
* ``*_exact``: the same formulas in ``np.longdouble`` (x87 80-bit here: 64-bit significand)
  on the same input values, for the accuracy bounds. Inputs there are finite.

Every reference takes the arguments of the nbsoftmax function it mirrors and casts its
input to float64 (resp. longdouble) first, so bool, integer, float16 and byte-swapped input
all work. The benchmarks import this module as ``tests.reference``.

``LAYOUTS`` maps a layout name to a function making, from a C-contiguous base array, an
array of another memory layout (with the same values, except where the layout itself
forbids it: ``broadcast_*`` repeat one slice of the base, ``empty``/``zero_length``/
``zero_d`` change the shape). Results on such an array must equal those on
``np.array(layout(base), order="C")``.
"""

import math

import numpy as np
import scipy.special

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_backward",
    "log_softmax_backward",
    "softmax_exact",
    "log_softmax_exact",
    "logsumexp_exact",
    "softmax_backward_exact",
    "log_softmax_backward_exact",
    "shifted_exact",
    "softmax_where",
    "log_softmax_where",
    "logsumexp_where",
    "softmax_backward_where",
    "log_softmax_backward_where",
    "softmin",
    "cross_entropy",
    "softmax_topk",
    "reduced_axes",
    "LAYOUTS",
    "WRITABLE_LAYOUTS",
]


def reduced_axes(axis, ndim):
    """The sorted tuple of axes an operation runs over (a 0-d input accepts None, 0, -1)."""
    if ndim == 0:
        if axis is None or (axis in (0, -1, (0,), (-1,), ())):
            return ()
        raise np.exceptions.AxisError(f"axis {axis!r} is out of bounds for a 0-d input")
    if axis is None:
        return tuple(range(ndim))
    return tuple(sorted(normalize_axis_tuple(axis, ndim)))


def _as(x, dtype):
    x = np.asarray(x)
    return x.astype(dtype) if x.dtype != dtype or not x.dtype.isnative else x


def _bad_slices(x, axes):
    """Slices (keepdims shape) that the conventions turn into NaN: NaN, +inf or all -inf."""
    nan_or_posinf = np.any(np.isnan(x) | (x == np.inf), axis=axes, keepdims=True)
    all_neginf = np.all(x == -np.inf, axis=axes, keepdims=True)
    return nan_or_posinf | all_neginf


# ------------------------------------------------------------------ float64 (SciPy)
# Every reduction runs along the last axis of a C-contiguous (slices, n) copy: there NumPy
# sums pairwise, as SciPy's accuracy claims assume; over another axis its sums are
# sequential and their error grows with the slice length.


def _slices_as_rows(x, axes):
    """x with the axes moved last, as C-contiguous rows; and the shape and order to undo it."""
    rest = [a for a in range(x.ndim) if a not in axes]
    order = rest + list(axes)
    moved = np.array(np.transpose(x, order), order="C")  # (ascontiguousarray makes 0-d 1-d)
    n = math.prod(x.shape[a] for a in axes)
    return moved.reshape(math.prod(x.shape[a] for a in rest), n), moved.shape, order


def _along_slices(func, x, axes):
    """func(rows) -> rows, with each row one slice; the result in x's shape."""
    rows, moved_shape, order = _slices_as_rows(x, axes)
    result = np.transpose(np.asarray(func(rows)).reshape(moved_shape), np.argsort(order))
    return np.array(result, order="C")  # C-contiguous, as callers (cuda.to_device) may need


def _reduce_slices(func, x, axes):
    """func(rows) -> one value per row; the result in the keepdims shape."""
    rows, _, _ = _slices_as_rows(x, axes)
    return np.asarray(func(rows)).reshape([1 if a in axes else n for a, n in enumerate(x.shape)])


def softmax(x, axis=-1):
    x = _as(x, np.float64)
    axes = reduced_axes(axis, x.ndim)
    if x.size == 0:
        return np.empty(x.shape, np.float64)
    with np.errstate(all="ignore"):
        result = _along_slices(lambda rows: scipy.special.softmax(rows, axis=-1), x, axes)
    return np.where(_bad_slices(x, axes), np.nan, result)


def log_softmax(x, axis=-1):
    x = _as(x, np.float64)
    axes = reduced_axes(axis, x.ndim)
    if x.size == 0:
        return np.empty(x.shape, np.float64)
    with np.errstate(all="ignore"):
        result = _along_slices(lambda rows: scipy.special.log_softmax(rows, axis=-1), x, axes)
    return np.where(_bad_slices(x, axes), np.nan, result)


def logsumexp(x, axis=-1, keepdims=False):
    x = _as(x, np.float64)
    axes = reduced_axes(axis, x.ndim)
    reduced_shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    if x.size == 0:
        result = np.full(reduced_shape, -np.inf)
    else:
        with np.errstate(all="ignore"):
            result = _reduce_slices(lambda rows: scipy.special.logsumexp(rows, axis=-1), x, axes)
        any_nan = np.any(np.isnan(x), axis=axes, keepdims=True)
        any_posinf = np.any(x == np.inf, axis=axes, keepdims=True)
        all_neginf = np.all(x == -np.inf, axis=axes, keepdims=True)
        result = np.where(all_neginf, -np.inf, result)
        result = np.where(any_posinf, np.inf, result)
        result = np.where(any_nan, np.nan, result)
    if not keepdims:
        result = result.reshape([n for a, n in enumerate(reduced_shape) if a not in axes])
    return result


def _sum_slices(x, axes):
    return _reduce_slices(lambda rows: np.sum(rows, axis=-1), x, axes)


def softmax_backward(grad_output, output, axis=-1):
    """y * (g - sum(g * y)) over the axes."""
    g = _as(grad_output, np.float64)
    y = _as(output, np.float64)
    axes = reduced_axes(axis, g.ndim)
    with np.errstate(all="ignore"):
        return y * (g - _sum_slices(g * y, axes))


def log_softmax_backward(grad_output, output, axis=-1):
    """g - exp(y) * sum(g) over the axes."""
    g = _as(grad_output, np.float64)
    y = _as(output, np.float64)
    axes = reduced_axes(axis, g.ndim)
    with np.errstate(all="ignore"):
        return g - np.exp(y) * _sum_slices(g, axes)


# ------------------------------------------------------------------ where= and temperature=
# The semantics of jax.nn.softmax / log_softmax / logsumexp(where=) (checked against JAX in
# tests/test_oracles.py when it is installed): x * scale (scale = 1 / temperature) over the
# unmasked entries with the plain conventions above; masked entries 0 (log: -inf; backward:
# exactly 0); a fully masked slice 0 (log_softmax and logsumexp: -inf).


def _masked(x, where, scale, fill):
    x = _as(x, np.float64)
    mask = np.broadcast_to(np.asarray(where, bool), x.shape) if where is not None \
        else np.ones(x.shape, bool)
    with np.errstate(all="ignore"):
        return x * scale, mask, np.where(mask, x * scale, fill)


def _fully_masked(mask, axes):
    return ~np.any(mask, axis=axes, keepdims=True) if mask.ndim else ~mask


def softmax_where(x, axis=-1, where=None, temperature=1.0):
    """softmax(x / temperature) over the entries where ``where``; 0 elsewhere."""
    xs, mask, filled = _masked(x, where, 1.0 / temperature, -np.inf)
    axes = reduced_axes(axis, xs.ndim)
    if xs.size == 0:
        return np.empty(xs.shape)
    # a masked entry must not turn its slice NaN: the plain reference on x with masked
    # entries at -inf, except that a fully masked slice stays 0
    result = softmax(filled, axis)
    result = np.where(mask, result, 0.0)
    return np.where(_fully_masked(mask, axes), 0.0, result)


def log_softmax_where(x, axis=-1, where=None, temperature=1.0):
    xs, mask, filled = _masked(x, where, 1.0 / temperature, -np.inf)
    axes = reduced_axes(axis, xs.ndim)
    if xs.size == 0:
        return np.empty(xs.shape)
    result = np.where(mask, log_softmax(filled, axis), -np.inf)
    return np.where(_fully_masked(mask, axes), -np.inf, result)


def logsumexp_where(x, axis=-1, where=None, keepdims=False):
    xs, mask, filled = _masked(x, where, 1.0, -np.inf)
    return logsumexp(filled, axis, keepdims)


def softmax_backward_where(grad_output, output, axis=-1, where=None, temperature=1.0):
    """(1 / temperature) * y * (g - sum(g * y)) over the unmasked entries; 0 at masked ones."""
    g, mask, g0 = _masked(grad_output, where, 1.0, 0.0)
    y = np.where(mask, _as(output, np.float64), 0.0)
    axes = reduced_axes(axis, g.ndim)
    with np.errstate(all="ignore"):
        result = y * (g0 - _sum_slices(g0 * y, axes)) / temperature
    return np.where(mask, result, 0.0)


def log_softmax_backward_where(grad_output, output, axis=-1, where=None, temperature=1.0):
    """(1 / temperature) * (g - exp(y) * sum(g)) over the unmasked entries; 0 at masked ones."""
    g, mask, g0 = _masked(grad_output, where, 1.0, 0.0)
    y = _as(output, np.float64)
    axes = reduced_axes(axis, g.ndim)
    with np.errstate(all="ignore"):
        result = (g0 - np.exp(y) * _sum_slices(g0, axes)) / temperature
    return np.where(mask, result, 0.0)


def softmin(x, axis=-1, where=None, temperature=1.0):
    """softmax(-x / temperature), as torch.nn.Softmin."""
    with np.errstate(all="ignore"):
        return softmax_where(-_as(x, np.float64), axis, where, temperature)


def cross_entropy(logits, target, axis=-1, reduction="mean", label_smoothing=0.0,
                  ignore_index=-100, weight=None, temperature=1.0):
    """(loss, d loss / d logits) in float64, with torch.nn.functional.cross_entropy's
    semantics (checked against torch in tests/test_oracles.py when it is installed).

    Every sample's loss is ``-sum_c coef[c] * log_softmax(x / T)[c]`` with ``coef`` the
    weighted (smoothed) target; its gradient is ``(softmax * sum(coef) - coef) / T``. "mean"
    divides by the kept samples' count (class indices: their weight sum); "none" gives the
    gradient of the sum of the losses.
    """
    x = np.moveaxis(_as(logits, np.float64), axis, -1) / temperature
    n_classes = x.shape[-1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        keep = t != ignore_index
        onehot = np.zeros(x.shape)
        np.put_along_axis(onehot, np.where(keep, t, 0)[..., None], 1.0, axis=-1)
        coef = (1 - eps) * onehot * w + eps / n_classes * w
        coef = np.where(keep[..., None], coef, 0.0)
        denominator = np.sum(np.where(keep, w[np.where(keep, t, 0)], 0.0))
    else:
        q = (1 - eps) * np.moveaxis(t.astype(np.float64), axis, -1) + eps / n_classes
        coef = q * w
        denominator = float(np.prod(x.shape[:-1]))
    with np.errstate(all="ignore"):
        logp = scipy.special.log_softmax(x, axis=-1) if x.size else x
        losses = -np.sum(coef * np.where(coef != 0, logp, 0.0), axis=-1)
        grad = scipy.special.softmax(x, axis=-1) * coef.sum(-1, keepdims=True) - coef \
            if x.size else x
        grad = grad / temperature
        if reduction == "mean":
            loss = losses.sum() / denominator
            grad = grad / denominator
        elif reduction == "sum":
            loss = losses.sum()
        else:
            loss = losses
    return loss, np.moveaxis(grad, -1, axis)


def softmax_topk(x, k, axis=-1):
    """(probabilities, indices) of the k largest softmax entries along axis, by a full stable
    sort on -x (ties: lower index first); NaN softmax slices give indices 0..k-1."""
    x = np.moveaxis(_as(x, np.float64), axis, -1)
    p = softmax(x, -1)
    bad = np.isnan(p).any(axis=-1, keepdims=True) if x.size else np.zeros(x.shape[:-1] + (1,), bool)
    order = np.argsort(-np.where(bad, 0.0, x), axis=-1, kind="stable")[..., :k]
    order = np.where(bad, np.arange(k), order)
    probs = np.take_along_axis(p, order, axis=-1)
    return np.moveaxis(probs, -1, axis), np.moveaxis(order, -1, axis)


# ------------------------------------------------------------------ np.longdouble ("exact")


def shifted_exact(x, axis=-1):
    """t = x - max(x) over the axes, in longdouble: the argument of exp in every bound."""
    x = _as(x, np.longdouble)
    axes = reduced_axes(axis, x.ndim)
    return x - np.max(x, axis=axes, keepdims=True)


def softmax_exact(x, axis=-1):
    t = shifted_exact(x, axis)
    e = np.exp(t)
    return e / np.sum(e, axis=reduced_axes(axis, t.ndim), keepdims=True)


def log_softmax_exact(x, axis=-1):
    t = shifted_exact(x, axis)
    return t - np.log(np.sum(np.exp(t), axis=reduced_axes(axis, t.ndim), keepdims=True))


def logsumexp_exact(x, axis=-1):
    x = _as(x, np.longdouble)
    axes = reduced_axes(axis, x.ndim)
    m = np.max(x, axis=axes, keepdims=True)
    return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)), axis=axes)


def softmax_backward_exact(grad_output, output, axis=-1):
    g = _as(grad_output, np.longdouble)
    y = _as(output, np.longdouble)
    return y * (g - np.sum(g * y, axis=reduced_axes(axis, g.ndim), keepdims=True))


def log_softmax_backward_exact(grad_output, output, axis=-1):
    g = _as(grad_output, np.longdouble)
    y = _as(output, np.longdouble)
    return g - np.exp(y) * np.sum(g, axis=reduced_axes(axis, g.ndim), keepdims=True)


# ------------------------------------------------------------------ layouts


def _contiguous(base):
    return np.array(base, order="C")


def _fortran(base):
    return np.array(base, order="F")


def _sliced(base):
    """A view with an offset and a step of 2 on every axis into a larger NaN-filled buffer."""
    fill = np.nan if base.dtype.kind == "f" else 0
    big = np.full([2 * n + 3 for n in base.shape], fill, base.dtype)
    view = big[tuple(slice(1, 1 + 2 * n, 2) for n in base.shape)]
    view[...] = base
    return view


def _sliced_rows(base):
    """Contiguous inner axis, rows 1 element apart from the next (gaps between rows)."""
    big = np.zeros(base.shape[:-1] + (base.shape[-1] + 3,), base.dtype)
    view = big[..., 2 : 2 + base.shape[-1]]
    view[...] = base
    return view


def _negative_strides(base):
    """Every axis reversed in memory."""
    flip = (slice(None, None, -1),) * base.ndim
    return np.array(base[flip], order="C")[flip]


def _negative_strides_first(base):
    """Only the first axis reversed in memory."""
    return np.array(base[::-1], order="C")[::-1]


def _transposed(base):
    """Memory order (last, first, second, ...): the last axis has the largest stride."""
    order = (base.ndim - 1,) + tuple(range(base.ndim - 1))
    return np.array(base.transpose(order), order="C").transpose(np.argsort(order))


def _broadcast_first(base):
    """Zero stride along the first axis (every row the same as the base's first)."""
    return np.broadcast_to(base[:1], base.shape)


def _broadcast_last(base):
    """Zero stride along the last axis (constant slices along it)."""
    return np.broadcast_to(base[..., :1], base.shape)


def _byteswapped(base):
    return base.astype(base.dtype.newbyteorder())


def _readonly(base):
    arr = np.array(base, order="C")
    arr.flags.writeable = False
    return arr


def _unaligned(base):
    """A C-ordered array at an odd byte address."""
    buf = np.zeros(base.nbytes + 1, np.uint8)
    arr = buf[1:].view(base.dtype).reshape(base.shape)
    arr[...] = base
    return arr


def _empty(base):
    return base[:0]


def _zero_length(base):
    """Slices of length 0 along the last axis."""
    return base[..., :0]


def _zero_d(base):
    """A 0-d view into the base at an offset."""
    return np.array(base, order="C")[(min(1, base.shape[0] - 1),) + (0,) * (base.ndim - 1) + (...,)]


LAYOUTS = {
    "contiguous": _contiguous,
    "fortran": _fortran,
    "sliced": _sliced,
    "sliced_rows": _sliced_rows,
    "negative_strides": _negative_strides,
    "negative_strides_first": _negative_strides_first,
    "transposed": _transposed,
    "broadcast_first": _broadcast_first,
    "broadcast_last": _broadcast_last,
    "byteswapped": _byteswapped,
    "readonly": _readonly,
    "unaligned": _unaligned,
    "empty": _empty,
    "zero_length": _zero_length,
    "zero_d": _zero_d,
}

# Layouts that keep the base's shape and can be written to (candidates for ``out``).
WRITABLE_LAYOUTS = {
    name: LAYOUTS[name]
    for name in (
        "contiguous",
        "fortran",
        "sliced",
        "sliced_rows",
        "negative_strides",
        "negative_strides_first",
        "transposed",
        "unaligned",
    )
}
