"""CUDA backend: the public functions as numba-cuda kernels, for device arrays and ``device="cuda"``.

``nbsoftmax.dispatch.core`` calls these with the public functions' arguments when an argument
exposes ``__cuda_array_interface__`` (numba, CuPy, PyTorch CUDA) or the caller passed
``device="cuda"``; users call ``nbsoftmax.softmax`` etc., not these. Importing this package
does not touch the GPU; numba-cuda itself is optional (``pip install "nbsoftmax[cuda12]"``),
and without it, or without a GPU, every function here raises ``TypeError``.

Modules: ``_api`` (validation, layouts, staging, results of the input's kind), ``_arrays``
(CUDA Array Interface, allocation, streams), ``_launch`` (strategy, launch configuration,
compiled-kernel cache), ``_variants`` (every compiled variant: source, signature, launch
bounds), ``_workspace`` (scratch of the split kernels per device and stream), ``verify`` (the
static check: every variant compiled for chosen GPUs, registers, spills, shared memory),
``_kernels_warp`` / ``_kernels_block`` / ``_kernels_columns`` /
``_kernels_copy`` (the kernels), ``_intrinsics`` (warp shuffles with the simulator fallback,
reductions), ``_runtime`` (numba-cuda import and device facts).
"""

from . import _api

# temperature=/where= calls, cross_entropy, softmax_topk: routed here by nbsoftmax.dispatch.core
from ._api import (  # noqa: E402,F401
    cross_entropy,
    masked_logsumexp,
    scaled,
    scaled_backward,
    softmax_topk,
)
from ._lse_api import logsumexp_backward, logsumexp_general  # noqa: E402,F401

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_backward",
    "log_softmax_backward",
    "logsumexp",
    "precompile",
]


def softmax(x, axis=-1, *, dtype=None, out=None, device=None, stream=None):
    """`nbsoftmax.softmax` on the GPU; the result is of x's kind (numba, CuPy, torch) or ``out``.

    Parameters
    ----------
    x, axis, dtype, out, device, stream
        As for `nbsoftmax.softmax`; ``out`` may be any device array of the result's shape
        and dtype.

    Returns
    -------
    device array or numpy.ndarray
        Of x's kind for device input, a NumPy array for host input with ``device="cuda"``.

    Raises
    ------
    TypeError
        numba-cuda or a GPU is missing; host and device arrays are mixed; bad dtype.
    """
    return _api.elementwise("softmax", x, axis, dtype, out, device, stream)


def log_softmax(x, axis=-1, *, dtype=None, out=None, device=None, stream=None):
    """`nbsoftmax.log_softmax` on the GPU (arguments and results as for `softmax`).

    Parameters
    ----------
    x, axis, dtype, out, device, stream
        As for `nbsoftmax.log_softmax`.

    Returns
    -------
    device array or numpy.ndarray
        As for `softmax`.
    """
    return _api.elementwise("log_softmax", x, axis, dtype, out, device, stream)


def logsumexp(x, axis=-1, *, keepdims=False, device=None, stream=None):
    """`nbsoftmax.logsumexp` on the GPU; the reduced result is of x's kind.

    Parameters
    ----------
    x, axis, keepdims, device, stream
        As for `nbsoftmax.logsumexp`.

    Returns
    -------
    device array or numpy.ndarray
        The reduced array, of x's kind.
    """
    return _api.logsumexp(x, axis, keepdims, device, stream)


def softmax_backward(grad_output, output, axis=-1, *, out=None, device=None, stream=None):
    """`nbsoftmax.softmax_backward` on the GPU, one fused kernel per slice strategy.

    Parameters
    ----------
    grad_output, output, axis, out, device, stream
        As for `nbsoftmax.softmax_backward`; both inputs on the GPU or both on the host.

    Returns
    -------
    device array or numpy.ndarray
        Of grad_output's kind.
    """
    return _api.backward("softmax_backward", grad_output, output, axis, out, device, stream)


def log_softmax_backward(grad_output, output, axis=-1, *, out=None, device=None, stream=None):
    """`nbsoftmax.log_softmax_backward` on the GPU, one fused kernel per slice strategy.

    Parameters
    ----------
    grad_output, output, axis, out, device, stream
        As for `nbsoftmax.log_softmax_backward`.

    Returns
    -------
    device array or numpy.ndarray
        Of grad_output's kind.
    """
    return _api.backward("log_softmax_backward", grad_output, output, axis, out, device, stream)


def precompile(ops=("softmax", "log_softmax", "logsumexp", "softmax_backward",
                    "log_softmax_backward"), dtypes=("float32", "float16", "float64")):
    """Compile (or load from the on-disk cache) every GPU kernel variant of ops for dtypes.

    A first call otherwise compiles the variants it needs (about a second each); this
    does all of them, e.g. when building an image on a GPU machine.

    Parameters
    ----------
    ops : sequence of str
        Public function names.
    dtypes : sequence of dtype-like
        float16, float32 and/or float64.

    Raises
    ------
    TypeError
        numba-cuda or a GPU is missing.
    """
    import numpy as np

    from . import _launch, _runtime, _variants

    _runtime.require()
    wanted = {np.dtype(d) for d in dtypes}
    for key in _variants.all_keys():
        if key[0] in ("warp", "block", "columns") and key[1] in ops and key[-1] in wanted:
            _launch.get(key)
