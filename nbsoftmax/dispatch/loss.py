"""The dispatch of cross_entropy: its checks and the plan of one call, on either device.

One kernel pass per row of logits: per-row losses (rows-sized) and, with ``return_grad``, the
gradient written straight into the one full-size result. The class axis is brought last in
memory (``Layout.rows``); logits whose memory is not laid out so are staged into the gradient
array when there is one (then transformed in place), else into a temporary copy. The
reduction's denominator (count or weight sum of the kept targets) is found from the targets
first, so the kernels scale the gradient as they write it.
"""

import numpy as np

from . import args as _args
from . import torch_cpu as _torch_cpu
from . import xent as _xent_args
from .arrays import as_array, cast_copy, class_axis, kernel_form, prepare, readable_view, staged
from .backends import backend, on_gpu, temperature_scale
from .layout import Layout
from .plan import LossOptions, Plan


def cross_entropy(logits, target, axis, reduction, label_smoothing, ignore_index, weight,
                  temperature, return_grad, device=None, stream=None):
    reduction, label_smoothing, return_grad = _args.cross_entropy_options(
        reduction, label_smoothing, return_grad)
    ignore_index = _xent_args.check_ignore_index(ignore_index)
    if _torch_cpu.involved(logits, target, weight):
        return _torch_cpu.call(lambda logits, target, weight: cross_entropy(
            logits, target, axis, reduction, label_smoothing, ignore_index, weight, temperature,
            return_grad, device, stream), logits=logits, target=target, weight=weight)
    scale = temperature_scale(temperature)
    if on_gpu(device, logits, target, weight):
        from . import device_reductions as _device

        plan = _device.cross_entropy(logits, target, axis, reduction, label_smoothing,
                                     ignore_index, weight, scale, return_grad, device, stream)
        return backend("cuda").loss(plan)
    plan = host_plan(logits, target, axis, reduction, label_smoothing, ignore_index, weight,
                     scale, return_grad)
    return backend("cpu").loss(plan)


def host_plan(logits, target, axis, reduction, eps, ignore_index, weight, scale, return_grad):
    """The plan of a cross_entropy of host arrays on the CPU kernels."""
    x, axes, rdtype = prepare(logits, axis, None)
    a = class_axis(axis, x.ndim, axes)
    n_classes = x.shape[a]
    rest_shape = x.shape[:a] + x.shape[a + 1:]
    w = _xent_args.class_weight(None if weight is None else as_array(weight, "weight"),
                                n_classes)
    t = as_array(target, "target")
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
    layout = Layout.rows(x.shape, axes)
    grad = layout.allocate(rdtype) if return_grad else None
    inputs, target2, grad2 = (), None, None
    if rows and n_classes:
        x3 = readable_view(x, layout, rdtype, None)
        if x3 is None:
            if grad is not None:
                cast_copy(grad, x)
                x3 = layout.view3(grad)
            else:
                x3 = staged(x, layout, rdtype)
        if t_rows is None:
            target2 = readable_view(t, layout, rdtype, grad)
            if target2 is None:
                target2 = staged(t, layout, rdtype)
            target2 = kernel_form(target2)
        else:
            target2 = t_rows
        inputs = (kernel_form(x3),)
        grad2 = None if grad is None else kernel_form(layout.view3(grad))
    r = 1.0
    if reduction == "mean":
        r = 1.0 / denominator if denominator else np.nan
    wsum = float(n_classes) if w is None else float(w.sum())
    options = LossOptions(target2, t_rows is None, w, wsum, reduction, eps, ignore_index, True,
                          r, return_grad, rest_shape, denominator, None)
    return Plan("cross_entropy", "cpu", True, inputs, grad2, grad, None, x.shape, axes,
                (layout.outer, layout.n, layout.inner), rdtype, False, None,
                scale.scaling(rdtype), options, None)
