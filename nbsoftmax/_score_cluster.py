"""``nbsoftmax score --scheduler ADDRESS``: the scoring job on a Dask cluster.

The client (this process) checks the job, creates the output's temporary ``.npy`` files
beside OUTPUT (header written, data sparse) and submits one graph: each task maps its chunk
of INPUT from the file, runs ``nbsoftmax.dask`` on it and writes its block of the result
into the temporary file at its place. When every task is done the client renames the file
to OUTPUT (for ``--top-k``, first zips the two parts). So INPUT and the directory of OUTPUT
must be on a file system that the client and every worker see under the same path (NFS,
Lustre, a shared volume); compressed ``.npz`` members cannot be read by the workers in
pieces and are refused.

Chunks keep the softmax axis whole (one map_blocks pass) and are cut along the other axes to
at most ``CHUNK_BYTES`` or a quarter of ``--memory-limit`` (a task holds its input chunk,
its result and temporaries). When a single slice is larger than that, the softmax axis is
chunked too and ``nbsoftmax.dask`` takes its two-pass path (not for ``--top-k``).
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
    """A temporary .npy that workers fill block by block (``da.store`` target)."""

    def __init__(self, path):
        self.path = path

    def __setitem__(self, index, value):
        out = np.lib.format.open_memmap(self.path, mode="r+")
        out[index] = value
        out.flush()
        del out


def _write_topk_block(probabilities, axis, k, indices_path, values_path, block_info=None):
    """Top-k of one chunk (softmax axis whole) written into both parts; returns a dummy."""
    from ._topk import top_k

    location = block_info[0]["array-location"]
    rows = np.moveaxis(probabilities, axis, -1)
    lead = rows.shape[:-1]
    indices, values = top_k(rows.reshape(-1, rows.shape[-1]), k)
    index = tuple(slice(None) if a == axis else slice(*location[a])
                  for a in range(probabilities.ndim))
    for path, part in ((indices_path, indices), (values_path, values)):
        _OutputBlocks(path)[index] = np.moveaxis(part.reshape(lead + (k,)), -1, axis)
    return np.zeros((1,) * probabilities.ndim, np.int8)


def _chunks(job, shape, axis, chunk_bytes):
    from dask.array.core import normalize_chunks

    itemsize = max(job.dtype.itemsize, job.source.dtype.itemsize)
    slice_bytes = shape[axis] * itemsize if shape else itemsize
    spec = {a: ("auto" if a != axis or slice_bytes > chunk_bytes else -1)
            for a in range(len(shape))}
    if job.top_k is not None and slice_bytes > chunk_bytes:
        from ._score import ScoreError

        raise ScoreError(f"--top-k needs one softmax slice ({slice_bytes / 1e6:,.1f} MB) per "
                         f"task, but tasks are limited to {chunk_bytes / 1e6:,.1f} MB (a quarter "
                         "of --memory-limit); raise --memory-limit")
    return normalize_chunks(spec, shape, limit=chunk_bytes, dtype=np.dtype(job.dtype))


def run(job, address):
    """Score ``job`` on the Dask cluster at ``address``; returns (slices, input bytes)."""
    import dask.array as da
    from distributed import Client

    from . import dask as nbdask
    from ._score import PendingOutput, ScoreError, write_topk_archive

    source = job.source
    if not source.seekable:
        raise ScoreError(f"{source.what} is compressed: Dask workers cannot read it in pieces; "
                         "store it uncompressed (np.save or np.savez) to score it on a cluster")
    shape = source.shape
    chunk_bytes = min(CHUNK_BYTES, job.memory_limit // 4)
    chunks = _chunks(job, shape, job.axis, chunk_bytes)
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
        with PendingOutput(job.output, job.overwrite) as pending:
            outputs = job.output_shapes()
            parts = [pending.new_temp() for _ in outputs]
            for part, (_, part_shape, dtype) in zip(parts, outputs):
                np.lib.format.open_memmap(part, mode="w+", dtype=dtype, shape=part_shape,
                                          fortran_order=source.fortran_order)
            if job.top_k is None:
                work = da.store(probabilities, _OutputBlocks(parts[0]), lock=False,
                                compute=False)
            else:
                work = probabilities.map_blocks(
                    _write_topk_block, job.axis, job.top_k, parts[0], parts[1],
                    chunks=tuple((1,) * len(c) for c in probabilities.chunks), dtype=np.int8,
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
    return slices, source.nbytes
