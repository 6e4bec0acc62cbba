"""Per-row kernels with a temperature and an optional ``where`` mask.

The same operations as ``_slices`` on ``x * sign / T`` (``sign = -1`` for softmin), restricted
to the entries where ``mask`` is True. They are separate kernels rather than branches in
``_slices`` so that plain calls keep their kernels untouched. ``mask`` is a C-contiguous bool
``(rows, n)`` array or None: Numba prunes the ``mask is not None`` branches at compile time
(argument typed ``none``), so the unmasked variant carries no mask code. Masking is an LLVM
select (``_math.select``), never a multiply: a masked NaN or inf cannot leak into a row's
statistics.

``sc``, the scaling, is what ``nbsoftmax.dispatch.temperature.kernel_scaling`` made of the call's
temperature, in the compute type (``compute_scaling``): the sign alone without a temperature
(the exponent is then ``x * sign - max``, the plain kernels' arithmetic), or a tuple
``(sp, ih, il, post)`` with one. Its type selects the variant at compile time. Every pass
gets its exponent from the one function ``value`` (and the max pass its key from ``key``),
compiled with ``fastmath=False``: a pass with the reductions' fast-math flags must not fuse
``x * s - m`` into an FMA that another pass rounds differently (the cause of row sums of
1.04 with ``temperature=0.7`` before, issue 10 item 1). How ``value`` rounds
``(x * sign - max) / T`` once for any T is described in ``nbsoftmax.dispatch.temperature``.

Conventions (those of ``jax.nn.softmax(where=)``): masked entries give probability 0
(log_softmax: -inf; the backward passes: exactly 0) and do not count in the row's max or
sums; a fully masked row gives 0 (log_softmax and logsumexp: -inf). Among the unmasked
entries the plain conventions hold: a NaN or +inf (of ``x * sign``), or only -inf, make
them NaN. A temperature keeps these (it scales differences from the max, never the max).

Passes per row: max; exp-sum (float32 partial sums per ``sum_block`` totalled in float64, as
``_slices``); write, recomputing exp. Like ``_slices``' in-place path, every pass reads
element j before writing it, so ``out`` may be ``x``.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._math import (
    compute_neg_inf,
    compute_zero,
    exp_,
    fma,
    fmaximum,
    load2,
    select,
    store2,
    sum_block,
    to_compute,
)
from ._slices import REDUCE

_F64_ZERO = np.float64(0.0)
_F64_INF = np.float64(np.inf)

# ---------------------------------------------------------------------------------------
# the scaled exponent: one definition for every pass (fastmath=False: see the docstring)
# ---------------------------------------------------------------------------------------


def compute_scaling(a, scaling):
    """The kernel scaling (a float64 sign, or the float64 4-tuple of ``_temperature``) in the
    compute type of array a: the sign rounded to it; float32 keeps 1/T in float64."""
    raise TypeError("compute_scaling is only callable from compiled code")


@overload(compute_scaling, inline="always")
def _compute_scaling_overload(a, scaling):
    if isinstance(scaling, types.Float):
        return lambda a, scaling: to_compute(a, scaling)
    if a.dtype == types.float64:
        return lambda a, scaling: scaling
    return lambda a, scaling: (np.float32(scaling[0]), scaling[1], scaling[2], scaling[3])


def sign_of(sc):
    """The factor x is multiplied by before the max (sign, times 2**-k for a large T)."""
    raise TypeError("sign_of is only callable from compiled code")


@overload(sign_of, inline="always")
def _sign_of_overload(sc):
    if isinstance(sc, types.Float):
        return lambda sc: sc
    return lambda sc: sc[0]


@njit(fastmath=False, forceinline=True, error_model="numpy")
def key(xv, sc):
    """x * sign (exact: the sign, or a power of two for a large T, times x)."""
    return xv * sign_of(sc)


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _v_f32(u, m, inv):
    return np.float32((np.float64(u) - np.float64(m)) * inv)


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _v_f64(u, m, ih, il, post):
    d = u - m
    bv = d - u  # TwoSum(u, -m): e is the exact rounding error of d
    av = d - bv
    e = (u - av) + ((-m) - bv)
    c = fma(d, il, e * ih)
    # c not finite: d is infinite (e NaN), or e * ih overflowed, and then so does d * ih
    # (|e| <= ulp(d) / 2): either way the result is d * ih, +-inf (a NaN would leak otherwise)
    c = select(abs(c) < _F64_INF, c, _F64_ZERO)
    return fma(d, ih, c) * post


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _wide_f32(u, m, inv):
    return (np.float64(u) - np.float64(m)) * inv


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _diff(u, m):
    return u - m


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _wide_diff_f32(u, m):
    return np.float64(u) - np.float64(m)


def value(xv, m, sc):
    """(x * sign - m) / T in the compute type, rounded once; m the row's max of ``key``."""
    raise TypeError("value is only callable from compiled code")


@overload(value, inline="always")
def _value_overload(xv, m, sc):
    if isinstance(sc, types.Float):
        return lambda xv, m, sc: _diff(key(xv, sc), m)
    if xv == types.float64:
        return lambda xv, m, sc: _v_f64(key(xv, sc), m, sc[1], sc[2], sc[3])
    return lambda xv, m, sc: _v_f32(key(xv, sc), m, sc[1])


def wide_value(xv, m, sc):
    """``value`` as float64, before float32's rounding (and without its overflow): for sums
    of exponents (cross_entropy's label smoothing and probability targets)."""
    raise TypeError("wide_value is only callable from compiled code")


@overload(wide_value, inline="always")
def _wide_value_overload(xv, m, sc):
    if xv == types.float64:
        return lambda xv, m, sc: value(xv, m, sc)
    if isinstance(sc, types.Float):
        return lambda xv, m, sc: _wide_diff_f32(key(xv, sc), m)
    return lambda xv, m, sc: _wide_f32(key(xv, sc), m, sc[1])


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _g_f32(w, inv):
    return np.float32(np.float64(w) * inv)


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _g_f64(w, sp, ih, post):
    return ((w * abs(sp)) * ih) * post


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _same(w):
    return w


def grad_scale(w, sc):
    """w / T in w's type (w itself without a temperature), without a spurious overflow."""
    raise TypeError("grad_scale is only callable from compiled code")


@overload(grad_scale, inline="always")
def _grad_scale_overload(w, sc):
    if isinstance(sc, types.Float):
        return lambda w, sc: _same(w)
    if w == types.float64:
        return lambda w, sc: _g_f64(w, sc[0], sc[1], sc[3])
    return lambda w, sc: _g_f32(w, sc[1])


# ---------------------------------------------------------------------------------------
# row statistics
# ---------------------------------------------------------------------------------------


@njit(fastmath=REDUCE, error_model="numpy")
def _max(x, mask, i, sc):
    m = compute_neg_inf(x)
    # -inf that LLVM cannot see as a constant: maximum(m, select(c, v, -inf)) with the
    # constant identity is rewritten into a conditional reduction that does not vectorise
    # (2000 x 1000 float32, masked max: 3.5 ms with the constant, 0.13 ms with this).
    neg_inf = abs(sign_of(sc)) * compute_neg_inf(x)
    for j in range(x.shape[1]):
        v = key(load2(x, i, j), sc)
        if mask is not None:
            v = select(mask[i, j], v, neg_inf)
        m = fmaximum(m, v)
    return m


@njit(error_model="numpy")
def _any(mask, i):
    for j in range(mask.shape[1]):
        if mask[i, j]:
            return True
    return False


@njit(fastmath=REDUCE, error_model="numpy")
def _block_exp_sum(x, mask, i, sc, m, b0, b1):
    s = compute_zero(x)
    zero = compute_zero(x)
    for j in range(np.uint64(b0), np.uint64(b1)):
        e = exp_(value(load2(x, i, j), m, sc))
        if mask is not None:
            e = select(mask[i, j], e, zero)
        s += e
    return s


@njit(error_model="numpy")
def _exp_sum(x, mask, i, sc, m):
    n = x.shape[1]
    block = sum_block(x)
    total = 0.0
    for b0 in range(0, n, block):
        total += np.float64(_block_exp_sum(x, mask, i, sc, m, b0, min(b0 + block, n)))
    return total


@njit(fastmath=REDUCE, error_model="numpy")
def _block_dot(g, y, mask, i, b0, b1):
    s = compute_zero(g)
    zero = compute_zero(g)
    for j in range(np.uint64(b0), np.uint64(b1)):
        v = load2(g, i, j) * load2(y, i, j)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        s += v
    return s


@njit(fastmath=REDUCE, error_model="numpy")
def _block_sum(g, mask, i, b0, b1):
    s = compute_zero(g)
    zero = compute_zero(g)
    for j in range(np.uint64(b0), np.uint64(b1)):
        v = load2(g, i, j)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        s += v
    return s


@njit(error_model="numpy")
def _fill(out, mask, i, unmasked, masked):
    """out[i] = unmasked where mask (everywhere without a mask), masked elsewhere."""
    for j in range(out.shape[1]):
        v = unmasked
        if mask is not None:
            v = select(mask[i, j], v, masked)
        store2(out, i, j, v)


@njit(error_model="numpy")
def _row_stats(x, mask, i, sc):
    """(max of the keys in the compute type, float64 exp-sum, state): state 0 normal, 1 the
    unmasked entries are NaN by convention, 2 the row is fully masked."""
    m = _max(x, mask, i, sc)
    if math.isfinite(m):
        return m, _exp_sum(x, mask, i, sc, m), 0
    if mask is not None and m == -np.inf and not _any(mask, i):
        return m, 0.0, 2
    return m, 0.0, 1


# ---------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------


@njit(error_model="numpy")
def softmax_row(x, mask, out, i, sc):
    m, s, state = _row_stats(x, mask, i, sc)
    zero = compute_zero(out)
    if state:
        _fill(out, mask, i, zero if state == 2 else to_compute(out, np.nan), zero)
        return
    inv = to_compute(out, 1.0 / s)
    for j in range(x.shape[1]):
        p = exp_(value(load2(x, i, j), m, sc)) * inv
        if mask is not None:
            p = select(mask[i, j], p, zero)
        store2(out, i, j, p)


@njit(fastmath=False, forceinline=True, error_model="numpy")
def _log_f32(xv, m, sc, log_s):
    # one rounding of (x * sign - m) / T - log(s) (float32 with a temperature)
    return np.float32(_wide_f32(key(xv, sc), m, sc[1]) - log_s)


def _log_value(xv, m, sc, log_s):
    raise TypeError("_log_value is only callable from compiled code")


@overload(_log_value, inline="always")
def _log_value_overload(xv, m, sc, log_s):
    if xv == types.float64:
        return lambda xv, m, sc, log_s: value(xv, m, sc) - log_s
    if isinstance(sc, types.Float):  # the plain kernels' float32 arithmetic
        return lambda xv, m, sc, log_s: value(xv, m, sc) - np.float32(log_s)
    return lambda xv, m, sc, log_s: _log_f32(xv, m, sc, log_s)


@njit(error_model="numpy")
def log_softmax_row(x, mask, out, i, sc):
    m, s, state = _row_stats(x, mask, i, sc)
    neg_inf = compute_neg_inf(out)
    if state:
        _fill(out, mask, i, neg_inf if state == 2 else to_compute(out, np.nan), neg_inf)
        return
    log_s = math.log(s)
    for j in range(x.shape[1]):
        v = _log_value(load2(x, i, j), m, sc, log_s)
        if mask is not None:
            v = select(mask[i, j], v, neg_inf)
        store2(out, i, j, v)


@njit(error_model="numpy")
def _total(g, y, mask, i, with_y):
    n = g.shape[1]
    block = sum_block(g)
    total = 0.0
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        part = _block_dot(g, y, mask, i, b0, b1) if with_y else _block_sum(g, mask, i, b0, b1)
        total += np.float64(part)
    return total


@njit(error_model="numpy")
def softmax_backward_row(g, y, mask, out, i, sc):
    """y * (g - sum(g * y)) / T over the unmasked entries; exactly 0 at masked ones."""
    d = to_compute(out, _total(g, y, mask, i, True))
    zero = compute_zero(out)
    for j in range(g.shape[1]):
        v = grad_scale(load2(y, i, j) * (load2(g, i, j) - d), sc)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        store2(out, i, j, v)


@njit(error_model="numpy")
def log_softmax_backward_row(g, y, mask, out, i, sc):
    """(g - exp(y) * sum(g)) / T over the unmasked entries; exactly 0 at masked ones."""
    s = to_compute(out, _total(g, y, mask, i, False))
    zero = compute_zero(out)
    for j in range(g.shape[1]):
        v = grad_scale(load2(g, i, j) - exp_(load2(y, i, j)) * s, sc)
        if mask is not None:
            v = select(mask[i, j], v, zero)
        store2(out, i, j, v)
