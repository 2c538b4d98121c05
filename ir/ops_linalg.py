"""Linear algebra: matrix product and trace (hand-written VJPs in IR)."""

from __future__ import annotations

from .errors import ShapeError
from .node import Node, make
from .registry import Op, register
from .types import FLOAT, INT, TensorType, dims_equal, shape_str


class MatMulOp(Op):
    """``(m, k) @ (k, n) -> (m, n)``; emitted as a BLAS call."""

    name = "matmul"
    family = "linalg"
    arity = 2

    def infer(self, inputs, attrs):
        a, b = inputs
        if INT in (a.type.kind, b.type.kind):
            raise ShapeError("an integer index input cannot be multiplied as a matrix")
        if a.ndim != 2 or b.ndim != 2:
            raise ShapeError(
                f"matmul needs 2-D operands, got {shape_str(a.shape)} @ {shape_str(b.shape)}"
            )
        if not dims_equal(a.shape[1], b.shape[0]):
            raise ShapeError(
                f"matmul inner dimensions differ: {shape_str(a.shape)} @ {shape_str(b.shape)}"
            )
        return TensorType((a.shape[0], b.shape[1]), FLOAT)

    def vjp(self, node, cotangent):
        from .ops_shape import transpose

        a, b = node.inputs
        return [matmul(cotangent, transpose(b)), matmul(transpose(a), cotangent)]

    def jvp(self, node, tangents):
        from .ops_elementwise import add

        a, b = node.inputs
        ta, tb = tangents
        terms = []
        if ta is not None:
            terms.append(matmul(ta, b))
        if tb is not None:
            terms.append(matmul(a, tb))
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else add(terms[0], terms[1])


class TraceOp(Op):
    """Sum of the diagonal of a square matrix."""

    name = "trace"
    family = "linalg"
    arity = 1

    def infer(self, inputs, attrs):
        (a,) = inputs
        if a.ndim != 2 or not dims_equal(a.shape[0], a.shape[1]):
            raise ShapeError(f"trace needs a square matrix, got {shape_str(a.shape)}")
        return TensorType((), FLOAT)

    def vjp(self, node, cotangent):
        from .ops_elementwise import mul
        from .ops_source import eye

        (a,) = node.inputs
        return [mul(eye(a.shape[0]), cotangent)]

    def jvp(self, node, tangents):
        (t,) = tangents
        return None if t is None else trace(t)


matmul_op = register(MatMulOp())
trace_op = register(TraceOp())


def matmul(a: Node, b: Node) -> Node:
    return make(matmul_op, (a, b))


def trace(a: Node) -> Node:
    return make(trace_op, (a,))
