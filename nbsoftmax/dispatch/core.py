"""The one dispatch layer: everything about a call except the arithmetic.

For every public function it converts array-likes, normalises ``axis``, applies the dtype
rules, checks or allocates ``out``, brings the arrays into a C-contiguous (outer, n, inner)
form without copying where their memory allows (``_layout``), and hands them to a backend:
``nbsoftmax.cpu`` for host arrays, ``nbsoftmax.cuda`` (imported on first use) for objects
exposing ``__cuda_array_interface__``. Nothing is written before every check has passed.

Inputs the kernels cannot read in place (byte-swapped, integer, broadcast, sliced with gaps,
or softmax axes that are not adjacent in memory) are first copied into the result array,
which the kernels then transform in place; so the only full-size allocation stays the
result. The exceptions are logsumexp and the second input of the backward passes (the
result cannot hold them) and an ``out`` whose own layout cannot be viewed so: then a
result is computed and copied into it.
"""

import operator
import sys

import numpy as np

from . import args as _args
from . import dtypes as _dtypes
from . import logsumexp as _logsumexp
from . import temperature as _temperature
from . import torch_cpu as _torch_cpu
from . import xent as _xent_args
from .layout import Layout

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple


# ------------------------------------------------------------------ backends


def _is_device_array(obj):
    # numba's CUDA simulator arrays carry __cuda_ndarray__ but no __cuda_array_interface__.
    return (hasattr(obj, "__cuda_array_interface__")
            or getattr(obj, "__cuda_ndarray__", False) is True)


def _cuda_backend():
    from .. import cuda  # imported on first GPU call only: nothing probes a device at import

    return cuda


def _on_gpu(device, *arrays):
    """Whether this call runs on the GPU: device arrays given, or device="cuda" asked for."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f'device must be None, "cpu" or "cuda", not {device!r}')
    return device == "cuda" or any(_is_device_array(a) for a in arrays)


def _cpu_backend():
    from .. import cpu

    return cpu


# ------------------------------------------------------------------ arguments


def _as_array(x, name):
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


def _check_out(out, shape, dtype):
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


def _same_view(a, b):
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def _readable_view(arr, layout, dtype, result):
    """arr's (outer, n, inner) view when the kernels can read it in place, else None."""
    if arr.dtype != dtype or not arr.dtype.isnative or not arr.flags.aligned:
        return None
    if result is not None and np.may_share_memory(arr, result) and not _same_view(arr, result):
        return None  # partial overlap: reading while writing would see our own output
    return layout.view3(arr)


def _result_layout(x, axes, out, dtype):
    """The layout that the kernels see, and the array they write (out, or a new one)."""
    if out is not None:
        layout = Layout(out.shape, out.strides, axes)
        if layout.ok and layout.view3(out) is not None:
            return layout, out
    layout = Layout(x.shape, x.strides, axes)
    if not (layout.ok and x.dtype == dtype and layout.view3(x) is not None):
        layout = Layout.default(x.shape, axes)
    return layout, layout.allocate(dtype)


# ------------------------------------------------------------------ forward


def _prepare(x, axis, dtype):
    x = _as_array(x, "x")
    if dtype is not None:
        result = _dtypes.requested_dtype(dtype)
        _dtypes.result_dtype(x.dtype)  # rejects complex, object, ... even when cast
    else:
        result = _dtypes.result_dtype(x.dtype)
    axes = normalize_axes(axis, x.ndim)
    return x, axes, result


_FAST_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
_cpu = None  # nbsoftmax.cpu once imported: an import statement per call costs ~0.15 us


def _fast_rows(op, x, axis, out):
    """The common call (C-contiguous float32/64 ndarray, last axis, no out or a C-contiguous
    one) straight to the row kernel, or None. The general path spends ~13 us of Python per
    call on layouts; this one ~1.5 us (a 1 x 10 float32 softmax; torch.softmax: 0.9-1.3 us)."""
    global _cpu
    ndim = x.ndim
    if ndim == 0 or x.dtype not in _FAST_DTYPES or not (axis == -1 or axis == ndim - 1):
        return None
    flags = x.flags
    if not (flags.c_contiguous and flags.aligned) or x.size == 0:
        return None
    if out is None:
        out = np.empty_like(x)
    elif out is not x:
        oflags = out.flags if type(out) is np.ndarray else None
        if not (
            oflags is not None
            and out.dtype == x.dtype
            and out.shape == x.shape
            and oflags.c_contiguous
            and oflags.writeable
            and oflags.aligned
            and not np.may_share_memory(out, x)
        ):
            return None
    elif not flags.writeable:
        return None  # out=x read-only: the general path raises
    if _cpu is None:
        from .. import cpu as _cpu_module

        _cpu = _cpu_module
    if ndim == 2:
        _cpu.run(op, (x,), out, out is x)
    else:
        n = x.shape[-1]
        _cpu.run(op, (x.reshape(-1, n),), out.reshape(-1, n), out is x)
    return out


def elementwise(op, x, axis, dtype, out, device=None, stream=None, *, where=None,
                temperature=None):
    """softmax / log_softmax: result of x's shape."""
    sparse = sys.modules.get("scipy.sparse") if type(x) is not np.ndarray else None
    if sparse is not None and sparse.issparse(x):  # stored entries only: nbsoftmax.dispatch.sparse
        from . import sparse as _sparse
        return _sparse.elementwise(op, x, axis, dtype, out, where, temperature, device)
    if where is not None or temperature is not None:
        return scaled(op, x, axis, dtype, out, device, stream, where=where,
                      temperature=temperature)
    if type(x) is np.ndarray and dtype is None and device is None and type(axis) is int:
        result = _fast_rows(op, x, axis, out)
        if result is not None:
            return result
    if _torch_cpu.involved(x, out):
        return _torch_cpu.call(lambda x, out: elementwise(op, x, axis, dtype, out, device, stream),
                               x=x, out=out)
    if _on_gpu(device, x, out):
        return getattr(_cuda_backend(), op)(x, axis=axis, dtype=dtype, out=out, device=device,
                                            stream=stream)
    x, axes, rdtype = _prepare(x, axis, dtype)
    if out is not None:
        _check_out(out, x.shape, rdtype)
    if x.ndim == 0:
        result = elementwise(op, x.reshape(1), 0, rdtype, None if out is None else out.reshape(1))
        return result.reshape(()) if out is None else out
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, rdtype)

    layout, result = _result_layout(x, axes, out, rdtype)
    result3 = layout.view3(result)
    x3 = _readable_view(x, layout, rdtype, result)
    if x3 is None:
        _cast_copy(result, x)
        x3 = result3
    in_place = x3 is result3 or _same_view(x3, result3)
    _cpu_backend().run(op, (_kernel_form(x3),), _kernel_form(result3), in_place)
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


def logsumexp(x, axis, keepdims, device=None, stream=None, *, where=None, b=None,
              return_sign=False):
    if b is not None or return_sign is not False:  # the general kernels: nbsoftmax.dispatch.logsumexp
        return _logsumexp.logsumexp(x, axis, keepdims, b, return_sign, where, device, stream)
    keepdims = _args.check_bool(keepdims, "keepdims")
    if _torch_cpu.involved(x, where):
        return _torch_cpu.call(lambda x, where: logsumexp(x, axis, keepdims, device, stream,
                                                          where=where), x=x, where=where)
    if where is not None:
        return _masked_logsumexp(x, axis, keepdims, device, stream, where)
    if _on_gpu(device, x):
        return _cuda_backend().logsumexp(x, axis=axis, keepdims=keepdims, device=device,
                                         stream=stream)
    x, axes, rdtype = _prepare(x, axis, None)
    if x.ndim == 0:
        return logsumexp(x.reshape(1), 0, False).reshape(())
    if x.size == 0:
        shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape)) if keepdims \
            else tuple(s for a, s in enumerate(x.shape) if a not in axes)
        return np.full(shape, -np.inf, rdtype)

    layout = Layout(x.shape, x.strides, axes)
    x3 = _readable_view(x, layout, rdtype, None) if layout.ok else None
    if x3 is None:
        layout = Layout.default(x.shape, axes)
        staged = layout.allocate(rdtype)
        _cast_copy(staged, x)
        x3 = layout.view3(staged)
    result, result2 = layout.allocate_reduced(rdtype)
    _cpu_backend().run("logsumexp", (_kernel_form(x3),), _kernel_form(result2, reduced=True))
    if keepdims:
        result = np.expand_dims(result, axes)
    return result


# ------------------------------------------------------------------ backward


def backward(op, grad_output, output, axis, out, device=None, stream=None, *, where=None,
             temperature=None):
    if where is not None or temperature is not None:
        return scaled_backward(op, grad_output, output, axis, out, device, stream, where=where,
                               temperature=temperature)
    if _torch_cpu.involved(grad_output, output, out):
        return _torch_cpu.call(lambda grad_output, output, out: backward(
            op, grad_output, output, axis, out, device, stream), grad_output=grad_output,
            output=output, out=out)
    if _on_gpu(device, grad_output, output, out):
        return getattr(_cuda_backend(), op)(grad_output, output, axis=axis, out=out,
                                            device=device, stream=stream)
    g, y, rdtype, axes = _backward_args(grad_output, output, axis)
    if out is not None:
        _check_out(out, g.shape, rdtype)
    if g.ndim == 0:
        o = None if out is None else out.reshape(1)
        result = backward(op, g.reshape(1), y.reshape(1), 0, o)
        return result.reshape(()) if out is None else out
    if g.size == 0:
        return out if out is not None else np.empty(g.shape, rdtype)

    layout, result = _result_layout(g, axes, out, rdtype)
    result3 = layout.view3(result)
    g3, y3 = _backward_inputs(g, y, layout, rdtype, result, result3)
    _cpu_backend().run(op, (_kernel_form(g3), _kernel_form(y3)), _kernel_form(result3))
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


def _cast_copy(dst, src):
    """dst[...] = src with any cast; values out of range become inf/NaN without a warning
    (the result then follows the NaN/inf conventions), as a cast by dtype= should."""
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(dst, src, casting="unsafe")


def _backward_args(grad_output, output, axis):
    """(g, y, result dtype, axes) of a backward call, validated."""
    g = _as_array(grad_output, "grad_output")
    y = _as_array(output, "output")
    if g.shape != y.shape:
        raise ValueError(
            f"grad_output has shape {g.shape} but output has shape {y.shape}; they must match"
        )
    rdtype = np.result_type(_dtypes.result_dtype(g.dtype, "grad_output"),
                            _dtypes.result_dtype(y.dtype, "output"))
    return g, y, rdtype, normalize_axes(axis, g.ndim)


def _backward_inputs(g, y, layout, rdtype, result, result3):
    """(outer, n, inner) views of g and y for the kernels: read in place where the layout
    allows, else y staged apart and g copied into the result (or apart, when y is out)."""
    g3 = _readable_view(g, layout, rdtype, result)
    y3 = _readable_view(y, layout, rdtype, result)
    if y3 is None:
        y3 = _staged(y, layout, rdtype)
    if g3 is None:
        if np.may_share_memory(y3, result):  # y is out itself: keep it, stage g apart
            g3 = _staged(g, layout, rdtype)
        else:
            _cast_copy(result, g)
            g3 = result3
    return g3, y3


def _staged(arr, layout, dtype):
    staged = layout.allocate(dtype)
    _cast_copy(staged, arr)
    return layout.view3(staged)


def _kernel_form(arr3, reduced=False):
    """(outer, n, 1) -> (outer, n) rows for the slice kernels; float16 -> uint16 bits."""
    arr3 = _dtypes.storage_view(arr3)
    if reduced:
        return arr3[:, 0] if arr3.shape[1] == 1 else arr3
    return arr3[:, :, 0] if arr3.shape[2] == 1 else arr3


# ------------------------------------------------------------------ temperature and where=
# Calls with temperature= or where= (and softmin) run the kernels of nbsoftmax.cpu._scaled,
# which read x * sign / T (nbsoftmax.dispatch.temperature) and a bool mask over rows: the softmax
# axes are brought last in
# memory (Layout.rows) whenever the given arrays are not already laid out so. x is staged
# into the result as on the plain path. A mask that cannot be viewed in that layout (a
# broadcast, another memory order, a non-bool dtype cast) is materialised once as a bool
# array of x's shape: one byte per element besides the result.


def temperature_scale(temperature, sign=1.0):
    """The validated temperature and sign (softmin: -1), a ``_temperature.Temperature``: the
    backends turn it into kernel parameters per compute dtype (``.scaling(dtype)``)."""
    return _temperature.Temperature(temperature, sign)


def check_where(where, shape):
    """where as a bool ndarray that broadcasts to shape (not yet broadcast)."""
    mask = _as_array(where, "where")
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


def _rows_layout(x, axes, out, dtype):
    """Like _result_layout, for kernels that take rows only (softmax axes last in memory)."""
    for arr in (out, x):
        if arr is None or (arr is x and x.dtype != dtype):
            continue
        layout = Layout(arr.shape, arr.strides, axes)
        if layout.ok and layout.inner == 1 and layout.view3(arr) is not None:
            return layout, (out if out is not None and arr is out else layout.allocate(dtype))
    layout = Layout.rows(x.shape, axes)
    return layout, layout.allocate(dtype)


def _read_before_writing(mask, result):
    """mask, or a copy of it when its memory may overlap the result the kernels write (a
    view of ``out``'s bytes): as for every other input, the result is as if the mask were
    read first (issue 10 item 5: such a mask gave row sums of 1.185). May-share is a bounds
    test, so a copy can be made where none was needed: one byte per mask element."""
    if mask is not None and np.may_share_memory(mask, result):
        return mask.copy()
    return mask


def _mask_rows(mask, layout):
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


def scaled(op, x, axis, dtype, out, device=None, stream=None, *, where=None, temperature=None,
           sign=1.0):
    """softmax / log_softmax of x * sign / temperature over the entries where ``where``."""
    scale = temperature_scale(temperature, sign)
    if _torch_cpu.involved(x, out, where):
        return _torch_cpu.call(lambda x, out, where: scaled(
            op, x, axis, dtype, out, device, stream, where=where, temperature=temperature,
            sign=sign), x=x, out=out, where=where)
    if _on_gpu(device, x, out, where):
        return _cuda_backend().scaled(op, x, axis, dtype, out, where, scale, device, stream)
    x, axes, rdtype = _prepare(x, axis, dtype)
    mask = None if where is None else check_where(where, x.shape)
    if out is not None:
        _check_out(out, x.shape, rdtype)
    if x.ndim == 0:
        o = None if out is None else out.reshape(1)
        m = None if mask is None else mask.reshape(1)
        result = scaled(op, x.reshape(1), 0, rdtype, o, where=m, temperature=temperature,
                        sign=sign)
        return result.reshape(()) if out is None else out
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, rdtype)
    layout, result = _rows_layout(x, axes, out, rdtype)
    mask = _read_before_writing(mask, result)
    result3 = layout.view3(result)
    x3 = _readable_view(x, layout, rdtype, result)
    if x3 is None:
        _cast_copy(result, x)
        x3 = result3
    _cpu_backend().run_scaled(op, (_kernel_form(x3),), _mask_rows(mask, layout),
                              scale.scaling(rdtype), _kernel_form(result3))
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


def _masked_logsumexp(x, axis, keepdims, device, stream, where):
    if _on_gpu(device, x, where):
        return _cuda_backend().masked_logsumexp(x, axis, keepdims, where, device, stream)
    x, axes, rdtype = _prepare(x, axis, None)
    mask = check_where(where, x.shape)
    if x.ndim == 0:
        return _masked_logsumexp(x.reshape(1), 0, False, None, None, mask.reshape(1)).reshape(())
    if x.size == 0:
        return logsumexp(x, axes, keepdims)
    layout = Layout(x.shape, x.strides, axes)
    x3 = None
    if layout.ok and layout.inner == 1:
        x3 = _readable_view(x, layout, rdtype, None)
    if x3 is None:
        layout = Layout.rows(x.shape, axes)
        x3 = _staged(x, layout, rdtype)
    result, result2 = layout.allocate_reduced(rdtype)
    _cpu_backend().run_scaled("logsumexp", (_kernel_form(x3),), _mask_rows(mask, layout), 1.0,
                              _kernel_form(result2, reduced=True))
    if keepdims:
        result = np.expand_dims(result, axes)
    return result


def scaled_backward(op, grad_output, output, axis, out, device=None, stream=None, *, where=None,
                    temperature=None):
    """The backward passes of `scaled`: (1 / temperature) * the plain gradient, 0 where masked."""
    scale = temperature_scale(temperature)
    if _torch_cpu.involved(grad_output, output, out, where):
        return _torch_cpu.call(lambda grad_output, output, out, where: scaled_backward(
            op, grad_output, output, axis, out, device, stream, where=where,
            temperature=temperature), grad_output=grad_output, output=output, out=out,
            where=where)
    if _on_gpu(device, grad_output, output, out, where):
        return _cuda_backend().scaled_backward(op, grad_output, output, axis, out, where, scale,
                                               device, stream)
    g, y, rdtype, axes = _backward_args(grad_output, output, axis)
    mask = None if where is None else check_where(where, g.shape)
    if out is not None:
        _check_out(out, g.shape, rdtype)
    if g.ndim == 0:
        o = None if out is None else out.reshape(1)
        m = None if mask is None else mask.reshape(1)
        result = scaled_backward(op, g.reshape(1), y.reshape(1), 0, o, where=m,
                                 temperature=temperature)
        return result.reshape(()) if out is None else out
    if g.size == 0:
        return out if out is not None else np.empty(g.shape, rdtype)
    layout, result = _rows_layout(g, axes, out, rdtype)
    mask = _read_before_writing(mask, result)
    result3 = layout.view3(result)
    g3, y3 = _backward_inputs(g, y, layout, rdtype, result, result3)
    _cpu_backend().run_scaled(op, (_kernel_form(g3), _kernel_form(y3)), _mask_rows(mask, layout),
                              scale.scaling(rdtype), _kernel_form(result3))
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


# ------------------------------------------------------------------ cross_entropy
# One kernel pass per row of logits (nbsoftmax.cpu._xent): per-row losses (rows-sized) and,
# with return_grad, the gradient written straight into the one full-size result. The class
# axis is brought last in memory (Layout.rows); logits whose memory is not laid out so are
# staged into the gradient array when there is one (then transformed in place), else into a
# temporary copy. The reduction's denominator (count or weight sum of the kept targets) is
# found from the targets first, so the kernel scales the gradient as it writes it.

_REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(logits, target, axis, reduction, label_smoothing, ignore_index, weight,
                  temperature, return_grad, device=None, stream=None):
    reduction, label_smoothing, return_grad = _args.cross_entropy_options(
        reduction, label_smoothing, return_grad)
    ignore_index = _xent_args.check_ignore_index(ignore_index)
    if _torch_cpu.involved(logits, target, weight):
        return _torch_cpu.call(lambda logits, target, weight: cross_entropy(
            logits, target, axis, reduction, label_smoothing, ignore_index, weight, temperature,
            return_grad, device, stream), logits=logits, target=target, weight=weight)
    if _on_gpu(device, logits, target, weight):
        return _cuda_backend().cross_entropy(logits, target, axis, reduction, label_smoothing,
                                             ignore_index, weight, temperature, return_grad,
                                             device, stream)
    x, axes, rdtype = _prepare(logits, axis, None)
    if x.ndim == 0 or len(axes) != 1 or isinstance(axis, (tuple, list)) or axis is None:
        raise ValueError(f"axis must be one class axis of the logits (of {x.ndim} dimensions), "
                         f"not {axis!r}")
    eps = label_smoothing  # checked above, by _args.cross_entropy_options
    scale = temperature_scale(temperature)
    (class_axis,) = axes
    n_classes = x.shape[class_axis]
    rest_shape = x.shape[:class_axis] + x.shape[class_axis + 1:]
    w = _xent_args.class_weight(None if weight is None else _as_array(weight, "weight"),
                                n_classes)
    t = _as_array(target, "target")
    if t.dtype.kind in "iu":
        t_rows, denominator = _xent_args.class_indices(t, rest_shape, n_classes, ignore_index, w)
    elif t.dtype.kind == "f":
        _xent_args.check_probabilities(t, x.shape, ignore_index)
        t_rows = None
        denominator = _xent_args.probabilities_denominator(rest_shape, n_classes)
    else:
        raise TypeError(f"target has unsupported dtype {t.dtype}; expected integer class "
                        "indices or floating-point class probabilities")
    rows = int(np.prod(rest_shape))
    grad = None
    layout = Layout.rows(x.shape, axes)
    if return_grad:
        grad = layout.allocate(rdtype)
    if rows and n_classes:
        x3 = _readable_view(x, layout, rdtype, None)
        if x3 is None:
            if grad is not None:
                _cast_copy(grad, x)
                x3 = layout.view3(grad)
            else:
                x3 = _staged(x, layout, rdtype)
        if t_rows is None:
            target2 = _readable_view(t, layout, rdtype, grad)
            if target2 is None:
                target2 = _staged(t, layout, rdtype)
            target2 = _kernel_form(target2)
        else:
            target2 = t_rows
        r = 1.0
        if reduction == "mean":
            r = 1.0 / denominator if denominator else np.nan
        wsum = float(n_classes) if w is None else float(w.sum())
        losses = np.empty(rows, np.float64)
        _cpu_backend().run_xent(_kernel_form(x3), target2, w, wsum, scale.scaling(rdtype), eps,
                                ignore_index, r, losses,
                                None if grad is None else _kernel_form(layout.view3(grad)))
    else:
        losses = np.zeros(rows, np.float64)
        if grad is not None:
            grad[...] = 0
    if reduction == "none":
        loss = losses.reshape(rest_shape).astype(rdtype)
    elif reduction == "sum" or denominator:
        loss = rdtype.type(losses.sum())
    else:
        loss = rdtype.type(np.nan)  # mean over no kept samples: 0 / 0, as torch
    return (loss, grad) if return_grad else loss


# ------------------------------------------------------------------ softmax_topk
# nbsoftmax.cpu._topk: one pass per row (online normaliser + sorted insertion buffer, or a
# selection for large k). The
# softmax axis is brought last in memory (Layout.rows): x is read in place when its memory
# is laid out so, else staged once (a temporary of x's size: the results are only k wide).


def _topk_k(k, n):
    if isinstance(k, (bool, np.bool_)):
        raise TypeError(f"k must be an int, not {k!r}")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an int, not {k!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the slice length {n}")
    return k


def _topk_axis(axis, ndim):
    if ndim == 0 or isinstance(axis, (tuple, list)) or axis is None:
        raise ValueError(f"axis must be one axis of the input (of {ndim} dimensions), "
                         f"not {axis!r}")
    return normalize_axes(axis, ndim)


def softmax_topk(x, k, axis, device=None, stream=None):
    if _torch_cpu.involved(x):
        return _torch_cpu.call(lambda x: softmax_topk(x, k, axis, device, stream), x=x)
    if _on_gpu(device, x):
        return _cuda_backend().softmax_topk(x, k, axis, device, stream)
    x, _, rdtype = _prepare(x, None if np.ndim(x) == 0 else 0, None)
    axes = _topk_axis(axis, x.ndim)
    (a,) = axes
    k = _topk_k(k, x.shape[a])
    rest = x.shape[:a] + x.shape[a + 1:]
    rows = int(np.prod(rest))
    probs = np.empty((rows, k), rdtype)
    idx = np.empty((rows, k), np.int64)
    if rows:
        layout = Layout.rows(x.shape, axes)
        x3 = _readable_view(x, layout, rdtype, None)
        if x3 is None:
            x3 = _staged(x, layout, rdtype)
        _cpu_backend().run_topk(_kernel_form(x3), k, _dtypes.storage_view(probs), idx)
    probs = np.moveaxis(probs.reshape(rest + (k,)), -1, a)
    idx = np.moveaxis(idx.reshape(rest + (k,)), -1, a)
    return probs, idx
