"""Device arrays in and out: the CUDA Array Interface, results of the input's kind, streams.

Any object exposing ``__cuda_array_interface__`` (numba ``DeviceNDArray``, CuPy arrays,
PyTorch CUDA tensors, ...) is read through its interface into a ``Described`` record: shape,
byte strides, dtype, pointer, exported stream. The kernels then see flat 1-D numba views of
that memory (``flat_view``): made with ``sync=False``, because the work is enqueued on the
exported stream itself instead of the host waiting for it (what CAI v3 asks of a consumer).

Results are allocated by the input's own library (``allocate``), so a CuPy input gives a
CuPy array from CuPy's memory pool, a tensor a tensor from PyTorch's caching allocator, and
anything else a numba ``DeviceNDArray``; there is no copy on the way out.

Under the CUDA simulator device arrays are numba's ``FakeCUDAArray`` wrappers of NumPy
arrays, which have no ``__cuda_array_interface__``; the same records are made from the NumPy
array they wrap, and flat views from its pointer, so the rest of the package is unchanged.
"""

import math

import numpy as np

from ._runtime import SIMULATOR, cuda

if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
else:
    FakeCUDAArray = ()
if cuda is not None and not SIMULATOR:
    from numba.cuda.cudadrv.devicearray import DeviceNDArray, is_contiguous
else:
    DeviceNDArray = is_contiguous = None


class Described:
    """What the CUDA Array Interface says about one device array."""

    __slots__ = ("obj", "kind", "shape", "strides", "dtype", "ptr", "readonly", "stream")

    def __init__(self, obj, kind, shape, strides, dtype, ptr, readonly, stream):
        self.obj = obj
        self.kind = kind
        self.shape = shape
        self.strides = strides
        self.dtype = dtype
        self.ptr = ptr
        self.readonly = readonly
        self.stream = stream

    @property
    def size(self):
        return math.prod(self.shape)


def is_device(obj):
    """Whether obj is a CUDA device array (or a simulator device array)."""
    return hasattr(obj, "__cuda_array_interface__") or isinstance(obj, FakeCUDAArray)


def c_strides(shape, itemsize):
    strides = []
    step = itemsize
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))


def _kind(obj):
    module = type(obj).__module__.partition(".")[0]
    return module if module in ("cupy", "torch") else "numba"


def describe(obj, name):
    """The ``Described`` record of device array obj (argument ``name`` for messages)."""
    if isinstance(obj, FakeCUDAArray):
        a = obj._ary
        _check_native(a.dtype, name)
        return Described(obj, "numba", a.shape, a.strides, a.dtype,
                         a.__array_interface__["data"][0], not a.flags.writeable, None)
    if type(obj) is DeviceNDArray:
        return _describe_numba(obj, name)
    cai = obj.__cuda_array_interface__
    if cai.get("mask") is not None:
        raise TypeError(f"{name} is a masked CUDA array; masks are not supported")
    shape = tuple(cai["shape"])
    dtype = np.dtype(cai["typestr"])
    _check_native(dtype, name)
    strides = cai.get("strides")
    strides = c_strides(shape, dtype.itemsize) if strides is None else tuple(strides)
    ptr, readonly = cai["data"]
    return Described(obj, _kind(obj), shape, strides, dtype, ptr, bool(readonly),
                     cai.get("stream") if cai.get("version", 0) >= 3 else None)


def _describe_numba(obj, name):
    """``describe`` of a numba ``DeviceNDArray`` from its attributes: what its
    ``__cuda_array_interface__`` says (~5 us to build that dict), without the dict."""
    dtype = obj.dtype
    _check_native(dtype, name)
    shape = obj.shape
    strides = c_strides(shape, dtype.itemsize) if is_contiguous(obj) else obj.strides
    gpu_data = obj.gpu_data
    ptr = (gpu_data.device_pointer_value or 0) if obj.size else 0
    stream = obj.stream
    return Described(obj, "numba", shape, strides, dtype, ptr, False,
                     stream_handle(stream) if stream else None)


def common_device(named):
    """The ordinal of the device holding the device arrays among ``(name, object)`` pairs
    (None when there are none); ValueError when they are on different devices."""
    from ._runtime import pointer_device

    first = None
    for name, obj in named:
        cai = getattr(obj, "__cuda_array_interface__", None)
        if cai is None:
            continue
        device = pointer_device(cai["data"][0])
        if first is None:
            first = (name, device)
        elif device != first[1]:
            raise ValueError(f"{first[0]} is on CUDA device {first[1]} but {name} is on device "
                             f"{device}; pass arrays on one device")
    return None if first is None else first[1]


def _check_native(dtype, name):
    if not dtype.isnative:
        raise TypeError(f"{name} has byte-swapped dtype {dtype.str}; device arrays must be in "
                        "native byte order (byte-swapped arrays are supported on the host)")


def span(shape, strides, itemsize):
    """(byte offset of the lowest element from the pointer, extent in elements)."""
    if math.prod(shape) == 0:
        return 0, 0
    low = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    high = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    return low, (high - low) // itemsize + 1


def overlaps(a, b):
    """Whether the memory of two Described arrays overlaps."""
    if a.size == 0 or b.size == 0:
        return False
    a_low, a_extent = span(a.shape, a.strides, a.dtype.itemsize)
    b_low, b_extent = span(b.shape, b.strides, b.dtype.itemsize)
    a0, b0 = a.ptr + a_low, b.ptr + b_low
    return a0 < b0 + b_extent * b.dtype.itemsize and b0 < a0 + a_extent * a.dtype.itemsize


class _HostInterface:
    """A NumPy array over raw host memory (the simulator's stand-in for device memory)."""

    def __init__(self, ptr, size, dtype, owner):
        self.owner = owner
        self.__array_interface__ = {"shape": (size,), "typestr": dtype.str,
                                    "data": (ptr, False), "version": 3}


def flat_view(ptr, size, dtype, owner):
    """A 1-D numba device array of ``size`` elements of dtype at device address ptr."""
    if SIMULATOR:
        return FakeCUDAArray(np.asarray(_HostInterface(ptr, size, dtype, owner)))
    desc = {"shape": (size,), "strides": None, "data": (ptr, False), "typestr": dtype.str,
            "version": 3}
    return cuda.from_cuda_array_interface(desc, owner=owner, sync=False)


def strided_view(d):
    """(flat view from d's lowest address, element strides, flat index of d[0, ..., 0])."""
    low, extent = span(d.shape, d.strides, d.dtype.itemsize)
    flat = flat_view(d.ptr + low, max(extent, 1), d.dtype, d.obj)
    itemsize = d.dtype.itemsize
    return flat, tuple(s // itemsize for s in d.strides), -low // itemsize


_TORCH_DTYPES = {}


def allocate(like, shape, strides, dtype, stream):
    """A new device array (the kind of Described ``like``) with the given dense byte strides.

    Returns ``(array, flat)``: the user-facing object and a flat numba view of its memory in
    stride order.
    """
    size = math.prod(shape)
    if like.kind == "torch":
        import torch

        # Allocated on torch's current stream (where the caller will use it); marked as
        # used on the call's stream too when that differs (see call_stream).
        if not _TORCH_DTYPES:
            _TORCH_DTYPES.update({np.dtype(np.float16): torch.float16,
                                  np.dtype(np.float32): torch.float32,
                                  np.dtype(np.float64): torch.float64,
                                  np.dtype(np.int64): torch.int64})
        obj = torch.empty_strided(shape, [s // dtype.itemsize for s in strides],
                                  dtype=_TORCH_DTYPES[dtype], device=like.obj.device)
        handle = stream_handle(stream)
        if not SIMULATOR and _torch_current(like) != handle:
            obj.record_stream(_torch_stream(handle, obj.device))
        return obj, flat_view(obj.data_ptr(), size, dtype, obj)
    if like.kind == "cupy":
        import cupy

        # CuPy's pool has no record_stream: allocate on the stream the kernels write on, so
        # that the memory, once freed, is reused only by work ordered after them.
        handle = stream_handle(stream)
        if handle == cupy.cuda.get_current_stream().ptr:
            buf = cupy.empty(size, dtype)
        else:
            with (cupy.cuda.Stream.null if handle == 0 else cupy.cuda.ExternalStream(handle)):
                buf = cupy.empty(size, dtype)
        obj = cupy.ndarray(shape, dtype, memptr=buf.data, strides=strides)
        return obj, flat_view(buf.data.ptr, size, dtype, buf)
    if SIMULATOR:
        buf = np.empty(size, dtype)
        obj = FakeCUDAArray(np.lib.stride_tricks.as_strided(buf, shape, strides))
        return obj, FakeCUDAArray(buf)
    if not size:
        flat = cuda.device_array(size, dtype, stream=allocation_stream(stream))
        return flat.reshape(shape) if shape else flat, flat
    from . import _pool

    handle = stream_handle(stream)
    bound = stream if handle else 0
    obj = _pool.device_array(shape, strides, dtype, handle, bound)
    # the flat view shares obj's pooled memory (its MemoryPointer), so the block returns to
    # the pool only when both are gone
    return obj, _pool.array_over(obj.gpu_data, (size,), (dtype.itemsize,), dtype, bound)


def temporary(shape, dtype, stream):
    """A flat C-ordered numba device buffer for staging (never returned to the caller)."""
    size = max(math.prod(shape), 1)
    if SIMULATOR:
        return FakeCUDAArray(np.empty(size, dtype))
    from . import _pool

    handle = stream_handle(stream)
    return _pool.device_array((size,), (np.dtype(dtype).itemsize,), dtype, handle,
                              stream if handle else 0)


# ------------------------------------------------------------------ streams
#
# Handles as the CUDA Array Interface uses them: 1 the legacy default stream, 2 the
# per-thread default stream, 0 numba's default stream (the legacy one unless cuda-python
# runs in per-thread mode), anything else a created stream.

_external_streams = {}


def stream_handle(stream):
    """The raw handle of a numba stream (0 for the default stream), without ``int(stream)``:
    numba-cuda 0.30's ``Stream.__int__`` returns an enum for the default stream, which
    Python deprecates (a DeprecationWarning on every call)."""
    if not stream:
        return 0
    handle = getattr(stream, "handle", stream)
    return int(handle) if handle else 0


def allocation_stream(stream):
    """The ``stream=`` to give numba's allocators: 0 for the default stream. A numba array
    bound to the default stream *object* exports its stream through ``int(stream)`` in its
    ``__cuda_array_interface__`` (a DeprecationWarning in numba-cuda 0.30, and the handle 0
    that the interface forbids) whenever it is passed on."""
    return stream if stream_handle(stream) else 0


_default_streams = {}


def default_stream():
    """numba-cuda's default stream object, one per device: ``cuda.default_stream()`` makes a
    new one each call (~30 us with a no-op driver), and numba-cuda's launch-configuration
    cache is keyed by the stream object, so a fresh one also misses that cache."""
    from ._runtime import device_id

    key = device_id()
    stream = _default_streams.get(key)
    if stream is None:
        stream = _default_streams[key] = cuda.default_stream()
    return stream


def _external(handle):
    from ._runtime import device_id

    key = (device_id(), handle)
    stream = _external_streams.get(key)
    if stream is None:
        stream = _external_streams[key] = cuda.external_stream(handle)
    return stream


def _as_stream(stream):
    """numba stream for the ``stream=`` argument: numba Stream, raw handle, CuPy/torch stream."""
    if isinstance(stream, (int, np.integer)):
        return default_stream() if int(stream) == 0 else _external(int(stream))
    for attribute in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
        handle = getattr(stream, attribute, None)
        if handle is not None:
            return _as_stream(int(handle))
    return stream


def _torch_current(d):
    """Handle of torch's current stream on the device of Described torch array d."""
    import torch

    return int(torch.cuda.current_stream(d.obj.device).cuda_stream)


def _producer(d):
    """The stream handle that last wrote d as far as its library tells: the exported CAI v3
    stream, or torch's current stream (torch exports CAI v2, without a stream)."""
    if d.stream is not None:
        return int(d.stream)
    if d.kind == "torch":
        return _torch_current(d)
    return None


def call_stream(stream, arrays):
    """The stream a call's work goes on: ``stream=``, else the one the inputs export (torch:
    its current stream), else numba's default stream.

    The work is ordered after every other stream an argument comes from by an event (the
    host does not wait). Torch arrays used on a stream other than torch's current one are
    marked with ``record_stream``, so that torch's caching allocator does not hand their
    memory out while the kernels still use it.
    """
    if SIMULATOR:
        return 0
    producers = []
    for d in arrays:
        handle = _producer(d)
        if handle is not None and handle not in producers:
            producers.append(handle)
    if stream is not None:
        chosen = _as_stream(stream)
    elif producers:
        chosen = _as_stream(producers[0])
    else:
        chosen = default_stream()
    handle = stream_handle(chosen)
    for producer in producers:
        if producer != handle:
            # Order after the producer's stream without the host waiting for it.
            event = cuda.event(timing=False)
            event.record(stream=_as_stream(producer))
            event.wait(stream=chosen)
    for d in arrays:
        if d.kind == "torch" and _torch_current(d) != handle:
            d.obj.record_stream(_torch_stream(handle, d.obj.device))
    return chosen


def _torch_stream(handle, device):
    import torch

    if handle == 0:
        return torch.cuda.default_stream(device)
    return torch.cuda.ExternalStream(handle, device=device)
