"""CUDA backend: the public functions as numba-cuda kernels, for device arrays and ``device="cuda"``.

The dispatch (``nbsoftmax.dispatch``) checks a call once and hands this backend its plan
(``nbsoftmax.dispatch.plan.Plan``) through five entry points, the same as ``nbsoftmax.cpu``'s:
``forward``, ``backward``, ``reduction``, ``loss`` and ``topk``; users call
``nbsoftmax.softmax`` etc., not these. Importing this package does not touch the GPU;
numba-cuda itself is optional (``pip install "nbsoftmax[cuda12]"``), and without it, or
without a GPU, ``require`` (which the dispatch calls first) raises ``TypeError``.

Modules: ``_api`` (the entry points; device memory: results of the input's kind, staging,
scatter into ``out``), ``_host`` (host plans: copy in, run, copy back), ``_lse_api`` /
``_xent_api`` (logsumexp and cross_entropy on device plans), ``_arrays`` (CUDA Array
Interface, allocation, streams), ``_launch`` (strategy, launch configuration, compiled-kernel
cache), ``_variants`` (every compiled variant: source, signature, launch bounds),
``_workspace`` (scratch of the split kernels per device and stream), ``verify`` (the static
check: every variant compiled for chosen GPUs, registers, spills, shared memory),
``_kernels_*`` (the kernels), ``_intrinsics`` (warp shuffles with the simulator fallback,
reductions), ``_runtime`` (numba-cuda import and device facts), ``_segment_api`` (segment
softmax), ``device`` (device functions for users' kernels).
"""

from ._api import backward, forward, loss, reduction, require, topk  # noqa: F401

__all__ = ["forward", "backward", "reduction", "loss", "topk", "require", "precompile"]


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
