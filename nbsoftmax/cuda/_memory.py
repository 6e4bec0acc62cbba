"""Device memory of a GPU call: the current device, staging copies, results, scatter into out.

What the GPU entry points (``_api``, ``_lse_api``, ``_xent_api``) share once the dispatch's plan
has decided the layout: the call runs with the device that holds its arrays current
(``on_device``), inputs are staged by the strided copy kernel (``copy``), the result is ``out``
or a new array of the plan's strides allocated by the input's library (``target``), and a
result that could not be written into ``out`` is scattered into it (``finish``).
"""

import functools
import inspect
import math

import numpy as np

from . import _runtime


def _plan_arrays(plan):
    """(name, object) of every device array a device plan names."""
    found = [(d.name, d.obj) for d in plan.inputs]
    options = plan.options
    for d in (plan.out, plan.mask, getattr(options, "b", None), getattr(options, "weight", None),
              getattr(options, "target", None)):
        if d is not None and hasattr(d, "obj"):
            found.append((d.name, d.obj))
    return found


def on_device(fn):
    """Run fn with the device that holds its array arguments (or its plan's) current.

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

        named = _plan_arrays(args[0]) if names == ("plan",) else zip(names, args)
        device = common_device(named)
        if device is None or device == _runtime.device_id():
            return fn(*args)
        with _runtime.cuda.gpus[device]:
            return fn(*args)

    return wrapper


def copy(src, dst_flat, dst_strides, stream):
    """Strided copy of described src into the dense flat view dst_flat with dst_strides."""
    from . import _arrays, _launch

    src_flat, src_elems, src_at0 = _arrays.strided_view(src)
    itemsize = np.dtype(dst_flat.dtype).itemsize
    _launch.copy(src_flat, dst_flat, src.shape, src_elems,
                 tuple(s // itemsize for s in dst_strides), stream, src_at0)


def target(plan, like, stream):
    """(result object, its Described): out when the plan writes it directly, else a new
    array of the plan's shape and strides, allocated by like's library."""
    from . import _arrays

    if plan.options.write_out:
        return plan.out.obj, plan.out
    result, _ = _arrays.allocate(like, plan.shape, plan.options.strides, plan.dtype, stream)
    return result, _arrays.describe(result, "result")


def finish(plan, result, rd, stream):
    """Return the result, or copy it into an out whose memory the kernels could not write."""
    from . import _arrays, _launch

    od = plan.out
    if od is None or plan.options.write_out:
        return result
    src_flat, src_elems, src_at0 = _arrays.strided_view(rd)
    dst_flat, dst_elems, dst_at0 = _arrays.strided_view(od)
    _launch.copy(src_flat, dst_flat, rd.shape, src_elems, dst_elems, stream, src_at0, dst_at0)
    return od.obj


def mask_flat(md, shape, in_place, strides, itemsize, stream):
    """The flat uint8 mask of described md (broadcast to shape) in the order of ``strides``
    (byte strides of itemsize elements): md itself when the plan reads it in place, else a
    temporary of one byte per element filled by the copy kernel (zero strides for broadcast
    axes)."""
    from . import _arrays

    size = math.prod(shape)
    if in_place:
        return _arrays.flat_view(md.ptr, size, np.dtype(np.uint8), md.obj)
    lead = len(shape) - len(md.shape)
    bstrides = (0,) * lead + tuple(0 if e == 1 and t != 1 else st
                                   for e, t, st in zip(md.shape, shape[lead:], md.strides))
    bd = _arrays.Described(md.obj, md.kind, tuple(shape), bstrides, md.dtype, md.ptr, True,
                           md.stream)
    staged = _arrays.temporary((size,), np.dtype(np.uint8), stream)
    copy(bd, staged, tuple(s // itemsize for s in strides), stream)
    return staged
