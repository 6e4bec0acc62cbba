"""Scratch buffers of the split kernels (partial statistics), one per device and real stream.

A per-call allocation would go through ``cuMemAlloc``/``cuMemFree``, which can synchronise
the device, so each (device, stream) keeps one float64 buffer, grown as needed. Two rules
keep that safe:

- The key is the *real* stream. The per-thread default stream (handle 2, or handle 0 when
  cuda-python runs in per-thread mode) is a different stream in every host thread, so its
  buffers are kept per thread (``threading.local``): a shared buffer there would be written
  by two threads' kernels at once. Legacy-default and created streams are keyed by handle.
- A buffer outgrown while kernels that use it may still be queued is not freed at once
  (a stream-ordered allocator could hand it out again): it is retired with an event
  recorded on its stream and dropped when the event has completed.

Every use holds the buffer's lock from taking it until its launches are enqueued, so the
STATS/APPLY pair of one call never interleaves with another call's on a shared stream.
"""

import threading

import numpy as np

from ._arrays import allocation_stream, stream_handle
from ._runtime import SIMULATOR, cuda, device_id
from .._threading import ForkSafeLock

PER_THREAD_HANDLES = frozenset({0, 2})
MIN_ELEMENTS = 1024


class Workspace:
    """A growable float64 device buffer for one (device, stream), with its lock."""

    __slots__ = ("buffer", "lock", "retired")

    def __init__(self):
        self.buffer = None
        self.lock = ForkSafeLock()
        self.retired = []  # (event, buffer) of outgrown buffers, until their stream passes

    def take(self, size, stream):
        """The buffer, at least ``size`` elements; call with ``self.lock`` held."""
        self.retired = [(e, b) for e, b in self.retired if not e.query()]
        if self.buffer is None or self.buffer.size < size:
            if self.buffer is not None and not SIMULATOR:
                event = cuda.event(timing=False)
                event.record(stream=stream)
                self.retired.append((event, self.buffer))
            self.buffer = _allocate(max(size, MIN_ELEMENTS), stream)
        return self.buffer


def _allocate(size, stream):
    return cuda.device_array(size, np.float64, stream=allocation_stream(stream))


_shared = {}
_local = threading.local()
_lock = ForkSafeLock()  # a forked child gets it fresh (nbsoftmax._threading)


def workspace(stream):
    """The Workspace of the calling thread's real stream ``stream`` on the current device."""
    handle = 0 if SIMULATOR else stream_handle(stream)
    key = (device_id(), handle)
    if handle in PER_THREAD_HANDLES:
        table = getattr(_local, "table", None)
        if table is None:
            table = _local.table = {}
        entry = table.get(key)
        if entry is None:
            entry = table[key] = Workspace()
        return entry
    entry = _shared.get(key)
    if entry is None:
        with _lock:
            entry = _shared.setdefault(key, Workspace())
    return entry
