"""The on-disk cache of the compiled CPU kernels: a Numba cache that cannot break a call.

Where: Numba's own search order — ``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the
kernel sources, else (a read-only install) the user-wide cache (``$XDG_CACHE_HOME/numba`` or
``~/.cache/numba``). One addition: a read-only ``NUMBA_CACHE_DIR`` or ``__pycache__`` that
already holds a fresh entry for the kernel is used for loading (a cache filled by
``nbsoftmax warmup`` in a container image that runs with a read-only file system). With
nothing usable, kernels are compiled in memory for the process.

What it changes against ``@njit(cache=True)``:

- **Freshness covers every kernel source.** Numba stamps an entry with the hash of the one
  file that defines the function, so editing ``_slices.py`` or ``_math.py`` (which the
  drivers in ``_drivers.py`` inline) would keep serving the old machine code. Entries here
  are stamped with the hash of all of ``nbsoftmax/cpu/*.py``.
- **A bad entry is a miss, never an error.** Index and data files carry a SHA-256 of their
  contents and each data file its own key; a truncated, corrupt, foreign-version or
  mismatched file, an unreadable directory or a failed write all mean "compile it", where
  Numba would raise ``UnpicklingError``/``EOFError`` out of the call.
- **Concurrent fillers cannot cross entries.** A data file is named by a hash of its key
  (Numba numbers them in order, so two processes filling an empty cache at once can give
  one signature the other's code). Writes go through a temporary file and ``os.replace``;
  a lost index update only costs a later recompile.
- Files are named ``<function>-<line>.pyXY.nbsoftmax.*`` so that they never collide with
  Numba's own cache files for the same functions.
"""

import functools
import hashlib
import os
import pickle
import sys

from numba.core import caching
from numba.core import config as numba_config
from numba.core.serialize import dumps

_SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
_DIGEST = hashlib.sha256().digest_size


@functools.lru_cache(maxsize=None)
def sources_stamp():
    """Hash of every kernel source file of this package: the freshness stamp of all entries."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(_SOURCE_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(_SOURCE_DIR, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


class _Corrupt(Exception):
    pass


class _CheckedCacheFile(caching.IndexDataCacheFile):
    """Index and data files with checksums and key-named data files."""

    def _dump(self, obj):
        payload = dumps(obj)
        return hashlib.sha256(payload).digest() + payload

    @staticmethod
    def _undump(blob):
        digest, payload = blob[:_DIGEST], blob[_DIGEST:]
        if len(digest) != _DIGEST or hashlib.sha256(payload).digest() != digest:
            raise _Corrupt("checksum mismatch")
        return pickle.loads(payload)

    def _load_index(self):
        try:
            with open(self._index_path, "rb") as f:
                version = pickle.load(f)
                blob = f.read()
        except FileNotFoundError:
            return {}
        if version != self._version:
            return {}
        stamp, overloads = self._undump(blob)
        return overloads if stamp == self._source_stamp else {}

    def _entry_name(self, key):
        # repr() of (signature, target magic tuple, bytecode hashes) is stable across processes.
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
        return self._data_name_pattern.replace("{number:d}", digest)

    def save(self, key, data):
        name = self._entry_name(key)
        self._save_data(name, (key, data))  # data first: the index never names a missing file
        try:
            overloads = self._load_index()
        except Exception:  # a corrupt index is replaced
            overloads = {}
        overloads[key] = name
        self._save_index(overloads)

    def load(self, key):
        name = self._load_index().get(key)
        if name is None:
            return None
        try:
            with open(self._data_path(name), "rb") as f:
                blob = f.read()
        except OSError:  # removed since the index named it
            return None
        stored_key, data = self._undump(blob)
        return data if stored_key == key else None


def _entry_filename_base(py_func, py_file):
    """What CacheImpl.get_filename_base gives for a source-file locator, plus our suffix."""
    modname = os.path.splitext(os.path.basename(py_file))[0]
    fullname = f"{modname}.{py_func.__qualname__}".replace("<", "").replace(">", "")
    abiflags = getattr(sys, "abiflags", "")
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    return f"{fullname}-{py_func.__code__.co_firstlineno}.py{version}{abiflags}.nbsoftmax"


def _read_only_locator(base):
    """A locator class for base's directory when it cannot be written but holds our fresh index."""

    class ReadOnly(base):
        @classmethod
        def from_function(cls, py_func, py_file):
            if base is _USER_PROVIDED and not numba_config.CACHE_DIR:
                return None
            if not os.path.isfile(py_file):
                return None
            locator = cls(py_func, py_file)
            path = locator.get_cache_path()
            index = _CheckedCacheFile(path, _entry_filename_base(py_func, py_file), sources_stamp())
            try:
                return locator if index._load_index() else None
            except Exception:
                return None

    ReadOnly.__name__ = ReadOnly.__qualname__ = f"ReadOnly{base.__name__}"
    return ReadOnly


# Numba renamed its locators in 0.61 (_InTreeCacheLocator -> InTreeCacheLocator).
_USER_PROVIDED = getattr(caching, "UserProvidedCacheLocator", None) or getattr(
    caching, "_UserProvidedCacheLocator", None)
_IN_TREE = getattr(caching, "InTreeCacheLocator", None) or getattr(
    caching, "_InTreeCacheLocator", None)


class _KernelCacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = list(caching.CompileResultCacheImpl._locator_classes)
    if _USER_PROVIDED is not None and _IN_TREE is not None:
        # writable NUMBA_CACHE_DIR, read-only one with our entry, writable __pycache__, read-only
        # one with our entry, then Numba's others (user-wide, ...)
        _locator_classes = [
            cls for pair in ((_USER_PROVIDED, _read_only_locator(_USER_PROVIDED)),
                             (_IN_TREE, _read_only_locator(_IN_TREE)))
            for cls in pair
        ] + [cls for cls in _locator_classes if cls not in (_USER_PROVIDED, _IN_TREE)]


class KernelCache(caching.FunctionCache):
    """Numba's per-function cache, with _CheckedCacheFile and every failure made a miss."""

    _impl_class = _KernelCacheImpl

    def __init__(self, py_func):
        super().__init__(py_func)  # picks the directory; RuntimeError if none is writable
        self._cache_file = _CheckedCacheFile(
            cache_path=self._cache_path,
            filename_base=self._impl.filename_base + ".nbsoftmax",
            source_stamp=sources_stamp(),
        )

    def load_overload(self, sig, target_context):
        # Not Numba's load_overload: it first refreshes the target context, which imports
        # every lowering registry of Numba (numba.np.arraymath's BLAS probe imports
        # scipy.linalg): 0.7 s of a 1.0 s warm first call measured here, none of it needed
        # to load machine code. What is needed is the NRT's symbols (the kernels allocate
        # with np.empty); a compilation after a miss refreshes the context by itself.
        try:
            from numba.core.runtime import rtsys

            rtsys.initialize(target_context)
            return self._load_overload(sig, target_context)
        except Exception:  # corrupt, truncated, unreadable, incompatible: recompile
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception:  # read-only or full disk: the compiled kernel still runs
            pass


def attach(dispatcher):
    """Give a Numba dispatcher (not yet compiled) a KernelCache, or none if nowhere is writable."""
    try:
        dispatcher._cache = KernelCache(dispatcher.py_func)
    except Exception:  # no writable cache location, or Numba's cache internals changed
        dispatcher._cache = caching.NullCache()
    return dispatcher


def cache_dir():
    """The directory kernels are cached in for this process, or None if caching is off."""
    from . import _drivers

    try:
        return KernelCache(_drivers.softmax_rows_serial.py_func).cache_path
    except Exception:
        return None
