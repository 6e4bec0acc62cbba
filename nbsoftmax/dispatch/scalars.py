"""NumPy's convention for 0-d results: a NumPy scalar, unless ``out=`` was given.

NumPy's reductions and SciPy's functions return ``np.float64(...)`` rather than a 0-d array
for a full reduction or a 0-d input (``np.sum([1.0])``, ``scipy.special.logsumexp([])``,
``scipy.special.softmax(1000.0)``); the public functions do the same, and return ``out``
itself when one was given. Device arrays and torch tensors are left as they are.
"""

import numpy as np


def scalar_if_0d(result, out=None):
    """result[()] for a 0-d ndarray result when out is None; else result unchanged. Tuples
    (logsumexp with return_sign, cross_entropy with return_grad) convert their 0-d parts."""
    if out is not None:
        return result
    if type(result) is np.ndarray:
        return result[()] if result.ndim == 0 else result
    if type(result) is tuple:
        return tuple(r[()] if type(r) is np.ndarray and r.ndim == 0 else r for r in result)
    return result
