"""Threading-layer policy: how nbsoftmax stays safe under Python threads and ``fork``.

Numba runs ``parallel=True`` kernels on one of three threading layers, chosen once per
process at the first parallel launch: ``NUMBA_THREADING_LAYER`` if set, else the first
that loads from ``NUMBA_THREADING_LAYER_PRIORITY`` (tbb, omp, workqueue). They differ:

- tbb: thread-safe and fork-safe.
- omp: thread-safe; not fork-safe with GNU OpenMP (Linux): a child forked after a parallel
  region kills itself at its first one ("fork() called from a process already using GNU
  OpenMP, this is unsafe"), so a fork-context Pool hangs forever.
- workqueue: fork-safe; not thread-safe: two parallel launches at once abort the process.

The policy, in two parts:

1. **Prefer TBB, without touching Numba's configuration.** nbsoftmax depends on the ``tbb``
   wheel on Linux x86-64. That wheel puts ``libtbb.so.12`` in the environment's ``lib/``
   where Numba's loader does not look, so ``import nbsoftmax`` loads it from there (a
   ``dlopen`` of about 2 ms, nothing else) unless the user asked for ``omp`` or
   ``workqueue``. Numba's own default order then finds TBB first. No Numba setting or
   environment variable is changed: ``NUMBA_THREADING_LAYER``,
   ``NUMBA_THREADING_LAYER_PRIORITY``, ``NUMBA_NUM_THREADS`` and ``numba.set_num_threads``
   are read, never written, and they win.
2. **Guard whatever layer is active.** When the active layer is not thread-safe
   (workqueue), one Python thread at a time runs a parallel kernel; a call that finds the
   layer busy runs the serial kernel instead of waiting. In a process forked from one that
   had started GNU OpenMP, nbsoftmax runs serial kernels only. Both cost speed, never
   correctness; ``nbsoftmax info`` shows which case applies.

Numba kernels of other libraries running at the same time are outside this guard.

Locks and ``fork``: a child process has only the thread that called ``fork``, so a lock held
by any other thread at that moment would stay held in the child forever. Every lock of the
package is a ``ForkSafeLock``: a forked child gets it fresh. Locks that guard compilation
(``compile_guard=True``, and Numba's own compiler lock with them) are also *taken* before
the fork, so a fork waits until a compile running in another thread has ended (at most
``FORK_WAIT_SECONDS``) and the child starts from a consistent state (a half-built kernel in
the parent's registry, or LLVM inside a compile, cannot be resumed in the child).
"""

import os
import sys
import threading
import weakref

# TBB_runtime_interface_version() of oneTBB 2021.6, the oldest Numba's TBB layer accepts.
_TBB_MIN_INTERFACE = 12060
_TBB_SONAME = "libtbb.so.12"

# Layers Numba may pick that include TBB: a preload is useless for the others.
_TBB_CAPABLE = {"default", "tbb", "safe", "threadsafe", "forksafe"}

tbb_preloaded = None  # path of the libtbb that preload_tbb() loaded, if any
_tbb_handle = None  # keeps the ctypes.CDLL alive

# Parallel-kernel admission: see parallel_mode().
FREE, EXCLUSIVE, SERIAL = "free", "exclusive", "serial"
_mode = None
_forked_from_unsafe = False

# The longest a fork waits for a compile running in another thread (see ForkSafeLock). A
# parallel kernel compiles in 2-10 s on the 2-core build machine; past this the fork goes on
# and the child gets fresh locks anyway (safe for nbsoftmax's own state; Numba's compiler
# state may then be inconsistent in the child).
FORK_WAIT_SECONDS = 30.0

_fork_safe_locks = weakref.WeakSet()


class ForkSafeLock:
    """A lock (``reentrant``: an RLock) that a forked child always gets unlocked.

    ``compile_guard``: the lock guards compilation; ``fork`` in another thread waits until it
    is free (and takes Numba's compiler lock too) so that the child inherits no half-done
    compile. Other locks (held while a kernel runs, possibly for long) are simply re-created
    in the child.

    Examples
    --------
    >>> from nbsoftmax._threading import ForkSafeLock
    >>> lock = ForkSafeLock()
    >>> with lock:
    ...     lock.locked()
    True
    """

    __slots__ = ("_factory", "_lock", "compile_guard", "_held_for_fork", "__weakref__")

    def __init__(self, reentrant=False, compile_guard=False):
        self._factory = threading.RLock if reentrant else threading.Lock
        self._lock = self._factory()
        self.compile_guard = compile_guard
        self._held_for_fork = False
        _fork_safe_locks.add(self)

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()

    def locked(self):
        """Whether some thread holds the lock (a snapshot)."""
        if self._lock.acquire(blocking=False):
            self._lock.release()
            return False
        return True

    __enter__ = acquire

    def __exit__(self, *exc):
        self._lock.release()

    # -- fork protocol (os.register_at_fork, below)
    def _before_fork(self):
        if self.compile_guard:
            self._held_for_fork = self._lock.acquire(timeout=FORK_WAIT_SECONDS)

    def _after_fork_in_parent(self):
        if self._held_for_fork:
            self._held_for_fork = False
            self._lock.release()

    def _after_fork_in_child(self):
        if self._held_for_fork:  # this thread took it for the fork: other holders are gone
            self._held_for_fork = False
            self._lock.release()
        else:  # held, or maybe held, by a thread that does not exist in the child
            self._lock = self._factory()


# One Python thread at a time may launch a parallel kernel when the layer is not thread-safe.
parallel_lock = ForkSafeLock()


def _numba_compiler_lock():
    """Numba's global compiler lock, if Numba is imported and keeps it where we expect."""
    module = sys.modules.get("numba.core.compiler_lock")
    lock = getattr(getattr(module, "global_compiler_lock", None), "_lock", None)
    return lock if hasattr(lock, "acquire") else None


_numba_lock_held_for_fork = False


def _before_fork():
    global _numba_lock_held_for_fork
    guards = [lock for lock in list(_fork_safe_locks) if lock.compile_guard]
    for lock in guards:  # ours first, then Numba's: the order a compile takes them
        lock._before_fork()
    numba_lock = _numba_compiler_lock()
    if guards and numba_lock is not None:
        _numba_lock_held_for_fork = numba_lock.acquire(timeout=FORK_WAIT_SECONDS)


def _after_fork_in_parent():
    global _numba_lock_held_for_fork
    if _numba_lock_held_for_fork:
        _numba_lock_held_for_fork = False
        _numba_compiler_lock().release()
    for lock in list(_fork_safe_locks):
        lock._after_fork_in_parent()


def configured_layer():
    """The threading layer the user asked for: Numba's config if loaded, else the environment."""
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:
        return str(numba_config.THREADING_LAYER).lower()
    return os.environ.get("NUMBA_THREADING_LAYER", "default").strip().lower() or "default"


def _layer_started():
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    return parallel is not None and parallel._is_initialized


def _tbb_candidates():
    """Where pip's ``tbb`` wheel puts its library: the environment's lib/, or the user base."""
    seen = []
    for prefix in (sys.prefix, sys.base_prefix):
        seen.append(os.path.join(prefix, "lib", _TBB_SONAME))
    try:
        import site

        user_base = site.getuserbase()
    except Exception:  # pragma: no cover - site disabled or broken
        user_base = None
    if user_base:
        seen.append(os.path.join(user_base, "lib", _TBB_SONAME))
    return list(dict.fromkeys(seen))


def preload_tbb():
    """Load libtbb from the environment so that Numba's TBB layer can find it.

    Does nothing off Linux, when the user chose a layer without TBB, when a threading layer
    already runs, or when no compatible libtbb is installed. Returns the path loaded, or None.
    """
    global tbb_preloaded, _tbb_handle
    if tbb_preloaded is not None:
        return tbb_preloaded
    if not sys.platform.startswith("linux") or configured_layer() not in _TBB_CAPABLE:
        return None
    if _layer_started():
        return None
    for path in _tbb_candidates():
        if not os.path.exists(path):
            continue
        import ctypes

        try:
            lib = ctypes.CDLL(path)
            version = lib.TBB_runtime_interface_version
            version.restype = ctypes.c_int
            compatible = version() >= _TBB_MIN_INTERFACE
        except (OSError, AttributeError):
            continue
        if not compatible:  # Numba would warn and skip it; leave it unloaded
            try:
                import _ctypes

                _ctypes.dlclose(lib._handle)
            except (ImportError, OSError, AttributeError):  # pragma: no cover
                pass
            continue
        _tbb_handle, tbb_preloaded = lib, path
        return path
    return None


# ------------------------------------------------------------------ guards


def _launch():
    """Start Numba's threading layer (what its first parallel call does) and name it."""
    import numba

    numba.get_num_threads()  # launches the layer if needed
    return numba.threading_layer()


def layer_safety(layer):
    """(thread_safe, fork_safe) of a running Numba threading layer."""
    if layer == "tbb":
        return True, True
    if layer == "omp":
        try:
            from numba.np.ufunc import omppool

            gnu = omppool.openmp_vendor == "GNU"
        except (ImportError, AttributeError):  # pragma: no cover - omp without vendor info
            gnu = True
        return True, not gnu
    if layer == "workqueue":
        return False, True
    return False, False  # unknown layer: assume the worst


def parallel_mode():
    """How a parallel kernel may run now: FREE, EXCLUSIVE (take parallel_lock, else serial) or SERIAL."""
    global _mode
    if _forked_from_unsafe:
        return SERIAL
    mode = _mode
    if mode is None:
        thread_safe, _ = layer_safety(_launch())
        mode = _mode = FREE if thread_safe else EXCLUSIVE
    return mode


def _after_fork_in_child():
    global _forked_from_unsafe, _numba_lock_held_for_fork
    # A lock held by another parent thread at fork time would never be released here.
    for lock in list(_fork_safe_locks):
        lock._after_fork_in_child()
    numba_module = sys.modules.get("numba.core.compiler_lock")
    if _numba_lock_held_for_fork:
        _numba_lock_held_for_fork = False
        _numba_compiler_lock().release()
    elif numba_module is not None and _numba_compiler_lock() is not None:
        # Not taken before the fork (a compile outlasted FORK_WAIT_SECONDS, or nbsoftmax
        # holds no compile guard): whoever held it is gone.
        numba_module.global_compiler_lock._lock = threading.RLock()
    if _forked_from_unsafe or not _layer_started():
        return
    try:
        from numba.np.ufunc import parallel

        fork_safe = layer_safety(parallel._threading_layer)[1]
    except Exception:  # pragma: no cover - Numba internals moved: be safe
        fork_safe = False
    _forked_from_unsafe = not fork_safe


# Before-fork hooks run in the reverse order of registration, and logging's takes logging's
# module lock, which a compile in another thread may need (Numba logs while loading its
# registries): waiting for that compile with logging's lock held was a deadlock. logging is
# imported first so that its hook is registered before ours and runs after it.
import logging  # noqa: E402,F401  (for its fork hook's place in the order)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


# ------------------------------------------------------------------ report


def describe():
    """A dict describing the active threading configuration (starts the layer if needed)."""
    import numba
    from numba.core import config

    layer = _launch()
    thread_safe, fork_safe = layer_safety(layer)
    info = {
        "threading_layer": layer,
        "configured_layer": str(config.THREADING_LAYER),
        "layer_priority": list(config.THREADING_LAYER_PRIORITY),
        "num_threads": numba.get_num_threads(),
        "numba_num_threads": config.NUMBA_NUM_THREADS,
        "tbb_preloaded": tbb_preloaded,
        "layer_thread_safe": thread_safe,
        "layer_fork_safe": fork_safe,
        "forked_from_unsafe_parent": _forked_from_unsafe,
    }
    if _forked_from_unsafe:
        info["parallel"] = "serial only: this process was forked after GNU OpenMP started"
    elif not thread_safe:
        info["parallel"] = "one thread at a time; concurrent calls run serial kernels"
    else:
        info["parallel"] = "unrestricted"
    return info
