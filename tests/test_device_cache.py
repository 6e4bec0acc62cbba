"""The cached plans of repeated GPU calls (nbsoftmax.dispatch.device_cache) against the plain path.

No GPU and no numba-cuda needed: a stand-in class with numba ``DeviceNDArray``'s attributes
(shape, strides, dtype, stream, gpu_data, ``__cuda_array_interface__``) is registered as a
numba array type, and the GPU check of ``device.start`` is replaced. Every cached plan must
equal the plan the plain path makes for the same call, whatever the pointers: above all
whether an input or the mask overlapping ``out`` is read in place is decided from this
call's pointers, never from the call that filled the cache.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from nbsoftmax.dispatch import device, device_cache, device_reductions, plan


class FakeDeviceArray:
    def __init__(self, shape, dtype, ptr, strides=None):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        step, c = self.dtype.itemsize, []
        for extent in reversed(self.shape):
            c.append(step)
            step *= extent
        self.strides = tuple(strides) if strides is not None else tuple(reversed(c))
        self.size = math.prod(self.shape)
        self.stream = 0
        self.gpu_data = SimpleNamespace(device_ctypes_pointer=SimpleNamespace(value=ptr))

    @property
    def __cuda_array_interface__(self):
        ptr = self.gpu_data.device_ctypes_pointer.value
        return {"shape": self.shape, "strides": self.strides, "data": (ptr, False),
                "typestr": self.dtype.str, "stream": None, "version": 3}


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(device, "start", lambda device_, named: True)
    monkeypatch.setattr(device_reductions, "start", lambda device_, named: True)
    plan.numba_array_types.add(FakeDeviceArray)
    device_cache._cache.clear()
    yield FakeDeviceArray
    plan.numba_array_types.discard(FakeDeviceArray)
    device_cache._cache.clear()


def _fields(p, ids=True):
    def norm(v):
        if isinstance(v, plan.DeviceArray):
            return (id(v.obj) if ids else None, v.name, v.kind, v.shape, v.strides, v.dtype, v.ptr, v.readonly,
                    v.stream)
        if isinstance(v, tuple):
            return tuple(norm(e) for e in v)
        return v

    return tuple(norm(v) for v in p)


F = np.float32
BASE = 1 << 20


@pytest.mark.parametrize("out_ptr, where_ptr, readable, mask_in_place", [
    (None, None, (True,), False),           # allocating
    (BASE + 4 * 4096, None, (True,), False),  # out apart from x
    (BASE, None, (True,), False),           # out is x (in place)
    (BASE + 8, None, (False,), False),      # out overlaps x shifted: x is staged
    (BASE + 4 * 4096, BASE + 8 * 4096, (True,), True),
    (BASE + 4 * 4096, BASE + 4 * 4096 + 100, (True,), False),  # mask inside out: staged
])
def test_cached_elementwise_plan_is_the_plain_plan(fake, out_ptr, where_ptr, readable,
                                                   mask_in_place):
    # fill the cache with every array apart, then ask with these pointers
    x0 = fake((8, 128), F, BASE)
    o0 = None if out_ptr is None else fake((8, 128), F, BASE + 4 * 4096)
    w0 = None if where_ptr is None else fake((8, 128), np.bool_, BASE + 8 * 4096,
                                              strides=(128, 1))
    first = device.elementwise("softmax", x0, -1, None, o0, w0, None, None, None)
    assert len(device_cache._cache) == 1
    x = fake((8, 128), F, BASE)
    o = None if out_ptr is None else fake((8, 128), F, out_ptr)
    w = None if where_ptr is None else fake((8, 128), np.bool_, where_ptr, strides=(128, 1))
    cached = device.elementwise("softmax", x, -1, None, o, w, None, None, "s")
    assert len(device_cache._cache) == 1  # a hit
    plain = device._elementwise("softmax", x, -1, None, o, w, None, None, "s")
    assert _fields(cached) == _fields(plain)
    assert cached.options.readable == readable
    assert cached.options.mask_in_place == mask_in_place
    assert first.inputs[0].obj is x0 and cached.inputs[0].obj is x


def test_cached_backward_plan_rechecks_overlap(fake):
    g0, y0, o0 = (fake((4, 64), F, BASE + i * 4096) for i in range(3))
    device.backward("softmax_backward", g0, y0, 1, o0, None, None, None, None)
    for out_ptr in (BASE + 2 * 4096, BASE, BASE + 4096, BASE + 4, BASE + 4096 - 4):
        g, y, o = fake((4, 64), F, BASE), fake((4, 64), F, BASE + 4096), fake((4, 64), F,
                                                                              out_ptr)
        cached = device.backward("softmax_backward", g, y, 1, o, None, None, None, None)
        plain = device._backward("softmax_backward", g, y, 1, o, None, None, None, None)
        assert _fields(cached) == _fields(plain)
    assert len(device_cache._cache) == 1


def test_key_separates_what_the_checks_read(fake):
    x = fake((8, 128), F, BASE)
    device.elementwise("softmax", x, -1, None, None, None, None, None, None)
    # another axis, layout, requested dtype or op: a new entry with its own checks
    device.elementwise("softmax", x, 0, None, None, None, None, None, None)
    device.elementwise("log_softmax", x, -1, None, None, None, None, None, None)
    xt = fake((128, 8), F, BASE, strides=(4, 512))
    device.elementwise("softmax", xt, -1, None, None, None, None, None, None)
    assert len(device_cache._cache) == 4
    with pytest.raises(ValueError, match="out has shape"):  # errors as the plain path
        device.elementwise("softmax", x, -1, None, fake((8, 127), F, BASE), None, None, None,
                           None)
    bad = fake((8, 127), F, BASE)
    for _ in range(2):  # a failing call is never cached
        with pytest.raises(ValueError, match="out has shape"):
            device.elementwise("softmax", x, -1, None, bad, None, None, None, None)
    assert len(device_cache._cache) == 4
    # another stream bound to the array, or device="cpu": the plain path
    x.stream = object()
    assert device_cache.elementwise("softmax", x, -1, None, None, None, None, None) == (None,
                                                                                       None)


def test_cache_is_bounded(fake):
    for rows in range(1, device_cache._LIMIT + 10):
        device.elementwise("softmax", fake((rows, 4), F, BASE), -1, None, None, None, None,
                           None, None)
    assert len(device_cache._cache) <= device_cache._LIMIT


@pytest.mark.parametrize("with_b, with_where, keepdims, return_sign", [
    (False, False, False, False), (True, False, True, True), (False, True, False, True),
    (True, True, True, False)])
def test_cached_logsumexp_plan_is_the_plain_plan(fake, with_b, with_where, keepdims,
                                                 return_sign):
    def call(fn, at):
        x = fake((6, 64), F, at)
        b = fake((1, 64), F, at + 4096) if with_b else None
        w = fake((6, 64), np.bool_, at + 8192, strides=(64, 1)) if with_where else None
        return fn(x, -1, keepdims, b, return_sign, w, None, "s")

    call(device_reductions.logsumexp, BASE)
    cached = call(device_reductions.logsumexp, 2 * BASE)
    assert len(device_cache._cache) == 1
    plain = call(device_reductions._logsumexp, 2 * BASE)
    # the fake arrays differ per call: all but the objects' identities
    assert _fields(cached, ids=False) == _fields(plain, ids=False)
    assert cached.inputs[0].ptr == 2 * BASE
    if with_b:
        assert cached.options.b.ptr == 2 * BASE + 4096
    if with_where:
        assert cached.mask.ptr == 2 * BASE + 8192
