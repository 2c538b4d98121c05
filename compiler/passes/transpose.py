"""Canonical placement of transposes, so equal values written in transposed form merge.

SymPy pushes transposes inwards ((X W + 1 b)ᵀ becomes Wᵀ Xᵀ + bᵀ 1ᵀ), which would make
``tanh(...)ᵀ`` a second computation of ``tanh(...)``. These rules pull transposes back out:
``aᵀ bᵀ → (b a)ᵀ`` and ``f(aᵀ, bᵀ, scalar) → f(a, b, scalar)ᵀ``; hash-consing then merges the
two spellings.
"""

from __future__ import annotations

from ...ir import ops_elementwise as ew
from ...ir.node import Node, make
from ...ir.ops_linalg import matmul, matmul_op
from ...ir.ops_shape import transpose, transpose_op
from ...ir.ops_source import const_op


def pull_transpose(node: Node) -> Node | None:
    if node.op is matmul_op:
        a, b = node.inputs
        if a.op is transpose_op and b.op is transpose_op:
            return transpose(matmul(b.inputs[0], a.inputs[0]))
        return None
    if not isinstance(node.op, ew.ElementwiseOp) or node.ndim != 2:
        return None
    matrices = [i for i in node.inputs if i.ndim == 2 and i.op is not const_op]
    if not matrices or not all(i.op is transpose_op for i in matrices):
        return None
    if any(i.ndim == 1 or (i.ndim == 2 and i.op is const_op) for i in node.inputs):
        return None
    inputs = [i.inputs[0] if i.op is transpose_op else i for i in node.inputs]
    return transpose(make(node.op, inputs, node.attrs))
