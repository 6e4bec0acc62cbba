"""Host plans on the GPU (host arrays with ``device="cuda"``): copy in, run, copy back.

The dispatch staged the arrays on the host exactly as for the CPU kernels: the plan's inputs
are C-contiguous views in its ``(outer, n, inner)`` order, of the result dtype (float16 too:
the GPU computes it in float32), and its target the view the result is written to. Each is
copied to the device whole, the kernels run on the copies (the result over the first input's
copy, in place), the result is copied back into the target; the host waits on that call's
stream only. cross_entropy and softmax_topk take the device path on copies of the plan's
arrays instead, and copy its results back.
"""

import numpy as np

from . import _runtime


def _stream(stream):
    from . import _arrays

    if _runtime.SIMULATOR:
        return 0
    return _arrays._as_stream(stream) if stream is not None else _runtime.cuda.default_stream()


def _to_device(a, s):
    return None if a is None else _runtime.cuda.to_device(a.reshape(-1), stream=s)


def _finish(plan):
    if plan.out is not None:  # out's memory could not be viewed in the kernels' layout
        np.copyto(plan.out, plan.result)
        return plan.out
    return plan.result


def elementwise(plan):
    """softmax, log_softmax, their backward passes (plain or scaled) and logsumexp_backward."""
    from . import _launch

    s = _stream(plan.stream)
    inputs = tuple(_to_device(a, s) for a in plan.inputs)
    mask = None if plan.mask is None else _to_device(plan.mask.view(np.uint8), s)
    outer, n, inner = plan.form
    if plan.op == "logsumexp_backward":
        from ._lse_api import run_lse_backward

        device_out = _runtime.cuda.device_array(plan.target.size, plan.dtype, stream=s)
        run_lse_backward(inputs[0], inputs[1], mask, device_out, outer, n, inner, s)
    else:
        device_out = inputs[0]  # in place
        if plan.scaling is None:
            _launch.run(plan.op, inputs, device_out, outer, n, inner, s)
        else:
            _launch.run_scaled(plan.op, inputs, mask, device_out, plan.scaling, outer, n, inner,
                               s)
    device_out.copy_to_host(plan.target.reshape(-1), stream=s)
    if s:
        s.synchronize()
    return _finish(plan)


def reduction(plan):
    """logsumexp (the kernels of ``_lse_api``) into the plan's reduced target (and sign)."""
    from ._lse_api import run_lse

    s = _stream(plan.stream)
    o = plan.options
    x, b = _to_device(plan.inputs[0], s), _to_device(o.b, s)
    mask = None if plan.mask is None else _to_device(plan.mask.view(np.uint8), s)
    out = _runtime.cuda.device_array(plan.target.size, plan.dtype, stream=s)
    sign = None
    if o.sign_target is not None:
        sign = _runtime.cuda.device_array(o.sign_target.size, plan.dtype, stream=s)
    outer, n, inner = plan.form
    run_lse(x, b, mask, out, sign, outer, n, inner, s)
    for d, h in ((out, plan.target), (sign, o.sign_target)):
        if d is not None:
            d.copy_to_host(h.reshape(-1), stream=s)
    if s:
        s.synchronize()


def _described(a, name):
    from . import _arrays

    return None if a is None else _arrays.describe(_runtime.cuda.to_device(a), name)


def loss(plan, run_device):
    """cross_entropy of host arrays: the device path on copies, results copied back."""
    o = plan.options
    xd = _described(plan.inputs[0], "logits")
    device_plan = plan._replace(host=False, inputs=(xd,), options=o._replace(
        target=_described(o.target, "target"), weight=_described(o.weight, "weight")))
    result = run_device(device_plan)
    if o.return_grad:
        value, grad = result
        return _loss_value(value, o.reduction), grad.copy_to_host()
    return _loss_value(result, o.reduction)


def _loss_value(loss, reduction):
    value = loss.copy_to_host()
    return value if reduction == "none" else value[()]


def topk(plan, run_device):
    """softmax_topk of a host array: the device path on a copy, results copied back."""
    probs, idx = run_device(plan._replace(host=False,
                                          inputs=(_described(plan.inputs[0], "x"),)))
    return probs.copy_to_host(), idx.copy_to_host()
