"""Dispatch of logsumexp with ``b=``/``return_sign=``, and of ``logsumexp_backward``.

The plain logsumexp (and ``where=`` alone) on the CPU stays in ``core``; this module owns the
calls that the general row kernels of ``nbsoftmax.cpu._lse`` serve, and every logsumexp on the
GPU (the plans of device arrays: ``device``). As everywhere, nothing
is written before every check has passed and the inputs are never modified.

b= follows SciPy: x and b broadcast against each other (the reduction runs over the
broadcast shape), the result dtype is their common float dtype (``np.result_type`` of the
two, integers and bool as float64), complex weights are refused. The reduced axes are
brought last in memory (``Layout.rows``): x, b and the mask are read in place when they
already are laid out so, else staged once.
"""

import numpy as np

from . import args as _args
from . import dtypes as _dtypes
from . import torch_cpu as _torch_cpu
from .arrays import (as_array, cast_copy, check_out, check_where, kernel_form, mask_rows,
                     normalize_axes, readable_view, reduced_shape, rows_layout, staged)
from .backends import backend, on_gpu
from .layout import Layout
from .plan import Plan, ReductionOptions


def real_array(value, name):
    """value as an ndarray of real numbers (TypeError naming the argument otherwise)."""
    arr = as_array(value, name)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} has complex dtype {arr.dtype}; logsumexp supports real input "
                        "only (for complex values use scipy.special.logsumexp)")
    _dtypes.result_dtype(arr.dtype, name)  # rejects object, str, ... with the argument's name
    return arr


def weak(value, arr):
    """A Python scalar as itself (NumPy 2's weak promotion, as SciPy: float32 x with b=2.0
    stays float32), anything else as its array's dtype."""
    return value if type(value) in (bool, int, float) else arr.dtype


def _rows_input(arr, layout, dtype):
    """arr (of layout's shape, maybe broadcast) as a C-contiguous (rows, n) view."""
    view = readable_view(arr, layout, dtype, None) if arr.shape == layout.shape else None
    if view is None:
        buf = layout.allocate(dtype)
        cast_copy(buf, np.broadcast_to(arr, layout.shape))
        view = layout.view3(buf)
    return kernel_form(view)


def logsumexp(x, axis, keepdims, b, return_sign, where, device=None, stream=None):
    """logsumexp(x, axis, b=b, return_sign=return_sign, where=where): the general path (and
    every logsumexp on the GPU)."""
    keepdims = _args.check_bool(keepdims, "keepdims")
    return_sign = _args.check_bool(return_sign, "return_sign")
    if _torch_cpu.involved(x, b, where):
        return _torch_cpu.call(
            lambda x, b, where: logsumexp(x, axis, keepdims, b, return_sign, where, device,
                                          stream), x=x, b=b, where=where)
    if on_gpu(device, x, b, where):
        from . import device_reductions as _device

        plan = _device.logsumexp(x, axis, keepdims, b, return_sign, where, device, stream)
        if plan is not None:
            return backend("cuda").reduction(plan)
        device = "cuda"
    return general(x, axis, keepdims, b, return_sign, where, device, stream)


def general(x, axis, keepdims, b, return_sign, where, device=None, stream=None):
    """The host path of `logsumexp`: checks, staging into (rows, n) views, one plan."""
    x_in, b_in = x, b
    x = real_array(x, "x")
    rdtype = _dtypes.result_dtype(x.dtype)
    shape = x.shape
    if b is not None:
        b = real_array(b, "b")
        rdtype = _dtypes.result_dtype(np.result_type(weak(x_in, x), weak(b_in, b)))
        try:
            shape = np.broadcast_shapes(x.shape, b.shape)
        except ValueError:
            raise ValueError(f"b has shape {b.shape}, which does not broadcast against x's "
                             f"shape {x.shape}") from None
    axes = normalize_axes(axis, len(shape))
    mask = None if where is None else check_where(where, shape)
    if len(shape) == 0:  # a scalar: its own one-element slice (b cast: its dtype is decided)
        return general(x.reshape(1), 0, False, None if b is None else b.astype(rdtype).reshape(1),
                       return_sign, None if mask is None else mask.reshape(1), device, stream)
    reduced = reduced_shape(shape, axes, keepdims)
    if 0 in shape:  # nothing to read: a sum of no terms is 0, so (-inf, sign 0)
        result = np.full(reduced, -np.inf, rdtype)
        return (result, np.zeros(reduced, rdtype)) if return_sign else result
    layout = Layout.rows(shape, axes)
    x2 = _rows_input(x, layout, rdtype)
    b2 = None if b is None else _rows_input(b, layout, rdtype)
    result, result2 = layout.allocate_reduced(rdtype)
    sign = sign2 = None
    if return_sign:
        sign, sign2 = layout.allocate_reduced(rdtype)
        sign2 = kernel_form(sign2, reduced=True)
    options = ReductionOptions(b2, keepdims, return_sign, sign, sign2)
    plan = Plan("logsumexp", "cuda" if device == "cuda" else "cpu", True, (x2,),
                kernel_form(result2, reduced=True), result, None, shape, axes,
                (layout.outer, layout.n, layout.inner), rdtype, False,
                mask_rows(mask, layout), None, options, stream)
    backend(plan.device).reduction(plan)
    if keepdims:
        result = np.expand_dims(result, axes)
        sign = None if sign is None else np.expand_dims(sign, axes)
    return (result, sign) if return_sign else result


def logsumexp_backward(grad_output, x, axis, keepdims, out, where, device=None, stream=None):
    """grad_output * exp(x - logsumexp(x, axis, keepdims=True)) over where (0 elsewhere)."""
    keepdims = _args.check_bool(keepdims, "keepdims")
    if _torch_cpu.involved(grad_output, x, out, where):
        return _torch_cpu.call(
            lambda grad_output, x, out, where: logsumexp_backward(
                grad_output, x, axis, keepdims, out, where, device, stream),
            grad_output=grad_output, x=x, out=out, where=where)
    if on_gpu(device, grad_output, x, out, where):
        from . import device_reductions as _device

        plan = _device.logsumexp_backward(grad_output, x, axis, keepdims, out, where, device,
                                          stream)
        if plan is not None:
            return backend("cuda").backward(plan)
        device = "cuda"
    return backward(grad_output, x, axis, keepdims, out, where, device, stream)


def backward(grad_output, x, axis, keepdims, out, where, device=None, stream=None):
    """The host path of `logsumexp_backward`: checks, staging, one plan."""
    g = real_array(grad_output, "grad_output")
    x = real_array(x, "x")
    rdtype = np.result_type(_dtypes.result_dtype(g.dtype, "grad_output"),
                            _dtypes.result_dtype(x.dtype, "x"))
    axes = normalize_axes(axis, x.ndim)
    expected = reduced_shape(x.shape, axes, keepdims)
    if g.shape != expected:
        raise ValueError(
            f"grad_output has shape {g.shape} but logsumexp of x (shape {x.shape}) over axis "
            f"{axis!r} with keepdims={keepdims} has shape {expected}; they must match")
    mask = None if where is None else check_where(where, x.shape)
    if out is not None:
        check_out(out, x.shape, rdtype)
    if x.ndim == 0:
        o = None if out is None else out.reshape(1)
        m = None if mask is None else mask.reshape(1)
        result = backward(g.reshape(()), x.reshape(1), 0, False, o, m, device, stream)
        return result.reshape(()) if out is None else out
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, rdtype)
    layout, result = rows_layout(x, axes, out, rdtype)
    result3 = layout.view3(result)
    # grad_output is one value per slice: always copied into the slices' order (small), so
    # that it may share memory with out.
    g_logical, g_rows = layout.allocate_reduced(rdtype)
    cast_copy(g_logical, g.reshape(reduced_shape(x.shape, axes, False)))
    x3 = readable_view(x, layout, rdtype, result)
    if x3 is None:
        x3 = staged(x, layout, rdtype)
    if mask is not None and np.may_share_memory(mask, result):
        mask = mask.copy()  # read as if before any write
    plan = Plan("logsumexp_backward", "cuda" if device == "cuda" else "cpu", True,
                (kernel_form(g_rows, reduced=True), kernel_form(x3)), kernel_form(result3),
                result, None if out is None or result is out else out, x.shape, axes,
                (layout.outer, layout.n, layout.inner), rdtype, False, mask_rows(mask, layout),
                None, None, stream)
    return backend(plan.device).backward(plan)
