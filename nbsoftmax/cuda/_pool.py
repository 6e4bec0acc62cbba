"""Pooled device memory for the numba ``DeviceNDArray`` results of GPU calls.

``cuda.device_array`` costs 35-65 us of host time per call even with a no-op driver (the
context checks, ``cuMemAlloc`` through numba-cuda's memory manager, a finaliser), and a real
``cuMemAlloc``/``cuMemFree`` pair can synchronise the device. Results of CuPy and torch
inputs come from those libraries' own caching allocators (``_arrays.allocate``); this is
the same idea for numba results:

- Blocks are kept in size classes (four per power of two, so at most 25% is unused),
  per (device, stream, host thread). A block is handed out again only for work on the
  stream it was last used on, in stream order after that work: the guarantee CuPy's pool
  and ``cudaMallocAsync`` give. Work the caller enqueues on *other* streams with a result
  must be ordered before the result is dropped, as with those allocators.
- A block returns to its free list when the last array (or view) over it is garbage
  collected: the array's ``MemoryPointer`` finaliser puts it back. At most
  ``KEEP_PER_CLASS`` blocks wait per class; the rest go back to numba-cuda, which frees
  them. ``clear()`` drops every waiting block.
- The array object is a copy of a template made once per (shape, strides, dtype): building
  a ``DeviceNDArray`` through its constructor costs ~4 us of shape checks per call.

The per-thread free lists make the default streams safe: the per-thread default stream is
a different stream in every thread (``_workspace`` explains the handles).
"""

import functools
import math

import numpy as np

from ._launcher import thread_table
from ._runtime import cuda, device_id

KEEP_PER_CLASS = 4
_MIN_BYTES = 512
_all_lists = []  # every free list made, for clear()
_templates = {}


def size_class(nbytes):
    """Bytes of the block that serves a request of nbytes: 512 or more, rounded up to a
    quarter of its power of two."""
    nbytes = max(int(nbytes), _MIN_BYTES)
    quarter = 1 << max((nbytes - 1).bit_length() - 3, 0)
    return -(-nbytes // quarter) * quarter


def _give_back(free, base):
    if len(free) < KEEP_PER_CLASS:
        free.append(base)


MemoryPointer = DeviceNDArray = None  # numba-cuda's classes, bound on first use


def _bind():
    global MemoryPointer, DeviceNDArray
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numba.cuda.cudadrv.driver import MemoryPointer


def _memory(nbytes, handle):
    """A numba ``MemoryPointer`` of nbytes from the pool of stream ``handle``, whose
    finaliser returns its block to the pool."""
    if MemoryPointer is None:
        _bind()
    block = size_class(nbytes)
    key = (device_id(), handle, block)
    table = thread_table("pool")
    free = table.get(key)
    if free is None:
        free = table[key] = []
        _all_lists.append(free)
    try:
        base = free.pop()
    except IndexError:
        base = cuda.current_context().memalloc(block)
    return MemoryPointer(base.context, base.device_pointer, nbytes, owner=base,
                         finalizer=functools.partial(_give_back, free, base))


def device_array(shape, strides, dtype, stream_handle, stream=0):
    """A ``DeviceNDArray`` of shape, byte strides (dense) and dtype over a pooled block used
    on the stream of raw handle ``stream_handle``; ``stream`` is the stream object the
    array is bound to (as ``cuda.device_array(..., stream=)``; 0 for the default stream)."""
    dtype = np.dtype(dtype)
    nbytes = max(1, math.prod(shape)) * dtype.itemsize
    return array_over(_memory(nbytes, stream_handle), shape, strides, dtype, stream)


def array_over(memory, shape, strides, dtype, stream=0):
    """A ``DeviceNDArray`` of shape, byte strides and dtype over numba ``MemoryPointer``
    memory, bound to ``stream``."""
    if DeviceNDArray is None:
        _bind()
    key = (tuple(shape), tuple(strides), dtype)
    template = _templates.get(key)
    if template is None:
        array = DeviceNDArray(shape, strides, dtype, stream=stream, gpu_data=memory)
        template = _templates[key] = {k: v for k, v in vars(array).items() if k != "gpu_data"}
        return array
    array = DeviceNDArray.__new__(DeviceNDArray)
    vars(array).update(template)
    array.gpu_data = memory
    array.stream = stream
    return array


def clear():
    """Drop every block waiting in the pools (numba-cuda frees them); arrays in use keep
    theirs and return them when they are collected."""
    for free in _all_lists:
        del free[:]
