"""Storage vs compute type of the CPU kernels, resolved at compile time by overloads.

float16 arrays travel to the kernels as their ``uint16`` bit patterns (Numba's CPU target has
no float16) and are widened to float32 on load and rounded back on store; float32 and float64
compute in their own type. Also the per-dtype constants the kernels need (zero, -inf, the
summing block) and work arrays in the compute type.
"""

import numpy as np
from numba import types
from numba.extending import overload

from ._intrinsics import float32_to_half_bits, half_bits_to_float32

_F32_ZERO = np.float32(0.0)
_F32_NEG_INF = np.float32(-np.inf)
_F64_ZERO = np.float64(0.0)
_F64_NEG_INF = np.float64(-np.inf)


# ---------------------------------------------------------------------------------------
# storage <-> compute
# ---------------------------------------------------------------------------------------


def load(a, i):
    """a[i] widened to the compute type (float16 bits -> float32)."""
    raise TypeError("load is only callable from compiled code")


def store(a, i, v):
    """a[i] = v, narrowed to a's storage type."""
    raise TypeError("store is only callable from compiled code")


def compute_zero(a):
    """0 in the compute type of array a (float32 for float32 and float16 storage)."""
    raise TypeError("compute_zero is only callable from compiled code")


def compute_neg_inf(a):
    """-inf in the compute type of array a."""
    raise TypeError("compute_neg_inf is only callable from compiled code")


def computes_in_float64(a):
    """Whether array a's compute type is float64."""
    raise TypeError("computes_in_float64 is only callable from compiled code")


@overload(computes_in_float64, inline="always")
def _computes_in_float64_overload(a):
    f64 = a.dtype == types.float64
    return lambda a: f64


def sum_block(a):
    """Elements per vectorised partial sum for array a's dtype (totalled with compensation).

    float32: 512 (LLVM's 64 partial accumulators hold 8 terms each). float64: 128, since 512
    left integer-valued float64 rows (many equal terms, errors that do not average out) at
    1.4x the float64 log_softmax bound.
    """
    raise TypeError("sum_block is only callable from compiled code")


@overload(sum_block, inline="always")
def _sum_block_overload(a):
    size = 128 if a.dtype == types.float64 else 512
    return lambda a: size


def keeps_exact_exp(a):
    """Whether exp values stored in a can be read back without loss (not so for float16)."""
    raise TypeError("keeps_exact_exp is only callable from compiled code")


@overload(load, inline="always")
def _load_overload(a, i):
    if a.dtype == types.uint16:
        return lambda a, i: half_bits_to_float32(a[i])
    return lambda a, i: a[i]


@overload(store, inline="always")
def _store_overload(a, i, v):
    if a.dtype == types.uint16:
        def store_half(a, i, v):
            a[i] = float32_to_half_bits(v)

        return store_half

    def store_same(a, i, v):
        a[i] = v

    return store_same


def load2(a, i, j):
    """a[i, j] widened to the compute type."""
    raise TypeError("load2 is only callable from compiled code")


def store2(a, i, j, v):
    """a[i, j] = v, narrowed to a's storage type."""
    raise TypeError("store2 is only callable from compiled code")


@overload(load2, inline="always")
def _load2_overload(a, i, j):
    if a.dtype == types.uint16:
        return lambda a, i, j: half_bits_to_float32(a[i, j])
    return lambda a, i, j: a[i, j]


@overload(store2, inline="always")
def _store2_overload(a, i, j, v):
    if a.dtype == types.uint16:
        def store_half(a, i, j, v):
            a[i, j] = float32_to_half_bits(v)

        return store_half

    def store_same(a, i, j, v):
        a[i, j] = v

    return store_same


def load3(a, i, j, k):
    """a[i, j, k] widened to the compute type."""
    raise TypeError("load3 is only callable from compiled code")


def store3(a, i, j, k, v):
    """a[i, j, k] = v, narrowed to a's storage type."""
    raise TypeError("store3 is only callable from compiled code")


@overload(load3, inline="always")
def _load3_overload(a, i, j, k):
    if a.dtype == types.uint16:
        return lambda a, i, j, k: half_bits_to_float32(a[i, j, k])
    return lambda a, i, j, k: a[i, j, k]


@overload(store3, inline="always")
def _store3_overload(a, i, j, k, v):
    if a.dtype == types.uint16:
        def store_half(a, i, j, k, v):
            a[i, j, k] = float32_to_half_bits(v)

        return store_half

    def store_same(a, i, j, k, v):
        a[i, j, k] = v

    return store_same


@overload(compute_zero, inline="always")
def _compute_zero_overload(a):
    if a.dtype == types.float64:
        return lambda a: _F64_ZERO
    return lambda a: _F32_ZERO


@overload(compute_neg_inf, inline="always")
def _compute_neg_inf_overload(a):
    if a.dtype == types.float64:
        return lambda a: _F64_NEG_INF
    return lambda a: _F32_NEG_INF


@overload(keeps_exact_exp, inline="always")
def _keeps_exact_exp_overload(a):
    exact = a.dtype != types.uint16
    return lambda a: exact


def to_compute(a, v):
    """v (a float64 row statistic) rounded to the compute type of array a."""
    raise TypeError("to_compute is only callable from compiled code")


def compute_empty(a, n):
    """An uninitialised 1-D work array of n elements in the compute type of array a."""
    raise TypeError("compute_empty is only callable from compiled code")


@overload(to_compute, inline="always")
def _to_compute_overload(a, v):
    if a.dtype == types.float64:
        return lambda a, v: np.float64(v)
    return lambda a, v: np.float32(v)


@overload(compute_empty, inline="always")
def _compute_empty_overload(a, n):
    if a.dtype == types.float64:
        return lambda a, n: np.empty(n, np.float64)
    return lambda a, n: np.empty(n, np.float32)
