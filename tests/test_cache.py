"""The on-disk kernel cache across processes: where it goes, and that no cache state breaks a call.

Every test works on a copy of the package in a temporary directory, so that its in-tree
cache (``nbsoftmax/cpu/__pycache__``) starts empty and can be made read-only, stale or
corrupt. Each process computes one float32 softmax (one serial kernel: about a second to
compile) and reports the kernel cache's hits and misses.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pytest

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
    elif kind == "data removed":
        for path in data:
            path.unlink()
    else:  # pragma: no cover
        raise ValueError(kind)


# (each costs a process and two compilations: the kinds that reach different code paths)
CORRUPTIONS = ["truncated index", "garbage index", "flipped byte in data", "data files swapped"]


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
