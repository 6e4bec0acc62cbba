"""The GPU half of the dispatch layer: validation, layouts, allocation and staging of a call.

``nbsoftmax.dispatch.core`` routes a call here when an argument is a CUDA device array or
``device="cuda"`` was asked for. The rules are the CPU path's, reused from
``nbsoftmax.dispatch.core`` / ``_dtypes`` / ``_layout``; what differs is where memory lives:

- Device arrays: the kernels read the input in place when it is dense, of the result dtype
  and its softmax axes are adjacent in memory (C, F, any transpose; ``_layout``); the result
  is allocated by the input's library with the input's strides, so both share one flat
  ``(outer, n, inner)`` order. Anything else (gaps, broadcasts, negative strides, other
  dtypes) is staged once by the strided copy kernel into the result (or, for logsumexp and
  the backward inputs, a temporary buffer). Nothing is written before every check passed.
- Host arrays with ``device="cuda"``: staged on the host exactly as the CPU path stages
  them, copied in, computed in place, copied back into the NumPy result; the host waits on
  that call's stream only.
"""

import functools
import inspect

import numpy as np

from ..dispatch import core as _dispatch
from ..dispatch import dtypes as _dtypes
from ..dispatch import temperature as _temperature
from ..dispatch import xent as _xent_args
from ..dispatch.layout import Layout, _c_strides
from . import _runtime

# ------------------------------------------------------------------ entry


def _on_device(fn):
    """Run fn with the device that holds its array arguments current.

    A call with arrays on ``cuda:1`` must launch in that device's context (kernels, streams
    and scratch buffers are per device); the caller's current device is restored after.
    With one GPU (or the simulator) this costs one cached check.
    """
    names = tuple(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def wrapper(*args):
        if _runtime.SIMULATOR or _runtime._device_count() < 2:
            return fn(*args)
        from ._arrays import common_device

        device = common_device(zip(names, args))
        if device is None or device == _runtime.device_id():
            return fn(*args)
        with _runtime.cuda.gpus[device]:
            return fn(*args)

    return wrapper


def _start(device, named):
    """Check the GPU is usable and the arrays agree on where they live; True for device arrays."""
    _runtime.require()
    from . import _arrays

    present = [(name, a, _arrays.is_device(a)) for name, a in named if a is not None]
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


def elementwise(op, x, axis, dtype, out, device, stream):
    """softmax / log_softmax on the GPU; result of x's kind (or out)."""
    if _start(device, (("x", x), ("out", out))):
        return _elementwise_device(op, x, axis, dtype, out, stream)
    return _elementwise_host(op, x, axis, dtype, out, stream)


def logsumexp(x, axis, keepdims, device, stream):
    """logsumexp on the GPU; result of x's kind (the kernels of ``_lse_api``: log1p form)."""
    from . import _lse_api

    return _lse_api.logsumexp_general(x, axis, keepdims, None, False, None, device, stream)


def backward(op, grad_output, output, axis, out, device, stream):
    """softmax_backward / log_softmax_backward on the GPU."""
    named = (("grad_output", grad_output), ("output", output), ("out", out))
    if _start(device, named):
        return _backward_device(op, grad_output, output, axis, out, stream)
    return _backward_host(op, grad_output, output, axis, out, stream)


# ------------------------------------------------------------------ device arrays


def _result_dtype(dtype, requested, name="x"):
    checked = _dtypes.result_dtype(dtype, name)  # rejects complex, object, ... even when cast
    return checked if requested is None else _dtypes.requested_dtype(requested)


def _check_out(od, shape, dtype):
    if od.shape != shape:
        raise ValueError(f"out has shape {od.shape} but the result has shape {shape}")
    if od.dtype != dtype:
        raise TypeError(f"out has dtype {od.dtype} but the result has dtype {dtype}")
    if od.readonly:
        raise ValueError("out is read-only; expected a writable array")


def _dense_layout(d, axes):
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


def _default_strides(shape, axes, itemsize):
    """Byte strides of nbsoftmax.dispatch.layout.Layout.default: C order, or softmax axes last."""
    from ._arrays import c_strides

    if Layout(shape, c_strides(shape, 1), axes).ok:
        return c_strides(shape, itemsize)
    order = [a for a in range(len(shape)) if a not in axes] + sorted(axes)
    return tuple(_c_strides(shape, order, itemsize))


def _readable(src, target):
    """Whether the kernels can read src in place while writing target (same order, no overlap)."""
    from ._arrays import overlaps

    if src.dtype != target.dtype or src.strides != target.strides:
        return False
    return src.ptr == target.ptr or not overlaps(src, target)


def _copy(src, dst_flat, dst_strides, stream):
    """Strided copy of Described src into the dense flat view dst_flat with dst_strides."""
    from . import _arrays, _launch

    src_flat, src_elems, src_at0 = _arrays.strided_view(src)
    itemsize = np.dtype(dst_flat.dtype).itemsize
    _launch.copy(src_flat, dst_flat, src.shape, src_elems,
                 tuple(s // itemsize for s in dst_strides), stream, src_at0)


def _target(first, axes, rdtype, od, out, stream):
    """(result object, its Described, its Layout): out when dense, else a new array."""
    from . import _arrays

    if od is not None:
        layout = _dense_layout(od, axes)
        if layout is not None:
            return out, od, layout
    layout = _dense_layout(first, axes) if first.dtype == rdtype else None
    strides = first.strides if layout is not None else _default_strides(first.shape, axes,
                                                                          rdtype.itemsize)
    result, _ = _arrays.allocate(first, first.shape, strides, rdtype, stream)
    rd = _arrays.describe(result, "result")
    return result, rd, layout or Layout(first.shape, strides, axes)


def _finish(result, rd, od, out, stream):
    """Return the result, or copy it into an out whose memory the kernels could not write."""
    if od is None or result is out:
        return result
    _scatter(rd, od, stream)
    return out


def _scatter(rd, od, stream):
    """Copy the dense result rd into an out with arbitrary (non-dense) strides."""
    from . import _arrays, _launch

    src_flat, src_elems, src_at0 = _arrays.strided_view(rd)
    dst_flat, dst_elems, dst_at0 = _arrays.strided_view(od)
    _launch.copy(src_flat, dst_flat, rd.shape, src_elems, dst_elems, stream, src_at0, dst_at0)


@_on_device
def _elementwise_device(op, x, axis, dtype, out, stream):
    from . import _arrays, _launch

    xd = _arrays.describe(x, "x")
    rdtype = _result_dtype(xd.dtype, dtype)
    axes = _dispatch.normalize_axes(axis, len(xd.shape))
    od = None
    if out is not None:
        od = _arrays.describe(out, "out")
        _check_out(od, xd.shape, rdtype)
    s = _arrays.call_stream(stream, (xd,) if od is None else (xd, od))
    result, rd, layout = _target(xd, axes, rdtype, od, out, s)
    size = xd.size
    if size:
        res_flat = _arrays.flat_view(rd.ptr, size, rdtype, result)
        if _readable(xd, rd):
            src = _arrays.flat_view(xd.ptr, size, rdtype, x)
        else:
            _copy(xd, res_flat, rd.strides, s)
            src = res_flat
        _launch.run(op, (src,), res_flat, layout.outer, layout.n, layout.inner, s)
    return _finish(result, rd, od, out, s)


@_on_device
def _backward_device(op, grad_output, output, axis, out, stream):
    from . import _arrays, _launch

    gd = _arrays.describe(grad_output, "grad_output")
    yd = _arrays.describe(output, "output")
    if gd.shape != yd.shape:
        raise ValueError(
            f"grad_output has shape {gd.shape} but output has shape {yd.shape}; they must match"
        )
    rdtype = np.result_type(_result_dtype(gd.dtype, None, "grad_output"),
                            _result_dtype(yd.dtype, None, "output"))
    axes = _dispatch.normalize_axes(axis, len(gd.shape))
    od = None
    if out is not None:
        od = _arrays.describe(out, "out")
        _check_out(od, gd.shape, rdtype)
    s = _arrays.call_stream(stream, tuple(d for d in (gd, yd, od) if d is not None))
    first = gd if _dense_layout(gd, axes) is not None or _dense_layout(yd, axes) is None else yd
    result, rd, layout = _target(first, axes, rdtype, od, out, s)
    size = gd.size
    if size:
        res_flat = _arrays.flat_view(rd.ptr, size, rdtype, result)
        inputs = []
        for d, obj in ((gd, grad_output), (yd, output)):
            if _readable(d, rd):
                inputs.append(_arrays.flat_view(d.ptr, size, rdtype, obj))
            else:
                staged = _arrays.temporary((size,), rdtype, s)
                _copy(d, staged, rd.strides, s)
                inputs.append(staged)
        _launch.run(op, tuple(inputs), res_flat, layout.outer, layout.n, layout.inner, s)
    return _finish(result, rd, od, out, s)


# ------------------------------------------------------------------ host arrays, device="cuda"


def _host_stream(stream):
    from . import _arrays

    if _runtime.SIMULATOR:
        return 0
    return _arrays._as_stream(stream) if stream is not None else _runtime.cuda.default_stream()


def _round_trip(op, host_inputs, host_result, layout, stream):
    """Copy C-contiguous host (outer, n, inner) arrays in, run op, copy the result back."""
    cuda = _runtime.cuda
    from . import _launch

    s = _host_stream(stream)
    device_inputs = tuple(cuda.to_device(a.reshape(-1), stream=s) for a in host_inputs)
    if op == "logsumexp":
        device_out = cuda.device_array(host_result.size, host_result.dtype, stream=s)
    else:
        device_out = device_inputs[0]  # in place
    _launch.run(op, device_inputs, device_out, layout.outer, layout.n, layout.inner, s)
    device_out.copy_to_host(host_result.reshape(-1), stream=s)
    if s:
        s.synchronize()


def _elementwise_host(op, x, axis, dtype, out, stream):
    x, axes, rdtype = _dispatch._prepare(x, axis, dtype)
    if out is not None:
        _dispatch._check_out(out, x.shape, rdtype)
    if x.ndim == 0:
        o = None if out is None else out.reshape(1)
        result = _elementwise_host(op, x.reshape(1), 0, rdtype, o, stream)
        return result.reshape(()) if out is None else out
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, rdtype)
    layout, result = _dispatch._result_layout(x, axes, out, rdtype)
    result3 = layout.view3(result)
    np.copyto(result, x, casting="unsafe")
    _round_trip(op, (result3,), result3, layout, stream)
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


def _backward_host(op, grad_output, output, axis, out, stream):
    g, y, rdtype, axes = _dispatch._backward_args(grad_output, output, axis)
    if out is not None:
        _dispatch._check_out(out, g.shape, rdtype)
    if g.ndim == 0:
        o = None if out is None else out.reshape(1)
        result = _backward_host(op, g.reshape(1), y.reshape(1), 0, o, stream)
        return result.reshape(()) if out is None else out
    if g.size == 0:
        return out if out is not None else np.empty(g.shape, rdtype)
    layout, result = _dispatch._result_layout(g, axes, out, rdtype)
    g3 = _dispatch._staged(g, layout, rdtype)
    y3 = _dispatch._staged(y, layout, rdtype)
    _round_trip(op, (g3, y3), g3, layout, stream)
    result3 = layout.view3(result)
    np.copyto(result3, g3)
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


# ------------------------------------------------------------------ temperature and where=
# Calls with temperature= or where= run ``_kernels_scaled`` (a block per slice, any
# (outer, n, inner) geometry), staged as the plain calls are. The mask reaches the kernels
# as a flat uint8 array in the result's memory order: the mask itself when it is a dense
# bool array of that order, else a temporary of one byte per element filled by the strided
# copy kernel (zero strides for broadcast axes).


def _broadcast_mask(md, shape, rd, stream):
    """The flat uint8 mask for Described md (broadcast to shape) in rd's memory order."""
    from . import _arrays

    if md.dtype != np.bool_:
        raise TypeError(f"where has dtype {md.dtype}; expected a boolean mask")
    try:
        if np.broadcast_shapes(md.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"where has shape {md.shape}, which does not broadcast to the "
                         f"input's shape {tuple(shape)}") from None
    size = int(np.prod(shape, dtype=np.int64))
    element_strides = tuple(s // rd.dtype.itemsize for s in rd.strides)
    # Read in place only when the kernels' writes cannot reach the mask's bytes: a mask that
    # lies inside the result is staged first, as if every input were read before writing.
    if (md.shape == tuple(shape) and md.strides == element_strides
            and not _arrays.overlaps(md, rd)):
        return _arrays.flat_view(md.ptr, size, np.dtype(np.uint8), md.obj)
    lead = len(shape) - len(md.shape)
    strides = (0,) * lead + tuple(0 if e == 1 and t != 1 else st
                                  for e, t, st in zip(md.shape, shape[lead:], md.strides))
    bd = _arrays.Described(md.obj, md.kind, tuple(shape), strides, md.dtype, md.ptr, True,
                           md.stream)
    staged = _arrays.temporary((size,), np.dtype(np.uint8), stream)
    _copy(bd, staged, element_strides, stream)
    return staged


def scaled(op, x, axis, dtype, out, where, scale, device, stream):
    """softmax / log_softmax of x * sign / T over the entries where ``where``, on the GPU;
    ``scale`` is the dispatch's ``_temperature.Temperature`` (kernel parameters per dtype)."""
    if _start(device, (("x", x), ("out", out), ("where", where))):
        return _scaled_device(op, x, axis, dtype, out, where, scale, stream)
    return _scaled_host(op, x, axis, dtype, out, where, scale, stream)


def masked_logsumexp(x, axis, keepdims, where, device, stream):
    """logsumexp over the entries where ``where``, on the GPU (``_lse_api``)."""
    from . import _lse_api

    return _lse_api.logsumexp_general(x, axis, keepdims, None, False, where, device, stream)


def scaled_backward(op, grad_output, output, axis, out, where, scale, device, stream):
    """The backward passes of `scaled` on the GPU."""
    named = (("grad_output", grad_output), ("output", output), ("out", out), ("where", where))
    if _start(device, named):
        return _scaled_backward_device(op, grad_output, output, axis, out, where, scale, stream)
    return _scaled_backward_host(op, grad_output, output, axis, out, where, scale, stream)


@_on_device
def _scaled_device(op, x, axis, dtype, out, where, scale, stream):
    from . import _arrays, _launch

    xd = _arrays.describe(x, "x")
    rdtype = _result_dtype(xd.dtype, dtype)
    axes = _dispatch.normalize_axes(axis, len(xd.shape))
    md = None if where is None else _arrays.describe(where, "where")
    od = None
    if out is not None:
        od = _arrays.describe(out, "out")
        _check_out(od, xd.shape, rdtype)
    s = _arrays.call_stream(stream, tuple(d for d in (xd, od, md) if d is not None))
    result, rd, layout = _target(xd, axes, rdtype, od, out, s)
    mask = None if md is None else _broadcast_mask(md, xd.shape, rd, s)
    size = xd.size
    if size:
        res_flat = _arrays.flat_view(rd.ptr, size, rdtype, result)
        if _readable(xd, rd):
            src = _arrays.flat_view(xd.ptr, size, rdtype, x)
        else:
            _copy(xd, res_flat, rd.strides, s)
            src = res_flat
        _launch.run_scaled(op, (src,), mask, res_flat, scale.scaling(rdtype), layout.outer,
                           layout.n, layout.inner, s)
    return _finish(result, rd, od, out, s)


@_on_device
def _scaled_backward_device(op, grad_output, output, axis, out, where, scale, stream):
    from . import _arrays, _launch

    gd = _arrays.describe(grad_output, "grad_output")
    yd = _arrays.describe(output, "output")
    if gd.shape != yd.shape:
        raise ValueError(
            f"grad_output has shape {gd.shape} but output has shape {yd.shape}; they must match"
        )
    rdtype = np.result_type(_result_dtype(gd.dtype, None, "grad_output"),
                            _result_dtype(yd.dtype, None, "output"))
    axes = _dispatch.normalize_axes(axis, len(gd.shape))
    md = None if where is None else _arrays.describe(where, "where")
    od = None
    if out is not None:
        od = _arrays.describe(out, "out")
        _check_out(od, gd.shape, rdtype)
    s = _arrays.call_stream(stream, tuple(d for d in (gd, yd, od, md) if d is not None))
    first = gd if _dense_layout(gd, axes) is not None or _dense_layout(yd, axes) is None else yd
    result, rd, layout = _target(first, axes, rdtype, od, out, s)
    mask = None if md is None else _broadcast_mask(md, gd.shape, rd, s)
    size = gd.size
    if size:
        res_flat = _arrays.flat_view(rd.ptr, size, rdtype, result)
        inputs = []
        for d, obj in ((gd, grad_output), (yd, output)):
            if _readable(d, rd):
                inputs.append(_arrays.flat_view(d.ptr, size, rdtype, obj))
            else:
                staged = _arrays.temporary((size,), rdtype, s)
                _copy(d, staged, rd.strides, s)
                inputs.append(staged)
        _launch.run_scaled(op, tuple(inputs), mask, res_flat, scale.scaling(rdtype),
                           layout.outer, layout.n, layout.inner, s)
    return _finish(result, rd, od, out, s)


def _host_mask(where, shape, layout):
    """The host mask broadcast to shape, as C-contiguous uint8 in layout's (outer, n, inner) order."""
    mask = _dispatch.check_where(where, shape)
    staged = layout.allocate(np.bool_)
    np.copyto(staged, np.broadcast_to(mask, shape))
    return np.ascontiguousarray(layout.view3(staged)).view(np.uint8)


def _round_trip_scaled(op, host_inputs, mask, host_result, layout, scale, stream):
    """_round_trip for the kernels of _kernels_scaled."""
    cuda = _runtime.cuda
    from . import _launch

    s = _host_stream(stream)
    device_inputs = tuple(cuda.to_device(a.reshape(-1), stream=s) for a in host_inputs)
    device_mask = None if mask is None else cuda.to_device(mask.reshape(-1), stream=s)
    if op == "logsumexp":
        device_out = cuda.device_array(host_result.size, host_result.dtype, stream=s)
    else:
        device_out = device_inputs[0]  # in place
    if isinstance(scale, _temperature.Temperature):  # (logsumexp passes its sign, 1.0)
        scale = scale.scaling(host_inputs[0].dtype)
    _launch.run_scaled(op, device_inputs, device_mask, device_out, scale, layout.outer, layout.n,
                       layout.inner, s)
    device_out.copy_to_host(host_result.reshape(-1), stream=s)
    if s:
        s.synchronize()


def _scaled_host(op, x, axis, dtype, out, where, scale, stream):
    x, axes, rdtype = _dispatch._prepare(x, axis, dtype)
    if where is not None:
        _dispatch.check_where(where, x.shape)
    if out is not None:
        _dispatch._check_out(out, x.shape, rdtype)
    if x.ndim == 0:
        o = None if out is None else out.reshape(1)
        m = None if where is None else np.asarray(where).reshape(1)
        result = _scaled_host(op, x.reshape(1), 0, rdtype, o, m, scale, stream)
        return result.reshape(()) if out is None else out
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, rdtype)
    layout, result = _dispatch._result_layout(x, axes, out, rdtype)
    result3 = layout.view3(result)
    mask = None if where is None else _host_mask(where, x.shape, layout)
    np.copyto(result, x, casting="unsafe")
    _round_trip_scaled(op, (result3,), mask, result3, layout, scale, stream)
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


def _scaled_backward_host(op, grad_output, output, axis, out, where, scale, stream):
    g = _dispatch._as_array(grad_output, "grad_output")
    y = _dispatch._as_array(output, "output")
    if g.shape != y.shape:
        raise ValueError(
            f"grad_output has shape {g.shape} but output has shape {y.shape}; they must match"
        )
    rdtype = np.result_type(_dtypes.result_dtype(g.dtype, "grad_output"),
                            _dtypes.result_dtype(y.dtype, "output"))
    axes = _dispatch.normalize_axes(axis, g.ndim)
    if where is not None:
        _dispatch.check_where(where, g.shape)
    if out is not None:
        _dispatch._check_out(out, g.shape, rdtype)
    if g.ndim == 0:
        o = None if out is None else out.reshape(1)
        m = None if where is None else np.asarray(where).reshape(1)
        result = _scaled_backward_host(op, g.reshape(1), y.reshape(1), 0, o, m, scale, stream)
        return result.reshape(()) if out is None else out
    if g.size == 0:
        return out if out is not None else np.empty(g.shape, rdtype)
    layout, result = _dispatch._result_layout(g, axes, out, rdtype)
    g3 = _dispatch._staged(g, layout, rdtype)
    y3 = _dispatch._staged(y, layout, rdtype)
    mask = None if where is None else _host_mask(where, g.shape, layout)
    _round_trip_scaled(op, (g3, y3), mask, g3, layout, scale, stream)
    np.copyto(layout.view3(result), g3)
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


# ------------------------------------------------------------------ cross_entropy


def cross_entropy(logits, target, axis, reduction, label_smoothing, ignore_index, weight,
                  temperature, return_grad, device, stream):
    """`nbsoftmax.cross_entropy` on the GPU (``_kernels_xent``): results of the logits' kind
    (a 0-d device array for "mean"/"sum"), or NumPy for host input with device="cuda"."""
    named = (("logits", logits), ("target", target), ("weight", weight))
    if _start(device, named):
        return _cross_entropy_device(logits, target, axis, reduction, label_smoothing,
                                     ignore_index, weight, temperature, return_grad, stream)
    # host arrays: the CPU path's checks, then the device path on copies, results copied back
    cuda = _runtime.cuda
    x = _dispatch._as_array(logits, "logits")
    t = _dispatch._as_array(target, "target")
    _dispatch._prepare(x, axis, None)
    if t.dtype.kind in "iu" and x.ndim:
        # the CPU path's range check, in the targets' own dtype (the kernels can only flag a
        # bad index with NaN, and see unsigned targets through int64)
        (a,) = _dispatch.normalize_axes(axis, x.ndim)
        if t.shape == x.shape[:a] + x.shape[a + 1:]:
            _xent_args.check_class_indices(t, t.shape, x.shape[a], ignore_index)
    w = None if weight is None else cuda.to_device(_dispatch._as_array(weight, "weight"))
    result = _cross_entropy_device(
        cuda.to_device(np.ascontiguousarray(x)), cuda.to_device(np.ascontiguousarray(t)),
        axis, reduction, label_smoothing, ignore_index, w, temperature, return_grad, stream)
    if return_grad:
        loss, grad = result
        return _to_host(loss, reduction), grad.copy_to_host()
    return _to_host(result, reduction)


def _to_host(loss, reduction):
    value = loss.copy_to_host()
    return value if reduction == "none" else value[()]


@_on_device
def _cross_entropy_device(logits, target, axis, reduction, label_smoothing, ignore_index, weight,
                          temperature, return_grad, stream):
    from . import _arrays, _launch
    from . import _kernels_xent as K
    from ._arrays import c_strides

    xd = _arrays.describe(logits, "logits")
    td = _arrays.describe(target, "target")
    wd = None if weight is None else _arrays.describe(weight, "weight")
    rdtype = _result_dtype(xd.dtype, None, "logits")
    ndim = len(xd.shape)
    axes = _dispatch.normalize_axes(axis, ndim)
    if ndim == 0 or len(axes) != 1 or isinstance(axis, (tuple, list)) or axis is None:
        raise ValueError(f"axis must be one class axis of the logits (of {ndim} dimensions), "
                         f"not {axis!r}")
    if reduction not in _dispatch._REDUCTIONS:
        raise ValueError(f"reduction must be one of {_dispatch._REDUCTIONS}, not {reduction!r}")
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be between 0 and 1, not {label_smoothing!r}")
    scale = _dispatch.temperature_scale(temperature)
    (class_axis,) = axes
    n = xd.shape[class_axis]
    rest = xd.shape[:class_axis] + xd.shape[class_axis + 1:]
    rows = int(np.prod(rest, dtype=np.int64))
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
    s = _arrays.call_stream(stream, tuple(d for d in (xd, td, wd) if d is not None))
    # class axis last: dense strides of that order (Layout.rows)
    order = [a for a in range(ndim) if a != class_axis] + [class_axis]
    row_strides = tuple(_c_strides(xd.shape, order, rdtype.itemsize))
    size = xd.size
    grad = gflat = None
    if return_grad:
        grad, gflat = _arrays.allocate(xd, xd.shape, row_strides, rdtype, s)
    loss_shape = rest if reduction == "none" else ()
    loss, _ = _arrays.allocate(xd, loss_shape, c_strides(loss_shape, rdtype.itemsize), rdtype, s)
    ld = _arrays.describe(loss, "loss")

    def staged(d, obj, dtype, strides, into=None):
        if d.dtype == dtype and d.strides == strides:  # dense in that order: read in place
            return _arrays.flat_view(d.ptr, d.size, dtype, obj)
        buf = into if into is not None else _arrays.temporary((d.size,), dtype, s)
        _copy(d, buf, strides, s)
        return buf

    if rows and n:
        x_flat = staged(xd, logits, rdtype, row_strides, gflat)
        if probs:
            t_flat = staged(td, target, rdtype, row_strides)
        else:
            t_flat = staged(td, target, np.dtype(np.int64), c_strides(rest, 8))
        w_flat = None if wd is None else staged(wd, weight, np.dtype(np.float64), (8,))
        if reduction != "mean":
            mode = K.FACTOR_ONE
        else:
            mode = K.FACTOR_ROWS if probs else K.FACTOR_WEIGHTS
        losses = _arrays.temporary((rows,), np.dtype(np.float64), s)
        factor = _arrays.temporary((2,), np.dtype(np.float64), s)
        total = None
        if reduction != "none":
            total = _arrays.flat_view(ld.ptr, 1, rdtype, loss)
        # unsigned targets reach the kernel as int64: with a negative ignore_index, a value
        # that wraps onto it (uint64 2**64 - 100) must read as out of range, not ignored
        ignoring = not (td.dtype.kind == "u" and ignore_index < 0)
        _launch.run_cross_entropy(x_flat, t_flat, w_flat, gflat, losses, factor, total, rows, n,
                                  scale.scaling(rdtype), eps, int(ignore_index), mode, s,
                                  ignoring=ignoring)
        if reduction == "none":
            src = _arrays.Described(losses, "numba", rest, c_strides(rest, 8),
                                    np.dtype(np.float64), _arrays.describe(losses, "l").ptr,
                                    True, None)
            _copy(src, _arrays.flat_view(ld.ptr, rows, rdtype, loss), ld.strides, s)
    else:  # no samples or no classes: zeros; a mean over nothing is 0 / 0
        host = np.full(loss_shape, np.nan if reduction == "mean" else 0.0, rdtype)
        if host.size:
            _arrays.flat_view(ld.ptr, host.size, rdtype, loss).copy_to_device(
                host.reshape(-1), stream=s)
        if gflat is not None and size:
            gflat.copy_to_device(np.zeros(size, rdtype), stream=s)
    return (loss, grad) if return_grad else loss


# ------------------------------------------------------------------ softmax_topk


def softmax_topk(x, k, axis, device, stream):
    """`nbsoftmax.softmax_topk` on the GPU (``_kernels_topk``); results of x's kind."""
    if _start(device, (("x", x),)):
        return _softmax_topk_device(x, k, axis, stream)
    cuda = _runtime.cuda
    xh = _dispatch._as_array(x, "x")
    _dispatch._prepare(xh, None, None)
    probs, idx = _softmax_topk_device(cuda.to_device(np.ascontiguousarray(xh)), k, axis, stream)
    return probs.copy_to_host(), idx.copy_to_host()


@_on_device
def _softmax_topk_device(x, k, axis, stream):
    from . import _arrays, _launch

    xd = _arrays.describe(x, "x")
    rdtype = _result_dtype(xd.dtype, None)
    ndim = len(xd.shape)
    (a,) = _dispatch._topk_axis(axis, ndim)
    n = xd.shape[a]
    k = _dispatch._topk_k(k, n)
    s = _arrays.call_stream(stream, (xd,))
    order = [b for b in range(ndim) if b != a] + [a]
    rows = xd.size // n if n else 0
    out_shape = xd.shape[:a] + (k,) + xd.shape[a + 1:]
    probs, pflat = _arrays.allocate(xd, out_shape, tuple(_c_strides(out_shape, order,
                                                                    rdtype.itemsize)), rdtype, s)
    idx, iflat = _arrays.allocate(xd, out_shape, tuple(_c_strides(out_shape, order, 8)),
                                  np.dtype(np.int64), s)
    if rows:
        row_strides = tuple(_c_strides(xd.shape, order, rdtype.itemsize))
        if xd.dtype == rdtype and xd.strides == row_strides:
            src = _arrays.flat_view(xd.ptr, xd.size, rdtype, x)
        else:
            src = _arrays.temporary((xd.size,), rdtype, s)
            _copy(xd, src, row_strides, s)
        _launch.run_topk(src, pflat, iflat, rows, n, k, s)
    return probs, idx
