"""The dispatch of softmax, log_softmax, their gradients and logsumexp: one plan per call.

For every public function it converts array-likes, normalises ``axis``, applies the dtype
rules, checks or allocates ``out`` (``arrays``), and makes one ``plan.Plan`` that a backend
runs without checking anything: ``nbsoftmax.cpu`` for host arrays, ``nbsoftmax.cuda``
(imported on first use) for objects exposing ``__cuda_array_interface__`` (their plans are
made by ``device``) or host arrays with ``device="cuda"``. Nothing is written before every
check has passed.

Inputs the kernels cannot read in place are first copied into the result array, which the
kernels then transform in place; so the only full-size allocation stays the result. The
exceptions are logsumexp and the second input of the backward passes (the result cannot hold
them) and an ``out`` whose own layout cannot be viewed so: then a result is computed and
copied into it (``plan.out``).

Calls with ``temperature=`` or ``where=`` (and softmin) run the scaled kernels, which read
``x * sign / T`` (``temperature``) and a bool mask over rows: the softmax axes are brought
last in memory (``Layout.rows``) whenever the given arrays are not already laid out so. A mask
that cannot be viewed in that layout (a broadcast, another memory order) is materialised once
as a bool array of x's shape: one byte per element besides the result.
"""

import numpy as np

from . import args as _args
from . import logsumexp as _logsumexp
from . import torch_cpu as _torch_cpu
from .arrays import (backward_args, backward_inputs, cast_copy, check_out,
                     check_where, kernel_form, mask_rows, normalize_axes, prepare,
                     read_before_writing, readable_view, result_layout, rows_layout, same_view,
                     staged)
from .backends import backend, on_gpu, temperature_scale
from .layout import Layout
from .plan import Plan

__all__ = ["normalize_axes", "check_where", "temperature_scale", "elementwise", "backward",
           "logsumexp", "scaled", "scaled_backward", "backend"]


def _device():
    from . import device  # the plans of device arrays (imported on the first GPU call)

    return device


def _host_plan(op, device, inputs, target, result, out, shape, axes, layout, dtype,
               in_place=False, mask=None, scaling=None, options=None, stream=None):
    return Plan(op, "cuda" if device == "cuda" else "cpu", True, inputs, target, result,
                None if out is None or result is out else out, shape, axes,
                (layout.outer, layout.n, layout.inner), dtype, in_place, mask, scaling,
                options, stream)


# ------------------------------------------------------------------ forward

_FAST_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
_new_plan = tuple.__new__
_LAST_AXIS = {ndim: (ndim - 1,) for ndim in range(1, 65)}  # NumPy allows up to 64 dimensions
_cpu_forward = None  # nbsoftmax.cpu.forward once imported (a global: ~0.1 us less per call)
# The CPU backend's executors of small rows plans, by (op, dtype, n, in_place): (row_limit,
# entry, lookup, key, kernel), see nbsoftmax.cpu.small_rows. A 1 x 10 call then makes no Plan (its 16-field tuple
# and cpu.forward's unpacking and kernel choice cost ~0.5 us of a ~3.3 us call, measured here).
_small_rows = {}
_SMALL_ROWS_KEYS = 4096  # distinct row lengths are few in practice; bound the table anyway
# NumPy's array flag bits (flags.num: one int instead of a getter per flag, ~0.2 us less per call)
_C_CONTIGUOUS, _OWNDATA, _ALIGNED, _WRITEABLE = 0x1, 0x4, 0x100, 0x400
_READABLE = _C_CONTIGUOUS | _ALIGNED
_WRITABLE = _C_CONTIGUOUS | _ALIGNED | _WRITEABLE


def _fast_rows(op, x, axis, out):
    """The common call (C-contiguous float32/64 ndarray, last axis, no out or a C-contiguous
    one) run as a (rows, n) plan: its result, or None (not such a call). The general path
    spends ~13 us of Python per call on layouts; this one ~1.5 us (a 1 x 10 float32 softmax;
    torch.softmax: 0.9-1.3 us). Small plans run by the backend's prepared executor
    (`_small_rows`), the others as a Plan."""
    ndim = x.ndim
    dtype = x.dtype
    if ndim == 0 or dtype not in _FAST_DTYPES or not (axis == -1 or axis == ndim - 1):
        return None
    flags = x.flags.num
    shape = x.shape
    if flags & _READABLE != _READABLE or 0 in shape:
        return None
    if out is None:
        out = np.empty(shape, dtype)
    elif out is not x:
        if not (
            type(out) is np.ndarray
            and out.dtype == dtype
            and out.shape == shape
            and out.flags.num & _WRITABLE == _WRITABLE
            # two arrays that each own their memory cannot overlap (may_share_memory: ~0.4 us)
            and (out.flags.num & flags & _OWNDATA or not np.may_share_memory(out, x))
        ):
            return None
    elif not flags & _WRITEABLE:
        return None  # out=x read-only: the general path raises
    n = shape[-1]
    in_place = out is x
    if ndim != 2:
        rows = x.size // n
        x, target = x.reshape(rows, n), out.reshape(rows, n)
    else:
        rows = shape[0]
        target = out
    small = _small_rows.get((op, dtype, n, in_place))
    if small is None or small[2](small[3]) is not small[4]:  # (see cpu.small_rows)
        small = _prepare_small_rows(op, dtype, n, in_place, rows)
    if small is not None and rows < small[0]:
        small[1](x, target)  # what cpu.forward runs for this plan, types checked above
        return out
    global _cpu_forward
    if _cpu_forward is None:
        _cpu_forward = backend("cpu").forward
    # (tuple.__new__: the namedtuple's own __new__ is a Python function, ~0.3 us of 16 args)
    return _cpu_forward(_new_plan(Plan, (
        op, "cpu", True, (x,), target, out, None, shape, _LAST_AXIS[ndim], (rows, n, 1), dtype,
        in_place, None, None, None, None)))


def _prepare_small_rows(op, dtype, n, in_place, rows):
    """The backend's executor of small (rows, n) plans, kept in `_small_rows`; None (nothing
    compiled) when a plan of this many rows is not small."""
    if rows * n >= backend("cpu").PARALLEL_MIN_ELEMENTS:
        return None
    if len(_small_rows) >= _SMALL_ROWS_KEYS:
        _small_rows.clear()
    small = _small_rows[op, dtype, n, in_place] = backend("cpu").small_rows(op, dtype, n,
                                                                          in_place)
    return small


def elementwise(op, x, axis, dtype, out, device=None, stream=None, where=None,
                temperature=None):
    """softmax / log_softmax: result of x's shape."""
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
    if on_gpu(device, x, out):
        plan = _device().elementwise(op, x, axis, dtype, out, None, None, device, stream)
        if plan is not None:
            return backend("cuda").forward(plan)
    return _forward_host(op, x, axis, dtype, out, None, None, device, stream)


def scaled(op, x, axis, dtype, out, device=None, stream=None, *, where=None, temperature=None,
           sign=1.0):
    """softmax / log_softmax of x * sign / temperature over the entries where ``where``."""
    scale = temperature_scale(temperature, sign)
    if _torch_cpu.involved(x, out, where):
        return _torch_cpu.call(lambda x, out, where: scaled(
            op, x, axis, dtype, out, device, stream, where=where, temperature=temperature,
            sign=sign), x=x, out=out, where=where)
    if on_gpu(device, x, out, where):
        plan = _device().elementwise(op, x, axis, dtype, out, where, scale, device, stream)
        if plan is not None:
            return backend("cuda").forward(plan)
    return _forward_host(op, x, axis, dtype, out, where, scale, device, stream)


def _forward_host(op, x, axis, dtype, out, where, scale, device, stream):
    x, axes, rdtype = prepare(x, axis, dtype)
    mask = None if where is None else check_where(where, x.shape)
    if out is not None:
        check_out(out, x.shape, rdtype)
    if x.ndim == 0:
        o = None if out is None else out.reshape(1)
        m = None if mask is None else mask.reshape(1)
        result = _forward_host(op, x.reshape(1), 0, rdtype, o, m, scale, device, stream)
        return result.reshape(()) if out is None else out
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, rdtype)
    if scale is None:
        layout, result = result_layout(x, axes, out, rdtype)
    else:
        layout, result = rows_layout(x, axes, out, rdtype)
        mask = mask_rows(read_before_writing(mask, result), layout)
    result3 = layout.view3(result)
    x3 = readable_view(x, layout, rdtype, result)
    if x3 is None:
        cast_copy(result, x)
        x3 = result3
    plan = _host_plan(op, device, (kernel_form(x3),), kernel_form(result3), result, out,
                      x.shape, axes, layout, rdtype, x3 is result3 or same_view(x3, result3),
                      mask, None if scale is None else scale.scaling(rdtype), None, stream)
    return backend(plan.device).forward(plan)


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
    if on_gpu(device, grad_output, output, out):
        plan = _device().backward(op, grad_output, output, axis, out, None, None, device, stream)
        if plan is not None:
            return backend("cuda").backward(plan)
    return _backward_host(op, grad_output, output, axis, out, None, None, device, stream)


def scaled_backward(op, grad_output, output, axis, out, device=None, stream=None, *, where=None,
                    temperature=None):
    """The backward passes of `scaled`: (1 / temperature) * the plain gradient, 0 where masked."""
    scale = temperature_scale(temperature)
    if _torch_cpu.involved(grad_output, output, out, where):
        return _torch_cpu.call(lambda grad_output, output, out, where: scaled_backward(
            op, grad_output, output, axis, out, device, stream, where=where,
            temperature=temperature), grad_output=grad_output, output=output, out=out,
            where=where)
    if on_gpu(device, grad_output, output, out, where):
        plan = _device().backward(op, grad_output, output, axis, out, where, scale, device,
                                  stream)
        if plan is not None:
            return backend("cuda").backward(plan)
    return _backward_host(op, grad_output, output, axis, out, where, scale, device, stream)


def _backward_host(op, grad_output, output, axis, out, where, scale, device, stream):
    g, y, rdtype, axes = backward_args(grad_output, output, axis)
    mask = None if where is None else check_where(where, g.shape)
    if out is not None:
        check_out(out, g.shape, rdtype)
    if g.ndim == 0:
        o = None if out is None else out.reshape(1)
        m = None if mask is None else mask.reshape(1)
        result = _backward_host(op, g.reshape(1), y.reshape(1), 0, o, m, scale, device, stream)
        return result.reshape(()) if out is None else out
    if g.size == 0:
        return out if out is not None else np.empty(g.shape, rdtype)
    if scale is None:
        layout, result = result_layout(g, axes, out, rdtype)
    else:
        layout, result = rows_layout(g, axes, out, rdtype)
        mask = mask_rows(read_before_writing(mask, result), layout)
    result3 = layout.view3(result)
    g3, y3 = backward_inputs(g, y, layout, rdtype, result, result3)
    plan = _host_plan(op, device, (kernel_form(g3), kernel_form(y3)), kernel_form(result3),
                      result, out, g.shape, axes, layout, rdtype, g3 is result3, mask,
                      None if scale is None else scale.scaling(rdtype), None, stream)
    return backend(plan.device).backward(plan)


# ------------------------------------------------------------------ logsumexp


def logsumexp(x, axis, keepdims, device=None, stream=None, *, where=None, b=None,
              return_sign=False):
    if b is not None or return_sign is not False:  # the general kernels: dispatch.logsumexp
        return _logsumexp.logsumexp(x, axis, keepdims, b, return_sign, where, device, stream)
    keepdims = _args.check_bool(keepdims, "keepdims")
    if _torch_cpu.involved(x, where):
        return _torch_cpu.call(lambda x, where: logsumexp(x, axis, keepdims, device, stream,
                                                          where=where), x=x, where=where)
    if on_gpu(device, x, where):  # the GPU runs every logsumexp on its general kernels
        return _logsumexp.logsumexp(x, axis, keepdims, None, False, where, device, stream)
    if where is not None:
        return _masked_logsumexp(x, axis, keepdims, where)
    x, axes, rdtype = prepare(x, axis, None)
    if x.ndim == 0:
        return logsumexp(x.reshape(1), 0, False).reshape(())
    if x.size == 0:
        shape = _logsumexp.reduced_shape(x.shape, axes, keepdims)
        return np.full(shape, -np.inf, rdtype)
    layout = Layout(x.shape, x.strides, axes)
    x3 = readable_view(x, layout, rdtype, None) if layout.ok else None
    if x3 is None:
        layout = Layout.default(x.shape, axes)
        x3 = staged(x, layout, rdtype)
    result, result2 = layout.allocate_reduced(rdtype)
    plan = _host_plan("logsumexp", "cpu", (kernel_form(x3),), kernel_form(result2, True),
                      result, None, x.shape, axes, layout, rdtype)
    backend("cpu").reduction(plan)
    return np.expand_dims(result, axes) if keepdims else result


def _masked_logsumexp(x, axis, keepdims, where):
    x, axes, rdtype = prepare(x, axis, None)
    mask = check_where(where, x.shape)
    if x.ndim == 0:
        return _masked_logsumexp(x.reshape(1), 0, False, mask.reshape(1)).reshape(())
    if x.size == 0:
        return logsumexp(x, axes, keepdims)
    layout = Layout(x.shape, x.strides, axes)
    x3 = None
    if layout.ok and layout.inner == 1:
        x3 = readable_view(x, layout, rdtype, None)
    if x3 is None:
        layout = Layout.rows(x.shape, axes)
        x3 = staged(x, layout, rdtype)
    result, result2 = layout.allocate_reduced(rdtype)
    plan = _host_plan("logsumexp", "cpu", (kernel_form(x3),), kernel_form(result2, True),
                      result, None, x.shape, axes, layout, rdtype, mask=mask_rows(mask, layout),
                      scaling=1.0)
    backend("cpu").reduction(plan)
    return np.expand_dims(result, axes) if keepdims else result
