"""The on-disk kernel cache across processes: where it goes, and that no cache state breaks a call.

Every test works on a copy of the package in a temporary directory, so that its in-tree
cache (``nbsoftmax/cpu/__pycache__``) starts empty and can be made read-only, stale or
corrupt. Each process computes one float32 softmax (one serial kernel: about a second to
compile) and reports the kernel cache's hits and misses.
"""

import errno
import json
import os
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pytest
from numba.core import config as numba_config

from nbsoftmax import cpu
from nbsoftmax.cpu import _cache, _columns, _drivers, _math, _slices
from tests.subproc import READ_ONLY_PRELUDE, block_directory, copy_package, run_python

PROBE = """
import json, os, sys
import numpy as np
import nbsoftmax
from nbsoftmax import cpu
from tests import checks

assert nbsoftmax.__file__.startswith(os.environ["EXPECT_ROOT"]), nbsoftmax.__file__
for dtype in os.environ.get("PROBE_DTYPES", "float32").split(","):
    x = np.linspace(-3, 3, 40).astype(dtype).reshape(4, 10)
    checks.assert_softmax(nbsoftmax.softmax(x), x)
stats = [k.stats for k in cpu._compiled.values()]
print(json.dumps({
    "hits": sum(sum(s.cache_hits.values()) for s in stats),
    "misses": sum(sum(s.cache_misses.values()) for s in stats),
    "cache_path": stats[0].cache_path,
    "kind": cpu._cache.describe()["cache_kind"],
}))
"""


@pytest.fixture
def site(tmp_path):
    """A copy of the package, and an XDG cache home of its own (the user-wide cache)."""
    root = copy_package(tmp_path / "site")
    return root


def probe(site, env=None, read_only=(), prelude=""):
    env = {"EXPECT_ROOT": str(site), "XDG_CACHE_HOME": str(site.parent / "xdg"), **(env or {})}
    if read_only:
        env["READ_ONLY_DIRS"] = os.pathsep.join(str(p) for p in read_only)
        prelude = READ_ONLY_PRELUDE
    out = run_python(prelude + PROBE, env=env, path_first=site)
    return json.loads(out.strip().splitlines()[-1])


def cache_files(directory):
    return sorted(p.name for p in Path(directory).rglob("*.nbsoftmax.*"))


def in_tree(site):
    return site / "nbsoftmax" / "cpu" / "__pycache__"


def test_next_process_loads_from_the_in_tree_cache(site):
    first = probe(site)
    assert (first["hits"], first["misses"]) == (0, 1)
    assert first["cache_path"] == str(in_tree(site))
    names = cache_files(in_tree(site))
    assert any(n.endswith(".nbi") for n in names) and any(n.endswith(".nbc") for n in names)
    second = probe(site)
    assert (second["hits"], second["misses"]) == (1, 0)


def test_numba_cache_dir_is_respected(site, tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    first = probe(site, env)
    assert first["cache_path"].startswith(str(tmp_path / "numba-cache"))
    assert cache_files(tmp_path / "numba-cache")
    assert not in_tree(site).exists() or not cache_files(in_tree(site))
    assert probe(site, env)["hits"] == 1


def test_read_only_package_dir_caches_in_the_user_cache(site):
    first = probe(site, read_only=[site])
    xdg = site.parent / "xdg" / "numba"
    assert first["cache_path"].startswith(str(xdg))
    assert cache_files(xdg) and not cache_files(site)
    second = probe(site, read_only=[site])
    assert (second["hits"], second["misses"]) == (1, 0)


@pytest.mark.parametrize("where", ["in-tree", "NUMBA_CACHE_DIR"])
def test_read_only_filled_cache_is_loaded(site, tmp_path, where):
    """A cache filled by `nbsoftmax warmup` in an image, used on a read-only file system."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")} if where != "in-tree" else {}
    filled = probe(site, env)
    assert filled["misses"] == 1
    again = probe(site, env, read_only=[site, tmp_path / "numba-cache"])
    assert (again["hits"], again["misses"]) == (1, 0)
    assert again["cache_path"] == filled["cache_path"]


def test_nothing_writable_still_computes(site):
    block_directory(site.parent / "xdg")
    result = probe(site, read_only=[site])
    assert result["misses"] == 1


@pytest.mark.parametrize("edited", ["_math.py", "_drivers.py"])  # inlined two levels down; own file
def test_edited_kernel_source_invalidates_the_cache(site, edited):
    """Numba stamps an entry with its own file only: an edit of a module it inlines must count."""
    assert probe(site)["misses"] == 1
    with open(site / "nbsoftmax" / "cpu" / edited, "a") as f:
        f.write("\n# edited\n")
    stale = probe(site)
    assert (stale["hits"], stale["misses"]) == (0, 1)
    assert probe(site)["hits"] == 1


def _corrupt(directory, kind):
    indexes = sorted(Path(directory).glob("*.nbsoftmax.nbi"))
    data = sorted(Path(directory).glob("*.nbsoftmax.*.nbc"))
    assert len(indexes) == 1 and len(data) == 2  # one kernel function, float32 and float64
    index = indexes[0]
    if kind == "truncated index":
        index.write_bytes(index.read_bytes()[: len(index.read_bytes()) // 2])
    elif kind == "empty index":
        index.write_bytes(b"")
    elif kind == "garbage index":
        index.write_bytes(os.urandom(300))
    elif kind == "flipped byte in data":
        for path in data:
            blob = bytearray(path.read_bytes())
            blob[len(blob) // 2] ^= 0xFF
            path.write_bytes(bytes(blob))
    elif kind == "truncated data":
        for path in data:
            path.write_bytes(path.read_bytes()[:100])
    elif kind == "data files swapped":  # float32's code under float64's name and back
        assert len(data) == 2
        first, second = data[0].read_bytes(), data[1].read_bytes()
        data[0].write_bytes(second)
        data[1].write_bytes(first)
    elif kind == "fifo index":  # open() of a FIFO blocks until a writer comes: never
        index.unlink()
        os.mkfifo(index)
    elif kind == "data removed":
        for path in data:
            path.unlink()
    else:  # pragma: no cover
        raise ValueError(kind)


# (each costs a process and two compilations: the kinds that reach different code paths)
CORRUPTIONS = ["truncated index", "garbage index", "flipped byte in data", "data files swapped",
               "fifo index"]


def test_corrupt_cache_recompiles_and_repairs(site):
    """Numba's own cache raises UnpicklingError/EOFError out of the call for most of these."""
    env = {"PROBE_DTYPES": "float32,float64"}  # two entries of one function (one index)
    assert probe(site, env)["misses"] == 2
    for kind in CORRUPTIONS:
        _corrupt(in_tree(site), kind)
        result = probe(site, env)  # checks the results
        assert (result["hits"], result["misses"]) == (0, 2), kind
    assert probe(site, env)["hits"] == 2


def test_processes_filling_an_empty_cache_at_once(site, tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "PROBE_DTYPES": "float32,float64"}
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: probe(site, env), range(3)))
    assert all(r["misses"] + r["hits"] == 2 for r in results)
    after = probe(site, env)  # entries may be lost to a race (a recompile), never crossed
    assert after["hits"] + after["misses"] == 2


def test_helper_kernels_do_not_use_numbas_per_file_cache():
    """Only the registry's KernelCache (stamped with all sources) may serve machine code."""
    for module in (_drivers, _slices, _columns, _math):
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                assert isinstance(obj._cache, numba.core.caching.NullCache), f"{module.__name__}.{name}"


def test_registry_kernels_use_the_kernel_cache():
    kernel = cpu.get_kernel("softmax", "rows", np.dtype(np.float32), False)
    assert isinstance(kernel._cache, _cache.KernelCache)
    assert _cache.cache_dir() == kernel.stats.cache_path


def test_warmup_cli_fills_the_cache_for_later_processes(tmp_path):
    """`nbsoftmax warmup` in one process; a later first call loads instead of compiling."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "image-cache")}
    out = run_python("import sys; from nbsoftmax.cli import main; sys.exit(main(sys.argv[1:]))",
                     env=env, args=["warmup", "--dtype", "float32", "--op", "softmax"])
    assert "cached in " + str(tmp_path / "image-cache") in out
    later = run_python("""
        import numpy as np, nbsoftmax
        from nbsoftmax import cpu
        nbsoftmax.softmax(np.ones((4, 10), np.float32))
        nbsoftmax.softmax(np.ones((64, 1024), np.float32))
        nbsoftmax.softmax(np.ones((64, 100), np.float32), axis=0)
        stats = [k.stats for k in cpu._compiled.values()]
        print(sum(sum(s.cache_hits.values()) for s in stats),
              sum(sum(s.cache_misses.values()) for s in stats))
    """, env=env)
    hits, misses = map(int, later.split())
    assert hits >= 3 and misses == 0


def test_precompile_rejects_unknown_names():
    import nbsoftmax

    with pytest.raises(TypeError, match="int32"):
        nbsoftmax.precompile(dtypes=("int32",))
    with pytest.raises(ValueError, match="softmaxx"):
        nbsoftmax.precompile(ops=("softmaxx",))


# ------------------------------------------------------------------ where, when the first choice fails


def _unusable(kind, tmp_path, monkeypatch):
    """A NUMBA_CACHE_DIR that cannot be used, and the reason `describe` must give."""
    if kind == "regular file":
        (tmp_path / "file").write_text("x")
        return tmp_path / "file", "is not a directory"
    if kind == "/dev/null":
        return Path("/dev/null"), "/dev/null is not a directory"
    if kind == "under a file":
        (tmp_path / "file").write_text("x")
        return tmp_path / "file" / "cache", "is not a directory"
    target = tmp_path / "cache"
    target.mkdir()
    if kind == "read-only":  # as a read-only mount refuses it (root ignores chmod)
        real = _cache.tempfile.TemporaryFile

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and str(dir).startswith(str(target)):
                raise OSError(errno.EROFS, "Read-only file system", dir)
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(_cache.tempfile, "TemporaryFile", refuse)
        return target, "Read-only file system"
    if kind == "group-writable":
        target.chmod(0o775)
        return target, "writable by other users (mode drwxrwxr-x)"
    if kind == "another user's":
        _make_foreign(target, monkeypatch)
        return target, "owned by another user"
    raise ValueError(kind)  # pragma: no cover


def _make_foreign(path, monkeypatch):
    """Make path belong to another user as far as this process can tell."""
    if os.getuid() == 0:
        os.chown(path, 4242, -1)
    else:  # files of our own uid now look foreign (and none is root's)
        uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)


UNUSABLE = ["regular file", "/dev/null", "under a file", "read-only", "group-writable",
            "another user's"]


@pytest.mark.parametrize("kind", UNUSABLE)
def test_unusable_numba_cache_dir_falls_back_to_the_user_cache(tmp_path, monkeypatch, kind):
    target, reason = _unusable(kind, tmp_path, monkeypatch)
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(target))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    info = _cache.describe()
    assert info["cache_kind"] == "the user-wide cache"
    assert info["cache_dir"].startswith(str(tmp_path / "xdg" / "numba")), info
    (note,) = info["cache_skipped"]
    assert note.startswith(f"NUMBA_CACHE_DIR={target}: ") and reason in note, note
    assert oct(Path(info["cache_dir"]).stat().st_mode & 0o777) == oct(0o755)  # any umask


def test_nothing_usable_means_memory_only(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(tmp_path / "file"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    info = _cache.describe()
    assert info["cache_dir"] is None and info["cache_kind"] is None
    assert len(info["cache_skipped"]) == 2
    from nbsoftmax.cli import info as info_command

    text = info_command.format_text(info_command.collect())  # what `nbsoftmax info` prints
    assert "\nkernel cache    : none: kernels compile in memory in each process\n" in text
    assert f"\n  passed over   : NUMBA_CACHE_DIR={tmp_path / 'file'}: {tmp_path / 'file'} is not " \
           "a directory\n" in text


def test_sticky_shared_folder_is_accepted(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp: others may add files, not replace ours
    assert _cache.folder_problem(shared) is None
    shared.chmod(0o777)
    assert "writable by other users" in _cache.folder_problem(shared)


def test_unusable_numba_cache_dir_never_writes_into_the_package(site):
    """Numba's own order falls back to the package's __pycache__; ours never does."""
    result = probe(site, {"NUMBA_CACHE_DIR": "/dev/null"})
    xdg = site.parent / "xdg" / "numba"
    assert result["kind"] == "the user-wide cache"
    assert result["cache_path"].startswith(str(xdg))
    assert cache_files(xdg) and not cache_files(site)


# ------------------------------------------------------------------ what is read, and when


def _cache_file(tmp_path):
    return _cache._CheckedCacheFile(str(tmp_path), "kernel-1.py311.nbsoftmax", "stamp")


class _RunsCode:
    """Unpickling this creates a file: the proof that a pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checksum_is_verified_before_anything_is_unpickled(tmp_path):
    marker = tmp_path / "code-ran"
    evil = pickle.dumps(_RunsCode(marker))
    store = _cache_file(tmp_path)
    store.save(("sig", 1), {"machine code": b"..."})
    assert store.load(("sig", 1)) == {"machine code": b"..."}
    index = Path(store._index_path)
    (data,) = tmp_path.glob("*.nbc")
    header = _cache._INDEX_MAGIC + numba.__version__.encode() + b"\n"
    # Numba's index format, where the version pickle is loaded before any check
    index.write_bytes(evil + pickle.dumps(("stamp", {})))
    assert store._load_index() == {}
    # our header, with a payload that does not match its checksum
    index.write_bytes(header + b"\0" * 32 + evil)
    with pytest.raises(_cache._Corrupt, match="checksum"):
        store._load_index()
    # a data file likewise, behind a good index
    store.save(("sig", 1), {"machine code": b"..."})
    data.write_bytes(b"\0" * 32 + evil)
    with pytest.raises(_cache._Corrupt, match="checksum"):
        store.load(("sig", 1))
    assert not marker.exists()


def _finishes(func, seconds=20):
    """func() in a daemon thread; its result, or a failure when it blocks."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=_call(func)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{func} blocked"
    if isinstance(result["value"], BaseException):
        raise result["value"]
    return result["value"]


def _call(func):
    try:
        return func()
    except BaseException as exc:  # handed to the test's thread
        return exc


def test_fifo_and_untrusted_files_are_misses_never_reads(tmp_path, monkeypatch):
    store = _cache_file(tmp_path)
    index = Path(store._index_path)
    os.mkfifo(index)
    with pytest.raises(_cache._Corrupt, match="not a regular file"):
        _finishes(store._load_index)
    _finishes(lambda: store.save(("sig", 1), "entry"))  # replaces the FIFO
    assert index.is_file() and store.load(("sig", 1)) == "entry"
    assert oct(index.stat().st_mode & 0o777) == oct(0o644)
    index.chmod(0o666)  # others could have written it
    with pytest.raises(_cache._Corrupt, match="another user"):
        store.load(("sig", 1))
    index.chmod(0o644)
    _make_foreign(index, monkeypatch)
    with pytest.raises(_cache._Corrupt, match="another user"):
        store.load(("sig", 1))
