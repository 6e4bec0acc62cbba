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
"""

import os
import sys
import threading

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
parallel_lock = threading.Lock()


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
    global _forked_from_unsafe, parallel_lock
    # A lock held by another parent thread at fork time would never be released here.
    parallel_lock = threading.Lock()
    if _forked_from_unsafe or not _layer_started():
        return
    try:
        from numba.np.ufunc import parallel

        fork_safe = layer_safety(parallel._threading_layer)[1]
    except Exception:  # pragma: no cover - Numba internals moved: be safe
        fork_safe = False
    _forked_from_unsafe = not fork_safe


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
