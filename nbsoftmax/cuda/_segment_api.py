"""The segment functions on CUDA device arrays (``nbsoftmax.segment`` routes them here).

Device arrays in, device arrays out: ``x`` and ``out`` stay on the device. The offsets are
checked on the host (a copy of ``len(offsets)`` int64 when they are a device array) with the
CPU path's own checks, then used from the device. Supported on the GPU: CSR ``offsets``,
float32/float64 values, ``out=``. ``segment_ids=``, ``where=`` and ``temperature=`` raise a
TypeError that says so (sort by segment on the host, or use the CPU path).
"""

import numpy as np

from ..dispatch import segment as _segment_dispatch
from ._runtime import cuda, require

THREADS_PER_BLOCK = 128  # 4 warps per segment; a multiple of 32 (the device functions' rule)


def _device(a, name):
    if a is None:
        return None
    if getattr(a, "__cuda_ndarray__", False) is True:
        return a
    if hasattr(a, "__cuda_array_interface__"):
        return cuda.as_cuda_array(a)
    raise TypeError(f"{name} is a host array but the other arrays are on the GPU; pass a CUDA "
                    "device array (or call with host arrays only)")


def _unsupported(segment_ids, where, temperature):
    for name, value in (("segment_ids", segment_ids), ("where", where),
                        ("temperature", temperature)):
        if value is not None:
            raise TypeError(f"{name}= is not supported for CUDA device arrays yet; give CSR "
                            "offsets (segments sorted), or call with host arrays")


def _as_rows(a, name):
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} has dtype {a.dtype}; on the GPU expected float32 or float64")
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} has {a.ndim} dimensions; expected 1 or 2")
    return a.reshape(a.shape[0], 1) if a.ndim == 1 else a


def _offsets(offsets, n):
    if offsets is None:
        raise TypeError("give the segments as offsets (CSR) for CUDA device arrays")
    if getattr(offsets, "__cuda_ndarray__", False) is True:
        host = offsets.copy_to_host()
    elif hasattr(offsets, "__cuda_array_interface__"):
        host = cuda.as_cuda_array(offsets).copy_to_host()
    else:
        host = offsets
    off, _ = _segment_dispatch.segments(n, host, None, None)
    return off, cuda.to_device(off)


def _grid(segments, cols):
    return segments * cols, THREADS_PER_BLOCK


def _check_out(out, shape, dtype):
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape} but the result has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype} but the result has dtype {dtype}")


def forward(op, x, offsets, segment_ids, num_segments, out, where, temperature):
    require()
    _unsupported(segment_ids, where, temperature)
    x = _device(x, "x")
    x2 = _as_rows(x, "x")
    off, d_off = _offsets(offsets, x.shape[0])
    out = _device(out, "out")
    if out is None:
        out = cuda.device_array(x.shape, x.dtype)
    else:
        _check_out(out, x.shape, x.dtype)
    segments = off.size - 1
    if segments and x.size:
        from . import _kernels_segment as K

        blocks, threads = _grid(segments, x2.shape[1])
        K.softmax_segments[blocks, threads](x2, d_off, _as_rows(out, "out"), op == "log_softmax")
    return out


def logsumexp(x, offsets, segment_ids, num_segments, where):
    require()
    _unsupported(segment_ids, where, None)
    x = _device(x, "x")
    x2 = _as_rows(x, "x")
    off, d_off = _offsets(offsets, x.shape[0])
    segments = off.size - 1
    result = cuda.device_array((segments, x2.shape[1]), x.dtype)
    if segments and x2.shape[1]:
        from . import _kernels_segment as K

        blocks, threads = _grid(segments, x2.shape[1])
        K.logsumexp_segments[blocks, threads](x2, d_off, result)
    return result.reshape(segments) if x.ndim == 1 else result


def backward(op, grad_output, output, offsets, segment_ids, num_segments, out, where,
             temperature):
    require()
    _unsupported(segment_ids, where, temperature)
    g = _device(grad_output, "grad_output")
    y = _device(output, "output")
    if g.shape != y.shape or g.dtype != y.dtype:
        raise ValueError(f"grad_output ({g.shape}, {g.dtype}) and output ({y.shape}, {y.dtype}) "
                         "must have the same shape and dtype on the GPU")
    g2, y2 = _as_rows(g, "grad_output"), _as_rows(y, "output")
    off, d_off = _offsets(offsets, g.shape[0])
    out = _device(out, "out")
    if out is None:
        out = cuda.device_array(g.shape, g.dtype)
    else:
        _check_out(out, g.shape, g.dtype)
    segments = off.size - 1
    if segments and g.size:
        from . import _kernels_segment as K

        blocks, threads = _grid(segments, g2.shape[1])
        K.backward_segments[blocks, threads](g2, y2, d_off, _as_rows(out, "out"),
                                             op == "log_softmax_backward")
    return out
