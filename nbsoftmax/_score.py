"""``nbsoftmax score``: softmax of an array file larger than memory, block by block, into a file.

    nbsoftmax score INPUT -o OUTPUT [--axis -1] [--log] [--top-k K] [--key NAME]
                    [--dtype float32] [--memory-limit 1GB] [--device cpu|cuda]
                    [--overwrite] [--scheduler ADDRESS]

INPUT is a ``.npy`` file or an ``.npz`` archive (``--key`` names the member; it may be left
out when the archive holds one array). Nothing is loaded whole: blocks of whole softmax
slices are read into one reused buffer, transformed in place by the kernels and written at
their place in OUTPUT (``nbsoftmax._arrayfile``). A member stored uncompressed (what
``np.savez`` writes) is read like a ``.npy`` file; a compressed one (``np.savez_compressed``)
is decompressed front to back as a stream, so its blocks must be whole slabs of the leading
axes (for ``--axis -1``: whole rows, always the case).

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
less a margin, sizes the blocks; blocks are kept near ``TARGET_BLOCK_BYTES`` even when more
would fit, because that is faster (the block stays in cache between read, softmax and
write). One softmax slice (with ``--axis 0`` of an ``(N, C)`` array, one column of N
values) must fit in the limit; the command says so and stops otherwise. A softmax over a
non-last axis reads blocks of whole slabs when one fits, else strided blocks through short
mmap windows (slower: on C-ordered files, each window reads whole pages).

With ``--scheduler ADDRESS`` the same job runs on a Dask cluster
(``nbsoftmax._score_cluster``).
"""

import os
import resource
import signal
import sys
import tempfile
import time
import zipfile

# Blocks of this many bytes (of the result dtype) when the memory limit allows more: read,
# softmax and write then share the block in L2/L3. Measured on the 2-core build machine,
# float32 (4096, 1000)-shaped rows from a cached 2 GB file: see the module docstring of
# benchmarks/score_throughput.py for the figures.
TARGET_BLOCK_BYTES = 16 << 20

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

        from . import _dtypes
        from ._arrayfile import ArrayFile
        from ._dispatch import normalize_axes

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
        """[(name, logical shape, dtype)] of the arrays written, in memory order helpers."""
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
    """Blocks of whole softmax slices over the C-ordered ``memory_shape``.

    The array is seen as ``(outer, n, inner)`` around the softmax axis. A block is
    ``(o_len, n, i_len)``: whole slabs ``(o_len, n, inner)`` when one slab fits in
    ``block_elements`` (contiguous in the file), else one slab cut along ``inner``
    (``n`` runs of ``i_len`` values, ``inner`` apart).
    """

    def __init__(self, memory_shape, axis, block_elements):
        self.outer = _prod(memory_shape[:axis])
        self.n = memory_shape[axis]
        self.inner = _prod(memory_shape[axis + 1:])
        slab = self.n * self.inner
        if slab <= block_elements:
            self.o_len = max(1, min(self.outer, block_elements // max(slab, 1)))
            self.i_len = self.inner
        else:
            self.o_len = 1
            self.i_len = max(1, min(self.inner, block_elements // max(self.n, 1)))
        self.contiguous = self.i_len == self.inner
        self.slices = self.outer * self.inner

    @property
    def max_elements(self):
        return self.o_len * self.n * self.i_len

    def blocks(self):
        """(o0, o1, i0, i1) of each block, in file order."""
        for o0 in range(0, self.outer, self.o_len):
            o1 = min(o0 + self.o_len, self.outer)
            for i0 in range(0, self.inner, self.i_len):
                yield o0, o1, i0, min(i0 + self.i_len, self.inner)


def _peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def _block_elements(job, n, inner):
    """Elements per block from the memory left under the limit; ScoreError if a slice won't fit."""
    import numpy as np

    itemsize = job.dtype.itemsize
    converts = job.source.dtype != job.dtype
    per_element = itemsize + (job.source.dtype.itemsize if converts else 0)
    if job.top_k is not None:
        from ._topk import TEMP_BYTES_PER_ELEMENT

        # the slab moved to rows (inner > 1), the partitioned copy, a NaN-free copy, masks
        per_element += 3 * itemsize + TEMP_BYTES_PER_ELEMENT
    used = _peak_rss()
    budget = job.memory_limit - used - MARGIN_BYTES
    fits = budget // per_element if budget > 0 else 0
    if fits < max(n, 1):
        need = (used + MARGIN_BYTES + max(n, 1) * per_element) / 1e6
        raise ScoreError(
            f"--memory-limit {job.memory_limit / 1e6:,.0f} MB is too small: this process "
            f"already uses {used / 1e6:,.0f} MB and one softmax slice of {n:,} values needs "
            f"{max(n, 1) * per_element / 1e6:,.1f} MB more (with a {MARGIN_BYTES >> 20} MB "
            f"margin); raise it to at least {np.ceil(need):,.0f} MB")
    if not job.source.seekable and n * inner > fits:
        raise ScoreError(
            f"{job.source.what} is compressed and can only be read front to back, so a whole "
            f"slab of {n * inner:,} values (all axes from --axis {job.axis} on) must fit in "
            f"--memory-limit; raise it, or store the array uncompressed (np.save or np.savez)")
    return max(min(TARGET_BLOCK_BYTES // itemsize, fits), n)


def _warm_up(job):
    """Load (or compile) the kernels now, so that their memory counts before blocks are sized."""
    if job.device == "cuda":
        return
    import nbsoftmax

    nbsoftmax.precompile(dtypes=(job.dtype.name,), ops=(job.op,))


def run_local(job, progress_stream=None):
    """Score on this machine; returns (slices, input bytes)."""
    import numpy as np

    import nbsoftmax

    from . import _arrayfile, _progress, _topk

    _warm_up(job)
    shape, axis = job.memory_shape, job.memory_axis
    plan = BlockPlan(shape, axis, 0)  # for n and inner
    plan = BlockPlan(shape, axis, _block_elements(job, plan.n, plan.inner))
    func = getattr(nbsoftmax, job.op)
    fortran = job.source.fortran_order
    k = job.top_k
    converts = job.source.dtype != job.dtype
    work_buffer = np.empty(plan.max_elements, job.dtype)
    raw_buffer = np.empty(plan.max_elements, job.source.dtype) if converts else work_buffer
    bar = _progress.progress(plan.slices, "rows", "score", stream=progress_stream)

    with PendingOutput(job.output, job.overwrite) as pending:
        outputs = job.output_shapes()
        parts = [pending.new_temp() for _ in outputs]
        writers = [_arrayfile.NpyWriter(p, s, d, fortran) for p, (_, s, d) in zip(parts, outputs)]
        try:
            with job.source.reader() as reader:
                for o0, o1, i0, i1 in plan.blocks():
                    block_shape = (o1 - o0, plan.n, i1 - i0)
                    size = _prod(block_shape)
                    raw = raw_buffer[:size].reshape(block_shape)
                    work = work_buffer[:size].reshape(block_shape)
                    start = (o0 * plan.n) * plan.inner + i0
                    if plan.contiguous:
                        reader.read(start, raw)
                    else:
                        reader.read_strided(start, plan.n, plan.inner, raw.reshape(plan.n, -1))
                    func(raw, axis=1, dtype=job.dtype, out=work, device=job.device)
                    if k is None:
                        _write(writers[0], plan, o0, i0, plan.n, work)
                    else:
                        rows = np.moveaxis(work, 1, 2).reshape(-1, plan.n)
                        indices, values = _topk.top_k(rows, k)
                        del rows
                        for writer, part in zip(writers, (indices, values)):
                            part = np.moveaxis(part.reshape(o1 - o0, i1 - i0, k), 2, 1)
                            _write(writer, plan, o0, i0, k, np.ascontiguousarray(part))
                    bar.update((o1 - o0) * (i1 - i0))
        finally:
            for writer in writers:
                writer.close()
            bar.close()
        if k is None:
            pending.commit(parts[0])
        else:
            pending.commit(write_topk_archive(pending, parts, [name for name, _, _ in outputs]))
    return plan.slices, job.source.nbytes


def _write(writer, plan, o0, i0, length, block):
    """Write a (o_len, length, i_len) block at its place in an output of axis length ``length``."""
    start = o0 * length * plan.inner + i0
    if plan.contiguous:
        writer.write(start, block)
    else:
        writer.write_strided(start, plan.inner, block.reshape(length, -1))


# ------------------------------------------------------------------ command line


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run(args):
    from ._arrayfile import ArrayFileError

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    start = time.perf_counter()
    try:
        job = Job(args)
        if args.scheduler:
            from . import _score_cluster

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
