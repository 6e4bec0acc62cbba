"""Scalar building blocks of the CPU kernels: a vectorisable exp, NaN-propagating max, and
float16 storage conversions.

Everything here inlines into the kernels' loops. This llvmlite has no SVML, so ``math.exp``
stays a scalar libm call and blocks vectorisation of every loop it is in; ``exp_`` below is
range reduction + polynomial + an exponent built from integer bits, all of which LLVM turns
into packed AVX2 instructions (checked with ``inspect_asm``: ``vfmadd...ps``, ``vroundps``).

Storage vs compute type: float16 arrays travel to the kernels as their ``uint16`` bit
patterns (Numba's CPU target has no float16) and are widened to float32 on load and
rounded back on store by LLVM's own ``half`` conversions (``vcvtph2ps``/``vcvtps2ph``).
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# ---------------------------------------------------------------------------------------
# LLVM intrinsics that Numba does not expose
# ---------------------------------------------------------------------------------------


def _llvm_float_type(ty):
    return ir.FloatType() if ty == types.float32 else ir.DoubleType()


def _binary_float_intrinsic(name):
    def typer(typingctx, a, b):
        if a not in (types.float32, types.float64) or a != b:
            return None
        sig = a(a, b)

        def codegen(context, builder, signature, args):
            fty = _llvm_float_type(signature.return_type)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(fty, [fty, fty]), f"{name}.{fty.intrinsic_name}"
            )
            return builder.call(fn, args)

        return sig, codegen

    return intrinsic(typer)


# llvm.maximum/minimum propagate NaN (unlike maxps and Python's max, which drop it) and,
# unlike an `if`, vectorise inside reductions: a NaN anywhere in a slice makes its max NaN,
# which is how the kernels detect NaN slices without a compare in the hot loop.
fmaximum = _binary_float_intrinsic("llvm.maximum")
fminimum = _binary_float_intrinsic("llvm.minimum")


@intrinsic
def fma(typingctx, a, b, c):
    """Fused a * b + c with one rounding (Cody-Waite reduction needs it exact)."""
    if a not in (types.float32, types.float64) or not (a == b == c):
        return None
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):
        fty = _llvm_float_type(signature.return_type)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(fty, [fty, fty, fty]), f"llvm.fma.{fty.intrinsic_name}"
        )
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def select(typingctx, cond, a, b):
    """``a if cond else b`` as one LLVM select (no branch): Numba's conditional expression
    became a branch that kept the masked loops of _scaled from vectorising."""
    if cond != types.boolean or a not in (types.float32, types.float64) or a != b:
        return None
    sig = a(cond, a, a)

    def codegen(context, builder, signature, args):
        return builder.select(args[0], args[1], args[2])

    return sig, codegen


@intrinsic
def rint(typingctx, a):
    """Round to nearest integer (ties to even), staying in floating point (vroundps)."""
    if a not in (types.float32, types.float64):
        return None
    sig = a(a)

    def codegen(context, builder, signature, args):
        fty = _llvm_float_type(signature.return_type)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(fty, [fty]), f"llvm.rint.{fty.intrinsic_name}"
        )
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def _int32_bits_as_float32(typingctx, i):
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _int64_bits_as_float64(typingctx, i):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def half_bits_to_float32(typingctx, bits):
    """IEEE binary16 bit pattern (uint16) -> float32, exactly."""
    sig = types.float32(types.uint16)

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return sig, codegen


@intrinsic
def float32_to_half_bits(typingctx, value):
    """float32 -> IEEE binary16 bit pattern (uint16), rounded to nearest even."""
    sig = types.uint16(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return sig, codegen


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
