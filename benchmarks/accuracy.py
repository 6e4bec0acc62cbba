"""Accuracy of softmax / log_softmax against np.longdouble, as fractions of the core issue's
bounds, next to SciPy and torch (when importable).

Run: ``python benchmarks/accuracy.py`` (from the repository root). The bounds and the error
measures are those of ``tests/checks.py``, which ``tests/test_accuracy.py`` asserts.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import scipy.special

import nbsoftmax
from tests import checks
try:
    import torch

    torch.set_num_threads(2)
except ImportError:
    torch = None
rng = np.random.default_rng(1)
rows = []
for dt in (np.float32, np.float64):
    for scale, shape, axis in [(8, (512, 1000), -1), (30, (64, 4097), -1), (8, (4, 300000), -1), (8, (2000, 64), 0), (4, (5000, 10), -1)]:
        x = (rng.standard_normal(shape) * scale).astype(dt)
        impls = {"nbsoftmax": (lambda x: nbsoftmax.softmax(x, axis=axis), lambda x: nbsoftmax.log_softmax(x, axis=axis)),
                 "scipy": (lambda x: scipy.special.softmax(x, axis=axis), lambda x: scipy.special.log_softmax(x, axis=axis)),
                 "torch": (lambda x: torch.softmax(torch.from_numpy(x), axis).numpy(), lambda x: torch.log_softmax(torch.from_numpy(x), axis).numpy())}
        if torch is None:
            del impls["torch"]
        for name, (sm, lsm) in impls.items():
            r, rel = checks.softmax_error(sm(x), x, axis)
            lr, err = checks.log_softmax_error(lsm(x), x, axis)
            rs, rse = checks.row_sum_error(nbsoftmax.softmax(x, axis=axis) if name == "nbsoftmax" else sm(x), axis)
            rows.append((np.dtype(dt).name, f"{shape} axis={axis} sd={scale}", name, rel, r, err, lr, rse))
print(f"{'dtype':8s} {'input':32s} {'impl':10s} {'softmax max rel err':>20s} {'of bound':>9s} {'log_softmax max abs err':>24s} {'of bound':>9s} {'|row sum-1|':>12s}")
for d, inp, name, rel, r, err, lr, rse in rows:
    print(f"{d:8s} {inp:32s} {name:10s} {rel:20.3g} {r:9.2f} {err:24.3g} {lr:9.2f} {rse:12.2g}")
