"""CPU benchmark matrix (pytest-benchmark): nbsoftmax side by side with its peers.

Run: ``python -m pip install -e ".[bench]" && python -m pytest benchmarks/test_cpu.py``
(``-k "float32 and softmax-"`` etc. to select; add torch / jax to compare with them).

Every case (operation x dtype x shape/axis) is one pytest-benchmark group holding
nbsoftmax (allocating and with ``out=``), every importable peer from the shared table
``nbsoftmax.cli.bench_peers.peer_calls`` and the copy roofline of the same bytes; ``conftest.py``
prints GB/s and speedup ratios per group at the end of the run.
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
    benchmark.pedantic(calls[impl], rounds=7, warmup_rounds=1,
                       iterations=max(1, int(2e8 // max(moved, 1))) if moved < 2e8 else 1)
