"""The on-disk cache of the compiled CPU kernels: a Numba cache that cannot break a call.

Where (``describe()`` says which, and why another was passed over; ``nbsoftmax info`` prints
it):

1. ``NUMBA_CACHE_DIR`` when it is set; else ``__pycache__`` beside the kernel sources (in the
   installed package), when it can be written;
2. the same folder read-only, when it already holds our fresh entry for the kernel (a cache
   filled by ``nbsoftmax warmup`` in a container image that runs on a read-only file system);
3. the user-wide cache (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``);
4. none: the kernels compile in memory for the process.

An unusable ``NUMBA_CACHE_DIR`` (a regular file, ``/dev/null``, a path under a file, a
read-only folder without our entries, a folder others may write) falls back to 3, never to
the package folder: nothing is written into the installed package unless it is the chosen
cache.

Trust model. A cache entry is machine code that the process runs, and its files are pickles:
whoever can write the cache folder can run code as every user of it. This is the same for
Numba's own cache and for Python's ``__pycache__``. So a folder is used only when it and the
folder above it (e.g. ``NUMBA_CACHE_DIR`` itself) are owned by this user or by root and no one
else may write them: no group or world write permission, unless the sticky bit is set (as on
``/tmp``: others may add files but not replace ours).
Every file is opened without blocking and used only if it is a regular file owned by this
user or root and writable by no one else (a FIFO, a device or another user's file is a miss).
The SHA-256 carried by every file is checked before anything of it is unpickled; it detects
corruption, not forgery (anyone able to write the folder could recompute it; the permission
rules above are what keep them out). Folders and files are created with modes 0755 and 0644
whatever the umask, so that a cache we write always passes these rules.

What else it changes against ``@njit(cache=True)``:

- **Freshness covers every kernel source.** Numba stamps an entry with the hash of the one
  file that defines the function, so editing ``_slices.py`` or ``_math.py`` (which the
  drivers in ``_drivers.py`` inline) would keep serving the old machine code. Entries here
  are stamped with the hash of all of ``nbsoftmax/cpu/*.py``.
- **A bad entry is a miss, never an error.** A truncated, corrupt, foreign-version,
  mismatched or untrusted file, an unreadable directory or a failed write all mean "compile
  it", where Numba would raise ``UnpicklingError``/``EOFError`` out of the call.
- **Concurrent fillers cannot cross entries.** A data file is named by a hash of its key
  (Numba numbers them in order, so two processes filling an empty cache at once can give
  one signature the other's code). Writes go through a temporary file and ``os.replace``;
  a lost index update only costs a later recompile.
- Files are named ``<function>-<line>.pyXY.nbsoftmax.*`` so that they never collide with
  Numba's own cache files for the same functions.
"""

import contextlib
import errno
import functools
import hashlib
import os
import pickle
import stat
import sys
import tempfile
import uuid

from numba.core import caching
from numba.core import config as numba_config
from numba.core.serialize import dumps

_SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
_DIGEST = hashlib.sha256().digest_size
# Index files start with this line and Numba's version (no pickle before the checksum).
_INDEX_MAGIC = b"nbsoftmax-kernel-index 2\n"
_DIR_MODE, _FILE_MODE = 0o755, 0o644


class _Corrupt(Exception):
    pass


# ------------------------------------------------------------------ trusted files and folders


def _foreign_owner(st):
    return st.st_uid not in (os.getuid(), 0)


def folder_problem(path):
    """Why ``path`` may not hold cache files (see the trust model), or None: a phrase that
    follows "<path> is"."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"unusable ({exc.strerror or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if _foreign_owner(st):
        return f"owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        return f"writable by other users (mode {stat.filemode(st.st_mode)})"
    return None


def read_file(path, trusted=True):
    """The bytes of a regular file, opened without blocking (a FIFO or a device is refused).

    ``trusted``: also refuse a file owned by another user or writable by others.
    Raises OSError (missing, unreadable) or _Corrupt (not a file we may use)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Corrupt(f"{path} is not a regular file")
        if trusted and (_foreign_owner(st) or st.st_mode & 0o022):
            raise _Corrupt(f"{path} is writable by or belongs to another user")
        return f.read()


def _make_folder(path):
    """os.makedirs with mode 0755 at every level created (the umask may not widen it)."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return
    if os.path.lexists(path):  # a regular file, /dev/null, a dangling link
        raise NotADirectoryError(errno.ENOTDIR, f"{path} is not a directory", path)
    parent = os.path.dirname(path)
    if parent != path:
        _make_folder(parent)
    try:
        os.mkdir(path, _DIR_MODE)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    os.chmod(path, _DIR_MODE)  # mkdir's mode is filtered by the umask


@functools.lru_cache(maxsize=None)
def sources_stamp():
    """Hash of every kernel source file of this package: the freshness stamp of all entries."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(_SOURCE_DIR)):
        if name.endswith(".py"):
            h.update(name.encode() + b"\0" + read_file(os.path.join(_SOURCE_DIR, name),
                                                       trusted=False) + b"\0")
    return h.hexdigest()


# ------------------------------------------------------------------ index and data files


class _CheckedCacheFile(caching.IndexDataCacheFile):
    """Index and data files with checksums checked before unpickling, key-named data files."""

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
            blob = read_file(self._index_path)
        except FileNotFoundError:
            return {}
        header = _INDEX_MAGIC + self._version.encode() + b"\n"
        if not blob.startswith(header):  # another version or format: nothing unpickled
            return {}
        stamp, overloads = self._undump(blob[len(header):])
        return overloads if stamp == self._source_stamp else {}

    def _save_index(self, overloads):
        blob = self._dump((self._source_stamp, overloads))
        with self._open_for_write(self._index_path) as f:
            f.write(_INDEX_MAGIC + self._version.encode() + b"\n" + blob)

    @contextlib.contextmanager
    def _open_for_write(self, filepath):
        # As Numba's (a temporary name, then os.replace), with mode 0644 whatever the umask.
        temp = f"{filepath}.tmp.{uuid.uuid4().hex[:16]}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(temp, flags, _FILE_MODE)
        try:
            os.fchmod(fd, _FILE_MODE)
            with open(fd, "wb") as f:
                yield f
            os.replace(temp, filepath)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _entry_name(self, key):
        # repr() of (signature, target magic tuple, bytecode hashes) is stable across processes.
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
        return self._data_name_pattern.replace("{number:d}", digest)

    def save(self, key, data):
        name = self._entry_name(key)
        self._save_data(name, (key, data))  # data first: the index never names a missing file
        try:
            overloads = self._load_index()
        except Exception:  # a corrupt or untrusted index is replaced
            overloads = {}
        overloads[key] = name
        self._save_index(overloads)

    def load(self, key):
        name = self._load_index().get(key)
        if name is None:
            return None
        try:
            blob = read_file(self._data_path(name))
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


# ------------------------------------------------------------------ where: the locators

# Numba renamed its locators in 0.61 (_InTreeCacheLocator -> InTreeCacheLocator).
_USER_PROVIDED = getattr(caching, "UserProvidedCacheLocator", None) or getattr(
    caching, "_UserProvidedCacheLocator")
_IN_TREE = getattr(caching, "InTreeCacheLocator", None) or getattr(
    caching, "_InTreeCacheLocator")
_USER_WIDE = getattr(caching, "UserWideCacheLocator", None) or getattr(
    caching, "_UserWideCacheLocator")


def _writable(base, label):
    class Writable(base):
        kind = label
        read_only = False

        def ensure_cache_path(self):
            path = self.get_cache_path()
            _make_folder(path)
            for folder in (os.path.dirname(path), path):  # the cache's root and its folder
                problem = folder_problem(folder)
                if problem:
                    raise PermissionError(errno.EACCES, f"{folder} is {problem}", folder)
            tempfile.TemporaryFile(dir=path).close()

    Writable.__name__ = Writable.__qualname__ = f"Writable{base.__name__}"
    return Writable


def _read_only(base, label):
    class ReadOnly(base):
        kind = f"{label}, read-only"
        read_only = True

        def ensure_cache_path(self):
            raise PermissionError(f"{self.get_cache_path()}: read-only cache")

    ReadOnly.__name__ = ReadOnly.__qualname__ = f"ReadOnly{base.__name__}"
    return ReadOnly


def _candidates():
    """[(locator class, what it is)] in the order of the module docstring."""
    if numba_config.CACHE_DIR:
        first = (_USER_PROVIDED, f"NUMBA_CACHE_DIR={numba_config.CACHE_DIR}")
    else:
        first = (_IN_TREE, "the package's __pycache__")
    return [(_writable(*first), first[1]), (_read_only(*first), first[1]),
            (_writable(_USER_WIDE, "the user-wide cache"), "the user-wide cache")]


def choose(py_func, py_file):
    """(locator or None, [why each earlier candidate was passed over])."""
    notes = []
    if not os.path.isfile(py_file):
        return None, [f"{py_file} is not a source file"]
    for cls, label in _candidates():
        locator = cls(py_func, py_file)
        path = locator.get_cache_path()
        if not cls.read_only:
            try:
                locator.ensure_cache_path()
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.filename and str(exc.filename) not in reason:
                    reason = f"{exc.filename}: {reason}"
                notes.append(f"{label}: {reason}")
                continue
            return locator, notes
        if folder_problem(os.path.dirname(path)) or folder_problem(path):
            continue  # already reported for the writable attempt of the same folder
        index = _CheckedCacheFile(path, _entry_filename_base(py_func, py_file), sources_stamp())
        try:
            if index._load_index():
                return locator, notes
        except Exception:
            pass
    return None, notes


class _ChosenLocator:
    """The one entry of _KernelCacheImpl's locator list: it runs ``choose``."""

    @classmethod
    def from_function(cls, py_func, py_file):
        return choose(py_func, py_file)[0]


class _KernelCacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_ChosenLocator]


class KernelCache(caching.FunctionCache):
    """Numba's per-function cache, with _CheckedCacheFile and every failure made a miss."""

    _impl_class = _KernelCacheImpl

    def __init__(self, py_func):
        super().__init__(py_func)  # picks the directory; RuntimeError if none is usable
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
        except Exception:  # corrupt, truncated, untrusted, incompatible: recompile
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception:  # read-only or full disk: the compiled kernel still runs
            pass


def attach(dispatcher):
    """Give a Numba dispatcher (not yet compiled) a KernelCache, or none if nowhere is usable."""
    try:
        dispatcher._cache = KernelCache(dispatcher.py_func)
    except Exception:  # no usable cache location, or Numba's cache internals changed
        dispatcher._cache = caching.NullCache()
    return dispatcher


def describe():
    """{"cache_dir": folder or None, "cache_kind": which candidate, "cache_skipped": [...]}
    for this process (what ``nbsoftmax info`` prints)."""
    import inspect

    from . import _drivers

    py_func = _drivers.softmax_rows_serial.py_func
    locator, notes = choose(py_func, inspect.getfile(py_func))
    return {"cache_dir": locator.get_cache_path() if locator else None,
            "cache_kind": locator.kind if locator else None,
            "cache_skipped": notes}


def cache_dir():
    """The directory kernels are cached in for this process, or None if caching is off."""
    return describe()["cache_dir"]
