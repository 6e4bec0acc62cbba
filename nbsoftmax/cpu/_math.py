"""Scalar building blocks of the CPU kernels: a vectorisable exp, NaN-propagating max, and
float16 storage conversions.

Everything here inlines into the kernels' loops. This llvmlite has no SVML, so ``math.exp``
stays a scalar libm call and blocks vectorisation of every loop it is in; ``exp_`` below is
range reduction + polynomial + an exponent built from integer bits, all of which LLVM turns
into packed AVX2 instructions (checked with ``inspect_asm``: ``vfmadd...ps``, ``vroundps``).

The LLVM intrinsics (``_intrinsics``: fmaximum, fma, select, ...) and the storage <-> compute
type overloads (``_storage``: float16 data travels as its ``uint16`` bits, widened to float32
on load and rounded back on store) live in their own modules and are re-exported here, where
the kernels import their building blocks from.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# Re-exported: the kernels import their building blocks from here (fmaximum, load2, ...).
from ._intrinsics import (  # noqa: F401
    _int32_bits_as_float32,
    _int64_bits_as_float64,
    _llvm_float_type,
    float32_to_half_bits,
    fma,
    fmaximum,
    fminimum,
    half_bits_to_float32,
    rint,
    select,
)
from ._storage import (  # noqa: F401
    compute_empty,
    compute_neg_inf,
    compute_zero,
    computes_in_float64,
    keeps_exact_exp,
    load,
    load2,
    load3,
    store,
    store2,
    store3,
    sum_block,
    to_compute,
)


# ---------------------------------------------------------------------------------------
# exp
# ---------------------------------------------------------------------------------------
# Cody-Waite reduction e^d = 2^k * e^r, k = rint(d / ln2), r = d - k*ln2 with ln2 split in
# a part whose product with k is exact and a correction, both applied by FMA. Only the
# caller's own rounding of d = x - max enters the error proportionally to |d|; folding the
# shift into the FMA instead (d*log2e - m*log2e) was measured at up to 7.3e-8*|t| relative
# error, over the float32 bound of 6e-8*|t|.
#
# Clamping d to [LO, HI] first makes 2^k land exactly on 0.0 (biased exponent 0) for
# d <= LO and on +inf (exponent all ones) for d >= HI, so -inf entries give exact zeros and
# no compare/select is needed in the loop; llvm.maximum/minimum keep NaN as NaN.

_F32_LOG2E = np.float32(1.4426950408889634)
_F32_LN2_HI = np.float32(0.693359375)  # 0x3F318000: 9 significant bits, k*hi exact
_F32_LN2_LO = np.float32(-2.12194440e-4)
_F32_LO = np.float32(-88.0)  # rint(-88*log2e) = -127 -> 2^k bits == 0 -> exactly 0.0
_F32_HI = np.float32(88.8)  # rint(88.8*log2e) = 128 -> 2^k == +inf
_F32_ZERO = np.float32(0.0)
_F32_ONE = np.float32(1.0)
_F32_NEG_INF = np.float32(-np.inf)
_F32_NAN = np.float32(np.nan)
_F32_HALF = np.float32(0.5)
# Cephes expf minimax polynomial on [-ln2/2, ln2/2]: e^r = 1 + r + r^2 * P(r), ~1 ulp.
_F32_P0 = np.float32(1.9875691500e-4)
_F32_P1 = np.float32(1.3981999507e-3)
_F32_P2 = np.float32(8.3334519073e-3)
_F32_P3 = np.float32(4.1665795894e-2)
_F32_P4 = np.float32(1.6666665459e-1)
_F32_P5 = np.float32(5.0000001201e-1)

_F64_LOG2E = np.float64(1.4426950408889634)
_F64_LN2_HI = np.float64(6.93147180369123816490e-01)  # fdlibm: 32 significant bits
_F64_LN2_LO = np.float64(1.90821492927058770002e-10)
_F64_LO = np.float64(-709.0)  # rint(-709*log2e) = -1023 -> exactly 0.0
_F64_HI = np.float64(709.9)  # rint(709.9*log2e) = 1024 -> +inf
_F64_ZERO = np.float64(0.0)
_F64_NEG_INF = np.float64(-np.inf)
# Taylor coefficients 1/k!, k = 2..13: truncation error |r|^14/14! < 5e-18 on |r| <= ln2/2.
_F64_INV_FACT = tuple(np.float64(1.0 / float(np.prod(np.arange(1, k + 1, dtype=np.float64))))
                      for k in range(2, 14))
(_F64_C2, _F64_C3, _F64_C4, _F64_C5, _F64_C6, _F64_C7, _F64_C8, _F64_C9, _F64_C10, _F64_C11,
 _F64_C12, _F64_C13) = _F64_INV_FACT
_F64_ONE = np.float64(1.0)


@njit(error_model="numpy")
def _exp_f32(d):
    d = fminimum(fmaximum(d, _F32_LO), _F32_HI)
    k = rint(d * _F32_LOG2E)
    r = fma(k, -_F32_LN2_HI, d)
    r = fma(k, -_F32_LN2_LO, r)
    p = fma(_F32_P0, r, _F32_P1)
    p = fma(p, r, _F32_P2)
    p = fma(p, r, _F32_P3)
    p = fma(p, r, _F32_P4)
    p = fma(p, r, _F32_P5)
    p = fma(p, r * r, r + _F32_ONE)
    # k is NaN only when d is; fptosi(NaN) is poison in LLVM, so give it a defined value
    # (p is NaN then and carries the NaN through the product).
    k = k if k == k else _F32_ZERO
    scale = _int32_bits_as_float32((np.int32(k) + np.int32(127)) << np.int32(23))
    return p * scale


@njit(error_model="numpy")
def _exp_f64(d):
    d = fminimum(fmaximum(d, _F64_LO), _F64_HI)
    k = rint(d * _F64_LOG2E)
    r = fma(k, -_F64_LN2_HI, d)
    r = fma(k, -_F64_LN2_LO, r)
    p = fma(_F64_C13, r, _F64_C12)
    p = fma(p, r, _F64_C11)
    p = fma(p, r, _F64_C10)
    p = fma(p, r, _F64_C9)
    p = fma(p, r, _F64_C8)
    p = fma(p, r, _F64_C7)
    p = fma(p, r, _F64_C6)
    p = fma(p, r, _F64_C5)
    p = fma(p, r, _F64_C4)
    p = fma(p, r, _F64_C3)
    p = fma(p, r, _F64_C2)
    p = fma(p, r * r, r + _F64_ONE)
    k = k if k == k else _F64_ZERO
    scale = _int64_bits_as_float64((np.int64(k) + np.int64(1023)) << np.int64(52))
    return p * scale


def exp_(d):
    """e**d in d's precision (float32 or float64), vectorisable; see the notes above."""
    raise TypeError("exp_ is only callable from compiled code")


@overload(exp_, inline="always")
def _exp_overload(d):
    if d == types.float32:
        return lambda d: _exp_f32(d)
    if d == types.float64:
        return lambda d: _exp_f64(d)
    return None


# ---------------------------------------------------------------------------------------
# log (float64, for per-row statistics in vectorised loops)
# ---------------------------------------------------------------------------------------
# Short-row log_softmax needs one log per row: as a libm call that cost ~2 ns per element
# for 10-element rows, half of the kernel's time. For normal positive finite v:
# v = 2^e * m with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s), s = (m - 1) / (m + 1),
# |s| <= 0.1716, series to s^23 (next term < 1e-19 relative). About 1 ulp.

_F64_SQRT2 = np.float64(1.4142135623730951)
_F64_HALF = np.float64(0.5)
_F64_TWO = np.float64(2.0)
_F64_LN2 = np.float64(0.6931471805599453)
_F64_LN2_TAIL = np.float64(2.3190468138462996e-17)  # ln 2 - _F64_LN2
_F64_ATANH = tuple(np.float64(2.0 / (2 * k + 1)) for k in range(12))
(_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7, _A8, _A9, _A10, _A11) = _F64_ATANH
_EXP_MASK = np.int64(0x7FF0000000000000)
_MANT_MASK = np.int64(0x000FFFFFFFFFFFFF)
_ONE_BITS = np.int64(0x3FF0000000000000)


@intrinsic
def _float64_as_int64_bits(typingctx, v):
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@njit(error_model="numpy")
def log64(v):
    """Natural log of a positive, normal, finite float64, vectorisable (~1 ulp)."""
    bits = _float64_as_int64_bits(v)
    e = np.float64(((bits & _EXP_MASK) >> np.int64(52)) - np.int64(1023))
    m = _int64_bits_as_float64((bits & _MANT_MASK) | _ONE_BITS)
    big = m > _F64_SQRT2
    m = m * _F64_HALF if big else m
    e = e + _F64_ONE if big else e
    s = (m - _F64_ONE) / (m + _F64_ONE)
    z = s * s
    p = fma(_A11, z, _A10)
    p = fma(p, z, _A9)
    p = fma(p, z, _A8)
    p = fma(p, z, _A7)
    p = fma(p, z, _A6)
    p = fma(p, z, _A5)
    p = fma(p, z, _A4)
    p = fma(p, z, _A3)
    p = fma(p, z, _A2)
    p = fma(p, z, _A1)
    p = fma(p, z, _A0)
    return fma(e, _F64_LN2, fma(e, _F64_LN2_TAIL, s * p))
