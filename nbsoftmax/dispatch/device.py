"""The plans of GPU calls: device arrays described, checked and laid out by the dispatch.

``core`` routes a call here when an argument is a CUDA device array or ``device="cuda"``
was asked for. Each function checks that the GPU is usable (``nbsoftmax.cuda.require``) and
that the arrays agree on where they live; for host arrays it returns None (the host plan of
``core`` then runs with ``device="cuda"``: staged on the host as the CPU path stages them,
copied in, computed, copied back). For device arrays it reads each one's
``__cuda_array_interface__`` (``plan.describe``: no numba-cuda needed), applies the CPU
path's rules (dtypes, axes, ``out``, ``where``) and decides the layout: the kernels read an
input in place when it is dense, of the result dtype and its softmax axes are adjacent in
memory (C, F, any transpose); the result gets the input's strides (or ``out`` is written
directly when it is dense so), so both share one flat ``(outer, n, inner)`` order; anything
else is staged once by the strided copy kernel of ``nbsoftmax.cuda``.
"""

import numpy as np

from . import dtypes as _dtypes
from .arrays import normalize_axes
from .layout import Layout, strides_in_order
from . import device_cache
from .plan import DeviceLayout, Plan, describe, is_device_array, overlaps


def start(device, named):
    """Check the GPU is usable and the arrays agree on where they live; True for device arrays
    (named: ``(argument name, value)`` pairs, None values skipped)."""
    from .backends import backend

    backend("cuda").require()
    present = [(name, a, is_device_array(a)) for name, a in named if a is not None]
    on_device = [p for p in present if p[2]]
    if on_device and device == "cpu":
        raise TypeError(f'device="cpu" was requested but {on_device[0][0]} is a CUDA device '
                        "array; copy it to the host first (e.g. .copy_to_host(), .get(), .cpu())")
    if on_device and len(on_device) != len(present):
        host = next(p for p in present if not p[2])
        raise TypeError(
            f"{on_device[0][0]} is a CUDA device array but {host[0]} is a host "
            f"{type(host[1]).__name__}; pass all arrays on the GPU or all on the host"
        )
    return bool(on_device)


def result_dtype(dtype, requested, name="x"):
    checked = _dtypes.result_dtype(dtype, name)  # rejects complex, object, ... even when cast
    return checked if requested is None else _dtypes.requested_dtype(requested)


def check_out(od, shape, dtype):
    if od.shape != shape:
        raise ValueError(f"out has shape {od.shape} but the result has shape {shape}")
    if od.dtype != dtype:
        raise TypeError(f"out has dtype {od.dtype} but the result has dtype {dtype}")
    if od.readonly:
        raise ValueError("out is read-only; expected a writable array")


def check_mask(md, shape):
    """where's DeviceArray: a bool mask that broadcasts to shape."""
    if md.dtype != np.bool_:
        raise TypeError(f"where has dtype {md.dtype}; expected a boolean mask")
    try:
        if np.broadcast_shapes(md.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"where has shape {md.shape}, which does not broadcast to the "
                         f"input's shape {tuple(shape)}") from None


def check_same_shape(gd, yd):
    if gd.shape != yd.shape:
        raise ValueError(
            f"grad_output has shape {gd.shape} but output has shape {yd.shape}; they must match"
        )


def dense_layout(d, axes):
    """d's Layout when its memory is dense, unflipped and the softmax axes adjacent, else None."""
    layout = Layout(d.shape, d.strides, axes)
    if not layout.ok or layout.flipped:
        return None
    expected = d.dtype.itemsize
    for a in reversed(layout.order):
        if d.strides[a] != expected:
            return None
        expected *= d.shape[a]
    return layout


def default_strides(shape, axes, itemsize):
    """Byte strides of ``Layout.default``: C order, or the softmax axes last."""
    if Layout(shape, strides_in_order(shape, range(len(shape)), 1), axes).ok:
        return tuple(strides_in_order(shape, range(len(shape)), itemsize))
    order = [a for a in range(len(shape)) if a not in axes] + sorted(axes)
    return tuple(strides_in_order(shape, order, itemsize))


def target_layout(first, axes, rdtype, od, inputs, md=None):
    """(Layout, DeviceLayout): out written in place when dense, else a new result with first's
    strides (when dense and of the result dtype) or the default ones; which inputs (and the
    mask) the kernels read in place in that order."""
    layout = dense_layout(od, axes) if od is not None else None
    write_out = layout is not None
    if write_out:
        strides = od.strides
    else:
        layout = dense_layout(first, axes) if first.dtype == rdtype else None
        strides = first.strides if layout is not None else default_strides(
            first.shape, axes, rdtype.itemsize)
        layout = layout or Layout(first.shape, strides, axes)
    written = od if write_out else None
    readable = tuple(d.dtype == rdtype and d.strides == strides
                     and (written is None or d.ptr == written.ptr or not overlaps(d, written))
                     for d in inputs)
    mask_in_place = False
    if md is not None:
        element_strides = tuple(s // rdtype.itemsize for s in strides)
        # A mask inside the result is staged first, as if every input were read before writing.
        mask_in_place = (md.shape == first.shape and md.strides == element_strides
                         and not overlaps(md, written))
    return layout, DeviceLayout(strides, write_out, readable, mask_in_place)


def _plan(op, inputs, od, md, shape, axes, layout, rdtype, scale, options, stream):
    return Plan(op, "cuda", False, inputs, None, None, od, shape, axes,
                (layout.outer, layout.n, layout.inner), rdtype, False, md,
                None if scale is None else scale.scaling(rdtype), options, stream)


def elementwise(op, x, axis, dtype, out, where, scale, device, stream):
    """The plan of softmax / log_softmax (scale: ``core.temperature_scale``, or None for the
    plain kernels) of device arrays; None for host arrays."""
    if scale is None:  # repeated numba-cuda calls: the cached decisions, fresh pointers
        key, plan = device_cache.elementwise(op, x, axis, dtype, out, where, device, stream)
        if plan is None:
            plan = _elementwise(op, x, axis, dtype, out, where, scale, device, stream)
            device_cache.store(key, plan, ("x", "out", "where"))
        return plan
    return _elementwise(op, x, axis, dtype, out, where, scale, device, stream)


def _elementwise(op, x, axis, dtype, out, where, scale, device, stream):
    if not start(device, (("x", x), ("out", out), ("where", where))):
        return None
    xd = describe(x, "x")
    rdtype = result_dtype(xd.dtype, dtype)
    axes = normalize_axes(axis, len(xd.shape))
    md = None
    if where is not None:
        md = describe(where, "where")
        check_mask(md, xd.shape)
    od = None
    if out is not None:
        od = describe(out, "out")
        check_out(od, xd.shape, rdtype)
    layout, options = target_layout(xd, axes, rdtype, od, (xd,), md)
    return _plan(op, (xd,), od, md, xd.shape, axes, layout, rdtype, scale, options, stream)


def backward(op, grad_output, output, axis, out, where, scale, device, stream):
    """The plan of softmax_backward / log_softmax_backward of device arrays; None for host."""
    if scale is None:
        key, plan = device_cache.backward(op, grad_output, output, axis, out, where, device,
                                          stream)
        if plan is None:
            plan = _backward(op, grad_output, output, axis, out, where, scale, device, stream)
            device_cache.store(key, plan, ("grad_output", "output", "out", "where"))
        return plan
    return _backward(op, grad_output, output, axis, out, where, scale, device, stream)


def _backward(op, grad_output, output, axis, out, where, scale, device, stream):
    named = (("grad_output", grad_output), ("output", output), ("out", out), ("where", where))
    if not start(device, named):
        return None
    gd = describe(grad_output, "grad_output")
    yd = describe(output, "output")
    check_same_shape(gd, yd)
    rdtype = np.result_type(result_dtype(gd.dtype, None, "grad_output"),
                            result_dtype(yd.dtype, None, "output"))
    axes = normalize_axes(axis, len(gd.shape))
    md = None
    if where is not None:
        md = describe(where, "where")
        check_mask(md, gd.shape)
    od = None
    if out is not None:
        od = describe(out, "out")
        check_out(od, gd.shape, rdtype)
    first = gd if dense_layout(gd, axes) is not None or dense_layout(yd, axes) is None else yd
    layout, options = target_layout(first, axes, rdtype, od, (gd, yd), md)
    return _plan(op, (gd, yd), od, md, gd.shape, axes, layout, rdtype, scale, options, stream)
