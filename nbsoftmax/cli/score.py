"""``nbsoftmax score``: softmax of an array file larger than memory, block by block, into a file.

    nbsoftmax score INPUT -o OUTPUT [--axis -1] [--log] [--top-k K] [--key NAME]
                    [--dtype float32] [--memory-limit 1GB] [--device cpu|cuda]
                    [--overwrite] [--scheduler ADDRESS]

INPUT is a ``.npy`` file or an ``.npz`` archive (``--key`` names the member; it may be left
out when the archive holds one array). Nothing is loaded whole: contiguous blocks are read
into one reused buffer, transformed in place by the kernels and written at their place in
OUTPUT (``nbsoftmax.cli.arrayfile``). A member stored uncompressed (what ``np.savez`` writes)
is read like a ``.npy`` file; a compressed one (``np.savez_compressed``) is decompressed
front to back as a stream, never held whole (twice when two passes are needed, see below).

OUTPUT is a ``.npy`` file of the input's shape and order (C or Fortran) holding
probabilities, or log-probabilities with ``--log``; its dtype follows nbsoftmax's rules
(float16/32/64 kept, bool and integers give float64, ``--dtype`` casts). With
``--top-k K`` OUTPUT is an ``.npz`` archive (uncompressed) of two arrays shaped like the
input with the softmax axis cut to K: ``indices`` (int64) and ``probabilities`` (or
``log_probabilities`` with ``--log``), sorted by decreasing probability, ties to the lower
index.

Everything is written to a hidden temporary file beside OUTPUT and renamed to OUTPUT only
when complete: an error, Ctrl-C or SIGTERM leaves OUTPUT as it was. An existing OUTPUT is
replaced only with ``--overwrite``.

Memory: ``--memory-limit`` bounds the peak resident memory of the whole process. After the
imports and the kernels are loaded (about 150-250 MB with Numba), the rest of the limit,
less a margin, sizes the blocks; blocks stay near ``TARGET_BLOCK_BYTES`` even when more
would fit, because that is faster (the block stays in cache between read, softmax and
write). The array is seen as ``(outer, n, inner)`` around the softmax axis:

- When a slab ``(n, inner)`` fits (for ``--axis -1``: one row), blocks are whole slabs and
  one pass of the kernels computes them.
- Otherwise (a softmax over axis 0 of a large C-ordered array, or one row larger than the
  memory) blocks are runs of rows of one slab, still contiguous in the file, and two passes
  are made: per-slice (max, sum of exp) first, combined block by block, then the
  probabilities (``nbsoftmax._blockstats``, float64 NumPy: slower than the kernels, but
  each pass reads the file once, sequentially). For ``--top-k`` the second pass keeps the
  best k of every slice so far. The limit must hold one row of ``inner`` values and the
  per-slice statistics; the command says so and stops otherwise.

With ``--scheduler ADDRESS`` the same job runs on a Dask cluster
(``nbsoftmax.cli.score_cluster``).
"""

import os
import resource
import signal
import sys
import tempfile
import time
import zipfile

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

_SIZE_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9,
               "GB": 10**9, "T": 10**12, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
               "GIB": 2**30, "TIB": 2**40}


class ScoreError(Exception):
    """A problem with the arguments or files, reported as one line."""


def parse_size(text):
    """``"1GB"`` -> 10**9, ``"512MiB"`` -> 2**29, ``"1e9"`` -> 10**9 bytes."""
    s = str(text).strip().upper().replace(" ", "")
    digits = s.rstrip("KMGTIB")
    unit = s[len(digits):]
    try:
        value = float(digits)
    except ValueError:
        value = None
    if value is None or unit not in _SIZE_UNITS or value <= 0:
        raise ScoreError(f"--memory-limit {text!r} is not a size; expected e.g. 1GB, 512MB, "
                         "2GiB or a number of bytes")
    return int(value * _SIZE_UNITS[unit])


def _size(nbytes):
    """``1234567`` -> ``"1.2 MB"``: sizes in messages, in the units of --memory-limit."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.3g} {unit}"
    return f"{nbytes:.0f} bytes"


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


# ------------------------------------------------------------------ the job


class Job:
    """What to compute, validated: input, axis, dtypes, output kind and paths, memory limit."""

    def __init__(self, args):
        import numpy as np

        from .. import _dtypes
        from .arrayfile import ArrayFile
        from .._dispatch import normalize_axes

        self.source = ArrayFile.open(args.input, args.key)
        self.op = "log_softmax" if args.log else "softmax"
        self.device = args.device
        self.memory_limit = parse_size(args.memory_limit)
        try:
            _dtypes.result_dtype(self.source.dtype, "INPUT")
        except TypeError:
            raise ScoreError(f"{self.source.what} has dtype {self.source.dtype}; expected bool, "
                             "integer, float16, float32 or float64 values") from None
        if args.dtype is not None:
            self.dtype = _dtypes.requested_dtype(args.dtype)
        else:
            self.dtype = _dtypes.result_dtype(self.source.dtype)
        ndim = len(self.source.shape)
        try:
            if ndim == 0 and args.axis not in (0, -1):
                raise np.exceptions.AxisError(args.axis)
            (axis,) = normalize_axes(args.axis, ndim) if ndim else (0,)
        except (np.exceptions.AxisError, ValueError):
            raise ScoreError(f"--axis {args.axis} is out of range for {self.source.what} of shape "
                             f"{self.source.shape}") from None
        self.axis = axis
        self.memory_shape = self.source.memory_shape or (1,)
        self.memory_axis = self.source.memory_axis(axis) if ndim else 0
        n = self.memory_shape[self.memory_axis]
        self.top_k = args.top_k
        if self.top_k is not None:
            if ndim == 0:
                raise ScoreError(f"--top-k needs an array of at least 1 dimension; "
                                 f"{self.source.what} is 0-d")
            if not 1 <= self.top_k <= n:
                raise ScoreError(f"--top-k {self.top_k} must be between 1 and the length {n} "
                                 f"of axis {axis} of {self.source.what}")
        self.output = os.fspath(args.output)
        self._check_output(args.overwrite)
        self.overwrite = args.overwrite

    @property
    def values_name(self):
        return "log_probabilities" if self.op == "log_softmax" else "probabilities"

    def _check_output(self, overwrite):
        out = self.output
        want = ".npz" if self.top_k is not None else ".npy"
        if not out.endswith(want):
            kind = "the top-k archive" if self.top_k is not None else "the full result"
            raise ScoreError(f"OUTPUT {out} should end in {want}: {kind} is written as a "
                             f"{want} file")
        if os.path.isdir(out):
            raise ScoreError(f"OUTPUT {out} is a directory; expected a file name")
        if os.path.lexists(out) and not overwrite:
            raise ScoreError(f"OUTPUT {out} exists; pass --overwrite to replace it")
        parent = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(parent):
            raise ScoreError(f"OUTPUT {out}: directory {parent} does not exist")

    def output_shapes(self):
        """[(member name or None, logical shape, dtype)] of the arrays written."""
        import numpy as np

        shape = self.source.shape
        if self.top_k is None:
            return [(None, shape, self.dtype)]
        cut = tuple(self.top_k if a == self.axis else s for a, s in enumerate(shape))
        return [("indices", cut, np.dtype(np.int64)), (self.values_name, cut, self.dtype)]


class PendingOutput:
    """Temporary files beside OUTPUT, renamed onto it by ``commit`` and removed otherwise."""

    def __init__(self, final, overwrite):
        self.final = final
        self.overwrite = overwrite
        self.directory = os.path.dirname(os.path.abspath(final))
        self.temps = []

    def __enter__(self):
        return self

    def new_temp(self, suffix=".part"):
        prefix = "." + os.path.basename(self.final) + "."
        try:
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=self.directory)
        except OSError as exc:
            raise ScoreError(f"OUTPUT {self.final} cannot be written in {self.directory}: "
                             f"{exc.strerror or exc}") from None
        os.close(fd)
        self.temps.append(path)
        return path

    def commit(self, temp):
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp made it 0600; give it a new file's mode
        if self.overwrite:
            os.replace(temp, self.final)
        else:
            try:  # atomic no-clobber: fails if OUTPUT appeared meanwhile
                os.link(temp, self.final)
            except FileExistsError:
                raise ScoreError(f"OUTPUT {self.final} appeared while scoring; it was left "
                                 "as it is (pass --overwrite to replace it)") from None
            except OSError:  # file systems without hard links
                if os.path.lexists(self.final):
                    raise ScoreError(f"OUTPUT {self.final} exists; pass --overwrite") from None
                os.replace(temp, self.final)
            else:
                os.unlink(temp)
        self.temps.remove(temp)

    def __exit__(self, *exc):
        for path in self.temps:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.temps.clear()


def write_topk_archive(pending, parts, names):
    """Zip the finished .npy parts (stored, so readers can map them) into one temp archive."""
    archive = pending.new_temp(".npz.part")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for part, name in zip(parts, names):
            zf.write(part, arcname=name + ".npy")
    return archive


# ------------------------------------------------------------------ blocks


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


def _plan(job):
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
            f"--memory-limit {_size(job.memory_limit)} is too small: this process uses "
            f"{_size(used)} before reading any data, and {_size(MARGIN_BYTES)} more are kept "
            f"free; raise it to at least {_size(used + MARGIN_BYTES + 1e6)}")
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
            f"--memory-limit {_size(job.memory_limit)} is too small for {job.source.what}: "
            f"one row of {plan.inner:,} values across the axes after --axis {job.axis} needs "
            f"{_size(need)} besides the {_size(used + MARGIN_BYTES)} in use or kept free; "
            f"raise it to at least {_size(used + MARGIN_BYTES + need)}")
    return BlockPlan(job.memory_shape, job.memory_axis, min(target, fits), 0)


def _warm_up(job):
    """Load (or compile) the kernels now, so that their memory counts before blocks are sized."""
    if job.device == "cuda":
        return
    import nbsoftmax

    nbsoftmax.precompile(dtypes=(job.dtype.name,), ops=(job.op,))


def run_local(job, progress_stream=None):
    """Score on this machine; returns (slices, input bytes)."""
    from . import arrayfile as _arrayfile, progress as _progress

    _warm_up(job)
    plan = _plan(job)
    passes = 1 if plan.whole else 2
    bar = _progress.progress(round(passes * job.source.nbytes / 1e6), "MB", "score",
                             stream=progress_stream)
    with PendingOutput(job.output, job.overwrite) as pending:
        outputs = job.output_shapes()
        parts = [pending.new_temp() for _ in outputs]
        writers = [_arrayfile.NpyWriter(p, s, d, job.source.fortran_order)
                   for p, (_, s, d) in zip(parts, outputs)]
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
    return plan.slices, job.source.nbytes


def _read_blocks(job, plan, bar):
    """Yield (o0, o1, n0, n1, block) in file order, block in the stored dtype (one buffer)."""
    import numpy as np

    buffer = np.empty(plan.max_elements, job.source.dtype)
    with job.source.reader() as reader:
        for o0, o1, n0, n1 in plan.blocks():
            shape = (o1 - o0, n1 - n0, plan.inner)
            block = buffer[:_prod(shape)].reshape(shape)
            reader.read((o0 * plan.n + n0) * plan.inner, block)
            yield o0, o1, n0, n1, block
            bar.update(round(block.nbytes / 1e6, 3))


def _one_pass(job, plan, writers, bar):
    """Blocks of whole slabs: the kernel in place, then the block (or its top-k) written."""
    import numpy as np

    import nbsoftmax

    func = getattr(nbsoftmax, job.op)
    k = job.top_k
    if k is not None:
        work_buffer = np.empty(plan.max_elements, job.dtype)
        for o0, _, _, _, raw in _read_blocks(job, plan, bar):
            work = work_buffer[:raw.size].reshape(raw.shape)
            func(raw, axis=1, dtype=job.dtype, out=work, device=job.device)
            indices, values = _top_k_of_slabs(work, k)
            for writer, part in zip(writers, (indices, values)):
                writer.write(o0 * k * plan.inner, part)
        return
    converts = job.source.dtype != job.dtype
    pipeline = _WriteBehind(writers[0], [np.empty(plan.max_elements, job.dtype)
                                         for _ in range(WRITE_BEHIND_BUFFERS)])
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
                bar.update(round(raw.nbytes / 1e6, 3))
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


def _top_k_of_slabs(work, k):
    """Top-k along axis 1 of an (o, n, inner) block -> two C-contiguous (o, k, inner) arrays."""
    import numpy as np

    from .topk import top_k

    o, n, inner = work.shape
    rows = np.moveaxis(work, 1, 2).reshape(-1, n)  # a copy when inner > 1
    indices, values = top_k(rows, k)
    del rows
    return tuple(np.ascontiguousarray(np.moveaxis(part.reshape(o, inner, k), 2, 1))
                 for part in (indices, values))


def _two_passes(job, plan, writers, bar):
    """Slabs larger than the memory: per-slice (max, sum of exp) over the whole file first
    (combined block by block), then the probabilities from them (or their running top-k)."""
    import numpy as np

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
        result = apply_stats(job.op, values(raw), top, total, job.dtype)
        if k is None:
            writers[0].write((o0 * plan.n + n0) * plan.inner, result)
            continue
        best = _merge_top_k(best, result, n0, k)
        if n1 == plan.n:
            for writer, part in zip(writers, best):
                writer.write(o0 * k * plan.inner, part)
            best = None


def _merge_top_k(best, block, n0, k):
    """The k best of a slab so far, (1, k', inner) indices and values, updated with the
    (1, rows, inner) block that starts at row n0. Earlier rows come first among the
    candidates, so ties still go to the lower index."""
    import numpy as np

    from .topk import top_k

    rows = np.moveaxis(block[0], 0, 1)  # (inner, rows)
    indices = np.broadcast_to(np.arange(n0, n0 + rows.shape[1]), rows.shape)
    if best is not None:
        rows = np.concatenate([np.moveaxis(best[1][0], 0, 1), rows], axis=1)
        indices = np.concatenate([np.moveaxis(best[0][0], 0, 1), indices], axis=1)
    positions, values = top_k(rows, min(k, rows.shape[1]))
    indices = np.take_along_axis(indices, positions, axis=1)
    return tuple(np.ascontiguousarray(np.moveaxis(part, 1, 0)[None])
                 for part in (indices, values))


# ------------------------------------------------------------------ command line


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run(args):
    from .arrayfile import ArrayFileError

    try:  # SIGTERM cleans up as Ctrl-C does (only the main thread may set a handler)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:
        previous = None
    start = time.perf_counter()
    try:
        job = Job(args)
        if args.scheduler:
            from . import score_cluster as _score_cluster

            slices, nbytes = _score_cluster.run(job, args.scheduler)
        else:
            slices, nbytes = run_local(job)
    except (ScoreError, ArrayFileError) as exc:
        print(f"nbsoftmax score: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"nbsoftmax score: error: {exc.strerror or exc}{where}; OUTPUT {args.output} was "
              "not written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"nbsoftmax score: interrupted; OUTPUT {args.output} was not written",
              file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    seconds = max(time.perf_counter() - start, 1e-9)
    print(f"nbsoftmax score: {slices:,} rows, {nbytes / 1e9:.3f} GB in {seconds:.2f} s: "
          f"{slices / seconds:,.0f} rows/s, {nbytes / 1e9 / seconds:.2f} GB/s -> {args.output}",
          file=sys.stderr)
    return 0


def add_parser(sub):
    parser = sub.add_parser(
        "score", help="softmax of a .npy/.npz file larger than memory, into a .npy/.npz file",
        description="Softmax (or log-softmax, or top-k) of an array file, block by block, "
                    "within a memory limit; the output appears only when complete.")
    parser.add_argument("input", metavar="INPUT", help=".npy file or .npz archive")
    parser.add_argument("-o", "--output", metavar="OUTPUT", required=True,
                        help=".npy file (.npz with --top-k)")
    parser.add_argument("--axis", type=int, default=-1,
                        help="axis of the distribution (default: -1, the last)")
    parser.add_argument("--log", action="store_true", help="write log-probabilities")
    parser.add_argument("--top-k", type=int, metavar="K",
                        help="write the K most probable indices and their probabilities "
                             "(an .npz with 'indices' and 'probabilities')")
    parser.add_argument("--key", metavar="NAME", help="the array of an .npz INPUT")
    parser.add_argument("--dtype", choices=("float16", "float32", "float64"),
                        help="compute and write in this dtype (default: from the input)")
    parser.add_argument("--memory-limit", default="1GB", metavar="SIZE",
                        help="peak memory of this process, e.g. 512MB, 4GB (default: 1GB); "
                             "with --scheduler, the memory of one task")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where to compute (default: cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on this Dask cluster, e.g. tcp://host:8786 (INPUT and OUTPUT "
                             "on a file system the workers share)")
    parser.set_defaults(func=_run)
