"""The rules of host arrays in a call: conversion, axes, ``out``, ``where``, staging, layouts.

What every dispatch module (``core``, ``logsumexp``, ``loss``, ``topk``, ``segment``) applies to
NumPy input before it makes a plan: array-likes converted (``as_array``), ``axis`` normalised,
the dtype rules, ``out`` and ``where`` checked, and the ``(outer, n, inner)`` views that the
kernels read in place where the memory allows (``readable_view``), else staged copies. Inputs
the kernels cannot read in place (byte-swapped, integer, broadcast, sliced with gaps, or
softmax axes that are not adjacent in memory) are first copied into the result array, which
the kernels then transform in place; so the only full-size allocation stays the result.
"""

import operator

import numpy as np

from . import args as _args
from . import dtypes as _dtypes
from .layout import Layout

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple


def as_array(x, name):
    if isinstance(x, np.matrix):
        # As scipy.special.softmax: a matrix is read as its 2-d ndarray and the result is an
        # ndarray (matrix indexing keeps 2 dimensions, which the layouts cannot view).
        return np.asarray(x)
    if isinstance(x, np.ndarray):
        return _args.unmasked(x, name) if _args.is_masked(x) else x
    if x is None:
        raise _args.missing_array(name)
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be converted to an array: {exc}") from exc


def normalize_axes(axis, ndim):
    """axis (int, tuple of ints or None) -> sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis must be an int, a tuple of ints or None, not {axis!r}")
    if isinstance(axis, (tuple, list)):
        items = tuple(axis)
    else:
        items = (axis,)
    try:
        items = tuple(operator.index(a) for a in items)
    except TypeError:
        raise TypeError(f"axis must be an int, a tuple of ints or None, not {axis!r}") from None
    if ndim == 0:
        # A scalar accepts axis 0 or -1 (as SciPy does): the one element is its own slice.
        if all(a in (0, -1) for a in items) and len(items) <= 1:
            return ()
        raise np.exceptions.AxisError(f"axis {axis!r} is out of bounds for a 0-d input")
    try:
        return tuple(sorted(normalize_axis_tuple(items, ndim)))
    except np.exceptions.AxisError:
        raise
    except OverflowError:  # beyond a C long (axis=2**63): as far out of bounds as any
        raise np.exceptions.AxisError(
            f"axis {axis!r} is out of bounds for an array of dimension {ndim}") from None
    except ValueError:  # NumPy's own message names neither the axes nor the input
        raise ValueError(
            f"axis {axis!r} repeats an axis of a {ndim}-d input; expected distinct axes"
        ) from None


def check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, not {type(out).__name__}")
    if _args.is_masked(out):
        raise TypeError("out is a numpy masked array; expected a plain numpy.ndarray (its mask "
                        "would not be updated)")
    if isinstance(out, np.matrix):
        raise TypeError("out is a numpy.matrix; expected a plain numpy.ndarray "
                        "(np.asarray(out) is one, a view of the same memory)")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape} but the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype} but the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only; expected a writable array")


def same_view(a, b):
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def readable_view(arr, layout, dtype, result):
    """arr's (outer, n, inner) view when the kernels can read it in place, else None."""
    if arr.dtype != dtype or not arr.dtype.isnative or not arr.flags.aligned:
        return None
    if result is not None and np.may_share_memory(arr, result) and not same_view(arr, result):
        return None  # partial overlap: reading while writing would see our own output
    return layout.view3(arr)


def result_layout(x, axes, out, dtype):
    """The layout that the kernels see, and the array they write (out, or a new one)."""
    if out is not None:
        layout = Layout(out.shape, out.strides, axes)
        if layout.ok and layout.view3(out) is not None:
            return layout, out
    layout = Layout(x.shape, x.strides, axes)
    if not (layout.ok and x.dtype == dtype and layout.view3(x) is not None):
        layout = Layout.default(x.shape, axes)
    return layout, layout.allocate(dtype)


def prepare(x, axis, dtype):
    x = as_array(x, "x")
    if dtype is not None:
        result = _dtypes.requested_dtype(dtype)
        _dtypes.result_dtype(x.dtype)  # rejects complex, object, ... even when cast
    else:
        result = _dtypes.result_dtype(x.dtype)
    axes = normalize_axes(axis, x.ndim)
    return x, axes, result


def cast_copy(dst, src):
    """dst[...] = src with any cast; values out of range become inf/NaN without a warning
    (the result then follows the NaN/inf conventions), as a cast by dtype= should."""
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(dst, src, casting="unsafe")


def backward_args(grad_output, output, axis):
    """(g, y, result dtype, axes) of a backward call, validated."""
    g = as_array(grad_output, "grad_output")
    y = as_array(output, "output")
    if g.shape != y.shape:
        raise ValueError(
            f"grad_output has shape {g.shape} but output has shape {y.shape}; they must match"
        )
    rdtype = np.result_type(_dtypes.result_dtype(g.dtype, "grad_output"),
                            _dtypes.result_dtype(y.dtype, "output"))
    return g, y, rdtype, normalize_axes(axis, g.ndim)


def backward_inputs(g, y, layout, rdtype, result, result3):
    """(outer, n, inner) views of g and y for the kernels: read in place where the layout
    allows, else y staged apart and g copied into the result (or apart, when y is out)."""
    g3 = readable_view(g, layout, rdtype, result)
    y3 = readable_view(y, layout, rdtype, result)
    if y3 is None:
        y3 = staged(y, layout, rdtype)
    if g3 is None:
        if np.may_share_memory(y3, result):  # y is out itself: keep it, stage g apart
            g3 = staged(g, layout, rdtype)
        else:
            cast_copy(result, g)
            g3 = result3
    return g3, y3


def staged(arr, layout, dtype):
    staged = layout.allocate(dtype)
    cast_copy(staged, arr)
    return layout.view3(staged)


def kernel_form(arr3, reduced=False):
    """(outer, n, 1) -> (outer, n) rows for the slice kernels (a reduced (outer, inner) result:
    (outer,)); other shapes as they are. The dtype is kept (the CPU backend reads float16 as
    its uint16 bits itself)."""
    if reduced:
        return arr3[:, 0] if arr3.shape[1] == 1 else arr3
    return arr3[:, :, 0] if arr3.shape[2] == 1 else arr3


def check_where(where, shape):
    """where as a bool ndarray that broadcasts to shape (not yet broadcast)."""
    mask = as_array(where, "where")
    if mask.dtype != np.bool_:
        raise TypeError(f"where has dtype {mask.dtype}; expected a boolean mask")
    try:
        np.broadcast_shapes(mask.shape, shape)
        if np.broadcast_shapes(mask.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"where has shape {mask.shape}, which does not broadcast to the input's shape {shape}"
        ) from None
    return mask


def rows_layout(x, axes, out, dtype):
    """Like result_layout, for kernels that take rows only (softmax axes last in memory)."""
    for arr in (out, x):
        if arr is None or (arr is x and x.dtype != dtype):
            continue
        layout = Layout(arr.shape, arr.strides, axes)
        if layout.ok and layout.inner == 1 and layout.view3(arr) is not None:
            return layout, (out if out is not None and arr is out else layout.allocate(dtype))
    layout = Layout.rows(x.shape, axes)
    return layout, layout.allocate(dtype)


def read_before_writing(mask, result):
    """mask, or a copy of it when its memory may overlap the result the kernels write (a
    view of ``out``'s bytes): as for every other input, the result is as if the mask were
    read first (issue 10 item 5: such a mask gave row sums of 1.185). May-share is a bounds
    test, so a copy can be made where none was needed: one byte per mask element."""
    if mask is not None and np.may_share_memory(mask, result):
        return mask.copy()
    return mask


def mask_rows(mask, layout):
    """mask as a C-contiguous bool (rows, n) array in layout's order, a view where it can be."""
    if mask is None:
        return None
    if mask.shape == layout.shape and mask.flags.aligned:
        view = layout.view3(mask)
        if view is not None:
            return view[:, :, 0]
    staged = layout.allocate(np.bool_)
    np.copyto(staged, np.broadcast_to(mask, layout.shape))
    return layout.view3(staged)[:, :, 0]


# ------------------------------------------------------------------ one-axis functions


def reduced_shape(shape, axes, keepdims):
    """The shape of a reduction over axes of an array of shape."""
    if keepdims:
        return tuple(1 if a in axes else s for a, s in enumerate(shape))
    return tuple(s for a, s in enumerate(shape) if a not in axes)


def class_axis(axis, ndim, axes):
    """cross_entropy's one class axis, or ValueError (a tuple, None or a 0-d input)."""
    if ndim == 0 or len(axes) != 1 or isinstance(axis, (tuple, list)) or axis is None:
        raise ValueError(f"axis must be one class axis of the logits (of {ndim} dimensions), "
                         f"not {axis!r}")
    return axes[0]


def topk_axis(axis, ndim):
    """softmax_topk's one axis as a 1-tuple, or ValueError (a tuple, None or a 0-d input)."""
    if ndim == 0 or isinstance(axis, (tuple, list)) or axis is None:
        raise ValueError(f"axis must be one axis of the input (of {ndim} dimensions), "
                         f"not {axis!r}")
    return normalize_axes(axis, ndim)


def check_k(k, n):
    """softmax_topk's k as an int in [1, n], or TypeError / ValueError."""
    if isinstance(k, (bool, np.bool_)):
        raise TypeError(f"k must be an int, not {k!r}")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an int, not {k!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the slice length {n}")
    return k
