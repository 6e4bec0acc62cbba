"""numba-cuda, imported on the first GPU call: availability checks and device facts.

Nothing here runs at ``import nbsoftmax``: the dispatch layer imports ``nbsoftmax.cuda`` only
when a call asks for the GPU, and ``require()`` turns every way of not having one (no
numba-cuda, no driver, no device) into the ``TypeError`` the public API documents.
"""

import functools

_INSTALL_HINT = 'install the GPU extra: pip install "nbsoftmax[cuda12]" (or "[cuda13]")'

try:
    from numba import cuda
except ImportError as exc:  # numba-cuda is an optional extra
    cuda = None
    SIMULATOR = False
    _IMPORT_ERROR = exc
else:
    # What numba.cuda was built as at its import (the config may be re-read since).
    SIMULATOR = cuda.is_available.__module__.endswith("simulator_init")
    _IMPORT_ERROR = None

_checked = False


def require():
    """Raise TypeError unless a CUDA device (or the simulator) can run kernels."""
    global _checked
    if _checked:
        return
    if cuda is None:
        raise TypeError(
            f"a CUDA device was requested but numba-cuda is not installed ({_IMPORT_ERROR}); "
            f"{_INSTALL_HINT}"
        )
    if not cuda.is_available():
        raise TypeError(
            "a CUDA device was requested but none is available (numba-cuda reports: "
            f"{' '.join(str(cuda.cuda_error() or 'no CUDA GPU found').split())})"
        )
    _checked = True


@functools.cache
def multiprocessor_count():
    """SMs of the current device, read once (1 under the simulator, which runs blocks serially)."""
    if SIMULATOR:
        return 1
    return cuda.get_current_device().MULTIPROCESSOR_COUNT


def device_function(fn):
    """``cuda.jit(device=True)``, always inlined on a GPU (the simulator takes no such option).

    Without numba-cuda the plain function is returned, so that the kernel modules still
    import (for documentation tools and doctest collection); nothing can launch them then.
    """
    if cuda is None:
        return fn
    if SIMULATOR:
        return cuda.jit(device=True)(fn)
    return cuda.jit(device=True, forceinline=True)(fn)


def compile_kernel(fn, signature, launch_bounds=None):
    """Compile ``fn`` now for the one ``signature``, cached on disk (the simulator interprets it)."""
    if SIMULATOR:
        return cuda.jit(signature)(fn)
    return cuda.jit(signature, cache=True, launch_bounds=launch_bounds)(fn)
