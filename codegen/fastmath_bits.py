"""Bit-level building blocks for :mod:`symgrad.codegen.fastmath`.

They are Numba intrinsics, emitted inline as single LLVM instructions (a fused multiply-add, a
bit cast, an integer truncation), so a loop calling the fastmath kernels never contains an opaque
call that would stop LLVM's loop vectoriser. Integer-width handling matters for float32: Numba
does all integer arithmetic in int64, and unless the values are wrapped back to int32 before
shifts and comparisons, a float32 loop carries 8 lanes of int64 (twice the registers) alongside
its 8 lanes of float.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["JIT_OPTIONS", "as_float", "as_int", "fma", "horner", "wrap_int"]

#: Options of every kernel variant, independent of the calling loop's: fastmath=False so a
#: fastmath caller cannot drop their inf/nan handling, error_model="numpy" so divisions carry no
#: zero check (a branch that blocks vectorisation).
JIT_OPTIONS = {"fastmath": False, "error_model": "numpy"}


@intrinsic
def fma(typingctx, a, b, c):
    """``a*b + c`` via ``llvm.fmuladd``: one rounding where the CPU has FMA, else mul then add."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        lty = args[0].type
        fnty = ir.FunctionType(lty, [lty, lty, lty])
        name = f"llvm.fmuladd.{lty.intrinsic_name}"
        return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)

    return a(a, a, a), codegen


@intrinsic
def as_int(typingctx, x):
    """Reinterpret the bits of a float as a signed integer of the same width."""
    if not isinstance(x, types.Float):
        return None
    ity = types.int32 if x.bitwidth == 32 else types.int64

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(ity))

    return ity(x), codegen


@intrinsic
def as_float(typingctx, n, like):
    """Reinterpret integer bits as a float of ``like``'s type (truncating a wider integer).

    Numba widens int32 arithmetic to int64; truncating here lets LLVM narrow it back, so float32
    loops keep 8 lanes of int32 instead of 8 lanes of int64.
    """
    if not (isinstance(n, types.Integer) and isinstance(like, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        value, width = args[0], like.bitwidth
        if n.bitwidth > width:
            value = builder.trunc(value, ir.IntType(width))
        elif n.bitwidth < width:
            value = builder.sext(value, ir.IntType(width))
        return builder.bitcast(value, context.get_value_type(like))

    return like(n, like), codegen


@intrinsic
def wrap_int(typingctx, n, like):
    """``n`` wrapped to a signed integer as wide as ``like``'s float type.

    Numba does integer arithmetic in int64. Where float32 code needs a shift or comparison of a
    difference, wrapping it to int32 first tells LLVM that the int32 lanes suffice.
    """
    if not (isinstance(n, types.Integer) and isinstance(like, types.Float)):
        return None
    ity = types.int32 if like.bitwidth == 32 else types.int64

    def codegen(context, builder, sig, args):
        value, width = args[0], like.bitwidth
        if n.bitwidth > width:
            return builder.trunc(value, ir.IntType(width))
        if n.bitwidth < width:
            return (
                builder.sext(value, ir.IntType(width))
                if n.signed
                else builder.zext(value, ir.IntType(width))
            )
        return value

    return ity(n, like), codegen


@njit(**JIT_OPTIONS)
def horner(z, coeffs):
    """Evaluate ``sum(coeffs[i] * z**i)``; the loop over a constant tuple is fully unrolled."""
    acc = coeffs[len(coeffs) - 1]
    for i in range(len(coeffs) - 2, -1, -1):
        acc = fma(acc, z, coeffs[i])
    return acc
