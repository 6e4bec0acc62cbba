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
``log_probabilities`` with ``--log``), sorted by decreasing logit (so probability), ties to
the lower index, as ``nbsoftmax.softmax_topk``.

Everything is written to hidden temporary files beside OUTPUT and renamed to OUTPUT only
when complete: an error, Ctrl-C or SIGTERM leaves OUTPUT as it was, and the last line says
whether OUTPUT is complete or was not written. Temporaries left by a killed run are removed
by the next run in the same folder (``score_output``). An existing OUTPUT is replaced only
with ``--overwrite``. INPUT must be a regular file (not a FIFO or a device), checked before
anything is read.

Memory: ``--memory-limit`` bounds the peak resident memory of the whole process. After the
imports and the kernels are loaded (about 150-250 MB with Numba), the rest of the limit,
less a margin, sizes the blocks (``score_plan``). The array is seen as ``(outer, n, inner)``
around the softmax axis (``score_local``):

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

Messages: every failure is one ``nbsoftmax score: error: ...`` line on stderr and exit status
1 (130 after Ctrl-C or SIGTERM). On success one summary line gives the data rate of the work
itself (reading, computing, writing) and, apart, the total time including the start-up
(interpreter, imports, kernel loading).
"""

import os
import signal
import sys
import time

from .score_job import Job, ScoreError, interrupt_seen, size_text

_IMPORTED = time.perf_counter()


def _raise_interrupt(signum, frame):
    interrupt_seen[0] = True
    raise KeyboardInterrupt


def seconds_since_start():
    """Seconds since this process started (Linux: /proc, 10 ms steps), else since this
    module was imported."""
    try:
        with open("/proc/self/stat", "rb") as f:
            start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return time.perf_counter() - _IMPORTED


def _error(message):
    print(f"nbsoftmax score: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def _run(args):
    from .arrayfile import ArrayFileError
    from .score_output import PendingOutput

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGTERM cleans up as Ctrl-C does
        try:
            previous[signum] = signal.signal(signum, _raise_interrupt)
        except ValueError:  # only the main thread may set a handler
            pass
    interrupt_seen[0] = False
    pending = None
    try:
        job = Job(args)
        pending = PendingOutput(job.output, job.overwrite)
        with pending:
            if args.scheduler:
                from . import score_cluster as _score_cluster

                slices, nbytes, seconds = _score_cluster.run(job, args.scheduler, pending)
            else:
                from .score_local import run_local

                slices, nbytes, seconds = run_local(job, pending)
    except (ScoreError, ArrayFileError) as exc:
        return _error(exc)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _error(f"{exc.strerror or exc}{where}; {_output_state(args, pending)}")
    except KeyboardInterrupt:
        print(f"nbsoftmax score: interrupted; {_output_state(args, pending)}", file=sys.stderr)
        return 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    seconds = max(seconds, 1e-9)
    print(f"nbsoftmax score: {slices:,} rows, {size_text(nbytes)} in {seconds:.2f} s "
          f"({size_text(nbytes / seconds)}/s, {slices / seconds:,.0f} rows/s); "
          f"{seconds_since_start():.2f} s in all with start-up -> {args.output}",
          file=sys.stderr)
    return 0


def _output_state(args, pending):
    if pending is not None and pending.published:
        return f"OUTPUT {args.output} is complete"
    return f"OUTPUT {args.output} was not written"


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
