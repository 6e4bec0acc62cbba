"""``nbsoftmax score`` on this machine: the blocks of the plan read, computed and written.

The array is seen as ``(outer, n, inner)`` around the softmax axis (``score_plan``):

- When a slab ``(n, inner)`` fits, blocks are whole slabs and one pass of the kernels
  computes them; the full result is written behind by a thread (``_WriteBehind``).
- Otherwise blocks are runs of rows of one slab and two passes are made: per-slice (max, sum
  of exp) first, combined block by block, then the probabilities (``nbsoftmax._blockstats``).

``--top-k`` ranks by the logits (after ``--dtype``'s cast), ties to the lower index, as
``nbsoftmax.softmax_topk`` does; a slice whose softmax is NaN (a NaN or +inf in it, or only
-inf) gives indices ``0..k-1`` with NaN values, as there.
"""

import time

import numpy as np

from . import score_plan
from .score_job import raise_if_interrupted
from .score_output import write_topk_archive


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def warm_up(job):
    """Load (or compile) the kernels now, so that their memory counts before blocks are sized."""
    if job.device == "cuda":
        return
    import nbsoftmax

    from .. import _precompile
    from ..cpu import _variants

    # Only the plain kernels of this op and dtype: score passes no where= or temperature=,
    # and nbsoftmax.precompile(ops=(op,)) would also build those variants (8 or more extra
    # compiles on a cold cache, minutes on a loaded 2-core machine).
    _precompile.precompile([
        v for v in _variants.variants((job.op,), (job.dtype.name,))
        if v.family != "elementwise" or v.args[1] in _variants.PLAIN_LAYOUTS])
    if job.top_k is not None:  # the top-k kernel of this dtype (what precompile may skip)
        nbsoftmax.softmax_topk(np.zeros((1, 2), job.dtype), 1)


def run_local(job, pending, progress_stream=None):
    """Score job on this machine into pending's temporaries and publish OUTPUT; returns
    (slices, input bytes, seconds of the work itself: reading, computing, writing)."""
    from . import arrayfile as _arrayfile, progress as _progress

    warm_up(job)
    raise_if_interrupted()  # (an interrupt during the warm-up may have been swallowed)
    plan = score_plan.plan(job)
    started = time.perf_counter()
    outputs = job.output_shapes()
    parts = [pending.new_temp() for _ in outputs]
    writers = [_arrayfile.NpyWriter(p, s, d, job.source.fortran_order)
               for p, (_, s, d) in zip(parts, outputs)]
    passes = 1 if plan.whole else 2
    bar = _progress.progress(passes * job.source.nbytes, "score", stream=progress_stream)
    try:
        if plan.whole:
            _one_pass(job, plan, writers, bar)
        else:
            _two_passes(job, plan, writers, bar)
    finally:
        for writer in writers:
            writer.close()
        bar.close()
    if job.top_k is None:
        pending.commit(parts[0])
    else:
        pending.commit(write_topk_archive(pending, parts, [name for name, _, _ in outputs]))
    return plan.slices, job.source.nbytes, time.perf_counter() - started


def _read_blocks(job, plan, bar):
    """Yield (o0, o1, n0, n1, block) in file order, block in the stored dtype (one buffer)."""
    buffer = np.empty(plan.max_elements, job.source.dtype)
    with job.source.reader() as reader:
        for o0, o1, n0, n1 in plan.blocks():
            shape = (o1 - o0, n1 - n0, plan.inner)
            block = buffer[:_prod(shape)].reshape(shape)
            reader.read((o0 * plan.n + n0) * plan.inner, block)
            yield o0, o1, n0, n1, block
            bar.update(block.nbytes)


def _one_pass(job, plan, writers, bar):
    """Blocks of whole slabs: the kernel in place, then the block (or its top-k) written."""
    import nbsoftmax

    func = getattr(nbsoftmax, job.op)
    k = job.top_k
    converts = job.source.dtype != job.dtype
    if k is not None:
        work_buffer = np.empty(plan.max_elements, job.dtype) if job.op != "softmax" else None
        for o0, _, _, _, raw in _read_blocks(job, plan, bar):
            logits = raw.astype(job.dtype) if converts else raw  # --dtype casts first
            values, indices = nbsoftmax.softmax_topk(logits, k, axis=1, device=job.device)
            if job.op != "softmax":  # the log-probabilities at the same places
                work = work_buffer[:raw.size].reshape(raw.shape)
                func(logits, axis=1, out=work, device=job.device)
                values = np.take_along_axis(work, indices, axis=1)
            for writer, part in zip(writers, (indices, values)):
                writer.write(o0 * k * plan.inner, part)
        return
    pipeline = _WriteBehind(writers[0], [np.empty(plan.max_elements, job.dtype)
                                         for _ in range(score_plan.WRITE_BEHIND_BUFFERS)])
    try:
        raw_buffer = np.empty(plan.max_elements, job.source.dtype) if converts else None
        with job.source.reader() as reader:
            for o0, o1, _, _ in plan.blocks():
                shape = (o1 - o0, plan.n, plan.inner)
                size = _prod(shape)
                buffer = pipeline.take()
                work = buffer[:size].reshape(shape)
                raw = raw_buffer[:size].reshape(shape) if converts else work
                reader.read(o0 * plan.n * plan.inner, raw)
                func(raw, axis=1, dtype=job.dtype, out=work, device=job.device)
                pipeline.put(o0 * plan.n * plan.inner, work, buffer)
                bar.update(raw.nbytes)
    except BaseException:
        pipeline.abandon()
        raise
    pipeline.finish()


class _WriteBehind:
    """Writes blocks in a background thread (``pwrite`` releases the GIL) from a small pool of
    buffers, so that writing one block overlaps reading and computing the next. The first
    error of a write is raised in the calling thread by the next ``take`` or ``finish``."""

    def __init__(self, writer, buffers):
        import queue
        import threading

        self._writer = writer
        self._free = queue.Queue()
        for buffer in buffers:
            self._free.put(buffer)
        self._pending = queue.Queue()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="nbsoftmax-score-writer",
                                        daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            item = self._pending.get()
            if item is None:
                return
            start, block, buffer = item
            if self._error is None:
                try:
                    self._writer.write(start, block)
                except BaseException as exc:  # handed to the calling thread
                    self._error = exc
            del block
            self._free.put(buffer)

    def _raise(self):
        if self._error is not None:  # kept: the thread writes nothing more after an error
            raise self._error

    def take(self):
        """A free buffer (waits while all are being written)."""
        buffer = self._free.get()
        self._raise()
        return buffer

    def put(self, start, block, buffer):
        self._pending.put((start, block, buffer))

    def finish(self):
        """Wait for every write; raise the first error."""
        self._pending.put(None)
        self._thread.join()
        self._raise()

    def abandon(self):
        """After an error or interrupt in the caller: let the writes in flight end, quietly."""
        self._error = self._error or RuntimeError("abandoned")
        self._pending.put(None)
        self._thread.join()


def _two_passes(job, plan, writers, bar):
    """Slabs larger than the memory: per-slice (max, sum of exp) over the whole file first
    (combined block by block), then the probabilities from them (or their running top-k)."""
    from .._blockstats import apply_stats, block_stats, combine_stats

    axes = (1,)
    converts = job.source.dtype != job.dtype

    def values(raw):  # --dtype casts first, as the kernels' dtype= does
        return raw.astype(job.dtype) if converts else raw

    stats = None
    slab_stats = np.empty((plan.outer, 1, plan.inner, 2))
    for o0, _, _, n1, raw in _read_blocks(job, plan, bar):
        part = block_stats(values(raw), axes)
        stats = part if stats is None else combine_stats(np.concatenate([stats, part], 1), axes)
        if n1 == plan.n:  # a slab is complete: keep its (M, S) for the second pass
            slab_stats[o0] = stats[0]
            stats = None
    k = job.top_k
    best = None
    for o0, _, n0, n1, raw in _read_blocks(job, plan, bar):
        top, total = slab_stats[o0:o0 + 1, ..., 0], slab_stats[o0:o0 + 1, ..., 1]
        logits = values(raw)
        result = apply_stats(job.op, logits, top, total, job.dtype)
        if k is None:
            writers[0].write((o0 * plan.n + n0) * plan.inner, result)
            continue
        best = _merge_top_k(best, logits, result, n0, k)
        if n1 == plan.n:
            indices, probabilities = _nan_slices_as_topk(best, top[0, 0] == -np.inf, k)
            for writer, part in zip(writers, (indices, probabilities)):
                writer.write(o0 * k * plan.inner, part)
            best = None


def _merge_top_k(best, logits, block, n0, k):
    """The k best of a slab so far by logit: (indices, values, logits, NaN flags), the first
    three (1, k', inner), updated with the (1, rows, inner) block that starts at row n0.
    Earlier rows come first among the candidates, so ties still go to the lower index."""
    from .topk import top_k

    keys = np.moveaxis(logits[0], 0, 1)  # (inner, rows)
    rows = np.moveaxis(block[0], 0, 1)
    indices = np.broadcast_to(np.arange(n0, n0 + rows.shape[1]), rows.shape)
    bad = np.isnan(keys).any(axis=1) | np.isposinf(keys).any(axis=1)  # softmax all NaN
    if best is not None:
        keys = np.concatenate([np.moveaxis(best[2][0], 0, 1), keys], axis=1)
        rows = np.concatenate([np.moveaxis(best[1][0], 0, 1), rows], axis=1)
        indices = np.concatenate([np.moveaxis(best[0][0], 0, 1), indices], axis=1)
        bad |= best[3]
    positions, kept = top_k(np.where(bad[:, None], 0, keys), min(k, keys.shape[1]))
    del kept
    picked = (np.take_along_axis(part, positions, axis=1) for part in (indices, rows, keys))
    return tuple(np.ascontiguousarray(np.moveaxis(part, 1, 0)[None]) for part in picked) + (bad,)


def _nan_slices_as_topk(best, only_minus_inf, k):
    """(indices, values) of a finished slab; slices whose softmax is NaN (NaN or +inf seen,
    or only -inf) get indices 0..k-1 and NaN values, as softmax_topk gives."""
    indices, values, _, bad = best
    bad = bad | only_minus_inf
    if bad.any():
        indices, values = indices.copy(), values.copy()
        indices[0][:, bad] = np.arange(k)[:, None]
        values[0][:, bad] = np.nan
    return indices, values
