"""The plans of GPU logsumexp, logsumexp_backward, cross_entropy and softmax_topk.

As ``device`` does for softmax: checks of the GPU and of where the arrays live, then the CPU
path's rules applied to the arrays' descriptors, and the layout the kernels will see (which
inputs they read in place, the strides of staged copies and of the results). logsumexp and
logsumexp_backward of host arrays with ``device="cuda"`` return None (their host plans then run
on the GPU); cross_entropy and softmax_topk of host arrays get a host plan of C-contiguous
copies, which ``nbsoftmax.cuda`` copies to the device before running its device path.
"""

import numpy as np

from . import device_cache
from . import dtypes as _dtypes
from . import xent as _xent_args
from .arrays import as_array, check_k, class_axis, normalize_axes, prepare, reduced_shape, topk_axis
from .device import (check_mask, check_out, default_strides, dense_layout, result_dtype, start,
                     target_layout)
from .layout import Layout, strides_in_order
from .plan import DeviceReduction, GradientLayout, LossOptions, Plan, TopkOptions, describe

REDUCTIONS = ("mean", "sum", "none")


def reduced_strides(shape, axes, layout, keepdims, itemsize):
    """(shape, byte strides) of the reduced result, dense in the order of layout's slices."""
    step = itemsize
    stride_of = {}
    for a in reversed([a for a in layout.order if a not in axes]):
        stride_of[a] = step
        step *= shape[a]
    if keepdims:
        dims = range(len(shape))
        return (tuple(1 if a in axes else shape[a] for a in dims),
                tuple(stride_of.get(a, itemsize) for a in dims))
    rest = [a for a in range(len(shape)) if a not in axes]
    return tuple(shape[a] for a in rest), tuple(stride_of.get(a, itemsize) for a in rest)


def logsumexp(x, axis, keepdims, b, return_sign, where, device, stream):
    """The plan of logsumexp (b=, return_sign=, where=: each None/False or given) of device
    arrays; ``options``: (b, keepdims, return_sign, strides of the staged inputs, result shape
    and strides, inputs read in place, mask read in place). None for host arrays."""
    key, plan = device_cache.logsumexp(x, axis, keepdims, b, return_sign, where, device, stream)
    if plan is None:
        plan = device_cache.store_logsumexp(key, _logsumexp(x, axis, keepdims, b, return_sign,
                                                            where, device, stream))
    return plan


def _logsumexp(x, axis, keepdims, b, return_sign, where, device, stream):
    if not start(device, (("x", x), ("b", b), ("where", where))):
        return None
    xd = describe(x, "x")
    bd = None if b is None else describe(b, "b")
    md = None if where is None else describe(where, "where")
    rdtype = result_dtype(xd.dtype, None)
    shape = xd.shape
    if bd is not None:
        result_dtype(bd.dtype, None, "b")
        rdtype = _dtypes.result_dtype(np.result_type(xd.dtype, bd.dtype))
        try:
            shape = np.broadcast_shapes(xd.shape, bd.shape)
        except ValueError:
            raise ValueError(f"b has shape {bd.shape}, which does not broadcast against x's "
                             f"shape {xd.shape}") from None
    axes = normalize_axes(axis, len(shape))
    if md is not None:
        check_mask(md, shape)
    layout = None
    if xd.dtype == rdtype and xd.shape == shape and (bd is None or bd.shape == shape):
        layout = dense_layout(xd, axes)
    strides = xd.strides if layout is not None else default_strides(shape, axes,
                                                                     rdtype.itemsize)
    layout = layout or Layout(shape, strides, axes)
    rshape, rstrides = reduced_strides(shape, axes, layout, keepdims, rdtype.itemsize)
    readable = tuple(d is not None and d.shape == shape and d.dtype == rdtype
                     and d.strides == strides for d in (xd, bd))
    element_strides = tuple(s // rdtype.itemsize for s in strides)
    mask_in_place = md is not None and md.shape == shape and md.strides == element_strides
    options = DeviceReduction(bd, keepdims, return_sign, strides, rshape, rstrides, readable,
                              mask_in_place)
    return Plan("logsumexp", "cuda", False, (xd,), None, None, None, shape, axes,
                (layout.outer, layout.n, layout.inner), rdtype, False, md, None, options, stream)


def logsumexp_backward(grad_output, x, axis, keepdims, out, where, device, stream):
    """The plan of logsumexp_backward of device arrays (None for host arrays); ``options``:
    the DeviceLayout fields, and grad_output's shape and strides without the reduced axes with
    the strides it is staged to (one value per slice, in the slices' order)."""
    named = (("grad_output", grad_output), ("x", x), ("out", out), ("where", where))
    if not start(device, named):
        return None
    gd = describe(grad_output, "grad_output")
    xd = describe(x, "x")
    md = None if where is None else describe(where, "where")
    rdtype = np.result_type(result_dtype(gd.dtype, None, "grad_output"),
                            result_dtype(xd.dtype, None, "x"))
    axes = normalize_axes(axis, len(xd.shape))
    expected = reduced_shape(xd.shape, axes, keepdims)
    if gd.shape != expected:
        raise ValueError(
            f"grad_output has shape {gd.shape} but logsumexp of x (shape {xd.shape}) over axis "
            f"{axis!r} with keepdims={keepdims} has shape {expected}; they must match")
    od = None
    if out is not None:
        od = describe(out, "out")
        check_out(od, xd.shape, rdtype)
    if md is not None:
        check_mask(md, xd.shape)
    layout, placed = target_layout(xd, axes, rdtype, od, (xd,), md)
    rest = [a for a in range(len(xd.shape)) if a not in axes]
    g_strides = gd.strides if not keepdims else tuple(gd.strides[a] for a in rest)
    _, g_target = reduced_strides(xd.shape, axes, layout, False, rdtype.itemsize)
    options = GradientLayout(*placed, tuple(xd.shape[a] for a in rest), g_strides, g_target)
    return Plan("logsumexp_backward", "cuda", False, (gd, xd), None, None, od, xd.shape, axes,
                (layout.outer, layout.n, layout.inner), rdtype, False, md, None, options, stream)


def cross_entropy(logits, target, axis, reduction, eps, ignore_index, weight, scale,
                  return_grad, device, stream):
    """The plan of cross_entropy on the GPU: of device arrays, or of C-contiguous host copies
    (``host``), which the backend copies to the device first."""
    named = (("logits", logits), ("target", target), ("weight", weight))
    if start(device, named):
        xd = describe(logits, "logits")
        td = describe(target, "target")
        wd = None if weight is None else describe(weight, "weight")
    else:  # host arrays: the CPU path's checks, then the device ones
        xd = as_array(logits, "logits")
        td = as_array(target, "target")
        prepare(xd, axis, None)
        if td.dtype.kind in "iu" and xd.ndim:
            # the CPU path's range check, in the targets' own dtype (the kernels can only flag a
            # bad index with NaN, and see unsigned targets through int64)
            (a,) = normalize_axes(axis, xd.ndim)
            if td.shape == xd.shape[:a] + xd.shape[a + 1:]:
                _xent_args.check_class_indices(td, td.shape, xd.shape[a], ignore_index)
        xd, td = np.ascontiguousarray(xd), np.ascontiguousarray(td)
        wd = None if weight is None else as_array(weight, "weight")
    rdtype = result_dtype(xd.dtype, None, "logits")
    ndim = len(xd.shape)
    a = class_axis(axis, ndim, normalize_axes(axis, ndim))
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
    eps = float(eps)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be between 0 and 1, not {eps!r}")
    n = xd.shape[a]
    rest = xd.shape[:a] + xd.shape[a + 1:]
    probs = td.dtype.kind == "f"
    if td.dtype.kind in "iu":
        if td.shape != rest:
            raise ValueError(f"target has shape {td.shape}; class indices need the logits' shape "
                             f"without the class axis, {rest}")
    elif probs:
        _xent_args.check_probabilities(td, xd.shape, ignore_index)
    else:
        raise TypeError(f"target has unsupported dtype {td.dtype}; expected integer class "
                        "indices or floating-point class probabilities")
    if wd is not None:
        if wd.dtype.kind not in "biuf":
            raise TypeError(f"weight has unsupported dtype {wd.dtype}; expected real numbers")
        if wd.shape != (n,):
            raise ValueError(f"weight has shape {wd.shape}; expected ({n},), one per class")
    # class axis last: dense strides of that order (Layout.rows)
    order = [b for b in range(ndim) if b != a] + [a]
    row_strides = tuple(strides_in_order(xd.shape, order, rdtype.itemsize))
    # unsigned targets reach the kernel as int64: with a negative ignore_index, a value that
    # wraps onto it (uint64 2**64 - 100) must read as out of range, not ignored
    ignoring = not (td.dtype.kind == "u" and ignore_index < 0)
    options = LossOptions(td, probs, wd, None, reduction, eps, int(ignore_index), ignoring, None,
                          return_grad, rest, None, row_strides)
    layout = Layout.rows(xd.shape, (a,))
    return Plan("cross_entropy", "cuda", isinstance(xd, np.ndarray), (xd,), None, None, None,
                xd.shape, (a,), (layout.outer, layout.n, layout.inner), rdtype, False, None,
                scale.scaling(rdtype), options, stream)


def softmax_topk(x, k, axis, device, stream):
    """The plan of softmax_topk on the GPU: of a device array, or of a C-contiguous host copy."""
    if start(device, (("x", x),)):
        xd = describe(x, "x")
    else:
        xd = np.ascontiguousarray(prepare(x, None, None)[0])
    rdtype = result_dtype(xd.dtype, None)
    (a,) = topk_axis(axis, len(xd.shape))
    k = check_k(k, xd.shape[a])
    layout = Layout.rows(xd.shape, (a,))
    return Plan("softmax_topk", "cuda", isinstance(xd, np.ndarray), (xd,), None, None, None,
                xd.shape, (a,), (layout.outer, layout.n, layout.inner), rdtype, False, None,
                None, TopkOptions(k, a), stream)
