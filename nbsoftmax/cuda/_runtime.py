"""numba-cuda, imported on the first GPU call: availability checks and device facts.

Nothing here runs at ``import nbsoftmax``: the dispatch layer imports ``nbsoftmax.cuda`` only
when a call asks for the GPU, and ``require()`` turns every way of not having one (no
numba-cuda, no driver, no device, no compiler toolchain) into the ``TypeError`` the public
API documents, with what to install.

Device facts are per device (``device_id()``): a process may drive several GPUs, and a
call runs on the device that holds its arrays (``_api.on_device``).
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
    if not SIMULATOR:
        problem = toolchain_problem()
        if problem is not None:
            raise TypeError(f"a CUDA device is available but {problem}; {_INSTALL_HINT}")
    _checked = True


def toolchain_problem():
    """Why numba-cuda cannot compile kernels here (a phrase), or None when it can.

    numba-cuda compiles with libNVVM and links libdevice, both from the CUDA toolkit
    (the ``nvidia-nvvm`` / ``nvidia-cuda-nvcc-cu12`` wheels of the ``[cuda12]``/``[cuda13]``
    extras, or a system toolkit). Without them ``is_available()`` is still True and every
    first call would fail deep inside the compiler.
    """
    try:
        from numba.cuda.cudadrv import libs, nvvm
    except ImportError as exc:  # pragma: no cover - a numba-cuda without these modules
        return f"numba-cuda's compiler modules cannot be imported ({exc})"
    try:
        if not nvvm.is_available():
            return "libNVVM (the CUDA compiler library numba-cuda needs) was not found"
        nvvm.NVVM()
    except Exception as exc:  # noqa: BLE001 - any failure to load the library says the same
        return f"libNVVM cannot be loaded ({' '.join(str(exc).split())})"
    try:
        libs.get_libdevice()
    except Exception as exc:  # noqa: BLE001
        return f"libdevice (the CUDA math library) was not found ({' '.join(str(exc).split())})"
    return None


def device_id():
    """Ordinal of the calling thread's current CUDA device (0 under the simulator and in a
    process that sees one GPU: asking numba-cuda costs ~17 us per call, the price of a
    whole launch)."""
    if SIMULATOR or _device_count() < 2:
        return 0
    return cuda.get_current_device().id


@functools.cache
def _device_count():
    return len(cuda.gpus)


def pointer_device(ptr):
    """Ordinal of the device that holds device address ptr (the current one for a single GPU).

    Unified addressing makes every device pointer unique in the process; the driver says
    which device it belongs to.
    """
    if SIMULATOR or not ptr or _device_count() < 2:
        return device_id()
    from cuda.bindings import driver as drv

    err, ordinal = drv.cuPointerGetAttribute(
        drv.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, ptr)
    if err != drv.CUresult.CUDA_SUCCESS:
        return device_id()  # host or managed memory: no better choice than the current device
    return int(ordinal)


@functools.cache
def _multiprocessor_count(device):
    return cuda.gpus[device].MULTIPROCESSOR_COUNT


def multiprocessor_count():
    """SMs of the current device, read once per device (1 under the simulator, which runs
    blocks serially)."""
    if SIMULATOR:
        return 1
    return _multiprocessor_count(device_id())


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


def compile_kernel(fn, signature, launch_bounds):
    """Compile ``fn`` now for the one ``signature``, cached on disk (the simulator interprets it).

    ``launch_bounds`` (max threads per block, optionally min blocks per SM) is required:
    ptxas then keeps the registers within what that block size may use, so a launch of up
    to that many threads can always start (``nbsoftmax.cuda.verify`` checks it per variant).
    """
    if SIMULATOR:
        return cuda.jit(signature)(fn)
    return cuda.jit(signature, cache=True, launch_bounds=launch_bounds)(fn)
