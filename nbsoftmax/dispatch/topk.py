"""The dispatch of softmax_topk: its checks and the plan of one call, on either device.

nbsoftmax.cpu._topk runs one pass per row (online normaliser + sorted insertion buffer, or a
selection for large k). The softmax axis is brought last in memory (``Layout.rows``): x is
read in place when its memory is laid out so, else staged once (a temporary of x's size: the
results are only k wide).
"""

import numpy as np

from . import torch_cpu as _torch_cpu
from .arrays import check_k, kernel_form, prepare, readable_view, staged, topk_axis
from .backends import backend, on_gpu
from .layout import Layout
from .plan import Plan, TopkOptions


def softmax_topk(x, k, axis, device=None, stream=None):
    if _torch_cpu.involved(x):
        return _torch_cpu.call(lambda x: softmax_topk(x, k, axis, device, stream), x=x)
    if on_gpu(device, x):
        from . import device_reductions as _device

        return backend("cuda").topk(_device.softmax_topk(x, k, axis, device, stream))
    return backend("cpu").topk(host_plan(x, k, axis))


def host_plan(x, k, axis):
    """The plan of a softmax_topk of a host array on the CPU kernels."""
    x, _, rdtype = prepare(x, None if np.ndim(x) == 0 else 0, None)
    axes = topk_axis(axis, x.ndim)
    (a,) = axes
    k = check_k(k, x.shape[a])
    layout = Layout.rows(x.shape, axes)
    inputs = ()
    if x.size:
        x3 = readable_view(x, layout, rdtype, None)
        if x3 is None:
            x3 = staged(x, layout, rdtype)
        inputs = (kernel_form(x3),)
    return Plan("softmax_topk", "cpu", True, inputs, None, None, None, x.shape, axes,
                (layout.outer, layout.n, layout.inner), rdtype, False, None, None,
                TopkOptions(k, a), None)
