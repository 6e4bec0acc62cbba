"""The call plan: what the dispatch decided about one call, handed to a backend as is.

The dispatch validates and normalises a call exactly once, whatever the device, into a
``Plan``; a backend (``nbsoftmax.cpu`` or ``nbsoftmax.cuda``) reads it and checks nothing.
Every backend has the same five entry points that take a plan: ``forward`` (softmax,
log_softmax, with or without ``where=``/``temperature=``), ``backward`` (their gradients and
logsumexp's), ``reduction`` (logsumexp), ``loss`` (cross_entropy) and ``topk``.

Host arrays (``device == "cpu"``, or ``"cuda"`` with host input, ``host`` true): ``inputs`` are
C-contiguous views in the kernels' form, ``(rows, n)`` when the softmax axes are the unit-
stride ones, else ``(outer, n, inner)``, of the result dtype (float16 stays float16: the CPU
backend reads its bits as uint16, the GPU computes it in float32), staged by the dispatch
where the arrays' memory could not be read in place; ``target`` is the view the kernels write,
``result`` what the call returns (``out`` when it could be written in place), and ``out`` the
caller's ``out`` when the result must still be copied into it (its memory could not be viewed
so), else None.

Device arrays (``device == "cuda"``, ``host`` false): ``inputs`` and ``out`` are ``DeviceArray``
descriptors read from ``__cuda_array_interface__`` (no numba-cuda needed to make them);
``target`` and ``result`` are None: the result is allocated on the device by ``nbsoftmax.cuda``,
by the input's own library, with the staging that only the device can do.

A plan is a ``namedtuple`` (immutable, ``__slots__ = ()``): making one costs ~0.2 us, which a
1 x 10 softmax of ~2 us can afford.
"""

import math
from collections import namedtuple

import numpy as np

Plan = namedtuple("Plan", (
    "op",        # "softmax", "log_softmax", "softmax_backward", "log_softmax_backward",
                 # "logsumexp", "logsumexp_backward", "cross_entropy" or "softmax_topk"
    "device",    # "cpu" or "cuda"
    "host",      # True: inputs/target are host ndarrays; False: DeviceArray descriptors
    "inputs",    # tuple of kernel-form views (host) or DeviceArray (device), x or (g, y)
    "target",    # host: the kernel-form view the kernels write (None on the device)
    "result",    # host: the array returned (None on the device: the backend allocates)
    "out",       # host: out to copy result into afterwards, or None; device: out's DeviceArray
    "shape",     # the logical (broadcast) shape of the input
    "axes",      # sorted tuple of the softmax (reduced, class) axes
    "form",      # (outer, n, inner): the slices the kernels see
    "dtype",     # the result dtype (the compute dtype is float32 for float16)
    "in_place",  # host: the kernels read inputs[0] where they write target
    "mask",      # where=: host bool view in the kernels' form; device: DeviceArray; or None
    "scaling",   # None (plain kernels), or the scaled kernels' parameter (sign or temperature)
    "options",   # op-specific extras (a small namedtuple below), or None
    "stream",    # the caller's stream= (device only)
))

# logsumexp: b (weights, an input like x, or None), return_sign, keepdims; host: the reduced
# result's kernel view is the plan's target, and sign_target the sign's (or None).
ReductionOptions = namedtuple("ReductionOptions", "b keepdims return_sign sign sign_target")

# cross_entropy (nbsoftmax.dispatch.loss): target (host: int64 rows or a probabilities view;
# device: its descriptor), weight, the weight sum, the "mean" factor and denominator (host),
# ignoring (an index can match ignore_index), strides (device: the logits' class-last order).
LossOptions = namedtuple("LossOptions", (
    "target", "probabilities", "weight", "wsum", "reduction", "label_smoothing", "ignore_index",
    "ignoring", "factor", "return_grad", "rest_shape", "denominator", "strides"))

# softmax_topk: k and the axis the results keep it on.
TopkOptions = namedtuple("TopkOptions", "k axis")

# Device plans of softmax, log_softmax and the backward passes: the byte strides of the result
# (out's own when write_out: the kernels write out directly; else a new array's), and whether
# the kernels read each input (and the where= mask) in place in that order, or from a staged
# copy (another dtype or order, or memory that the kernels' writes would reach first).
DeviceLayout = namedtuple("DeviceLayout", "strides write_out readable mask_in_place")

# Device plans of logsumexp: b's descriptor, the strides inputs are staged to, the result's
# shape and strides, and whether x and b (and the mask) are read in place.
DeviceReduction = namedtuple("DeviceReduction", "b keepdims return_sign strides result_shape "
                             "result_strides readable mask_in_place")

# Device plans of logsumexp_backward: DeviceLayout's fields, then grad_output seen without the
# reduced axes (shape, its strides) and the strides it is staged to (the slices' order).
GradientLayout = namedtuple("GradientLayout", "strides write_out readable mask_in_place "
                            "rest_shape g_strides g_target_strides")


class DeviceArray:
    """What ``__cuda_array_interface__`` says about one device array (duck-compatible with
    ``nbsoftmax.cuda._arrays.Described``, which the GPU backend uses for its own arrays)."""

    __slots__ = ("obj", "name", "kind", "shape", "strides", "dtype", "ptr", "readonly", "stream")

    def __init__(self, obj, name, kind, shape, strides, dtype, ptr, readonly, stream):
        self.obj, self.name, self.kind = obj, name, kind
        self.shape, self.strides, self.dtype = shape, strides, dtype
        self.ptr, self.readonly, self.stream = ptr, readonly, stream

    @property
    def size(self):
        return math.prod(self.shape)

    def __repr__(self):
        return (f"DeviceArray({self.name}: {self.kind} {self.shape} {self.dtype}, "
                f"strides {self.strides})")


# numba-cuda's DeviceNDArray type once a call has passed one (found by name: the dispatch
# imports no numba-cuda): ``hasattr(obj, "__cuda_array_interface__")`` builds the interface's
# dict (~3 us), a type test does not. ``device_cache`` serves these arrays' repeated calls.
numba_array_types = set()


def is_device_array(obj):
    """Whether obj is a CUDA device array: it exposes ``__cuda_array_interface__``, or is a
    numba CUDA simulator array (``__cuda_ndarray__``, no interface)."""
    t = type(obj)
    if t in numba_array_types:
        return True
    if hasattr(obj, "__cuda_array_interface__"):
        if t.__name__ == "DeviceNDArray" and t.__module__ == "numba.cuda.cudadrv.devicearray":
            numba_array_types.add(t)
        return True
    return getattr(obj, "__cuda_ndarray__", False) is True


def _c_strides(shape, itemsize):
    strides, step = [], itemsize
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))


def _kind(obj):
    module = type(obj).__module__.partition(".")[0]
    return module if module in ("cupy", "torch") else "numba"


def describe(obj, name):
    """The ``DeviceArray`` of device array obj (argument ``name`` for messages); TypeError for a
    masked interface or a byte-swapped dtype, which the kernels cannot read."""
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is None:  # the simulator's FakeCUDAArray: a NumPy array behind numba's wrapper
        host = obj._ary
        dtype = host.dtype
        _check_native(dtype, name)
        return DeviceArray(obj, name, "numba", host.shape, host.strides, dtype,
                           host.__array_interface__["data"][0], not host.flags.writeable, None)
    if cai.get("mask") is not None:
        raise TypeError(f"{name} is a masked CUDA array; masks are not supported")
    shape = tuple(cai["shape"])
    dtype = np.dtype(cai["typestr"])
    _check_native(dtype, name)
    strides = cai.get("strides")
    strides = _c_strides(shape, dtype.itemsize) if strides is None else tuple(strides)
    ptr, readonly = cai["data"]
    return DeviceArray(obj, name, _kind(obj), shape, strides, dtype, ptr, bool(readonly),
                       cai.get("stream") if cai.get("version", 0) >= 3 else None)


def _check_native(dtype, name):
    if not dtype.isnative:
        raise TypeError(f"{name} has byte-swapped dtype {dtype.str}; device arrays must be in "
                        "native byte order (byte-swapped arrays are supported on the host)")


def _span(d):
    low = sum((n - 1) * s for n, s in zip(d.shape, d.strides) if s < 0)
    high = sum((n - 1) * s for n, s in zip(d.shape, d.strides) if s > 0)
    return d.ptr + low, d.ptr + high + d.dtype.itemsize


def overlaps(a, b):
    """Whether the memory of two described arrays overlaps (a bounds test)."""
    if a is None or b is None or a.size == 0 or b.size == 0:
        return False
    a0, a1 = _span(a)
    b0, b1 = _span(b)
    return a0 < b1 and b0 < a1
