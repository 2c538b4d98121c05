"""``fast_max(m, v)``: the larger of two floats, a NaN losing to a number, as one LLVM ``maxnum``.

Why: generated code finds a row's maximum (the shift of a softmax or logsumexp, ``max_shift``)
with a running ``m``. Written as ``if v > m: m = v``, LLVM sees a compare and a branch and keeps
the loop scalar; ``llvm.maxnum`` is a reduction that LLVM 22 (llvmlite 0.50, Numba 0.68)
vectorises, about 2x faster on rows of 100 and more (a softmax over a 10,000-word vocabulary:
290 -> 140 µs per 64 rows in float32, scratch measurement). LLVM 20 (Numba 0.65) keeps it scalar,
and there the NaN handling of a scalar ``maxnum`` made the same loop 2x slower, so with an LLVM
older than 22 ``fast_max`` is the compare-and-select of the branch it replaces.

The result is the same either way: ``v > m`` is false for a NaN ``v``, and ``maxnum`` also
returns the number when one operand is NaN (the shift never becomes NaN; a NaN input still
propagates through the sum that uses the shift). Only the sign of a zero maximum may differ
(``maxnum(-0.0, 0.0)`` may be either), which no shifted formula can observe. (For a NaN ``m``,
which the running maximum never holds, ``maxnum`` returns ``v`` and the select keeps ``m``.)
"""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: Whether this LLVM vectorises a ``maxnum`` reduction with no fast-math flags (22 does, 20 does
#: not; 21 was not tried, so it gets the select).
MAXNUM_VECTORISES = llvm.llvm_version_info >= (22,)


@intrinsic
def fast_max(typingctx, m, v):
    """``max(m, v)`` of two floats, ignoring a NaN operand; only meaningful in ``@njit`` code.

    The result has the wider of the two float types.
    """
    if not (isinstance(m, types.Float) and isinstance(v, types.Float)):
        return None
    result = m if m.bitwidth >= v.bitwidth else v

    def codegen(context, builder, signature, args):
        ll_type = context.get_value_type(result)
        a = context.cast(builder, args[0], signature.args[0], result)
        b = context.cast(builder, args[1], signature.args[1], result)
        if not MAXNUM_VECTORISES:
            return builder.select(builder.fcmp_ordered(">", b, a), b, a)  # v > m ? v : m
        fnty = ir.FunctionType(ll_type, [ll_type, ll_type])
        maxnum = builder.module.declare_intrinsic("llvm.maxnum", [ll_type], fnty)
        return builder.call(maxnum, [a, b])

    return result(m, v), codegen
