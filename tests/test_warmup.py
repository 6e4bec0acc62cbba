"""`nbsoftmax warmup` and `nbsoftmax.precompile()`: after one, nothing compiles.

The end-to-end test fills a fresh cache with `nbsoftmax warmup` (worker processes) on a copy
of the package (its sources cannot change under it), then calls every public function with
every option (tests/_every_call.py) in a new process that counts Numba's compilations
(the ``numba:compile`` event, which fires for a real compilation and not for a cache load),
once with the cache writable and once read-only (a prewarmed image). It compiles the
float32 kernels once (117 of them: ~6 minutes of CPU, split between two workers), so it and
the same for all three dtypes are marked slow (`python -m pytest -m slow
tests/test_warmup.py`); the default run checks instead, against stand-in kernels, that what
every call asks for is exactly the list that warmup compiles.
"""

import json
import time

import numba
import numpy as np
import pytest

import nbsoftmax
from nbsoftmax import _precompile, cpu
from nbsoftmax.cpu import _drivers, _segment, _variants
from tests.subproc import READ_ONLY_PRELUDE, copy_package, run_python

CLI = "import sys; from nbsoftmax.cli import main; sys.exit(main(sys.argv[1:]))"

PROBE = """
import json, os, sys
from numba.core import event

compiled = []


class CountCompilations(event.Listener):
    def on_start(self, ev):
        pass

    def on_end(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)


event.register("numba:compile", CountCompilations())

import numba
import nbsoftmax
from nbsoftmax import cpu
from nbsoftmax.cpu import _variants
from tests._every_call import call_everything

assert nbsoftmax.__file__.startswith(os.environ["EXPECT_ROOT"]), nbsoftmax.__file__
dtypes = os.environ["PROBE_DTYPES"].split(",")
for dtype in dtypes:
    call_everything(dtype)
expected = _variants.variants(_variants.public_ops(), dtypes)
print(json.dumps({
    "compiled": compiled,
    "threads": numba.get_num_threads(),
    "reached": sorted(map(repr, cpu._compiled)),
    "expected": sorted(repr(_variants.key(v)) for v in expected),
}))
"""


def _probe(site, env, read_only=()):
    env = {"EXPECT_ROOT": str(site), **env}
    prelude = ""
    if read_only:
        env["READ_ONLY_DIRS"] = ":".join(str(p) for p in read_only)
        prelude = READ_ONLY_PRELUDE
    return json.loads(run_python(prelude + PROBE, env=env, path_first=site).splitlines()[-1])


def _warm_then_call_everything(tmp_path, dtypes):
    site = copy_package(tmp_path / "site")
    cache = tmp_path / "cache"
    env = {"NUMBA_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "PROBE_DTYPES": ",".join(dtypes)}
    args = ["warmup", "-j", "2"] + [a for d in dtypes for a in ("--dtype", d)]
    start = time.perf_counter()
    out = run_python(CLI, env=env, path_first=site, args=args, timeout=1800)
    seconds = time.perf_counter() - start
    print(f"warmup of {', '.join(dtypes)}: {seconds:.1f} s\n{out}")
    assert "ready in" in out and "compiled here" not in out, out

    for read_only in ((), (site, cache)):
        result = _probe(site, env, read_only)
        assert result["compiled"] == [], (read_only, result["compiled"])
        reached, expected = set(result["reached"]), set(result["expected"])
        assert reached <= expected, sorted(reached - expected)
        if result["threads"] > 1:  # one thread never reaches the parallel kernels
            assert expected <= reached, ("warmup compiles kernels no call runs",
                                         sorted(expected - reached))


@pytest.mark.slow  # ~6 CPU-minutes: over the CI budget beside the static GPU check
def test_warmup_then_every_call_compiles_nothing(tmp_path):
    _warm_then_call_everything(tmp_path, ["float32"])


@pytest.mark.slow
def test_warmup_of_every_dtype_then_every_call_compiles_nothing(tmp_path):
    _warm_then_call_everything(tmp_path, ["float32", "float64", "float16"])


# ------------------------------------------------------------------ the list of variants


class _Stand_in:
    """Stands for a compiled kernel in the dispatch's table: compiles and computes nothing."""

    def __init__(self, dispatcher):
        self.py_func = dispatcher.py_func

    def compile(self, sig):
        pass

    def disable_compile(self):
        pass

    def __call__(self, *args):
        pass


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_the_variants_are_what_the_calls_run(dtype, monkeypatch):
    """Every public call with every option (tests/_every_call.py) against stand-in kernels:
    the kernels the dispatch asks for are exactly the variants warmup compiles (none
    missing, none that no call runs). Fast: nothing is compiled; the end-to-end test
    checks the real kernels for float32."""
    from nbsoftmax.cpu import _cache
    from tests._every_call import call_everything

    if numba.get_num_threads() < 2:
        pytest.skip("one thread never reaches the parallel kernels; run with 2 or more")
    monkeypatch.setattr(_cache, "attach", _Stand_in)
    saved = dict(cpu._compiled)
    cpu._compiled.clear()
    try:
        with np.errstate(all="ignore"):
            call_everything(dtype)
        reached = set(cpu._compiled)
    finally:
        cpu._compiled.clear()
        cpu._compiled.update(saved)
    expected = {_variants.key(v) for v in _variants.variants(_variants.public_ops(), [dtype])}
    assert not reached - expected, ("calls run kernels warmup misses", reached - expected)
    assert not expected - reached, ("warmup compiles kernels no call runs", expected - reached)


def test_every_driver_is_a_variant():
    """A driver that no variant names would compile on its first call after a warmup."""
    drivers = {name for name, obj in vars(_drivers).items()
               if isinstance(obj, numba.core.registry.CPUDispatcher) and not name.startswith("_")}
    segment_drivers = {name for name, obj in vars(_segment).items()
                       if isinstance(obj, numba.core.registry.CPUDispatcher)
                       and name.endswith(("_serial", "_parallel"))}
    for dtype in ("float32", "float64"):  # float16's softmax rows take the general kernels
        found = _variants.variants(_variants.public_ops(), [dtype])
        named = {v.driver for v in found if v.family != "segment"}
        assert drivers == named, (dtype, sorted(drivers ^ named))
        named = {v.driver.removeprefix("segment_") for v in found if v.family == "segment"}
        assert segment_drivers == named, (dtype, sorted(segment_drivers ^ named))


def test_every_dtype_has_the_float32_variants():
    """float64 and float16 compile what float32 does (the end-to-end test checks float32),
    but for the float16 softmax rows, which always take the general-row kernels."""
    def shape(dtype):
        return {(v.family, tuple(a for a in v.args if a not in (dtype, "uint16")))
                for v in _variants.variants(_variants.public_ops(), [dtype])}

    f32, f64, f16 = shape("float32"), shape("float64"), shape("float16")
    assert f64 == f32
    assert f32 - f16 == {("elementwise", ("softmax", layout, par))
                         for layout in ("rows", "block") for par in (False, True)}
    assert f16 <= f32


def test_variants_of_each_public_function():
    f32 = _variants.variants(("cross_entropy",), ["float32"])
    # class indices or probabilities x weight, gradient, temperature (or not) x serial, parallel
    flags = _variants._flag_names(cpu._xent_kernel)
    assert {"weighted", "with_grad"} <= set(flags)
    assert len(f32) == 2 * 2 ** len(flags) * 2 and {v.family for v in f32} == {"xent"}
    assert len(_variants.variants(("softmax_topk",), ["float64"])) == 2
    softmin = _variants.variants(("softmin",), ["float32"])
    assert softmin and all(v.driver.startswith("softmax_scaled_") for v in softmin)
    logsumexp = {v.args[1] for v in _variants.variants(("logsumexp",), ["float32"])}
    assert {"rows", "columns", "split", "masked"} <= logsumexp


# ------------------------------------------------------------------ precompile's arguments


@pytest.fixture
def recorded(monkeypatch):
    """precompile's arguments as it passes them on, without compiling anything."""
    calls = []

    def record(found, processes, progress):
        calls.append((found, processes))
        return {"kernels": len(found)}

    monkeypatch.setattr(_precompile, "precompile", record)
    return calls


def test_precompile_accepts_public_names_and_one_dtype(recorded):
    nbsoftmax.precompile(ops=("cross_entropy",))
    assert {v.family for v in recorded[-1][0]} == {"xent"}
    assert {v.args[1] for v in recorded[-1][0]} == {"float32", "float64", "uint16"}
    nbsoftmax.precompile(dtypes="float32", ops="softmin")
    assert {v.args[2] for v in recorded[-1][0]} == {"float32"}
    nbsoftmax.precompile(dtypes=np.float64, ops=["softmax_topk", "logsumexp"])
    assert {v.driver.split("_")[0] for v in recorded[-1][0]} <= {"topk", "logsumexp", "lse"}
    assert any(v.family == "topk" for v in recorded[-1][0])
    nbsoftmax.precompile(dtypes=[np.dtype(np.float16)], processes=None)
    assert recorded[-1][1] == _precompile.available_cores()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dtypes": "int32"}, TypeError, "dtypes.*int32.*float16, float32 or float64"),
    ({"dtypes": ("float32", "complex64")}, TypeError, "complex64"),
    ({"ops": ("softmaxx",)}, ValueError, r"unknown names \['softmaxx'\].*cross_entropy"),
    ({"ops": "Softmax"}, ValueError, "Softmax"),
    ({"processes": 0}, ValueError, "processes must be at least 1, not 0"),
    ({"processes": 2.5}, TypeError, "processes must be a positive int or None, not 2.5"),
])
def test_precompile_rejects_bad_arguments(recorded, kwargs, error, match):
    with pytest.raises(error, match=match):
        nbsoftmax.precompile(**kwargs)
    assert not recorded


def test_precompile_in_workers_fills_the_cache_then_loads(tmp_path):
    """Two workers share two drivers; this process then only loads them; progress is told."""
    site = copy_package(tmp_path / "site")
    out = run_python("""
        import json, nbsoftmax
        events = []
        summary = nbsoftmax.precompile(dtypes="float32", ops="softmax_topk", processes=2,
                                       progress=lambda *a: events.append(a))
        print(json.dumps([summary, events]))
    """, env={"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "EXPECT_ROOT": str(site)},
        path_first=site)
    summary, events = json.loads(out.splitlines()[-1])
    assert summary["kernels"] == 2 and summary["workers"] == 2
    assert summary["worker_compiled"] == 2 and summary["worker_errors"] == []
    assert (summary["compiled"], summary["loaded"]) == (0, 2)
    assert [e[:3] for e in events if e[0] == "load"] == [["load", 1, 2], ["load", 2, 2]]
    compiled = sorted(e[3].split(":")[0] for e in events if e[0] == "compile")
    assert compiled == ["softmax_topk float32 parallel", "softmax_topk float32 serial"]


# ------------------------------------------------------------------ the command


def test_warmup_rejects_an_unknown_op_before_compiling(recorded, capsys):
    from nbsoftmax.cli import main

    assert main(["warmup", "--op", "softmaxx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nbsoftmax warmup: error: ops has unknown names")
    assert not recorded


class _Stream:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_is_a_line_per_kernel_in_logs_and_a_bar_on_a_terminal():
    from nbsoftmax.cli.warmup import _Progress

    log = _Stream(tty=False)
    progress = _Progress(log)
    progress("compile", 1, 3, "softmax rows float32 serial: compiled in 1.20 s")
    progress("compile", 3, 3, "softmax rows float32 parallel: compiled in 2.00 s")
    assert log.text.splitlines() == [
        "warmup [1/3] compile softmax rows float32 serial: compiled in 1.20 s",
        "warmup [3/3] compile softmax rows float32 parallel: compiled in 2.00 s"]
    terminal = _Stream(tty=True)
    progress = _Progress(terminal)
    progress("load", 3, 3, "softmax_topk float32 serial: loaded in 0.01 s")
    assert terminal.text.startswith("\rwarmup load    [########################] 3/3 kernels")
    assert terminal.text.endswith("softmax_topk float32 serial\n")


def test_precompile_without_workers_compiles_here(monkeypatch):
    """No interpreter to start workers with: everything is built in this process."""
    import subprocess

    def no_interpreter(*args, **kwargs):
        raise FileNotFoundError("no such interpreter")

    built = []
    monkeypatch.setattr(subprocess, "Popen", no_interpreter)
    monkeypatch.setattr(_variants, "build", lambda v: built.append(v) or "loaded")
    monkeypatch.setattr(_precompile, "_writable", lambda path: True)
    summary = nbsoftmax.precompile(dtypes="float32", ops="softmax_topk", processes=2)
    assert len(built) == 2 and summary["loaded"] == 2
    assert summary["worker_errors"] == ["no worker process could start: no such interpreter"]
