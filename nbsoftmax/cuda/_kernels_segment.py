"""Segment kernels: one block per (segment, column), built on the device functions.

``x``/``out`` are ``(N, C)`` device arrays (a 1-D input is seen as ``(N, 1)``), segment ``k``
the rows ``offsets[k]:offsets[k + 1]``; block ``b`` takes segment ``b // C`` and column
``b % C`` and hands that (strided, for C > 1) view to ``device.block_*``, so a segment gets
the numerics of a dense row. One block per segment keeps a 1M-segment launch simple; short
segments leave most of a block's threads idle (a warp-per-segment variant for them is the
next step, see the README).
"""

import math

import numpy as np

from . import device
from .device import SCRATCH_SIZE
from ._intrinsics import block_sum
from ._runtime import cuda, device_function


@device_function
def _segment_of_block(offsets, cols):
    b = cuda.blockIdx.x
    k = b // cols
    return k, b % cols, offsets[k], offsets[k + 1]


@cuda.jit
def softmax_segments(x, offsets, out, log):
    scratch = cuda.shared.array(SCRATCH_SIZE, np.float64)
    k, c, b0, b1 = _segment_of_block(offsets, x.shape[1])
    if log:
        device.block_log_softmax(x[b0:b1, c], out[b0:b1, c], b1 - b0, scratch)
    else:
        device.block_softmax(x[b0:b1, c], out[b0:b1, c], b1 - b0, scratch)


@cuda.jit
def logsumexp_segments(x, offsets, out):
    scratch = cuda.shared.array(SCRATCH_SIZE, np.float64)
    k, c, b0, b1 = _segment_of_block(offsets, x.shape[1])
    v = device.block_logsumexp(x[b0:b1, c], b1 - b0, scratch)
    if cuda.threadIdx.x == 0:
        out[k, c] = v


@cuda.jit
def backward_segments(g, y, offsets, out, log):
    """softmax_backward: y * (g - sum(g * y)); log: g - exp(y) * sum(g); per segment."""
    scratch = cuda.shared.array(SCRATCH_SIZE, np.float64)
    k, c, b0, b1 = _segment_of_block(offsets, g.shape[1])
    tid = cuda.threadIdx.x
    step = cuda.blockDim.x
    acc = device._like(g, 0.0)
    for j in range(b0 + tid, b1, step):
        if log:
            acc += g[j, c]
        else:
            acc += g[j, c] * y[j, c]
    total = block_sum(np.float64(acc), scratch)
    d = device._like(out, total)
    for j in range(b0 + tid, b1, step):
        if log:
            out[j, c] = g[j, c] - math.exp(y[j, c]) * d
        else:
            out[j, c] = y[j, c] * (g[j, c] - d)
