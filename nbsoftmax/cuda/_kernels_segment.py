"""Segment kernels: one block per (segment, column), built on the device functions.

``x``/``out`` are ``(N, C)`` device arrays (a 1-D input is seen as ``(N, 1)``), segment ``k``
the rows ``offsets[k]:offsets[k + 1]``; block ``b`` takes segment ``b // C`` and column
``b % C`` and hands that (strided, for C > 1) view to ``device.block_*``, so a segment gets
the numerics of a dense row. One block per segment keeps a 1M-segment launch simple; short
segments leave most of a block's threads idle (a warp-per-segment variant for them is the
next step, see the README).

``segment_ids=``, ``where=`` and ``temperature=`` run as on the CPU (``cpu._segment``):
``stage_segments`` gathers the values in segment order (``order``, the stable sort of the
ids), puts -inf (gradients: 0) at masked entries and, with a temperature, writes each
segment's ``(x - max) / T`` computed in float64 and rounded once; the kernels above then run
in place on that copy, and ``finish_segments`` scatters back, scales (backward: by 1 / T)
and fills masked entries (0; log_softmax: -inf). ``gather``, ``masked`` and ``scaled`` are
runtime flags (one compiled kernel per dtype); ``order``/``mask`` are placeholders without
them.
"""

import math

import numpy as np

from . import device
from .device import SCRATCH_SIZE
from ._intrinsics import block_max, block_sum, nan_max
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


@cuda.jit
def stage_segments(x, order, mask, offsets, inv_t, gather, masked, scaled, fill, out):
    """out[j, c] = x[i, c] (i = order[j] with gather, else j), fill where not mask[i, c];
    scaled: (x[i, c] - max) * inv_t in float64, max over the segment's unmasked entries."""
    scratch = cuda.shared.array(SCRATCH_SIZE, np.float64)
    k, c, b0, b1 = _segment_of_block(offsets, x.shape[1])
    tid = cuda.threadIdx.x
    step = cuda.blockDim.x
    m = np.float64(0.0)
    if scaled:  # the same for every thread of the block: the barriers are uniform
        lane_max = np.float64(-math.inf)
        for j in range(b0 + tid, b1, step):
            i = order[j] if gather else j
            if not masked or mask[i, c]:
                lane_max = nan_max(lane_max, np.float64(x[i, c]))
        m = block_max(lane_max, scratch)
        if not math.isfinite(m):
            m = np.float64(0.0)  # NaN and +inf reach the kernels as NaN; -inf stays -inf
    fill_value = device._like(out, fill)
    for j in range(b0 + tid, b1, step):
        i = order[j] if gather else j
        if not masked or mask[i, c]:
            v = np.float64(x[i, c])
            if scaled:
                v = (v - m) * inv_t
            out[j, c] = device._like(out, v)
        else:
            out[j, c] = fill_value


@cuda.jit
def finish_segments(work, order, mask, scale, gather, masked, fill, out):
    """out[i, c] = work[j, c] * scale (i = order[j] with gather, else j), fill where not
    mask[i, c]; one thread per element, grid-strided."""
    cols = work.shape[1]
    sc = device._like(out, scale)
    fill_value = device._like(out, fill)
    for e in range(cuda.grid(1), work.shape[0] * cols, cuda.gridsize(1)):
        j = e // cols
        c = e % cols
        i = order[j] if gather else j
        if not masked or mask[i, c]:
            out[i, c] = work[j, c] * sc
        else:
            out[i, c] = fill_value
