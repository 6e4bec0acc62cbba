"""CPU benchmark matrix (pytest-benchmark): nbsoftmax side by side with its peers.

Run: ``python -m pip install -e ".[bench]" && python -m pytest benchmarks/test_cpu.py``
(``-k "float32 and softmax-"`` etc. to select; add torch / jax to compare with them).

Every case (operation x dtype x shape/axis) is one pytest-benchmark group holding
nbsoftmax (allocating and with ``out=``), every importable peer from the shared table
``nbsoftmax.cli.bench_peers.peer_calls`` and the copy roofline of the same bytes; ``conftest.py``
prints GB/s and speedup ratios per group at the end of the run, and the last test prints the
figures of the CPU speed table (issue 15: ratios x torch, fractions of the copy, the ISA the
kernels were compiled for) from the medians of this run (shown with ``-s``, or always with
``-rA``; left out for cases that did not run).
"""

import importlib.util

import numpy as np
import pytest

from nbsoftmax.cli import bench_peers as B
from nbsoftmax.cli.bench import FULL_CASES

_HAVE = {name: importlib.util.find_spec(mod) is not None
         for name, mod in [("scipy", "scipy"), ("torch", "torch"), ("jax.jit", "jax")]}


def _impls(op):
    names = ["nbsoftmax", "nbsoftmax out=", "numpy"]
    if _HAVE["scipy"] and op in B.FORWARD:
        names.append("scipy")
    if _HAVE["torch"]:
        names += ["torch", "torch out="]
    if _HAVE["jax.jit"]:
        names.append("jax.jit")
    return names + ["np.copyto", "copy (threads)"]


PARAMS = [
    pytest.param(op, dtype, shape, axis, impl,
                 id=f"{op}-{dtype}-{'x'.join(map(str, shape))}-axis{axis}-{impl.replace(' ', '_')}")
    for dtype in ("float32", "float64")
    for op in B.OPS
    for shape, axis in FULL_CASES
    for impl in _impls(op)
]

_current = {}  # the last case's inputs and calls: cases run in order, one at a time in memory
_medians = {}  # (op, dtype, shape, axis) -> {impl: median seconds}, for test_issue_figures


def _calls(op, dtype, shape, axis):
    key = (op, dtype, shape, axis)
    if _current.get("key") != key:
        _current.clear()
        inputs = B.make_inputs(op, shape, axis, dtype)
        calls = B.peer_calls(op, axis, inputs)
        calls.update(B.roofline_calls(inputs[0].nbytes))
        _current.update(key=key, calls=calls, nbytes=inputs[0].nbytes)
    return _current["calls"], _current["nbytes"]


@pytest.mark.parametrize("op,dtype,shape,axis,impl", PARAMS)
def test_cpu(benchmark, op, dtype, shape, axis, impl):
    calls, nbytes = _calls(op, dtype, shape, axis)
    benchmark.group = f"{op} {dtype} {'x'.join(map(str, shape))} axis={axis}"
    moved = 2 * nbytes if impl in ("np.copyto", "copy (threads)") else B.traffic_bytes(op, nbytes)
    benchmark.extra_info.update(bytes_moved=moved, impl=impl)
    # ~0.2 GB per round, at most 20000 calls (a 1x10 call: 2.5M calls at 200 MB would take minutes)
    benchmark.pedantic(calls[impl], rounds=7, warmup_rounds=1,
                       iterations=min(20000, max(1, int(2e8 // max(moved, 1)))))
    _medians.setdefault((op, dtype, shape, axis), {})[impl] = benchmark.stats.stats.median


def _as_results():
    """The run's medians as ``nbsoftmax bench`` result dicts (what issue_figures reads)."""
    results = []
    for (op, dtype, shape, axis), times in _medians.items():
        if "nbsoftmax" not in times:
            continue
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        moved = B.traffic_bytes(op, nbytes)
        copy = max((2 * nbytes / times[c] for c in ("np.copyto", "copy (threads)") if c in times),
                   default=float("nan"))
        best = times.get("nbsoftmax out=", times["nbsoftmax"])
        results.append({
            "op": op, "dtype": dtype, "shape": list(shape), "axis": axis, "times_s": times,
            "gb_per_s_out": moved / best / 1e9, "copy_gb_per_s": copy / 1e9,
            "of_copy": moved / best / copy,
            "speedup": {name: t / times["nbsoftmax out=" if name.endswith("out=") else "nbsoftmax"]
                        for name, t in times.items() if not name.startswith(("nbsoftmax", "np.",
                                                                              "copy"))}})
    return results


def test_issue_figures(capsys):
    """Runs last (file order): the CPU speed table's figures from this run's medians."""
    from nbsoftmax.cli.bench_report import issue_figures

    with capsys.disabled():
        print("\n" + "\n".join(issue_figures(_as_results())))
