"""logsumexp (plain, ``where=``, ``b=``, ``return_sign=``) and ``logsumexp_backward`` on the GPU.

Device arrays in, device arrays out, no host round trip: inputs the kernels cannot read in
place (another dtype, a broadcast ``b``, gaps) are staged once by the strided copy kernel,
in the memory order of x when x is dense (any axis: the kernels read ``(outer, n, inner)``
slices), else C order with the reduced axes last. Host arrays with ``device="cuda"`` take
the CPU dispatch's checks and staging (``nbsoftmax.dispatch.logsumexp``) and run these kernels on
copies. The kernels (``_kernels_lse``) are compiled per variant on first use.
"""


import numpy as np

from .._threading import ForkSafeLock
from ..dispatch import core as _dispatch
from ..dispatch import dtypes as _dtypes
from ..dispatch import logsumexp as _logsumexp
from ..dispatch.layout import Layout
from . import _api, _runtime

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


def _launch(kernel, slices, n, stream):
    # imported on first launch: without numba-cuda (or a GPU) nbsoftmax.cuda must still
    # import, so that device="cuda" raises its TypeError
    from . import _kernels_lse as K

    from . import _launch as L

    cap = min(L._limits.max_threads, K.BOUNDS[0])
    if not _runtime.SIMULATOR:
        cap = min(cap, int(kernel.get_max_threads_per_block()))
    threads = max(32, min(cap // 32 * 32, -(-n // 32) * 32))
    return L._configure(kernel, min(slices, 65_536), threads, stream)


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


# ------------------------------------------------------------------ device arrays


def _broadcast(d, shape):
    """Described d seen with shape (zero strides on broadcast axes)."""
    from . import _arrays

    lead = len(shape) - len(d.shape)
    strides = (0,) * lead + tuple(0 if e == 1 and t != 1 else st
                                  for e, t, st in zip(d.shape, shape[lead:], d.strides))
    return _arrays.Described(d.obj, d.kind, tuple(shape), strides, d.dtype, d.ptr, True,
                             d.stream)


def _reduced_strides(shape, axes, layout, keepdims, itemsize):
    """(shape, byte strides) of the reduced result, dense in the order of layout's slices."""
    step = itemsize
    stride_of = {}
    for a in reversed([a for a in layout.order if a not in axes]):
        stride_of[a] = step
        step *= shape[a]
    if keepdims:
        dims = range(len(shape))
        return (tuple(1 if a in axes else shape[a] for a in dims),
                tuple(stride_of.get(a, itemsize) for a in dims))
    rest = [a for a in range(len(shape)) if a not in axes]
    return tuple(shape[a] for a in rest), tuple(stride_of.get(a, itemsize) for a in rest)


@_api._on_device
def general_device(x, b, where, axis, keepdims, return_sign, stream):
    from . import _arrays

    xd = _arrays.describe(x, "x")
    bd = None if b is None else _arrays.describe(b, "b")
    md = None if where is None else _arrays.describe(where, "where")
    rdtype = _api._result_dtype(xd.dtype, None)
    shape = xd.shape
    if bd is not None:
        _api._result_dtype(bd.dtype, None, "b")
        rdtype = _dtypes.result_dtype(np.result_type(xd.dtype, bd.dtype))
        try:
            shape = np.broadcast_shapes(xd.shape, bd.shape)
        except ValueError:
            raise ValueError(f"b has shape {bd.shape}, which does not broadcast against x's "
                             f"shape {xd.shape}") from None
    axes = _dispatch.normalize_axes(axis, len(shape))
    s = _arrays.call_stream(stream, tuple(d for d in (xd, bd, md) if d is not None))
    layout = None
    if xd.dtype == rdtype and xd.shape == shape and (bd is None or bd.shape == shape):
        layout = _api._dense_layout(xd, axes)
    strides = xd.strides if layout is not None else _api._default_strides(shape, axes,
                                                                          rdtype.itemsize)
    layout = layout or Layout(shape, strides, axes)
    size = int(np.prod(shape, dtype=np.int64))

    def staged(d, obj):
        if d.shape == shape and d.dtype == rdtype and d.strides == strides:
            return _arrays.flat_view(d.ptr, size, rdtype, obj)
        buf = _arrays.temporary((size,), rdtype, s)
        _api._copy(_broadcast(d, shape), buf, strides, s)
        return buf

    rshape, rstrides = _reduced_strides(shape, axes, layout, keepdims, rdtype.itemsize)
    result, res_flat = _arrays.allocate(xd, rshape, rstrides, rdtype, s)
    sign = sign_flat = None
    if return_sign:
        sign, sign_flat = _arrays.allocate(xd, rshape, rstrides, rdtype, s)
    count = layout.outer * layout.inner
    if count and layout.n == 0:  # empty slices: (-inf, sign 0)
        res_flat.copy_to_device(np.full(count, -np.inf, rdtype), stream=s)
        if sign_flat is not None:
            sign_flat.copy_to_device(np.zeros(count, rdtype), stream=s)
    elif count:
        shim = _arrays.Described(None, "numba", shape, strides, rdtype, 0, True, None)
        mask = None if md is None else _api._broadcast_mask(md, shape, shim, s)
        run_lse(staged(xd, x), None if bd is None else staged(bd, b), mask, res_flat, sign_flat,
                layout.outer, layout.n, layout.inner, s)
    return (result, sign) if return_sign else result


@_api._on_device
def backward_device(grad_output, x, out, where, axis, keepdims, stream):
    from . import _arrays

    gd = _arrays.describe(grad_output, "grad_output")
    xd = _arrays.describe(x, "x")
    md = None if where is None else _arrays.describe(where, "where")
    rdtype = np.result_type(_api._result_dtype(gd.dtype, None, "grad_output"),
                            _api._result_dtype(xd.dtype, None, "x"))
    axes = _dispatch.normalize_axes(axis, len(xd.shape))
    expected = _logsumexp._reduced_shape(xd.shape, axes, keepdims)
    if gd.shape != expected:
        raise ValueError(
            f"grad_output has shape {gd.shape} but logsumexp of x (shape {xd.shape}) over axis "
            f"{axis!r} with keepdims={keepdims} has shape {expected}; they must match")
    od = None
    if out is not None:
        od = _arrays.describe(out, "out")
        _api._check_out(od, xd.shape, rdtype)
    s = _arrays.call_stream(stream, tuple(d for d in (gd, xd, od, md) if d is not None))
    result, rd, layout = _api._target(xd, axes, rdtype, od, out, s)
    size = xd.size
    if size:
        res_flat = _arrays.flat_view(rd.ptr, size, rdtype, result)
        if _api._readable(xd, rd):
            x_flat = _arrays.flat_view(xd.ptr, size, rdtype, x)
        else:
            x_flat = _arrays.temporary((size,), rdtype, s)
            _api._copy(xd, x_flat, rd.strides, s)
        mask = None if md is None else _api._broadcast_mask(md, xd.shape, rd, s)
        # grad_output, one value per slice, staged in the slices' order (always a copy: it
        # may share memory with out)
        rest = [a for a in range(len(xd.shape)) if a not in axes]
        g_strides = gd.strides if not keepdims else tuple(gd.strides[a] for a in rest)
        g_rest = _arrays.Described(gd.obj, gd.kind, tuple(xd.shape[a] for a in rest), g_strides,
                                   gd.dtype, gd.ptr, True, gd.stream)
        _, target = _reduced_strides(xd.shape, axes, layout, False, rdtype.itemsize)
        g_flat = _arrays.temporary((layout.outer * layout.inner,), rdtype, s)
        _api._copy(g_rest, g_flat, target, s)
        run_lse_backward(g_flat, x_flat, mask, res_flat, layout.outer, layout.n, layout.inner, s)
    return _api._finish(result, rd, od, out, s)


# ------------------------------------------------------------------ host arrays


def _host_runner(stream):
    cuda = _runtime.cuda

    def device_copy(a, s):
        if a is None:
            return None
        a = a.view(np.float16) if a.dtype == np.uint16 else a
        return cuda.to_device(np.ascontiguousarray(a).reshape(-1), stream=s)

    def forward(x2, b2, mask2, out1, sign1):
        s = _api._host_stream(stream)
        rows, n = x2.shape
        dx, db = device_copy(x2, s), device_copy(b2, s)
        dm = None if mask2 is None else device_copy(mask2.view(np.uint8), s)
        dout = device_copy(out1, s)
        dsign = device_copy(sign1, s)
        run_lse(dx, db, dm, dout, dsign, rows, n, 1, s)
        for d, h in ((dout, out1), (dsign, sign1)):
            if d is not None:
                h[...] = d.copy_to_host(stream=s).view(h.dtype)
        if s:
            s.synchronize()

    def backward(g1, x2, mask2, out2):
        s = _api._host_stream(stream)
        rows, n = x2.shape
        dg, dx = device_copy(g1, s), device_copy(x2, s)
        dm = None if mask2 is None else device_copy(mask2.view(np.uint8), s)
        dout = device_copy(out2, s)
        run_lse_backward(dg, dx, dm, dout, rows, n, 1, s)
        out2[...] = dout.copy_to_host(stream=s).reshape(out2.shape).view(out2.dtype)
        if s:
            s.synchronize()

    return forward, backward


def general_host(x, b, where, axis, keepdims, return_sign, stream):
    return _logsumexp.general(x, axis, keepdims, b, return_sign, where,
                              _host_runner(stream)[0])


def backward_host(grad_output, x, out, where, axis, keepdims, stream):
    return _logsumexp.backward(grad_output, x, axis, keepdims, out, where,
                               _host_runner(stream)[1])


def logsumexp_general(x, axis, keepdims, b, return_sign, where, device, stream):
    """logsumexp with b=/return_sign=/where= (any of them None/False) on the GPU."""
    if _api._start(device, (("x", x), ("b", b), ("where", where))):
        return general_device(x, b, where, axis, keepdims, return_sign, stream)
    return general_host(x, b, where, axis, keepdims, return_sign, stream)


def logsumexp_backward(grad_output, x, axis, keepdims, out, where, device, stream):
    """`nbsoftmax.logsumexp_backward` on the GPU; results of the inputs' kind."""
    named = (("grad_output", grad_output), ("x", x), ("out", out), ("where", where))
    if _api._start(device, named):
        return backward_device(grad_output, x, out, where, axis, keepdims, stream)
    return backward_host(grad_output, x, out, where, axis, keepdims, stream)
