"""``nbsoftmax score --scheduler ADDRESS``: the scoring job on a Dask cluster.

The client (this process) checks the job, creates the output's temporary ``.npy`` files
beside OUTPUT (header written, data sparse) and submits one graph: each task maps its chunk
of INPUT from the file (read-only), runs ``nbsoftmax.dask`` on it and writes its block of
the result into the temporary file with ``pwrite`` of exactly its byte ranges. When every
task is done the client renames the file to OUTPUT (for ``--top-k``, first zips the two
parts; each task ranks its chunk by the logits with ``nbsoftmax.softmax_topk``). So INPUT
and the directory of OUTPUT must be on a file system that the client and every worker see
under the same path (NFS, Lustre, a shared volume); compressed ``.npz``
members cannot be read by the workers in pieces and are refused.

Chunks keep the softmax axis whole (one ``map_blocks`` pass, the kernels in the workers)
and are at most ``CHUNK_BYTES`` or a quarter of ``--memory-limit`` (a task holds its input
chunk, its result and temporaries). They are contiguous in the file when a range of one
axis and everything after it fits (whole rows for ``--axis -1``); otherwise Dask's "auto"
chunks, written as many runs. When a single slice is larger than a chunk, the softmax axis
is chunked too and ``nbsoftmax.dask`` takes its two-pass path (not for ``--top-k``).
There is no progress bar: the Dask dashboard shows the tasks.
"""

import os

import numpy as np

# Chunk size when --memory-limit allows more: big enough that per-task overhead (about a
# millisecond on the scheduler) stays small against reading and scoring the chunk.
CHUNK_BYTES = 64 << 20


class _InputChunks:
    """INPUT's data as a sliceable array for ``da.from_array``; maps the file on the worker."""

    def __init__(self, source):
        self.path = os.path.abspath(source.path)
        self.offset = source.data_offset
        self.shape = source.shape
        self.dtype = source.dtype
        self.ndim = len(source.shape)
        self.order = "F" if source.fortran_order else "C"
        stat = os.stat(self.path)
        self._stamp = (stat.st_size, stat.st_mtime_ns)

    def __dask_tokenize__(self):
        return ("nbsoftmax-input", self.path, self.offset, self.shape, str(self.dtype),
                self.order, self._stamp)

    def __getitem__(self, index):
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                           shape=self.shape, order=self.order)
        return np.array(mapped[index])  # a copy: the mapping closes with `mapped`


class _OutputBlocks:
    """A temporary .npy that workers fill block by block (``da.store`` target).

    Each block is written with ``pwrite`` of exactly its own byte ranges (one range when the
    chunk is contiguous in the file, as ``_chunks`` arranges when it can), never through a
    shared mapping: on a network file system two hosts writing neighbouring blocks through
    mappings could write back each other's stale copy of a shared page.
    """

    def __init__(self, path, shape, dtype, fortran_order):
        self.path = path
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.fortran_order = fortran_order
        with open(path, "rb") as f:  # the header open_memmap wrote
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
            self.data_offset = f.tell()

    def __setitem__(self, index, value):
        value = np.asarray(value, dtype=self.dtype)
        shape, index = self.shape, tuple(index)
        if self.fortran_order:  # memory order: the reversed shape, C-ordered
            shape, index, value = shape[::-1], index[::-1], value.T
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for start, run in _runs(shape, index, value):
                data = memoryview(np.ascontiguousarray(run).reshape(-1).view(np.uint8))
                offset = self.data_offset + start * self.dtype.itemsize
                done = 0
                while done < len(data):
                    done += os.pwrite(fd, data[done:], offset + done)
        finally:
            os.close(fd)


def _runs(shape, index, value):
    """(first element, values) of each contiguous run of a C-ordered block ``value`` placed
    at ``index`` (slices) in an array of ``shape``."""
    bounds = [sl.indices(n)[:2] for sl, n in zip(index, shape)]
    whole = len(shape)
    while whole > 0 and bounds[whole - 1] == (0, shape[whole - 1]):
        whole -= 1  # axes whole..end are complete: runs span them
    lead = max(whole - 1, 0)  # axes before `lead` are iterated one index at a time
    strides = np.cumprod((1,) + shape[::-1][:-1])[::-1] if shape else ()
    for position in np.ndindex(*value.shape[:lead]):
        start = sum((bounds[a][0] + position[a]) * int(strides[a]) for a in range(lead))
        if lead < len(shape):
            start += bounds[lead][0] * int(strides[lead])
        yield start, value[position]


def _write_topk_block(logits, axis, k, op, dtype, indices_target, values_target,
                      block_info=None):
    """Top-k of one chunk of logits (softmax axis whole), ranked by the logits as
    ``nbsoftmax.softmax_topk`` does, written into both parts; returns a dummy."""
    import nbsoftmax

    logits = logits.astype(dtype, copy=False)  # --dtype casts first
    values, indices = nbsoftmax.softmax_topk(logits, k, axis=axis)
    if op != "softmax":  # the log-probabilities at the same places
        values = np.take_along_axis(nbsoftmax.log_softmax(logits, axis=axis), indices, axis)
    location = block_info[0]["array-location"]
    index = tuple(slice(None) if a == axis else slice(*location[a])
                  for a in range(logits.ndim))
    for target, part in ((indices_target, indices), (values_target, values)):
        target[index] = part
    return np.zeros((1,) * logits.ndim, np.int8)


def _chunks(job, chunk_bytes):
    """Chunks that keep the softmax axis whole and, when they can, are contiguous in the file
    (a range of one axis and everything after it, in memory order); else Dask's "auto"
    chunks, with the softmax axis cut too if one slice is larger than ``chunk_bytes``."""
    from dask.array.core import normalize_chunks

    source = job.source
    shape, memory_shape, axis = source.shape, job.memory_shape, job.memory_axis
    itemsize = max(job.dtype.itemsize, source.dtype.itemsize)
    if not shape:
        return ()
    for first in range(axis + 1):  # memory axes first.. stay whole
        tail = _prod(memory_shape[first:]) * itemsize
        if tail <= chunk_bytes or first == axis:
            break
    if tail <= chunk_bytes:
        chunks = [(1,) * n for n in memory_shape[:first]]
        if first:
            step = max(1, chunk_bytes // max(tail, 1))
            chunks[-1] = _splits(memory_shape[first - 1], step)
        chunks += [(n,) for n in memory_shape[first:]]
        return tuple(chunks[::-1]) if source.fortran_order else tuple(chunks)
    slice_bytes = shape[job.axis] * itemsize
    if job.top_k is not None and slice_bytes > chunk_bytes:
        from .score_job import ScoreError

        raise ScoreError(f"--top-k needs one softmax slice ({slice_bytes / 1e6:,.1f} MB) per "
                         f"task, but tasks are limited to {chunk_bytes / 1e6:,.1f} MB (a quarter "
                         "of --memory-limit); raise --memory-limit")
    spec = {a: ("auto" if a != job.axis or slice_bytes > chunk_bytes else -1)
            for a in range(len(shape))}
    return normalize_chunks(spec, shape, limit=chunk_bytes, dtype=np.dtype(job.dtype))


def _splits(n, step):
    return tuple(min(step, n - start) for start in range(0, n, step)) or (0,)


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def run(job, address, pending):
    """Score ``job`` on the Dask cluster at ``address`` into ``pending``'s temporaries
    (``score_output.PendingOutput``) and publish OUTPUT; returns (slices, input bytes,
    seconds from the submission of the graph to OUTPUT's publication)."""
    import time

    import dask.array as da
    from distributed import Client

    from .. import dask as nbdask
    from .score_job import ScoreError
    from .score_output import write_topk_archive

    source = job.source
    if not source.seekable:
        raise ScoreError(f"{source.what} is compressed: Dask workers cannot read it in pieces; "
                         "store it uncompressed (np.save or np.savez) to score it on a cluster")
    shape = source.shape
    chunk_bytes = min(CHUNK_BYTES, job.memory_limit // 4)
    chunks = _chunks(job, chunk_bytes)
    x = da.from_array(_InputChunks(source), chunks=chunks, lock=False, asarray=True,
                      meta=np.empty((0,) * len(shape), source.dtype))
    func = getattr(nbdask, job.op)
    probabilities = func(x, axis=job.axis if shape else None, dtype=job.dtype)
    slices = int(np.prod([s for a, s in enumerate(shape) if a != job.axis], dtype=np.int64))

    try:
        client = Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ScoreError(f"--scheduler {address}: cannot connect ({exc})") from None
    future = None
    try:
        started = time.perf_counter()
        outputs = job.output_shapes()
        parts = [pending.new_temp() for _ in outputs]
        targets = []
        for part, (_, part_shape, dtype) in zip(parts, outputs):
            np.lib.format.open_memmap(part, mode="w+", dtype=dtype, shape=part_shape,
                                      fortran_order=source.fortran_order)
            targets.append(_OutputBlocks(part, part_shape, dtype, source.fortran_order))
        if job.top_k is None:
            work = da.store(probabilities, targets[0], lock=False, compute=False)
        else:
            work = x.map_blocks(
                _write_topk_block, job.axis, job.top_k, job.op, job.dtype, targets[0],
                targets[1], chunks=tuple((1,) * len(c) for c in x.chunks), dtype=np.int8,
                meta=np.empty((0,) * len(shape), np.int8))
        future = client.compute(work)
        future.result()
        future = None
        if job.top_k is None:
            pending.commit(parts[0])
        else:
            pending.commit(write_topk_archive(pending, parts, [n for n, _, _ in outputs]))
    finally:
        if future is not None:
            client.cancel(future)
        client.close()
    return slices, source.nbytes, time.perf_counter() - started
