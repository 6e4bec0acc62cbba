"""``nbsoftmax warmup``: compile every CPU kernel into the on-disk cache ahead of time.

For container images and deployments: run it once where the cache directory will persist
(NUMBA_CACHE_DIR, or the package's __pycache__ when writable), and later processes load
kernels instead of compiling them on their first call. Worker processes compile shares of
the kernels in parallel (one per available core by default); this process then loads every
kernel to check the cache is complete.
"""

import argparse
import sys
import time

_DTYPES = ("float32", "float64", "float16")
_OPS_HELP = ("softmax, log_softmax, logsumexp, softmax_backward, log_softmax_backward, "
             "logsumexp_backward, "
             "softmin, cross_entropy, softmax_topk, segment_softmax, segment_log_softmax, "
             "segment_logsumexp, segment_softmax_backward, segment_log_softmax_backward")


class _Progress:
    """A bar redrawn in place on a terminal; one line per kernel otherwise (logs, CI)."""

    _WIDTH = 24

    def __init__(self, stream):
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.start = time.perf_counter()
        self._shown = 0.0
        self._width = 0  # of the line drawn last, to blank what a shorter one leaves

    def __call__(self, phase, done, total, text):
        elapsed = time.perf_counter() - self.start
        if not self.tty:
            self.stream.write(f"warmup [{done}/{total}] {phase} {text}\n")
            self.stream.flush()
            return
        now = time.perf_counter()
        if done < total and now - self._shown < 0.1:
            return  # redraw at most ten times a second
        self._shown = now
        filled = self._WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (self._WIDTH - filled)
        line = (f"warmup {phase:<7} [{bar}] {done}/{total} kernels {elapsed:4.0f} s  "
                f"{text.split(':')[0]}")[:100]
        self.stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def _run(args):
    import nbsoftmax

    dtypes = tuple(dict.fromkeys(args.dtype or _DTYPES))
    try:
        summary = nbsoftmax.precompile(dtypes=dtypes, ops=args.op, processes=args.processes,
                                       progress=_Progress(sys.stderr))
    except ValueError as exc:  # an unknown --op
        print(f"nbsoftmax warmup: error: {exc}", file=sys.stderr)
        return 2
    for message in summary["worker_errors"]:
        print(f"nbsoftmax warmup: warning: {message} (this process built what the workers did "
              f"not)", file=sys.stderr)
    what = ", ".join(args.op) if args.op else "every function"
    if summary["workers"]:
        how = (f"{summary['worker_compiled']} compiled by {summary['workers']} worker "
               f"processes in {summary['worker_cpu_seconds']:.0f} s of CPU time, the rest "
               f"found in the cache; {summary['loaded']} loaded here")
        if summary["compiled"]:
            how += f", {summary['compiled']} compiled here"
    else:
        how = f"{summary['compiled']} compiled, {summary['loaded']} loaded from the cache"
    print(f"warmup: {summary['kernels']} kernels for {what} in {', '.join(dtypes)} ready in "
          f"{summary['seconds']:.1f} s ({how})")
    if summary["cache"] is None:
        print("warmup: no usable cache directory: nothing was saved for later processes "
              "(set NUMBA_CACHE_DIR to a writable directory)")
    else:
        print(f"warmup: cached in {summary['cache']}")
    return 0


def _processes(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, not {value}")
    return value


def add_parser(sub):
    parser = sub.add_parser(
        "warmup", help="compile every CPU kernel into the on-disk cache (for images)",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--dtype", action="append", choices=_DTYPES,
                        help="compile for this result dtype only (repeatable; default: all "
                             "three; integer and bool input uses float64)")
    parser.add_argument("--op", action="append", metavar="NAME",
                        help=f"compile the kernels of this function only (repeatable; default: "
                             f"all): {_OPS_HELP}")
    parser.add_argument("-j", "--processes", type=_processes, default=None, metavar="N",
                        help="worker processes compiling in parallel (default: one per "
                             "available core; 1 compiles in this process)")
    parser.set_defaults(func=_run)
