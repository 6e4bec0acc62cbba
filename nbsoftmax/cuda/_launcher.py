"""Prepacked kernel launches: the host path of a repeated GPU call without numba-cuda's launcher.

numba-cuda's ``kernel[grid, block, stream](*args)`` (and the compiled kernel's ``launch``)
repacks every argument on every launch: a device array becomes 5 + 2*ndim ctypes values
after a context check, a ``to_device`` wrapper and a pointer lookup, and the launch goes
through cuda.core's argument handler. With the CUDA driver replaced by a no-op stand-in
(``benchmarks/bench_cuda_host.py``) that is 36-70 us per launch on a 2-core EPYC; a
``cuLaunchKernel`` through cuda.bindings with the kernel parameters already packed is
~2 us.

A ``PackedLaunch`` packs a kernel's arguments once, with numba-cuda's own packing
(``_Kernel._prepare_args``, so the parameter layout is exactly the one the compiled kernel
expects), and later launches only rewrite the data pointers of the array arguments that
change from call to call. Everything else an array argument carries (its size, shape,
strides) is fixed by the plan's key. Plans live in per-thread tables: a launch writes the
packed values and hands them to the driver, which copies them before ``cuLaunchKernel``
returns, so no two threads ever share a packed buffer and no lock is taken.

The current context must be the one the kernel was loaded in: ``thread_ready`` makes sure
numba-cuda has made its context current in the calling thread (once per thread) before a
thread's first prepacked launch; with several GPUs the callers key plans by device.
"""

import ctypes
import threading

import numpy as np

from ._runtime import cuda

_local = threading.local()


def thread_table(name):
    """The calling thread's dict ``name`` (plans, streams), created on first use."""
    table = getattr(_local, name, None)
    if table is None:
        table = {}
        setattr(_local, name, table)
    return table


def thread_ready():
    """Make numba-cuda's context current in this thread (once per thread), as its own
    launcher does before every launch."""
    if not getattr(_local, "ready", False):
        cuda.current_context()
        _local.ready = True


_driver = None


def _binding():
    global _driver
    if _driver is None:
        from cuda.bindings import driver

        _driver = driver
    return _driver


def cu_stream(handle):
    """The cuda.bindings ``CUstream`` of a raw stream handle (0: the default stream)."""
    return _binding().CUstream(handle)


class PackedLaunch:
    """One kernel launch with its arguments packed once.

    Parameters
    ----------
    kernel : numba-cuda dispatcher
        A kernel compiled for exactly one signature (``_runtime.compile_kernel``).
    grid, block : int or tuple
        The launch configuration.
    args : sequence
        The arguments of a first launch, as ``kernel[grid, block](*args)`` takes them.
    moving : sequence of int
        Positions in ``args`` of the array arguments whose data pointer changes from call
        to call; ``__call__`` takes their pointers in this order.
    stream : int
        The raw handle of the stream the launches go to.
    """

    __slots__ = ("function", "grid", "block", "values", "params", "address", "slots",
                 "stream")

    def __init__(self, kernel, grid, block, args, moving, stream):
        (compiled,) = kernel.overloads.values()
        grid = grid if isinstance(grid, tuple) else (grid,)
        block = block if isinstance(block, tuple) else (block,)
        self.grid = tuple(grid) + (1,) * (3 - len(grid))
        self.block = tuple(block) + (1,) * (3 - len(block))
        values, retr, slots = [], [], {}
        for position, (ty, value) in enumerate(zip(compiled.argument_types, args)):
            start = len(values)
            compiled._prepare_args(ty, value, 0, retr, values)
            if position in moving:
                # numba packs an array as meminfo, parent, nitems, itemsize, data, shape...,
                # strides...: the data pointer is the fifth value
                slots[position] = start + 4
        if retr:  # pragma: no cover - host arrays would be copied back; never passed here
            raise TypeError("prepacked launches take device arrays only")
        values = [_as_ctype(v) for v in values]
        self.slots = tuple(values[slots[p]] for p in moving)
        self.values = values
        self.params = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        self.address = ctypes.addressof(self.params)
        self.function = compiled._codelibrary.get_cufunc().handle
        self.stream = cu_stream(stream)

    def __call__(self, pointers):
        for slot, pointer in zip(self.slots, pointers):
            slot.value = pointer
        g, b = self.grid, self.block
        (err,) = _binding().cuLaunchKernel(self.function, g[0], g[1], g[2], b[0], b[1], b[2],
                                           0, self.stream, self.address, 0)
        if err:
            _raise(err)


_kernels = {}  # compiled kernel -> (its overload, argument kinds), per dispatcher


def _compiled(kernel):
    entry = _kernels.get(kernel)
    if entry is None:
        from numba.cuda import types

        (compiled,) = kernel.overloads.values()
        arrays = tuple(isinstance(t, types.Array) for t in compiled.argument_types)
        entry = _kernels[kernel] = (compiled, arrays)
    return entry


def launch_once(kernel, grid, block, args, stream):
    """Launch kernel on args now, packing them as numba-cuda does (arrays as meminfo,
    parent, size, itemsize, data, shape, strides; scalars by ``_Kernel._prepare_args``)
    without its per-launch context checks, ``to_device`` wrappers and cuda.core argument
    handler: for launches whose arrays change every call (staging copies, logsumexp).
    Arguments must be numba device arrays or scalars; ``stream`` is the raw handle."""
    thread_ready()
    compiled, values = pack_now(kernel, args)
    params = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
    grid = grid if isinstance(grid, tuple) else (grid,)
    block = block if isinstance(block, tuple) else (block,)
    g = tuple(grid) + (1,) * (3 - len(grid))
    b = tuple(block) + (1,) * (3 - len(block))
    (err,) = _binding().cuLaunchKernel(compiled._codelibrary.get_cufunc().handle, g[0], g[1],
                                       g[2], b[0], b[1], b[2], 0, cu_stream(stream),
                                       ctypes.addressof(params), 0)
    if err:
        _raise(err)


def pack_now(kernel, args):
    """(the kernel's overload, the ctypes values of its parameters) for args."""
    from numba.cuda.cudadrv.devicearray import DeviceNDArray, is_contiguous

    compiled, arrays = _compiled(kernel)
    values, retr = [], []
    c = ctypes.c_ssize_t
    for ty, value, is_array in zip(compiled.argument_types, args, arrays):
        if is_array and type(value) is DeviceNDArray:
            itemsize = value.dtype.itemsize
            strides = value.strides
            if is_contiguous(value):  # numba passes C strides computed from the shape
                strides, step = [], itemsize
                for extent in reversed(value.shape):
                    strides.append(step)
                    step *= extent
                strides.reverse()
            values += [c(0), c(0), c(value.size), c(itemsize),
                       c(value.device_ctypes_pointer.value or 0)]
            values += [c(e) for e in value.shape]
            values += [c(e) for e in strides]
        else:
            scalars = []
            compiled._prepare_args(ty, value, 0, retr, scalars)
            values += [_as_ctype(v) for v in scalars]
    if retr:  # pragma: no cover - host arrays would be copied back; never passed here
        raise TypeError("launch_once takes device arrays only")
    return compiled, values


def record(enqueue, views, stream):
    """The ``(PackedLaunch, pointer positions)`` pairs of the launches ``enqueue(configure)``
    makes, each packed on its first call; ``views`` are the flat device views whose
    pointers a later call replaces (by position), ``stream`` the raw stream handle."""
    thread_ready()
    launches = []

    def configure(kernel, grid, block, _stream):
        def pack(*args):
            moving = [i for i, a in enumerate(args) if any(a is v for v in views)]
            picks = tuple(next(j for j, v in enumerate(views) if v is args[i]) for i in moving)
            launches.append((PackedLaunch(kernel, grid, block, args, moving, stream), picks))

        return pack

    enqueue(configure)
    return tuple(launches)


def _as_ctype(value):
    """numba-cuda packs array sizes, shapes, strides and pointers as plain ints, which
    cuda.core passes as ``intptr_t``, and booleans as ``bool``; the rest are ctypes already."""
    if isinstance(value, (bool, np.bool_)):
        return ctypes.c_bool(bool(value))
    if isinstance(value, (int, np.integer)):
        return ctypes.c_ssize_t(int(value))
    return value


def _raise(err):
    from numba.cuda.cudadrv.driver import CudaAPIError

    raise CudaAPIError(int(err), f"cuLaunchKernel failed: {err!r}")
