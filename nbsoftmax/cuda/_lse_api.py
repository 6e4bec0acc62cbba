"""logsumexp (plain, ``where=``, ``b=``, ``return_sign=``) and ``logsumexp_backward`` on the GPU.

Device plans in, device arrays out, no host round trip: inputs the plan does not read in
place (another dtype, a broadcast ``b``, gaps) are staged once by the strided copy kernel,
in the memory order of x when x is dense (any axis: the kernels read ``(outer, n, inner)``
slices), else C order with the reduced axes last (the plan's strides). Host plans run these
kernels on copies (``_host``). The kernels (``_kernels_lse``) are compiled per variant on
first use.
"""


import numpy as np

import math

from .._threading import ForkSafeLock
from . import _memory, _runtime

_compiled = {}
_lock = ForkSafeLock()  # a forked child gets it fresh (nbsoftmax._threading)


def _kernel(kind, dtype, weighted=False, masked=False, signed=False):
    # imported on first launch: without numba-cuda (or a GPU) nbsoftmax.cuda must still
    # import, so that device="cuda" raises its TypeError
    from . import _kernels_lse as K

    key = (kind, np.dtype(dtype), weighted, masked, signed)
    kernel = _compiled.get(key)
    if kernel is None:
        with _lock:
            kernel = _compiled.get(key)
            if kernel is None:
                from . import _variants

                t = _variants._types()
                arr = _variants.array_type(dtype)
                mask = _variants.array_type(np.uint8)
                compute = _variants.compute_dtype(np.dtype(dtype))
                if kind == "forward":
                    fn = K.lse_forward(compute, weighted, masked, signed)
                    sig = t.void(arr, arr, mask, arr, arr, t.int64, t.int64, t.int64)
                else:
                    fn = K.lse_backward(compute, masked)
                    sig = t.void(arr, arr, mask, arr, t.int64, t.int64, t.int64)
                kernel = _compiled[key] = _runtime.compile_kernel(fn, sig, K.BOUNDS)
    return kernel


_max_threads = {}  # (kernel, device) -> its driver limit: ~16 us to ask each call


def _threads(kernel, n):
    from . import _kernels_lse as K
    from . import _launch as L

    cap = min(L._limits.max_threads, K.BOUNDS[0])
    if not _runtime.SIMULATOR:
        key = (kernel, L.device_id())
        limit = _max_threads.get(key)
        if limit is None:
            limit = _max_threads[key] = int(kernel.get_max_threads_per_block())
        cap = min(cap, limit)
    return max(32, min(cap // 32 * 32, -(-n // 32) * 32))


def _launch(kernel, slices, n, stream):
    from . import _launch as L

    return L._configure(kernel, min(slices, 65_536), _threads(kernel, n), stream)


def run_lse_pointers(dtype, pointers, outer, n, inner, stream):
    """``run_lse`` on raw device pointers (x, b, mask, out, sign; None where absent) of flat
    arrays, through launches packed once per (variant, geometry, stream, device) as
    ``_launch.run_pointers`` does: a repeated call writes its pointers and launches (not
    under the simulator: callers pass views to ``run_lse`` there)."""
    from . import _arrays, _launcher
    from . import _launch as L

    handle = _arrays.stream_handle(stream)
    present = tuple(p is not None for p in pointers)
    key = ("lse", dtype, present, outer, n, inner, handle, L.device_id(), L._generation)
    table = _launcher.thread_table("lse")
    launches = table.get(key)
    if launches is None:
        size, count = outer * n * inner, outer * inner
        sizes = (size, size, size, count, count)
        dtypes = (dtype, dtype, np.dtype(np.uint8), dtype, dtype)
        views = [_arrays.flat_view(p, m, d, None) if p is not None else None
                 for p, m, d in zip(pointers, sizes, dtypes)]
        moving = [v for v in views if v is not None]
        launches = table[key] = _launcher.record(
            lambda configure: _enqueue_lse(views, outer, n, inner, stream, configure),
            moving, handle)
    live = [p for p in pointers if p is not None]
    for launch, picks in launches:
        launch([live[i] for i in picks])


def _enqueue_lse(views, outer, n, inner, stream, configure):
    from . import _launch as L

    x, b, mask, out, sign = views
    dtype = np.dtype(x.dtype)
    kernel = _kernel("forward", dtype, b is not None, mask is not None, sign is not None)
    configure(kernel, min(outer * inner, 65_536), _threads(kernel, n), stream)(
        x, L._placeholder(dtype, 1) if b is None else b,
        L._placeholder(np.uint8, 1) if mask is None else mask, out,
        L._placeholder(dtype, 1) if sign is None else sign, outer, n, inner)


def run_lse(x, b, mask, out, sign, outer, n, inner, stream):
    """Enqueue logsumexp of each (outer, n, inner) slice of flat device x (weights b, flat
    uint8 mask, each or None) into out[outer * inner] (and sign, or None)."""
    from . import _launch as L

    dtype = np.dtype(x.dtype)
    flags = (b is not None, mask is not None, sign is not None)
    kernel = _kernel("forward", dtype, *flags)
    _launch(kernel, outer * inner, n, stream)(
        x, L._placeholder(dtype, 1) if b is None else b,
        L._placeholder(np.uint8, 1) if mask is None else mask, out,
        L._placeholder(dtype, 1) if sign is None else sign, outer, n, inner)


def run_lse_backward(g, x, mask, out, outer, n, inner, stream):
    """Enqueue out = g[slice] * exp(x - logsumexp(x)) over each (outer, n, inner) slice."""
    from . import _launch as L

    kernel = _kernel("backward", x.dtype, masked=mask is not None)
    _launch(kernel, outer * inner, n, stream)(
        g, x, L._placeholder(np.uint8, 1) if mask is None else mask, out, outer, n, inner)


# ------------------------------------------------------------------ device plans


def _pointer(a):
    return a.device_ctypes_pointer.value or 0


def _broadcast(d, shape):
    """Described d seen with shape (zero strides on broadcast axes)."""
    from . import _arrays

    lead = len(shape) - len(d.shape)
    strides = (0,) * lead + tuple(0 if e == 1 and t != 1 else st
                                  for e, t, st in zip(d.shape, shape[lead:], d.strides))
    return _arrays.Described(d.obj, d.kind, tuple(shape), strides, d.dtype, d.ptr, True,
                             d.stream)


@_memory.on_device
def logsumexp_device(plan):
    from . import _arrays

    o = plan.options
    xd, bd, md = plan.inputs[0], o.b, plan.mask
    rdtype, shape = plan.dtype, plan.shape
    s = _arrays.call_stream(plan.stream, tuple(d for d in (xd, bd, md) if d is not None))
    size = math.prod(shape)

    def staged(d, in_place):
        if in_place:
            return _arrays.flat_view(d.ptr, size, rdtype, d.obj)
        buf = _arrays.temporary((size,), rdtype, s)
        _memory.copy(_broadcast(d, shape), buf, o.strides, s)
        return buf

    def staged_pointer(d, in_place):
        if in_place:
            return d.ptr
        buf = _arrays.temporary((size,), rdtype, s)
        _memory.copy(_broadcast(d, shape), buf, o.strides, s)
        return _pointer(buf)

    result, res_flat = _arrays.allocate(xd, o.result_shape, o.result_strides, rdtype, s)
    sign = sign_flat = None
    if o.return_sign:
        sign, sign_flat = _arrays.allocate(xd, o.result_shape, o.result_strides, rdtype, s)
    outer, n, inner = plan.form
    count = outer * inner
    if count and n == 0:  # empty slices: (-inf, sign 0)
        res_flat.copy_to_device(np.full(count, -np.inf, rdtype), stream=s)
        if sign_flat is not None:
            sign_flat.copy_to_device(np.zeros(count, rdtype), stream=s)
    elif count:
        mask = None
        if md is not None:
            mask = _memory.mask_flat(md, shape, o.mask_in_place, o.strides, rdtype.itemsize, s)
        if _runtime.SIMULATOR:
            run_lse(staged(xd, o.readable[0]),
                    None if bd is None else staged(bd, o.readable[1]),
                    mask, res_flat, sign_flat, outer, n, inner, s)
        else:  # prepacked launches: pointers only, no flat views of x and b
            pointers = (staged_pointer(xd, o.readable[0]),
                        None if bd is None else staged_pointer(bd, o.readable[1]),
                        None if mask is None else _pointer(mask), _pointer(res_flat),
                        None if sign_flat is None else _pointer(sign_flat))
            run_lse_pointers(rdtype, pointers, outer, n, inner, s)
    return (result, sign) if o.return_sign else result


@_memory.on_device
def backward_device(plan):
    from . import _arrays

    o = plan.options
    gd, xd = plan.inputs
    md = plan.mask
    rdtype = plan.dtype
    s = _arrays.call_stream(plan.stream, tuple(d for d in (gd, xd, plan.out, md)
                                               if d is not None))
    result, rd = _memory.target(plan, xd, s)
    size = xd.size
    if size:
        res_flat = _arrays.flat_view(rd.ptr, size, rdtype, result)
        if o.readable[0]:
            x_flat = _arrays.flat_view(xd.ptr, size, rdtype, xd.obj)
        else:
            x_flat = _arrays.temporary((size,), rdtype, s)
            _memory.copy(xd, x_flat, o.strides, s)
        mask = None
        if md is not None:
            mask = _memory.mask_flat(md, xd.shape, o.mask_in_place, o.strides, rdtype.itemsize, s)
        # grad_output, one value per slice, staged in the slices' order (always a copy: it
        # may share memory with out)
        outer, n, inner = plan.form
        g_rest = _arrays.Described(gd.obj, gd.kind, o.rest_shape, o.g_strides, gd.dtype, gd.ptr,
                                   True, gd.stream)
        g_flat = _arrays.temporary((outer * inner,), rdtype, s)
        _memory.copy(g_rest, g_flat, o.g_target_strides, s)
        run_lse_backward(g_flat, x_flat, mask, res_flat, outer, n, inner, s)
    return _memory.finish(plan, result, rd, s)
