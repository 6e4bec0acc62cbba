"""Compiling the CPU kernels ahead of time: ``nbsoftmax.precompile`` and ``nbsoftmax warmup``.

With ``processes > 1`` worker processes fill the on-disk cache first, each building a share
of the kernels (``cpu._variants``), and this process then loads them all. The workers are
new interpreters (``subprocess`` running ``_worker``), never forks: a fork of a process
that has started a threading layer or holds a compile lock can hang (GNU OpenMP, Numba's
locks), and a fresh interpreter does not re-run the caller's ``__main__`` as
multiprocessing's ``spawn`` would.

Numba's cache has no lock between processes, and two processes updating one driver's index
file at once can lose an entry. So work is handed out by driver (``by_driver``): one
process builds all signatures of a driver, and no index has two writers. Whatever a worker
failed to cache (it died, or the cache refused a write) is compiled by the final pass in
this process, so the result never depends on the workers.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

# Relative compile cost of a driver's variants, to hand out the longest groups first
# (longest-processing-time order). Measured here in one process (2-core Zen 3, noisy):
# parallel drivers take about twice their serial twin; cross_entropy drivers most.
_COST = {"elementwise": 1.0, "xent": 1.6, "topk": 1.0, "lse": 1.0}


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def check_processes(processes):
    """processes=None -> the available cores; else a positive int."""
    if processes is None:
        return available_cores()
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"processes must be a positive int or None, not {processes!r}")
    if processes < 1:
        raise ValueError(f"processes must be at least 1, not {processes}")
    return processes


def _group_cost(group):
    return sum(_COST.get(v.family, 1.0) * (2.0 if v.args[-1] else 1.0) for v in group)


def precompile(found, processes=1, progress=None):
    """Build every variant in ``found`` in this process, after worker processes filled the
    cache when ``processes > 1`` and the cache is writable.

    progress(phase, done, total, text) is called after each kernel: phase "compile" (in the
    workers) or "load" (here). Returns a summary dict: counts of kernels "compiled" and
    "loaded" here, "workers" used, "worker_errors" (messages), "worker_compiled",
    "worker_cpu_seconds" (CPU time of the workers, all together) and "seconds".
    """
    from .cpu import _cache, _variants

    start = time.perf_counter()
    summary = {"kernels": len(found), "workers": 0, "worker_errors": [],
               "worker_compiled": 0, "worker_cpu_seconds": 0.0, "compiled": 0, "loaded": 0,
               "cache": _cache.cache_dir()}
    if processes > 1 and len(found) > 1 and _writable(summary["cache"]):
        groups = sorted(_variants.by_driver(found).values(), key=_group_cost, reverse=True)
        workers = min(processes, len(groups))
        summary["workers"] = workers
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary["worker_errors"], summary["worker_compiled"] = _run_workers(
            groups, workers, len(found), progress)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time is the steadier figure on a shared machine: wall time ~ this / workers
        summary["worker_cpu_seconds"] = (after.ru_utime + after.ru_stime
                                         - before.ru_utime - before.ru_stime)
    for done, variant in enumerate(found, 1):
        t0 = time.perf_counter()
        how = _variants.build(variant)
        summary["compiled" if how == "compiled" else "loaded"] += 1
        if progress is not None:
            seconds = time.perf_counter() - t0
            progress("load", done, len(found), f"{_variants.label(variant)}: {how} "
                                               f"in {seconds:.2f} s")
    summary["seconds"] = time.perf_counter() - start
    return summary


def _writable(path):
    """Whether kernels can be saved in the cache directory path (created if missing)."""
    if path is None:
        return False
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The worker imports this copy of nbsoftmax first, whatever its working directory holds
# (`python -c` puts the working directory first on sys.path).
_WORKER = (f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
           "from nbsoftmax._precompile import _worker; _worker()")


def _worker_env():
    """The environment of a worker: this process's, caching where this process caches."""
    import numba

    env = dict(os.environ)
    if numba.config.CACHE_DIR and "NUMBA_CACHE_DIR" not in env:
        env["NUMBA_CACHE_DIR"] = numba.config.CACHE_DIR
    return env


def _run_workers(groups, workers, total, progress):
    """Hand the driver groups to `workers` worker processes, longest first; returns the
    error messages (of kernels that failed, of workers that died: their remaining kernels are
    left to the caller) and how many kernels the workers compiled (the others they found in
    the cache)."""
    from .cpu import _variants

    queue = deque(groups)
    lock = threading.Lock()
    done = [0, 0]  # kernels built, of which compiled
    errors = []
    env = _worker_env()
    procs = []

    def drive(proc, log):
        while True:
            with lock:
                if not queue:
                    break
                group = queue.popleft()
            for variant in group:
                try:
                    proc.stdin.write(json.dumps([variant.family, list(variant.args),
                                                 variant.driver]) + "\n")
                    proc.stdin.flush()
                    reply = proc.stdout.readline()
                except OSError:
                    reply = ""
                if not reply:
                    with lock:
                        errors.append(_worker_failure(proc, log))
                    return
                how, seconds = json.loads(reply)
                with lock:
                    done[0] += 1
                    done[1] += how == "compiled"
                    if how.startswith("failed"):
                        errors.append(f"{_variants.label(variant)} {how}")
                    if progress is not None:
                        progress("compile", done[0], total,
                                 f"{_variants.label(variant)}: {how} in {seconds:.2f} s")

    threads = []
    try:
        for _ in range(workers):
            log = tempfile.TemporaryFile()
            try:
                proc = subprocess.Popen([sys.executable, "-c", _WORKER], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log)
            except OSError as exc:  # no interpreter to start (embedded Python, ...)
                log.close()
                errors.append(f"no worker process could start: {exc}")
                break
            procs.append((proc, log))
            thread = threading.Thread(target=drive, args=(proc, log), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # a short wait keeps Ctrl-C responsive
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                try:
                    proc.stdin.close()  # the worker ends at end of input
                except OSError:
                    pass
        for proc, log in procs:
            try:
                proc.wait(timeout=None if all(not t.is_alive() for t in threads) else 1)
            except subprocess.TimeoutExpired:  # interrupted mid-compile: stop it now
                proc.kill()
                proc.wait()
            log.close()
    return errors, done[1]


def _worker_failure(proc, log):
    proc.wait()
    log.seek(0)
    tail = log.read()[-2000:].decode(errors="replace").strip()
    return f"a worker process ended with status {proc.returncode}" + (f": {tail}" if tail else "")


def _worker():
    """A worker's loop: one variant per input line, one reply line ``[how, seconds]``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # anything printed while compiling stays out of the replies
    from .cpu import _variants

    for line in sys.stdin:
        family, args, driver = json.loads(line)
        t0 = time.perf_counter()
        try:
            how = _variants.build(_variants.Variant(family, tuple(args), driver))
        except Exception as exc:  # told to the parent, whose own pass raises it again
            how = f"failed ({type(exc).__name__}: {exc})"
        replies.write(json.dumps([how, round(time.perf_counter() - t0, 3)]) + "\n")
        replies.flush()
