"""Plans of repeated GPU calls on numba-cuda arrays: the validated decisions reused, pointers fresh.

A device plan (``device.elementwise`` / ``device.backward``) reads each array's
``__cuda_array_interface__`` several times and re-derives its layout every call: ~75 us of the
~115 us a ``softmax(x, out=)`` cost on a 4096 x 1024 numba array (benchmarks/bench_cuda_host.py,
driver stubbed). Everything those checks and decisions read is in this module's key: the op,
each array's type, shape, numba strides and dtype, the axis, the requested dtype, ``device``,
and which of ``out=``/``where=`` are given. A hit describes each array from its attributes once
(pointer from ``gpu_data``) and re-checks what depends on the pointers (whether an input or the
mask overlaps ``out``) each call; a miss runs the plain path (its checks raise exactly as
before) and stores its decisions. Only exact numba-cuda ``DeviceNDArray`` objects on the
default stream take this path (not the simulator's arrays, not CuPy/torch); the plain path
serves everything else and calls with ``temperature=`` (their scaling is per value).
"""

from .plan import DeviceArray, Plan, numba_array_types, overlaps

_new = tuple.__new__
_LIMIT = 256  # entries; cleared when full (a workload rarely cycles through more shapes)
_cache = {}


def _key_of(a):
    if a is None:
        return None
    if type(a) not in numba_array_types or type(a.stream) is not int or a.stream != 0:
        raise LookupError
    return a.shape, a.strides, a.dtype


def _describe(a, name, entry):
    shape, strides, dtype = entry
    gpu_data = a.gpu_data
    ptr = (gpu_data.device_ctypes_pointer.value or 0) if gpu_data is not None else 0
    return DeviceArray(a, name, "numba", shape, strides, dtype, ptr, False, None)


def _lookup(kind, op, arrays, axis, dtype, device):
    """(key, entry or None); key None when the call cannot take the cached path."""
    if device == "cpu" or not numba_array_types:
        return None, None
    try:
        key = (kind, op, axis, dtype, device) + tuple(_key_of(a) for a in arrays)
        return key, _cache.get(key)
    except (LookupError, TypeError, AttributeError):  # another array kind, unhashable axis
        return None, None


def store(key, plan, names):
    """Keep plan's decisions under key (from ``_lookup``); names: the argument names of
    the arrays in the plan's inputs, then out and where."""
    if key is None or plan is None:
        return plan
    if len(_cache) >= _LIMIT:
        _cache.clear()
    o = plan.options
    rdtype = plan.dtype
    base = tuple(d.dtype == rdtype and d.strides == o.strides for d in plan.inputs)
    md = plan.mask
    base_mask = False
    if md is not None:
        element_strides = tuple(s // rdtype.itemsize for s in o.strides)
        base_mask = md.shape == plan.shape and md.strides == element_strides
    descs = tuple(None if d is None else (d.shape, d.strides, d.dtype)
                  for d in plan.inputs + (plan.out, md))
    _cache[key] = (plan, base, base_mask, descs, names)
    return plan


def _replan(entry, arrays, stream):
    plan, base, base_mask, descs, names = entry
    ds = [None if a is None else _describe(a, name, e)
          for a, name, e in zip(arrays, names, descs)]
    od, md = ds[-2], ds[-1]
    inputs = tuple(ds[:-2])
    o = plan.options
    written = od if o.write_out else None
    if written is None:
        readable, mask_in_place = base, base_mask
    else:  # out's pointer is new: re-check what the kernels may read in place
        readable = tuple(b and (d.ptr == written.ptr or not overlaps(d, written))
                         for b, d in zip(base, inputs))
        mask_in_place = base_mask and not overlaps(md, written)
    if readable != o.readable or mask_in_place != o.mask_in_place:
        o = o._replace(readable=readable, mask_in_place=mask_in_place)
    return _new(Plan, (plan.op, "cuda", False, inputs, None, None, od, plan.shape, plan.axes,
                       plan.form, plan.dtype, False, md, None, o, stream))


def elementwise(op, x, axis, dtype, out, where, device, stream):
    """(key, plan): the plan of softmax / log_softmax of numba arrays from the cache (key
    None: not cacheable), or (key, None) on a miss (``store`` the plain path's plan)."""
    key, entry = _lookup("f", op, (x, out, where), axis, dtype, device)
    if entry is None:
        return key, None
    return key, _replan(entry, (x, out, where), stream)


def backward(op, grad_output, output, axis, out, where, device, stream):
    """As ``elementwise``, for softmax_backward / log_softmax_backward."""
    arrays = (grad_output, output, out, where)
    key, entry = _lookup("b", op, arrays, axis, None, device)
    if entry is None:
        return key, None
    return key, _replan(entry, arrays, stream)


def logsumexp(x, axis, keepdims, b, return_sign, where, device, stream):
    """(key, plan) of logsumexp as ``elementwise``: nothing here depends on pointers (no
    ``out=``), so a hit only describes x, b and where afresh."""
    arrays = (x, b, where)
    key, entry = _lookup("r", "logsumexp", arrays, (axis, keepdims, return_sign),
                         None, device)
    if entry is None:
        return key, None
    p, descs = entry
    xd, bd, md = (None if a is None else _describe(a, name, e)
                  for a, name, e in zip(arrays, ("x", "b", "where"), descs))
    o = p.options if bd is None else p.options._replace(b=bd)
    return key, _new(Plan, ("logsumexp", "cuda", False, (xd,), None, None, None, p.shape,
                            p.axes, p.form, p.dtype, False, md, None, o, stream))


def store_logsumexp(key, plan):
    """Keep a logsumexp plan (from the plain path) under key."""
    if key is None or plan is None:
        return plan
    if len(_cache) >= _LIMIT:
        _cache.clear()
    descs = tuple(None if d is None else (d.shape, d.strides, d.dtype)
                  for d in (plan.inputs[0], plan.options.b, plan.mask))
    _cache[key] = (plan, descs)
    return plan
