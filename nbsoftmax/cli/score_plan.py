"""``nbsoftmax score``: the block plan, sized from what is left under ``--memory-limit``.

After the imports and the kernels are loaded (about 150-250 MB with Numba), the rest of the
limit, less a margin, sizes the blocks; blocks stay near ``TARGET_BLOCK_BYTES`` even when more
would fit, because that is faster (the block stays in cache between read, softmax and write).
"""

import resource

from .score_job import ScoreError, size_text

# Blocks of this many bytes (of the result dtype) when the memory limit allows more: read,
# softmax and write then share the block in cache. Measured on the shared 2-core machine
# (load ~5), a cached 600 MB float32 (150000, 1000) .npy, read + softmax + write, median of
# 3: 1 MB blocks 2.36 s, 4 MB 1.50 s, 16 MB 1.28 s, 64 MB 1.87 s, 256 MB 1.37 s.
TARGET_BLOCK_BYTES = 16 << 20

# Result blocks in flight when the full result is written: one being written by a background
# thread while the next is read and computed (and one spare). pwrite of a large output
# stalls whenever the kernel throttles dirty pages; overlapping it took a cached 2 GB float32
# file from 3.06 s to 1.45 s end to end (medians; cp of the same file 1.2-1.4 s) on the
# 2-core build machine (benchmarks/score_throughput.py).
WRITE_BEHIND_BUFFERS = 3

# Kept free under --memory-limit for what a block does not account for (Python objects,
# NumPy temporaries of the top-k selection, allocator slack).
MARGIN_BYTES = 32 << 20


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


class BlockPlan:
    """Contiguous blocks over the C-ordered ``memory_shape``, seen as ``(outer, n, inner)``
    around the softmax axis.

    ``whole`` plans cut blocks of ``o_len`` whole slabs ``(n, inner)``: every softmax slice
    lies in one block and one pass of the kernels does it. Otherwise (a slab does not fit)
    blocks are ``n_len`` rows of one slab, ``(1, n_len, inner)``, and the softmax takes two
    passes over the file (``nbsoftmax._blockstats``): per-slice (max, sum of exp) first, the
    probabilities second.
    """

    def __init__(self, memory_shape, axis, block_elements=None, fits=None):
        self.outer = _prod(memory_shape[:axis])
        self.n = memory_shape[axis]
        self.inner = _prod(memory_shape[axis + 1:])
        self.slices = self.outer * self.inner
        if block_elements is None:
            return
        slab = self.n * self.inner
        self.whole = slab <= fits
        if self.whole:
            self.o_len = max(1, min(self.outer, max(block_elements, slab) // max(slab, 1)))
            self.n_len = self.n
        else:
            self.o_len = 1
            self.n_len = max(1, min(self.n, block_elements // max(self.inner, 1)))

    @property
    def max_elements(self):
        return self.o_len * self.n_len * self.inner

    def blocks(self):
        """(o0, o1, n0, n1) of each block, in file order."""
        if self.n == 0 or self.inner == 0:  # nothing to read, nothing to write
            return
        for o0 in range(0, self.outer, self.o_len):
            o1 = min(o0 + self.o_len, self.outer)
            for n0 in range(0, self.n, self.n_len):
                yield o0, o1, n0, min(n0 + self.n_len, self.n)


def _peak_rss():
    """Peak resident memory of this process so far, in bytes.

    Linux's VmHWM, which starts afresh at exec; ``ru_maxrss`` does not: it keeps the peak
    of the process that forked this one (a parent that had mapped a 2 GB file made every
    child look 2 GB large)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def plan(job):
    """The block plan for the memory left under the limit, or ScoreError when nothing fits."""
    plan = BlockPlan(job.memory_shape, job.memory_axis)
    itemsize = job.dtype.itemsize
    raw = job.source.dtype.itemsize if job.source.dtype != job.dtype else 0
    # bytes per element held at once: whole slabs (the kernels work in place) ...
    per_element = itemsize * (WRITE_BEHIND_BUFFERS if job.top_k is None else 1) + raw
    if job.top_k is not None:
        from .topk import TEMP_BYTES_PER_ELEMENT

        # ... the slab moved to rows (inner > 1), its partitioned copy, a NaN-free copy, masks
        per_element += 3 * itemsize + TEMP_BYTES_PER_ELEMENT
    # ... and two passes: the input block, a float64 temporary, a mask, the result block
    per_element_split = (job.source.dtype.itemsize + raw + 8 + 1 + itemsize
                         + (itemsize + 8 if job.top_k is not None else 0))
    used = _peak_rss()
    budget = job.memory_limit - used - MARGIN_BYTES
    if budget <= 0:
        raise ScoreError(
            f"--memory-limit {size_text(job.memory_limit)} is too small: this process uses "
            f"{size_text(used)} before reading any data, and {size_text(MARGIN_BYTES)} more are kept "
            f"free; raise it to at least {size_text(used + MARGIN_BYTES + 1e6)}")
    target = TARGET_BLOCK_BYTES // itemsize
    slab = plan.n * plan.inner
    fits = budget // per_element
    if slab <= fits:
        return BlockPlan(job.memory_shape, job.memory_axis, min(target, fits), fits)
    # Per-slice statistics (max, sum; for top-k the running k best) live across blocks.
    stats_bytes = plan.inner * (16 + (job.top_k or 0) * (8 + itemsize) * 2)
    fits = (budget - stats_bytes) // per_element_split
    if plan.inner > fits:
        need = plan.inner * per_element_split + stats_bytes
        raise ScoreError(
            f"--memory-limit {size_text(job.memory_limit)} is too small for {job.source.what}: "
            f"one row of {plan.inner:,} values across the axes after --axis {job.axis} needs "
            f"{size_text(need)} besides the {size_text(used + MARGIN_BYTES)} in use or kept free; "
            f"raise it to at least {size_text(used + MARGIN_BYTES + need)}")
    return BlockPlan(job.memory_shape, job.memory_axis, min(target, fits), 0)
