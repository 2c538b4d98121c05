"""Reductions: sum over axes."""

from __future__ import annotations

from .node import Node, make
from .registry import Op, register
from .types import TensorType


class SumOp(Op):
    """Sum over ``axes`` (a tuple), keeping reduced axes as size 1 if ``keepdims``."""

    name = "sum"
    family = "reduce"
    arity = 1

    def infer(self, inputs, attrs):
        (x,) = inputs
        axes = attrs["axes"]
        keep = attrs["keepdims"]
        shape = []
        for k, d in enumerate(x.shape):
            if k in axes:
                if keep:
                    shape.append(1)
            else:
                shape.append(d)
        return TensorType(tuple(shape), x.type.kind)

    def vjp(self, node, cotangent):
        from .ops_shape import broadcast_to, reshape

        (x,) = node.inputs
        kept = tuple(1 if k in node.attr("axes") else d for k, d in enumerate(x.shape))
        g = cotangent if node.attr("keepdims") else reshape(cotangent, kept)
        return [broadcast_to(g, x.shape)]

    def jvp(self, node, tangents):
        (t,) = tangents
        if t is None:
            return None
        return make(self, (t,), node.attrs)


sum_op = register(SumOp())


def reduce_sum(x: Node, axes=None, keepdims: bool = False) -> Node:
    """Sum of ``x`` over ``axes`` (default: all)."""
    if axes is None:
        axes = tuple(range(x.ndim))
    axes = tuple(sorted(a % x.ndim for a in axes)) if x.ndim else ()
    if not axes:
        return x
    return make(sum_op, (x,), (("axes", axes), ("keepdims", bool(keepdims))))
