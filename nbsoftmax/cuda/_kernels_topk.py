"""Softmax top-k on the GPU: a block per row (grid-strided), for small k.

The row's normaliser first (block max, then block exp-sum: two reads), then k rounds of a
block-wide arg-max, each over the entries that come after the previous pick in the order
(value descending, index ascending) — so ties go to the lower index and no per-row buffer
is kept: k + 2 reads of the row (from L2 for rows that fit there), nothing written but the
k results. The CPU kernel (``nbsoftmax.cpu._topk``) reads each row once; on the GPU the
block arg-max keeps the code branch-free per round and k is small in practice (top-5..50).
A row whose softmax is NaN gives NaN probabilities at indices 0..k-1, as on the CPU.
"""

import math

import numpy as np

from ._intrinsics import MAX_WARPS, block_max, block_sum, nan_max
from ._runtime import cuda

MAX_THREADS = 1024
_F64_ZERO = np.float64(0.0)
_F64_NEG_INF = np.float64(-np.inf)
_F64_POS_INF = np.float64(np.inf)


def topk_kernel(compute):
    """Kernel ``(x, probs, idx, rows, n, k)`` on flat (rows, n) / (rows, k) arrays."""
    nan = compute(np.nan)

    def kernel(x, probs, idx, rows, n, k):
        scratch = cuda.shared.array(MAX_WARPS, np.float64)
        best_values = cuda.shared.array(MAX_THREADS, np.float64)
        best_indices = cuda.shared.array(MAX_THREADS, np.int64)
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        for row in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
            base = row * n
            m = _F64_NEG_INF
            for j in range(tid, n, threads):
                m = nan_max(m, np.float64(compute(x[base + j])))
            row_max = block_max(m, scratch)
            if not math.isfinite(row_max):  # NaN slice by the plain conventions
                for p in range(tid, k, threads):
                    idx[row * k + p] = p
                    probs[row * k + p] = nan
                continue
            acc = _F64_ZERO
            for j in range(tid, n, threads):
                acc += math.exp(np.float64(compute(x[base + j])) - row_max)
            inv = 1.0 / block_sum(acc, scratch)
            prev_v = _F64_POS_INF
            prev_j = -1
            for p in range(k):
                best_v = _F64_NEG_INF
                best_j = n
                for j in range(tid, n, threads):
                    v = np.float64(compute(x[base + j]))
                    if v < prev_v or (v == prev_v and j > prev_j):
                        if v > best_v or (v == best_v and j < best_j):
                            best_v = v
                            best_j = j
                best_values[tid] = best_v
                best_indices[tid] = best_j
                cuda.syncthreads()
                active = threads
                while active > 1:
                    half = (active + 1) // 2
                    if tid < active - half:
                        v = best_values[tid + half]
                        j = best_indices[tid + half]
                        if v > best_values[tid] or (v == best_values[tid] and j < best_indices[tid]):
                            best_values[tid] = v
                            best_indices[tid] = j
                    cuda.syncthreads()
                    active = half
                prev_v = best_values[0]
                prev_j = best_indices[0]
                cuda.syncthreads()  # every thread has read the pick before the next round
                if tid == 0:
                    idx[row * k + p] = prev_j
                    probs[row * k + p] = compute(math.exp(prev_v - row_max) * inv)

    kernel.__qualname__ = kernel.__name__ = "softmax_topk_rows"
    return kernel
