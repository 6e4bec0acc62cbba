"""The segment functions on CUDA device arrays (``nbsoftmax.segment`` routes them here).

Device arrays in, device arrays out: ``x`` and ``out`` stay on the device. The segment
description is checked on the host with the CPU path's own checks (``dispatch.segment``):
``offsets`` or ``segment_ids`` given as device arrays are copied to the host for that (one
int64 per segment or per entry), and the CSR offsets (and, for unsorted ids, the order of
their stable sort) go back to the device. ``where=`` is a bool device array of ``x``'s
shape, or a host array that broadcasts to it (copied to the device). float32/float64
values; ``out=`` a device array of the result's shape and dtype.

Plain calls with offsets run the segment kernels on ``x`` directly; ``segment_ids=`` (unsorted),
``where=`` and ``temperature=`` stage a copy first (``_kernels_segment.stage_segments``) and
finish through ``finish_segments``: the conventions and numerics of the CPU path.
"""

import numpy as np

from ..dispatch import core as _dispatch
from ..dispatch import segment as _segment_dispatch
from ._runtime import cuda, require

THREADS_PER_BLOCK = 128  # 4 warps per segment; a multiple of 32 (the device functions' rule)
FINISH_MAX_BLOCKS = 4096  # the element-wise finish pass is grid-strided beyond this


def _device(a, name):
    if a is None:
        return None
    if getattr(a, "__cuda_ndarray__", False) is True:
        return a
    if hasattr(a, "__cuda_array_interface__"):
        return cuda.as_cuda_array(a)
    raise TypeError(f"{name} is a host array but the other arrays are on the GPU; pass a CUDA "
                    "device array (or call with host arrays only)")


def _host(a):
    """a device array's values on the host (a host array as it is)."""
    if getattr(a, "__cuda_ndarray__", False) is True:
        return a.copy_to_host()
    if hasattr(a, "__cuda_array_interface__"):
        return cuda.as_cuda_array(a).copy_to_host()
    return a


def _as_rows(a, name):
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} has dtype {a.dtype}; on the GPU expected float32 or float64")
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} has {a.ndim} dimensions; expected 1 or 2")
    return a.reshape(a.shape[0], 1) if a.ndim == 1 else a


def _segments(n, offsets, segment_ids, num_segments):
    """(CSR offsets on the host, the same on the device, device order or None): order is the
    stable sort of unsorted segment_ids, the gather of values into segment order."""
    off, order = _segment_dispatch.segments(
        n, None if offsets is None else _host(offsets),
        None if segment_ids is None else _host(segment_ids), num_segments)
    return off, cuda.to_device(off), None if order is None else cuda.to_device(order)


def _mask(where, shape):
    """where as a (N, C) bool device array of x's shape, or None."""
    if where is None:
        return None
    if getattr(where, "__cuda_ndarray__", False) is True or hasattr(
            where, "__cuda_array_interface__"):
        mask = _device(where, "where")
        if mask.dtype != np.bool_:
            raise TypeError(f"where has dtype {mask.dtype}; expected a boolean mask")
        if mask.shape != tuple(shape):
            raise ValueError(f"where has shape {mask.shape} but x has shape {tuple(shape)}; a "
                             "device mask must have x's shape (a host mask may broadcast)")
    else:
        host = _dispatch.check_where(where, tuple(shape))
        mask = cuda.to_device(np.ascontiguousarray(np.broadcast_to(host, shape)))
    return mask.reshape(shape[0], 1) if len(shape) == 1 else mask


class _Staging:
    """The arguments of stage_segments / finish_segments for one call (placeholders for the
    order and mask a call does not have: the kernels' flags skip them)."""

    def __init__(self, order, mask):
        self.gather = order is not None
        self.masked = mask is not None
        self.order = order if self.gather else cuda.to_device(np.zeros(1, np.int64))
        self.mask = mask if self.masked else cuda.to_device(np.ones((1, 1), np.bool_))

    def stage(self, x2, d_off, inv_t, fill, blocks, threads):
        from . import _kernels_segment as K

        work = cuda.device_array(x2.shape, x2.dtype)
        K.stage_segments[blocks, threads](x2, self.order, self.mask, d_off,
                                          1.0 if inv_t is None else inv_t, self.gather,
                                          self.masked, inv_t is not None, fill, work)
        return work

    def finish(self, work, scale, fill, out2):
        from . import _kernels_segment as K

        size = work.shape[0] * work.shape[1]
        blocks = min(max(1, -(-size // THREADS_PER_BLOCK)), FINISH_MAX_BLOCKS)
        K.finish_segments[blocks, THREADS_PER_BLOCK](work, self.order, self.mask, scale,
                                                     self.gather, self.masked, fill, out2)


def _grid(segments, cols):
    return segments * cols, THREADS_PER_BLOCK


def _output(out, shape, dtype):
    """out (a device array of the result's shape and dtype), or a new device array."""
    out = _device(out, "out")
    if out is None:
        return cuda.device_array(shape, dtype)
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape} but the result has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype} but the result has dtype {dtype}")
    return out


def forward(op, x, offsets, segment_ids, num_segments, out, where, temperature):
    require()
    x = _device(x, "x")
    x2 = _as_rows(x, "x")
    off, d_off, order = _segments(x.shape[0], offsets, segment_ids, num_segments)
    mask = _mask(where, x.shape)
    inv_t = _segment_dispatch.inverse_temperature(temperature)
    out = _output(out, x.shape, x.dtype)
    segments = off.size - 1
    if not (segments and x.size):
        return out
    from . import _kernels_segment as K

    log = op == "log_softmax"
    blocks, threads = _grid(segments, x2.shape[1])
    out2 = _as_rows(out, "out")
    if order is None and mask is None and inv_t is None:
        K.softmax_segments[blocks, threads](x2, d_off, out2, log)
        return out
    staging = _Staging(order, mask)
    work = staging.stage(x2, d_off, inv_t, -np.inf, blocks, threads)
    K.softmax_segments[blocks, threads](work, d_off, work, log)
    staging.finish(work, 1.0, -np.inf if log else 0.0, out2)
    return out


def logsumexp(x, offsets, segment_ids, num_segments, where):
    require()
    x = _device(x, "x")
    x2 = _as_rows(x, "x")
    off, d_off, order = _segments(x.shape[0], offsets, segment_ids, num_segments)
    mask = _mask(where, x.shape)
    segments = off.size - 1
    result = cuda.device_array((segments, x2.shape[1]), x.dtype)
    if segments and x2.shape[1]:
        from . import _kernels_segment as K

        blocks, threads = _grid(segments, x2.shape[1])
        if order is not None or mask is not None:
            x2 = _Staging(order, mask).stage(x2, d_off, None, -np.inf, blocks, threads)
        K.logsumexp_segments[blocks, threads](x2, d_off, result)
    return result.reshape(segments) if x.ndim == 1 else result


def backward(op, grad_output, output, offsets, segment_ids, num_segments, out, where,
             temperature):
    require()
    g = _device(grad_output, "grad_output")
    y = _device(output, "output")
    if g.shape != y.shape or g.dtype != y.dtype:
        raise ValueError(f"grad_output ({g.shape}, {g.dtype}) and output ({y.shape}, {y.dtype}) "
                         "must have the same shape and dtype on the GPU")
    g2, y2 = _as_rows(g, "grad_output"), _as_rows(y, "output")
    off, d_off, order = _segments(g.shape[0], offsets, segment_ids, num_segments)
    mask = _mask(where, g.shape)
    inv_t = _segment_dispatch.inverse_temperature(temperature)
    out = _output(out, g.shape, g.dtype)
    segments = off.size - 1
    if not (segments and g.size):
        return out
    from . import _kernels_segment as K

    log = op == "log_softmax_backward"
    blocks, threads = _grid(segments, g2.shape[1])
    out2 = _as_rows(out, "out")
    if order is None and mask is None and inv_t is None:
        K.backward_segments[blocks, threads](g2, y2, d_off, out2, log)
        return out
    # Masked entries take no part: g staged as 0, y as 0 (log_softmax: -inf, exp(-inf) = 0).
    staging = _Staging(order, mask)
    gw = staging.stage(g2, d_off, None, 0.0, blocks, threads)
    yw = staging.stage(y2, d_off, None, -np.inf if log else 0.0, blocks, threads)
    K.backward_segments[blocks, threads](gw, yw, d_off, gw, log)
    staging.finish(gw, 1.0 if inv_t is None else inv_t, 0.0, out2)
    return out
