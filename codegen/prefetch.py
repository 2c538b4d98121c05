"""A software prefetch for the gather loops of generated code.

The embedding kernels (``emit_gather.py``) read rows of a large table in the order of an id
matrix, which the hardware prefetcher cannot predict: each row is a cache miss, and a row that
the previous training step wrote back is slower still. Asking for the row a few ids ahead lets
those misses overlap with the work on the current row (fastText bag gather at batch 64: about
60 -> 35 µs per step in a micro-benchmark).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def prefetch_element(typingctx, array, row, col):
    """Hint the CPU to load ``array[row, col]``'s cache line; never reads or faults.

    ``row`` and ``col`` are not checked: a prefetch of an address outside the array is a no-op
    hint, not an access. Only meaningful inside ``@njit`` code.
    """
    if not (
        isinstance(array, types.Array)
        and array.ndim == 2
        and isinstance(row, types.Integer)
        and isinstance(col, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        strides = [builder.extract_value(view.strides, k) for k in range(2)]
        r = context.cast(builder, args[1], signature.args[1], types.intp)
        c = context.cast(builder, args[2], signature.args[2], types.intp)
        offset = builder.add(builder.mul(r, strides[0]), builder.mul(c, strides[1]))
        byte = ir.IntType(8).as_pointer()
        address = builder.gep(builder.bitcast(view.data, byte), [offset])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32])
        prefetch = builder.module.declare_intrinsic("llvm.prefetch", fnty=fnty)
        # read access, high temporal locality, data cache
        builder.call(
            prefetch, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        )
        return context.get_dummy_value()

    return types.void(array, row, col), codegen
