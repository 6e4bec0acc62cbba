"""Hostile input, fuzzed: every public function, shapes, strides, dtypes, axes and ``out``.

Each call must either return the correct result or raise one of the documented exceptions
that its arguments call for, and in both cases write nothing outside ``out`` (nothing at
all when it raises) and leave its inputs unchanged unless they share memory with ``out``.

Arrays are views into byte buffers of their own ("canvases") with random axis order, steps
(negative included), offsets and alignment, or broadcast views, so every byte a call could
touch is compared before and after.

Overlap policy (documented in the README): ``out`` may share memory with an input in any
way — the very same array (in place), a shifted or reversed view, any partial overlap —
and the result is as if every input had been read before anything was written.
"""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nbsoftmax
from tests import checks

FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck))
# Examples per test are scaled by NBSOFTMAX_FUZZ_SCALE (default 1: ~340 in all, seconds).
SCALE = int(os.environ.get("NBSOFTMAX_FUZZ_SCALE", "1"))

SUPPORTED = [np.float16, np.float32, np.float64, ">f4", ">f8", np.int8, np.int64, np.uint16,
             np.bool_]
UNSUPPORTED = [np.complex64, np.longdouble, "U3", "datetime64[s]", object]
RESULT_DTYPES = [np.float16, np.float32, np.float64]


def result_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return dtype.newbyteorder("=")
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return None  # unsupported


# ------------------------------------------------------------------ arrays on canvases


class Canvas:
    """A byte buffer holding one or more views: the whole of what a call may touch."""

    def __init__(self, nbytes):
        self.buf = (np.arange(nbytes, dtype=np.int64) % 251).astype(np.uint8)

    def snapshot(self):
        return self.buf.copy()

    def footprint(self, arr):
        """Boolean mask of the canvas bytes that the elements of arr cover."""
        mask = np.zeros(self.buf.size, bool)
        if arr.size == 0:
            return mask
        start = arr.__array_interface__["data"][0] - self.buf.__array_interface__["data"][0]
        offsets = np.full(arr.shape, start, np.int64)
        for axis, stride in enumerate(arr.strides):
            shape = [1] * arr.ndim
            shape[axis] = arr.shape[axis]
            offsets = offsets + (np.arange(arr.shape[axis]) * stride).reshape(shape)
        for b in range(arr.itemsize):
            mask[offsets.ravel() + b] = True
        return mask


@st.composite
def layouts(draw, ndim):
    """Physical axis order, a step per axis (negative: reversed), alignment."""
    order = draw(st.permutations(range(ndim)))
    steps = [draw(st.sampled_from([1, 1, 1, 2, -1, -2])) for _ in range(ndim)]
    misaligned = draw(st.integers(0, 7)) == 0
    return order, steps, misaligned


def make_views(shape, dtype, layout, shifts=((),)):
    """Views of shape/dtype on one new Canvas; each shift is a tuple of (axis, +1) offsets."""
    order, steps, misaligned = layout
    dtype = np.dtype(dtype)
    phys = [abs(steps[a]) * shape[a] + 2 for a in order]
    count = math.prod(phys)
    canvas = Canvas(count * dtype.itemsize + 1)
    start = 1 if misaligned else 0
    base = canvas.buf[start : start + count * dtype.itemsize].view(dtype).reshape(phys)
    views = []
    for shift in shifts:
        shift = dict(shift)
        index = []
        for a in order:
            s, n, d = steps[a], shape[a], shift.get(a, 0)
            index.append(slice(1 + d, 1 + d + s * n, s) if s > 0 else slice(-s * n + d, d, s))
        views.append(base[tuple(index) + (Ellipsis,)].transpose(np.argsort(order)))
    assert all(v.shape == tuple(shape) for v in views)
    return canvas, views


def float_values(width):
    return st.one_of(
        st.floats(-30, 30, width=width),
        st.floats(width=width, allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, -np.inf, np.inf, np.nan]),
    )


def values_for(dtype, finite=False):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        width = 8 * dtype.itemsize
        return st.floats(-8, 8, width=width) if finite else float_values(width)
    if dtype.kind == "b":
        return st.booleans()
    info = np.iinfo(dtype)
    return st.integers(max(info.min, -100) if finite else info.min,
                       min(info.max, 100) if finite else info.max)


@st.composite
def shapes(draw):
    if draw(st.integers(0, 9)) == 0:  # large enough for the parallel kernels
        return draw(st.sampled_from([(70, 512), (3, 12000), (600, 60), (2, 40, 450)]))
    return draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))


@st.composite
def filled(draw, shape, dtype, finite=False, layout=None):
    """(array, canvas): a writable strided view, or a read-only broadcast view."""
    dtype = np.dtype(dtype)
    native = dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype
    broadcast_axis = None
    if len(shape) and draw(st.integers(0, 7)) == 0:
        broadcast_axis = draw(st.integers(0, len(shape) - 1))
    stored = tuple(1 if a == broadcast_axis else n for a, n in enumerate(shape))
    large = math.prod(stored) > 1000
    if large:  # hypothesis would be slow drawing every element: seeded random values
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if native.kind == "f":
            values = (rng.standard_normal(stored) * 10).astype(native)
        elif native.kind == "b":
            values = rng.random(stored) < 0.5
        else:
            values = rng.integers(0 if native.kind == "u" else -100, 100, stored).astype(native)
    else:
        values = draw(hnp.arrays(native, stored, elements=values_for(native, finite)))
    layout = layout or draw(layouts(len(shape)))
    canvas, (view,) = make_views(stored, dtype, layout)
    view[...] = values
    if broadcast_axis is not None:
        view = np.broadcast_to(view, shape)
    return view, canvas


@st.composite
def axes(draw, ndim):
    kind = draw(st.sampled_from(["int", "int", "tuple", "none", "out of range", "repeated",
                                 "bad type"]))
    if kind == "none":
        return None
    if kind == "bad type":
        return draw(st.sampled_from([1.0, "0", True, [0.5]]))
    if kind == "out of range" or ndim == 0:
        if ndim == 0 and kind != "out of range":
            return draw(st.sampled_from([0, -1, (0,), (), None]))
        return draw(st.sampled_from([ndim, -ndim - 1, ndim + 3]))
    if kind == "repeated":
        a = draw(st.integers(-ndim, ndim - 1))
        return (a, a % ndim)
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                               unique_by=lambda a: a % ndim)))


def axis_errors(axis, ndim):
    """Exception types a bad axis calls for (empty set: axis is fine)."""
    if axis is None:
        return set()
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    if isinstance(axis, bool) or not all(isinstance(a, int) and not isinstance(a, bool)
                                         for a in items):
        return {TypeError}
    if ndim == 0:
        return set() if len(items) <= 1 and all(a in (0, -1) for a in items) else {
            np.exceptions.AxisError}
    if any(not -ndim <= a < ndim for a in items):
        return {np.exceptions.AxisError}
    if len({a % ndim for a in items}) != len(items):
        return {ValueError}
    return set()


# ------------------------------------------------------------------ out arguments

OUT_KINDS = ["none", "none", "fresh", "input", "shifted overlap", "reversed overlap",
             "wrong shape", "wrong dtype", "read-only", "list"]


def make_out(draw, kind, shape, rdtype):
    """(out, canvas or None, errors) for an out kind that shares no memory with the inputs."""
    if kind == "none":
        return None, None, set()
    if kind == "list":
        return np.zeros(shape, rdtype).tolist(), None, {TypeError}
    if kind in ("fresh", "wrong dtype", "read-only", "wrong shape"):
        dtype = rdtype
        errors = set()
        out_shape = shape
        if kind == "wrong dtype":
            dtype = draw(st.sampled_from([d for d in RESULT_DTYPES if np.dtype(d) != rdtype]
                                         + [np.int32]))
            errors = {TypeError}
        if kind == "wrong shape":
            out_shape = draw(st.sampled_from([shape + (1,), shape[:-1] + (shape[-1] + 1,)]
                                             if shape else [(1,), (0,)]))
            errors = {ValueError}
        canvas, (out,) = make_views(out_shape, dtype, draw(layouts(len(out_shape))))
        if kind == "read-only":
            out.flags.writeable = False
            errors = {ValueError}
        return out, canvas, errors
    raise ValueError(kind)  # pragma: no cover


def watched(*canvases, out):
    """[(canvas, bytes out may write)] for check_call: out's footprint where it lies."""
    result = []
    for canvas in canvases:
        if canvas is None:
            continue
        holds_out = isinstance(out, np.ndarray) and np.shares_memory(canvas.buf, out)
        result.append((canvas, canvas.footprint(out) if holds_out else None))
    return result


def check_call(call, expect_errors, canvases, outs, verify):
    """Run call; check the exception or the result, and every canvas byte.

    canvases: [(canvas, allowed_mask or None)] — bytes outside allowed_mask must not change.
    """
    before = [c.snapshot() for c, _ in canvases]
    try:
        result = call()
    except Exception as exc:
        event(f"raised {type(exc).__name__}")
        assert expect_errors, f"unexpected {type(exc).__name__}: {exc}"
        assert isinstance(exc, tuple(expect_errors)), (
            f"raised {type(exc).__name__}: {exc}; expected one of {expect_errors}")
        for (canvas, _), snap in zip(canvases, before):
            assert np.array_equal(canvas.buf, snap), "a failed call wrote to memory"
        return
    assert not expect_errors, f"returned, but expected one of {expect_errors}"
    event("returned a result")
    for (canvas, allowed), snap in zip(canvases, before):
        changed = canvas.buf != snap
        if allowed is not None:
            changed &= ~allowed
        assert not changed.any(), f"{changed.sum()} bytes written outside out"
    verify(result)


# ------------------------------------------------------------------ forward functions


@st.composite
def forward_cases(draw):
    shape = draw(shapes())
    dtype = draw(st.sampled_from(SUPPORTED if draw(st.integers(0, 9)) else UNSUPPORTED))
    return shape, np.dtype(dtype)


def unsupported_array(draw, shape, dtype):
    """Plain arrays of dtypes the kernels reject (no canvas: their views are not bytes)."""
    if dtype.kind == "c":
        return np.ones(shape, dtype)
    if dtype == np.longdouble:
        return np.zeros(shape, dtype)
    if dtype.kind == "U":
        return np.full(shape, "ab", dtype)
    if dtype.kind == "M":
        return np.zeros(shape, dtype)
    return np.empty(shape, object)


@settings(max_examples=160 * SCALE, **FUZZ)
@given(data=st.data(), op=st.sampled_from(["softmax", "log_softmax"]))
def test_fuzz_softmax_and_log_softmax(data, op):
    draw = data.draw
    kind = draw(st.sampled_from(OUT_KINDS))
    sharing = kind in ("input", "shifted overlap", "reversed overlap")
    if sharing and draw(st.integers(0, 4)):  # mostly a valid sharing out: x of the result dtype
        shape = draw(shapes().filter(lambda s: len(s) > 0))
        dtype = np.dtype(draw(st.sampled_from(RESULT_DTYPES)))
        dtype_arg = None
    else:
        shape, dtype = draw(forward_cases())
        dtype_arg = draw(st.sampled_from([None] * 5 + ["float16", np.float32, np.float64,
                                                       "int32"]))
    rdtype = result_dtype(dtype)
    errors = set()
    if rdtype is None:
        x, x_canvas = unsupported_array(draw, shape, dtype), None
        errors.add(TypeError)
        rdtype = np.dtype(np.float64)
    else:
        x, x_canvas = draw(filled(shape, dtype))
    if dtype_arg is not None:
        if np.dtype(dtype_arg).kind != "f":
            errors.add(TypeError)
        else:
            rdtype = np.dtype(dtype_arg)
    axis = draw(axes(len(shape)))
    errors |= axis_errors(axis, len(shape))

    out, out_canvas, out_errors = None, None, set()
    x_snapshot = np.array(x, copy=True)
    if kind == "input":
        out = x
        if x.dtype != rdtype:
            out_errors.add(TypeError)
        if not x.flags.writeable:
            out_errors.add(ValueError)
    elif sharing:
        if len(shape) and x_canvas is not None and x.dtype == rdtype:
            # x and out on one canvas: out shifted by one element along an axis, or x
            # reversed along an axis.
            layout = draw(layouts(len(shape)))
            a = draw(st.integers(0, len(shape) - 1))
            if kind == "shifted overlap":
                x_canvas, (x, out) = make_views(shape, dtype, layout, shifts=((), ((a, 1),)))
            else:
                x_canvas, (x,) = make_views(shape, dtype, layout)
                out = np.flip(x, axis=a)
            x[...] = x_snapshot
        else:
            kind = "none (sharing impossible)"
    else:
        out, out_canvas, out_errors = make_out(draw, kind, shape, rdtype)
    errors |= out_errors
    event(f"out: {kind}")

    canvases = watched(x_canvas, out_canvas, out=out)

    def verify(result):
        if isinstance(out, np.ndarray):
            assert result is out
        check = checks.assert_softmax if op == "softmax" else checks.assert_log_softmax
        with np.errstate(over="ignore"):  # (the reference casts for dtype= too)
            check(np.array(result), x_snapshot, axis=axis, dtype=rdtype)

    def call():
        # dtype= narrower than x: NumPy's cast warns on overflow (reported separately, see
        # test_dtype_cast_overflow_does_not_warn); the values become inf as documented.
        with np.errstate(over="ignore" if dtype_arg is not None else "warn"):
            return getattr(nbsoftmax, op)(x, axis=axis, dtype=dtype_arg, out=out)

    check_call(call, errors, canvases, out, verify)


@settings(max_examples=60 * SCALE, **FUZZ)
@given(data=st.data())
def test_fuzz_logsumexp(data):
    draw = data.draw
    shape, dtype = draw(forward_cases())
    rdtype = result_dtype(dtype)
    errors = set()
    if rdtype is None:
        x, x_canvas = unsupported_array(draw, shape, dtype), None
        errors.add(TypeError)
    else:
        x, x_canvas = draw(filled(shape, dtype))
    axis = draw(axes(len(shape)))
    errors |= axis_errors(axis, len(shape))
    keepdims = draw(st.booleans())
    x_snapshot = np.array(x, copy=True)

    def verify(result):
        if x_snapshot.ndim == 0:
            # 0-d in, 0-d out, keepdims or not (as NumPy's reductions; SciPy's logsumexp,
            # and so tests/reference.py, returns shape (1,) for keepdims=True).
            assert type(result) is np.dtype(checks.expected_dtype(x_snapshot.dtype)).type
            checks.assert_logsumexp(result.reshape(1), x_snapshot.reshape(1), axis=0,
                                    keepdims=True)
        else:
            checks.assert_logsumexp(result, x_snapshot, axis=axis, keepdims=keepdims)

    canvases = [(x_canvas, None)] if x_canvas is not None else []
    check_call(lambda: nbsoftmax.logsumexp(x, axis=axis, keepdims=keepdims), errors, canvases,
               None, verify)


# ------------------------------------------------------------------ backward passes


@settings(max_examples=120 * SCALE, **FUZZ)
@given(data=st.data(), op=st.sampled_from(["softmax_backward", "log_softmax_backward"]))
def test_fuzz_backward(data, op):
    draw = data.draw
    shape = draw(shapes())
    g_dtype = np.dtype(draw(st.sampled_from(SUPPORTED)))
    y_dtype = np.dtype(draw(st.sampled_from(SUPPORTED)))
    errors = set()
    g, g_canvas = draw(filled(shape, g_dtype, finite=True))
    y_shape = shape
    if draw(st.integers(0, 9)) == 0:
        y_shape = shape + (2,)
        errors.add(ValueError)
    if draw(st.integers(0, 9)) == 0 and y_shape == shape and y_dtype == g_dtype:
        y, y_canvas = g, None  # the same array twice
    else:
        y, y_canvas = draw(filled(y_shape, y_dtype, finite=True))
    rdtype = np.result_type(result_dtype(g_dtype), result_dtype(y_dtype))
    axis = draw(axes(len(shape)))
    errors |= axis_errors(axis, len(shape))
    g_snapshot, y_snapshot = np.array(g, copy=True), np.array(y, copy=True)

    kind = draw(st.sampled_from(["none", "fresh", "grad_output", "output", "shifted overlap",
                                 "wrong shape", "wrong dtype", "read-only"]))
    out, out_canvas = None, None
    if kind in ("grad_output", "output"):
        out = g if kind == "grad_output" else y
        if out.dtype != rdtype:
            errors.add(TypeError)
        if out.shape != shape:
            errors.add(ValueError)
        if not out.flags.writeable:
            errors.add(ValueError)
    elif kind == "shifted overlap":
        # out overlaps grad_output shifted by one element; output lies apart
        if len(shape) and g_dtype == rdtype and g.flags.writeable and y is not g:
            a = draw(st.integers(0, len(shape) - 1))
            g_canvas, (g, out) = make_views(shape, g_dtype, draw(layouts(len(shape))),
                                            shifts=((), ((a, 1),)))
            g[...] = g_snapshot
        else:
            kind = "none"
    elif kind != "none":
        out, out_canvas, out_errors = make_out(draw, kind, shape, rdtype)
        errors |= out_errors
    event(f"out: {kind}")

    canvases = watched(g_canvas, y_canvas, out_canvas, out=out)

    def verify(result):
        if out is not None:
            assert result is out
        check = (checks.assert_softmax_backward if op == "softmax_backward"
                 else checks.assert_log_softmax_backward)
        check(np.array(result), g_snapshot, y_snapshot, axis=axis)

    check_call(lambda: getattr(nbsoftmax, op)(g, y, axis=axis, out=out), errors, canvases, out,
               verify)


# ------------------------------------------------------------------ fixed overlap cases


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("how", ["shift", "reverse", "transpose", "same"])
def test_overlapping_out_is_computed_from_the_unmodified_input(op, how):
    buf = np.random.default_rng(3).standard_normal(4 * 4 + 1)
    x = buf[:16].reshape(4, 4)
    out = {"shift": buf[1:17].reshape(4, 4), "reverse": x[::-1], "transpose": x.T,
           "same": x}[how]
    want = getattr(nbsoftmax, op)(x.copy())
    result = getattr(nbsoftmax, op)(x, out=out)
    assert result is out
    np.testing.assert_allclose(out, want, rtol=1e-13)


def test_dtype_cast_overflow_does_not_warn():
    got = nbsoftmax.softmax(np.array([65520.0, 0.0], np.float32), dtype=np.float16)
    assert np.isnan(got).all()  # the cast gives [inf, 0]: a slice with +inf is NaN
