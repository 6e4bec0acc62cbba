"""The public functions inside user ``@njit`` code: Numba overloads of the same names.

``nbsoftmax.softmax``, ``log_softmax``, ``logsumexp``, ``softmax_backward`` and
``log_softmax_backward`` called from an ``@njit`` (or ``@njit(parallel=True)``) function
compile to the library's own serial drivers (``cpu._drivers``), picked by the same rules as
``cpu.run`` picks them for a Python call (``cpu.SHORT_ROW``, ``_ONE_BLOCK``, in place or long
rows -> the general kernels; a softmax axis that is not the last one -> the column kernels),
so a C-contiguous float32/float64 input gives bit for bit the values of the Python call. One
exception: fewer rows than threads, each over 1 MiB, which the Python call splits among
threads (``cpu._drivers.*_split_parallel``); these agree within the usual bounds.

In jitted code the call runs serially on the calling thread: the parallelism is the user's
``prange`` loop (one row per iteration, ``softmax(x[i], out=out[i])``, allocates nothing
for rows of more than ``cpu.SHORT_ROW`` elements). Supported there: float32/float64 arrays
of any number of dimensions, an int ``axis`` (literal or runtime), ``out=`` (any layout; it
may be ``x`` itself) and, for ``logsumexp``, a constant ``keepdims``. Everything else
(``where=``, ``temperature=``, ``dtype=``, ``device=``, ``stream=``, tuple or None axes,
integer or float16 input, mixed dtypes) is a Numba typing error that says so.

Registered when Numba starts compiling (the ``numba_extensions`` entry point ``init`` in
pyproject.toml runs ``_init``), so ``import nbsoftmax`` does not import Numba.
"""

import numpy as np
from numba import njit, types
from numba.core import errors
from numba.extending import overload
from numba.np.unsafe.ndarray import to_fixed_tuple

from . import (
    log_softmax,
    log_softmax_backward,
    logsumexp,
    softmax,
    softmax_backward,
)
from . import cpu
from .cpu import _drivers as D
from .cpu import _slices as S

_FLOATS = (types.float32, types.float64)
# The thresholds of cpu.run's kernel choice, frozen here as compile-time constants.
_SHORT_SOFTMAX = cpu.SHORT_ROW["softmax"]
_SHORT_LOG_SOFTMAX = cpu.SHORT_ROW["log_softmax"]
_SHORT_SOFTMAX_BACKWARD = cpu.SHORT_ROW["softmax_backward"]
_SHORT_LOG_SOFTMAX_BACKWARD = cpu.SHORT_ROW["log_softmax_backward"]
_ONE_BLOCK_F32 = cpu._ONE_BLOCK[4]
_ONE_BLOCK_F64 = cpu._ONE_BLOCK[8]
_LONG_ROW_BYTES = S.LONG_ROW_BYTES
_MAX_COLUMN_TILE = cpu.MAX_COLUMN_TILE

_SUPPORTED = ("supported in @njit code: float32/float64 arrays, an int axis (default -1) "
              "and out=")


def _init():
    """numba_extensions entry point: importing this module registered the overloads."""


def _absent(arg):
    return arg is None or isinstance(arg, (types.NoneType, types.Omitted))


def _check_float_array(name, fname, arr):
    if not isinstance(arr, types.Array) or arr.dtype not in _FLOATS:
        raise errors.TypingError(
            f"nbsoftmax.{fname}: {name} is {arr}; {_SUPPORTED} "
            "(call it from Python for other dtypes or array-likes)")


def _check_axis(fname, axis):
    if not (_absent(axis) or isinstance(axis, (int, types.Integer))) or isinstance(
            axis, (bool, types.Boolean)):
        raise errors.TypingError(
            f"nbsoftmax.{fname}: axis is {axis}; in @njit code axis must be one int "
            "(tuples and None are supported from Python only)")


def _check_unsupported(fname, **options):
    for name, value in options.items():
        if not _absent(value):
            raise errors.TypingError(
                f"nbsoftmax.{fname}: {name}= is not supported in @njit code; {_SUPPORTED} "
                f"(call nbsoftmax.{fname} from Python for {name}=)")


def _check_out(fname, out, dtype):
    if _absent(out):
        return False
    if not isinstance(out, types.Array) or out.dtype != dtype or not out.mutable:
        raise errors.TypingError(
            f"nbsoftmax.{fname}: out is {out}; expected a writable {dtype} array")
    return True


# ------------------------------------------------------------------ run-time helpers


@njit
def _normalize_axis(axis, ndim):
    if ndim == 0:
        if axis == 0 or axis == -1:
            return 0
        raise ValueError("nbsoftmax: axis is out of bounds for a 0-d input (expected 0 or -1)")
    if axis < -ndim or axis >= ndim:
        raise ValueError("nbsoftmax: axis is out of bounds for the input's dimensions")
    return axis + ndim if axis < 0 else axis


@njit
def _split(shape, a):
    """(outer, n, inner): the products of the axes before a, a's length, the axes after a."""
    outer = 1
    inner = 1
    n = 1
    for d in range(len(shape)):
        if d < a:
            outer *= shape[d]
        elif d == a:
            n = shape[d]
        else:
            inner *= shape[d]
    return outer, n, inner


@njit
def _extent(a):
    """[lo, hi) byte addresses spanned by array a (any strides)."""
    lo = a.ctypes.data
    hi = lo + a.itemsize
    for d in range(a.ndim):
        span = (a.shape[d] - 1) * a.strides[d]
        if a.shape[d] == 0:
            return lo, lo
        if span < 0:
            lo += span
        else:
            hi += span
    return lo, hi


@njit
def _overlaps_partly(x, out):
    """Whether out shares memory with x without being x's own C-contiguous view: reading x
    while writing out would then see our own output, so x is copied first."""
    if S.same_memory(x, out) and x.strides == out.strides:
        return False
    xlo, xhi = _extent(x)
    olo, ohi = _extent(out)
    return xlo < ohi and olo < xhi


@njit
def _check_same_shape(a, b):
    if a.shape != b.shape:
        raise ValueError("nbsoftmax: out (or output) has a different shape than the input")


@njit
def _readable(x, out):
    """x as a C-contiguous array safe to read while out is written (a copy where needed)."""
    if _overlaps_partly(x, out):
        return x.copy()
    return np.ascontiguousarray(x)


@njit
def _column_tile(inner):
    return min(inner, _MAX_COLUMN_TILE)


# ------------------------------------------------- the cpu.run choice, serial drivers


@njit
def _softmax_c(x, out, a):
    outer, n, inner = _split(x.shape, a)
    if x.size == 0:
        return
    if inner > 1:
        D.softmax_columns_serial(x.reshape((outer, n, inner)), out.reshape((outer, n, inner)),
                                 _column_tile(inner))
        return
    x2 = x.reshape((outer, n))
    o2 = out.reshape((outer, n))
    one_block = _ONE_BLOCK_F64 if x.itemsize == 8 else _ONE_BLOCK_F32
    if n <= _SHORT_SOFTMAX:
        D.softmax_short_serial(x2, o2)
    elif S.same_memory(x, out) or n * x.itemsize > _LONG_ROW_BYTES:
        D.softmax_rows_general_serial(x2, o2)
    elif n <= one_block:
        D.softmax_block_serial(x2, o2)
    else:
        D.softmax_rows_serial(x2, o2)


@njit
def _log_softmax_c(x, out, a):
    outer, n, inner = _split(x.shape, a)
    if x.size == 0:
        return
    if inner > 1:
        D.log_softmax_columns_serial(x.reshape((outer, n, inner)),
                                     out.reshape((outer, n, inner)), _column_tile(inner))
        return
    x2 = x.reshape((outer, n))
    o2 = out.reshape((outer, n))
    if n <= _SHORT_LOG_SOFTMAX:
        D.log_softmax_short_serial(x2, o2)
    elif S.same_memory(x, out) or n * x.itemsize > _LONG_ROW_BYTES:
        D.log_softmax_rows_general_serial(x2, o2)
    else:
        D.log_softmax_rows_serial(x2, o2)


@njit
def _logsumexp_c(x, res, a):
    """res: C-contiguous 1-D (outer * inner) result."""
    outer, n, inner = _split(x.shape, a)
    if res.size == 0:
        return
    if inner > 1:
        D.logsumexp_columns_serial(x.reshape((outer, n, inner)), res.reshape((outer, inner)),
                                   _column_tile(inner))
    else:
        D.logsumexp_rows_serial(x.reshape((outer, n)), res)


def _backward_c(columns, short, rows, short_max):
    """The cpu.run choice among one backward pass's serial drivers (columns, short rows and
    rows: the same choice for both gradients)."""
    @njit
    def run(g, y, out, a):
        outer, n, inner = _split(g.shape, a)
        if g.size == 0:
            return
        if inner > 1:
            s3 = (outer, n, inner)
            columns(g.reshape(s3), y.reshape(s3), out.reshape(s3), _column_tile(inner))
        elif n <= short_max:
            short(g.reshape((outer, n)), y.reshape((outer, n)), out.reshape((outer, n)))
        else:
            rows(g.reshape((outer, n)), y.reshape((outer, n)), out.reshape((outer, n)))

    return run


_softmax_backward_c = _backward_c(D.softmax_backward_columns_serial,
                                  D.softmax_backward_short_serial,
                                  D.softmax_backward_rows_serial, _SHORT_SOFTMAX_BACKWARD)
_log_softmax_backward_c = _backward_c(D.log_softmax_backward_columns_serial,
                                      D.log_softmax_backward_short_serial,
                                      D.log_softmax_backward_rows_serial,
                                      _SHORT_LOG_SOFTMAX_BACKWARD)


# ------------------------------------------------------------------ the overloads


def _elementwise_overload(fname, kernel):
    def typer(x, axis=-1, dtype=None, out=None, where=None, temperature=None, device=None,
              stream=None):
        _check_float_array("x", fname, x)
        _check_axis(fname, axis)
        _check_unsupported(fname, dtype=dtype, where=where, temperature=temperature,
                           device=device, stream=stream)
        if not _check_out(fname, out, x.dtype):
            def impl(x, axis=-1, dtype=None, out=None, where=None, temperature=None,
                     device=None, stream=None):
                a = _normalize_axis(axis, x.ndim)
                xc = np.ascontiguousarray(x)
                result = np.empty(x.shape, x.dtype)
                kernel(xc, result, a)
                return result
            return impl
        if out.layout == "C":
            def impl(x, axis=-1, dtype=None, out=None, where=None, temperature=None,
                     device=None, stream=None):
                a = _normalize_axis(axis, x.ndim)
                _check_same_shape(x, out)
                kernel(_readable(x, out), out, a)
                return out
            return impl

        def impl(x, axis=-1, dtype=None, out=None, where=None, temperature=None, device=None,
                 stream=None):
            a = _normalize_axis(axis, x.ndim)
            _check_same_shape(x, out)
            xc = np.ascontiguousarray(x)
            result = np.empty(x.shape, x.dtype)
            kernel(xc, result, a)
            out[...] = result
            return out
        return impl

    return typer


def _backward_overload(fname, kernel):
    def typer(grad_output, output, axis=-1, out=None, where=None, temperature=None,
              device=None, stream=None):
        _check_float_array("grad_output", fname, grad_output)
        _check_float_array("output", fname, output)
        if grad_output.dtype != output.dtype:
            raise errors.TypingError(
                f"nbsoftmax.{fname}: grad_output is {grad_output.dtype} but output is "
                f"{output.dtype}; in @njit code both must have the same dtype")
        _check_axis(fname, axis)
        _check_unsupported(fname, where=where, temperature=temperature, device=device,
                           stream=stream)
        has_out = _check_out(fname, out, grad_output.dtype)
        if has_out and out.layout == "C":
            def impl(grad_output, output, axis=-1, out=None, where=None, temperature=None,
                     device=None, stream=None):
                a = _normalize_axis(axis, grad_output.ndim)
                _check_same_shape(grad_output, output)
                _check_same_shape(grad_output, out)
                kernel(_readable(grad_output, out), _readable(output, out), out, a)
                return out
            return impl

        def impl(grad_output, output, axis=-1, out=None, where=None, temperature=None,
                 device=None, stream=None):
            a = _normalize_axis(axis, grad_output.ndim)
            _check_same_shape(grad_output, output)
            result = np.empty(grad_output.shape, grad_output.dtype)
            kernel(np.ascontiguousarray(grad_output), np.ascontiguousarray(output), result, a)
            if has_out:
                _check_same_shape(grad_output, out)
                out[...] = result
                return out
            return result
        return impl

    return typer


overload(softmax)(_elementwise_overload("softmax", _softmax_c))
overload(log_softmax)(_elementwise_overload("log_softmax", _log_softmax_c))
overload(softmax_backward)(_backward_overload("softmax_backward", _softmax_backward_c))
overload(log_softmax_backward)(_backward_overload("log_softmax_backward",
                                                  _log_softmax_backward_c))


@overload(logsumexp)
def _logsumexp_overload(x, axis=-1, keepdims=False, where=None, device=None, stream=None,
                        b=None):
    fname = "logsumexp"
    _check_float_array("x", fname, x)
    _check_axis(fname, axis)
    _check_unsupported(fname, where=where, b=b, device=device, stream=stream)
    if _absent(keepdims) or keepdims is False:
        keep = False
    elif keepdims is True or isinstance(keepdims, types.BooleanLiteral):
        keep = keepdims is True or keepdims.literal_value
    else:
        raise errors.TypingError(
            f"nbsoftmax.{fname}: keepdims is {keepdims}; in @njit code it must be a constant "
            "True or False (it decides the result's number of dimensions)")
    ndim = x.ndim
    rdim = ndim if keep else ndim - 1

    if rdim <= 0:  # a scalar result, as the Python call gives for 0-d and 1-d input
        def impl(x, axis=-1, keepdims=False, where=None, device=None, stream=None, b=None):
            a = _normalize_axis(axis, x.ndim)
            res = np.empty(1, x.dtype)
            _logsumexp_c(np.ascontiguousarray(x), res, a)
            return res[0]
        return impl

    def impl(x, axis=-1, keepdims=False, where=None, device=None, stream=None, b=None):
        a = _normalize_axis(axis, x.ndim)
        outer, n, inner = _split(x.shape, a)
        res = np.empty(outer * inner, x.dtype)
        _logsumexp_c(np.ascontiguousarray(x), res, a)
        shape = np.empty(rdim, np.intp)
        k = 0
        for d in range(ndim):
            if d != a:
                shape[k] = x.shape[d]
                k += 1
            elif keep:
                shape[k] = 1
                k += 1
        return res.reshape(to_fixed_tuple(shape, rdim))
    return impl
