"""The GPU backend's entry points: a call's plan in, the result of the input's kind out.

The dispatch (``nbsoftmax.dispatch``) checked the call and decided its layout (a
``nbsoftmax.dispatch.plan.Plan``); what is left here is where memory lives:

- Device plans: the result is allocated by the input's library with the plan's strides (or
  ``out`` is written directly), inputs the plan does not read in place are staged once by the
  strided copy kernel (into the result, or for a second input a temporary buffer), the
  kernels run on flat views in the plan's ``(outer, n, inner)`` order, on the call's stream,
  and a result that could not be written into ``out`` is scattered into it.
- Host plans (host arrays with ``device="cuda"``): ``_host`` copies the plan's staged inputs
  in, runs the same kernels and copies the result back.
"""

import math

import numpy as np

from . import _host, _lse_api, _memory, _runtime, _xent_api
from ._memory import copy, finish, mask_flat, target

_on_device = _memory.on_device  # (the name tests and older callers use)


def require():
    """Raise TypeError when numba-cuda or a GPU is missing (the dispatch asks first)."""
    _runtime.require()


# ------------------------------------------------------------------ entry points


def forward(plan):
    """softmax / log_softmax (plain, or scaled: ``where=``, ``temperature=``, softmin)."""
    return _host.elementwise(plan) if plan.host else _elementwise_device(plan)


def backward(plan):
    """softmax_backward / log_softmax_backward (plain or scaled) and logsumexp_backward."""
    if plan.host:
        return _host.elementwise(plan)
    if plan.op == "logsumexp_backward":
        return _lse_api.backward_device(plan)
    return _elementwise_device(plan)


def reduction(plan):
    """logsumexp (with or without b=, return_sign=, where=): the kernels of ``_lse_api``."""
    if plan.host:
        return _host.reduction(plan)
    return _lse_api.logsumexp_device(plan)


def loss(plan):
    """cross_entropy: results of the logits' kind (a 0-d device array for "mean"/"sum")."""
    return _host.loss(plan, _xent_api.cross_entropy_device) if plan.host \
        else _xent_api.cross_entropy_device(plan)


def topk(plan):
    """softmax_topk: (probabilities, int64 indices) of x's kind."""
    return _host.topk(plan, _topk_device) if plan.host else _topk_device(plan)


@_on_device
def _elementwise_device(plan):
    from . import _arrays, _launch

    o = plan.options
    rdtype = plan.dtype
    s = _arrays.call_stream(plan.stream, plan.inputs + tuple(
        d for d in (plan.out, plan.mask) if d is not None))
    result, rd = target(plan, plan.inputs[0], s)
    mask = None
    if plan.mask is not None:  # staged before anything writes the result
        mask = mask_flat(plan.mask, plan.shape, o.mask_in_place, o.strides, rdtype.itemsize, s)
    size = math.prod(plan.shape)
    if size and plan.scaling is None and all(o.readable) and not _runtime.SIMULATOR:
        # every input read in place: the launch plan takes the pointers (no flat views)
        _launch.run_pointers(plan.op, rdtype, [d.ptr for d in plan.inputs] + [rd.ptr],
                             *plan.form, s)
    elif size:
        res_flat = _arrays.flat_view(rd.ptr, size, rdtype, result)
        one_input = len(plan.inputs) == 1
        inputs = []
        for d, in_place in zip(plan.inputs, o.readable):
            if in_place:
                inputs.append(_arrays.flat_view(d.ptr, size, rdtype, d.obj))
                continue
            staged = res_flat if one_input else _arrays.temporary((size,), rdtype, s)
            copy(d, staged, o.strides, s)
            inputs.append(staged)
        outer, n, inner = plan.form
        if plan.scaling is None:
            _launch.run(plan.op, tuple(inputs), res_flat, outer, n, inner, s)
        else:
            _launch.run_scaled(plan.op, tuple(inputs), mask, res_flat, plan.scaling, outer, n,
                               inner, s)
    return finish(plan, result, rd, s)


@_on_device
def _topk_device(plan):
    from . import _arrays, _launch
    from ..dispatch.layout import strides_in_order

    (xd,) = plan.inputs
    k, a = plan.options
    rdtype = plan.dtype
    ndim = len(xd.shape)
    s = _arrays.call_stream(plan.stream, (xd,))
    order = [b for b in range(ndim) if b != a] + [a]
    outer, n, _ = plan.form
    out_shape = xd.shape[:a] + (k,) + xd.shape[a + 1:]
    probs, pflat = _arrays.allocate(xd, out_shape, tuple(strides_in_order(
        out_shape, order, rdtype.itemsize)), rdtype, s)
    idx, iflat = _arrays.allocate(xd, out_shape, tuple(strides_in_order(out_shape, order, 8)),
                                  np.dtype(np.int64), s)
    if outer:
        row_strides = tuple(strides_in_order(xd.shape, order, rdtype.itemsize))
        if xd.dtype == rdtype and xd.strides == row_strides:
            src = _arrays.flat_view(xd.ptr, xd.size, rdtype, xd.obj)
        else:
            src = _arrays.temporary((xd.size,), rdtype, s)
            copy(xd, src, row_strides, s)
        _launch.run_topk(src, pflat, iflat, outer, n, k, s)
    return probs, idx
