"""LLVM intrinsics that Numba does not expose, for the CPU kernels: NaN-propagating
max/min, fused multiply-add, a branch-free select, rint, bit casts and the float16 <->
float32 conversions (LLVM's own ``half``: ``vcvtph2ps``/``vcvtps2ph``). Each inlines into the
kernels' loops and vectorises there."""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


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
