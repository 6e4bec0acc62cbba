"""Warp shuffles and the cross-thread reductions built on them, with a simulator fallback.

The CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs each thread of a block as a Python
thread and has no warp shuffles. ``shfl_xor`` is therefore the one place where the source
differs: on a GPU it is ``cuda.shfl_xor_sync`` over the full warp; under the simulator a
Python function exchanges values through a per-block table between two block barriers.
The fallback has the semantics of the hardware instruction for kernels whose threads all
take part in every shuffle (a requirement of the full-mask instruction anyway); every
reduction below and every kernel in this package keeps to that, so the simulator runs
exactly the kernel source the GPU runs.

Cross-thread sums are float64 whatever the input: each thread first sums its own few
(at most 32) terms in the compute type, and the float64 tree above them keeps a row of
millions of float32 terms within the accuracy bounds of the CPU path.
"""

import math
import threading

import numpy as np

from ._runtime import SIMULATOR, cuda, device_function

FULL_MASK = 0xFFFFFFFF
WARP_SIZE = 32
# Upper bound on warps per block (1024 threads), the size of the block scratch arrays.
MAX_WARPS = 32

_F64_NEG_INF = np.float64(-np.inf)
_F64_ZERO = np.float64(0.0)


if SIMULATOR:

    def shfl_xor(value, lane_mask):
        """Value of the thread whose index differs from this one's by xor with lane_mask."""
        thread = threading.current_thread()
        table = thread._manager.__dict__.setdefault("_nbsoftmax_shuffle", {})
        table[thread.thread_id] = value
        thread.syncthreads()  # every thread has published its value
        partner = table[thread.thread_id ^ lane_mask]
        thread.syncthreads()  # every thread has read before anyone publishes again
        return partner

else:

    @device_function
    def shfl_xor(value, lane_mask):
        """Value of the lane whose index differs from this one's by xor with lane_mask."""
        return cuda.shfl_xor_sync(FULL_MASK, value, lane_mask)


@device_function
def nan_max(a, b):
    """max(a, b) that keeps NaN (fmax drops it): a NaN anywhere makes a slice's max NaN."""
    return b if (b > a or b != b) else a


@device_function
def group_max(value, width):
    """Max over aligned groups of ``width`` lanes (a power of two <= 32); every lane gets it."""
    offset = width >> 1
    while offset > 0:
        value = nan_max(value, shfl_xor(value, offset))
        offset >>= 1
    return value


@device_function
def group_sum(value, width):
    """Sum over aligned groups of ``width`` lanes; every lane gets the same total."""
    offset = width >> 1
    while offset > 0:
        value += shfl_xor(value, offset)
        offset >>= 1
    return value


@device_function
def block_max(value, scratch):
    """Max over the block, as float64, returned to every thread.

    ``scratch`` is a shared float64 array of MAX_WARPS entries; it may be reused as soon as
    this returns (the closing barrier orders the reads before any later write).
    """
    value = group_max(value, WARP_SIZE)
    tid = cuda.threadIdx.x
    if tid % WARP_SIZE == 0:
        scratch[tid // WARP_SIZE] = np.float64(value)
    cuda.syncthreads()
    total = _F64_NEG_INF
    for w in range((cuda.blockDim.x + WARP_SIZE - 1) // WARP_SIZE):
        total = nan_max(total, scratch[w])
    cuda.syncthreads()
    return total


@device_function
def block_sum(value, scratch):
    """Sum over the block of float64 values, returned to every thread (see block_max)."""
    value = group_sum(value, WARP_SIZE)
    tid = cuda.threadIdx.x
    if tid % WARP_SIZE == 0:
        scratch[tid // WARP_SIZE] = value
    cuda.syncthreads()
    total = _F64_ZERO
    for w in range((cuda.blockDim.x + WARP_SIZE - 1) // WARP_SIZE):
        total += scratch[w]
    cuda.syncthreads()
    return total


@device_function
def merge_max_sum(m1, s1, m2, s2):
    """Combine two (max, sum of exp(x - max)) pairs of float64 into one.

    A pair with max -inf is empty (its sum is 0); the rescale exp(-inf - -inf) = NaN of
    two empty pairs is avoided rather than repaired.
    """
    m = nan_max(m1, m2)
    if m == _F64_NEG_INF:
        return m, _F64_ZERO
    return m, s1 * math.exp(m1 - m) + s2 * math.exp(m2 - m)
